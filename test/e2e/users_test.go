package e2e

import (
	"net"
	"net/textproto"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tryLogin opens a control connection, sends USER and PASS and returns the
// final reply code and text (QUIT is sent afterwards).
func tryLogin(t testing.TB, addr, user, pass string) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	tp := textproto.NewConn(c)
	if code, msg, err := tp.ReadResponse(220); err != nil {
		t.Fatalf("greeting: %d %s: %v", code, msg, err)
	}
	if err := tp.PrintfLine("USER %s", user); err != nil {
		t.Fatal(err)
	}
	code, msg, err := tp.ReadResponse(0)
	if err != nil {
		t.Fatalf("USER %s: %v", user, err)
	}
	if code == 331 {
		if err := tp.PrintfLine("PASS %s", pass); err != nil {
			t.Fatal(err)
		}
		code, msg, err = tp.ReadResponse(0)
		if err != nil {
			t.Fatalf("PASS: %v", err)
		}
	}
	_ = tp.PrintfLine("QUIT")
	_, _, _ = tp.ReadResponse(0)
	return code, msg
}

func TestUsers(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{NoAnonymous: true})
	login := func(t *testing.T, user, pass string, want int) {
		t.Helper()
		code, msg := tryLogin(t, s.Addr, user, pass)
		if code != want {
			t.Errorf("login %s/%s: %d %s; want %d\nserver log:\n%s", user, pass, code, msg, want, s.LogTail(10))
		}
	}
	cli := func(t *testing.T, stdin string, wantOK bool, args ...string) cmdResult {
		t.Helper()
		r := s.ferry(t, stdin, append(args, "--data", s.Data)...)
		if (r.Code == 0) != wantOK {
			t.Errorf("ferry %s: want success=%v:\n%s", strings.Join(args, " "), wantOK, r)
		}
		return r
	}

	t.Run("unknown-user", func(t *testing.T) { login(t, "bob", "pw1", 530) })
	t.Run("anonymous-disabled", func(t *testing.T) { login(t, "anonymous", "x@y", 530) })
	t.Run("add-while-running", func(t *testing.T) {
		s.addUser(t, "bob", "pw1")
		login(t, "bob", "pw1", 230)
		login(t, "bob", "wrong", 530)
	})
	t.Run("add-duplicate", func(t *testing.T) {
		cli(t, "other\n", false, "user", "add", "bob", "--password-stdin")
		login(t, "bob", "pw1", 230)
		login(t, "bob", "other", 530)
	})
	t.Run("disable", func(t *testing.T) {
		cli(t, "", true, "user", "disable", "bob")
		login(t, "bob", "pw1", 530)
	})
	t.Run("enable", func(t *testing.T) {
		cli(t, "", true, "user", "enable", "bob")
		login(t, "bob", "pw1", 230)
	})
	t.Run("passwd", func(t *testing.T) {
		cli(t, "pw2\n", true, "user", "passwd", "bob", "--password-stdin")
		login(t, "bob", "pw1", 530)
		login(t, "bob", "pw2", 230)
	})
	t.Run("del", func(t *testing.T) {
		cli(t, "", true, "user", "del", "bob")
		login(t, "bob", "pw2", 530)
		cli(t, "", false, "user", "del", "bob")
	})
	t.Run("custom-home", func(t *testing.T) {
		requireTool(t, "curl")
		h := filepath.Join(t.TempDir(), "carol home")
		cli(t, "pw3\n", true, "user", "add", "carol", "--password-stdin", "--home", h)
		login(t, "carol", "pw3", 230)
		src := filepath.Join(t.TempDir(), "c.txt")
		writeFile(t, src, []byte("carol's file\n"))
		curlOK(t, "-T", src, s.URL("ftp", "carol", "pw3", "c.txt"))
		checkFileContent(t, filepath.Join(h, "c.txt"), []byte("carol's file\n"))
		mustNotExist(t, filepath.Join(s.Home("carol"), "c.txt"))
	})
	t.Run("jail", func(t *testing.T) {
		requireTool(t, "curl")
		// Two users: dave cannot see erin's files.
		erin := s.addUser(t, "erin", "pw5")
		s.addUser(t, "dave", "pw4")
		writeFile(t, filepath.Join(erin, "private.txt"), []byte("erin only"))
		out := filepath.Join(t.TempDir(), "o")
		for _, p := range []string{"..%2Ferin%2Fprivate.txt", "%2F..%2F..%2Ferin%2Fprivate.txt"} {
			curlFail(t, 78, []string{"< 550"}, "--ftp-method", "nocwd", "-o", out, s.URL("ftp", "dave", "pw4", p))
		}
	})
	t.Run("password-not-logged", func(t *testing.T) {
		log := s.LogTail(100000)
		for _, pw := range []string{"pw1", "pw2", "pw3", "pw4", "pw5"} {
			for _, l := range strings.Split(log, "\n") {
				if strings.Contains(l, "="+pw) || strings.Contains(l, "="+strconv.Quote(pw)) || strings.Contains(l, "PASS "+pw) {
					t.Errorf("server log shows a password: %q", l)
				}
			}
		}
	})
}

package e2e

import (
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReload: `ferry reload` applies a new banner, passive range and an
// added listener to new sessions while a session opened before keeps
// working with its own settings (its EPSV still uses the old range); a
// broken file changes nothing and `ferry reload` exits 1 naming file:line; a
// change of a setting that cannot change live (data) is refused whole;
// SIGHUP reloads too; a removed listener closes while the session it
// accepted goes on.
func TestReload(t *testing.T) {
	const half = 10
	s := startServer(t, serverConfig{ConfigFile: true, PassiveCount: 2 * half, ConfigExtra: "banner = \"Before reload\"\n"})
	home := s.addUser(t, testUser, testPass)
	writeFile(t, home+"/f.txt", []byte("hello\n"))
	rangeA := fmt.Sprintf("%d-%d", s.PassiveLo, s.PassiveLo+half-1)
	rangeB := fmt.Sprintf("%d-%d", s.PassiveLo+half, s.PassiveHi)
	base, err := os.ReadFile(s.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	rewrite := func(extra string) {
		t.Helper()
		src := strings.Replace(string(base), fmt.Sprintf("%d-%d", s.PassiveLo, s.PassiveHi), rangeA, 1)
		if strings.Contains(extra, "passive_ports") {
			src = regexp.MustCompile(`(?m)^passive_ports = .*\n`).ReplaceAllString(src, "")
		}
		src = regexp.MustCompile(`(?m)^banner = .*\n`).ReplaceAllString(src, "")
		writeFile(t, s.ConfigPath, []byte(src+extra))
	}
	rewrite("banner = \"Before reload\"\n")
	if r := s.ferry(t, "", "reload", "--data", s.Data); r.Code != 0 {
		t.Fatalf("first reload (range A): %s", r)
	}

	old, banner := dialFTP(t, s.Addr)
	if banner != "Before reload" {
		t.Fatalf("banner before the reload: %q", banner)
	}
	login(t, old)
	if p := epsvPort(t, old); !inRange(p, rangeA) {
		t.Fatalf("EPSV before the reload: port %d, want %s", p, rangeA)
	}

	rewrite(fmt.Sprintf("banner = \"After reload\"\npassive_ports = %q\nextra_listen = [\"127.0.0.1:0\"]\nlogin_message = \"\"\"Hello\nfrom the new settings.\"\"\"\n", rangeB))
	r := s.ferry(t, "", "reload", "--data", s.Data)
	if r.Code != 0 {
		t.Fatalf("reload: %s", r)
	}
	addrs := linesAfter(r.Stdout, "listening on ")
	if len(addrs) != 2 || addrs[0] != s.Addr {
		t.Fatalf("reload output lists listeners %q, want %s and a new one\n%s", addrs, s.Addr, r)
	}
	added := addrs[1]

	// The open session: its settings are the ones it started with.
	for range 2 {
		if p := epsvPort(t, old); !inRange(p, rangeA) {
			t.Fatalf("old session's EPSV after the reload: port %d, want the old range %s", p, rangeA)
		}
	}
	if got := retr(t, old, "f.txt"); got != "hello\n" {
		t.Fatalf("old session's RETR after the reload: %q", got)
	}
	// New sessions, on the old and the added listener, see the new values.
	for _, a := range []string{s.Addr, added} {
		c, banner := dialFTP(t, a)
		if banner != "After reload" {
			t.Fatalf("banner of a new session on %s: %q", a, banner)
		}
		if text := login(t, c); !strings.HasPrefix(text, "Hello\n from the new settings.\n") {
			t.Fatalf("new session's login reply on %s: %q, want the login message", a, text)
		}
		if p := epsvPort(t, c); !inRange(p, rangeB) {
			t.Fatalf("new session's EPSV on %s: port %d, want the new range %s", a, p, rangeB)
		}
		if got := retr(t, c, "f.txt"); got != "hello\n" {
			t.Fatalf("new session's RETR on %s: %q", a, got)
		}
	}
	onAdded, _ := dialFTP(t, added)
	login(t, onAdded)
	// A real client reads the multi-line 230.
	requireTool(t, "curl")
	if r := curlOK(t, "-s", s.URL("ftp", testUser, testPass, "f.txt")); r.Stdout != "hello\n" {
		t.Fatalf("curl with the login message: %s", r)
	}

	// A broken file: nothing changes, the error names file and line.
	good, err := os.ReadFile(s.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(good), "After reload", "Broken", 1) + "bogus_key = 1\n"
	writeFile(t, s.ConfigPath, []byte(broken))
	line := strings.Count(broken, "\n") // bogus_key is the last line
	r = s.ferry(t, "", "reload", "--data", s.Data)
	want := fmt.Sprintf("%s:%d: unknown key \"bogus_key\"", s.ConfigPath, line)
	if r.Code != 1 || !strings.Contains(r.Stderr, want) {
		t.Fatalf("reload of a broken file: want exit 1 and %q\n%s", want, r)
	}
	if _, banner := dialFTP(t, s.Addr); banner != "After reload" {
		t.Fatalf("banner after a failed reload: %q", banner)
	}
	waitLog(t, s, fmt.Sprintf("%s:%d: unknown key", s.ConfigPath, line))

	// A setting that cannot change live: the whole reload is refused.
	other := t.TempDir()
	refused := regexp.MustCompile(`(?m)^data = .*$`).ReplaceAllString(string(good), fmt.Sprintf("data = %q", other))
	writeFile(t, s.ConfigPath, []byte(strings.Replace(refused, "After reload", "Refused", 1)))
	r = s.ferry(t, "", "reload", "--data", s.Data)
	if r.Code != 1 || !strings.Contains(r.Stderr, "reload refused, nothing changed") || !strings.Contains(r.Stderr, "data: ") {
		t.Fatalf("reload changing data: want a refusal naming data\n%s", r)
	}
	if _, banner := dialFTP(t, s.Addr); banner != "After reload" {
		t.Fatalf("banner after a refused reload: %q", banner)
	}

	// SIGHUP reloads the same way; the added listener goes, the session
	// it accepted stays.
	rewrite(fmt.Sprintf("banner = \"After SIGHUP\"\npassive_ports = %q\n", rangeB))
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, s, "msg=reloaded generation=4")
	if _, banner := dialFTP(t, s.Addr); banner != "After SIGHUP" {
		t.Fatalf("banner after SIGHUP: %q", banner)
	}
	if c, err := net.DialTimeout("tcp", added, 5*time.Second); err == nil {
		c.Close()
		t.Fatalf("the removed listener %s still accepts", added)
	}
	if got := retr(t, onAdded, "f.txt"); got != "hello\n" {
		t.Fatalf("session of the removed listener: RETR %q", got)
	}
	if got := retr(t, old, "f.txt"); got != "hello\n" {
		t.Fatalf("the first session after three reloads: RETR %q", got)
	}
}

// TestReloadUsage: the control commands' malformed forms and a data
// directory no server runs on.
func TestReloadUsage(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"reload", "--data", dir}, 1, "no server answers on " + dir + "/ferry.sock"},
		{[]string{"upgrade", "--data", dir}, 1, "no server answers"},
		{[]string{"status", "--data", dir}, 1, "no server answers"},
		{[]string{"reload", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"reload", "--bogus"}, 2, "flag provided but not defined: -bogus"},
		{[]string{"upgrade", "--data"}, 2, "flag needs an argument"},
	} {
		r := runCmd(t, 30*time.Second, cmdOpts{}, ferryBin, c.args...)
		if r.Code != c.code || !strings.Contains(r.Stderr, c.want) {
			t.Errorf("want exit %d and %q\n%s", c.code, c.want, r)
		}
	}
	if r := runCmd(t, 30*time.Second, cmdOpts{}, ferryBin, "reload", "-h"); r.Code != 0 || !strings.Contains(r.Stdout, "ferry reload [--data DIR]") {
		t.Errorf("reload -h\n%s", r)
	}
}

// ftpConn is a raw control connection.
type ftpConn struct {
	*textproto.Conn
	nc net.Conn
}

// dialFTP connects and returns the connection and its 220 text.
func dialFTP(t *testing.T, addr string) (*ftpConn, string) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(2 * time.Minute))
	c := &ftpConn{textproto.NewConn(nc), nc}
	return c, expectCode(t, c.Conn, 220)
}

// login logs in as the test user and returns the 230's text.
func login(t *testing.T, c *ftpConn) string {
	t.Helper()
	var welcome string
	for _, step := range []struct {
		line string
		code int
	}{{"USER " + testUser, 331}, {"PASS " + testPass, 230}, {"TYPE I", 200}} {
		c.PrintfLine("%s", step.line)
		if text := expectCode(t, c.Conn, step.code); step.code == 230 {
			welcome = text
		}
	}
	return welcome
}

// epsvPort sends EPSV and returns the port of the reply.
func epsvPort(t *testing.T, c *ftpConn) int {
	t.Helper()
	c.PrintfLine("EPSV")
	text := expectCode(t, c.Conn, 229)
	i, j := strings.Index(text, "(|||"), strings.Index(text, "|)")
	if i < 0 || j < i {
		t.Fatalf("bad EPSV reply %q", text)
	}
	p, err := strconv.Atoi(text[i+4 : j])
	if err != nil {
		t.Fatalf("bad EPSV reply %q", text)
	}
	return p
}

// dialData connects to the passive port p of c's server.
func dialData(t *testing.T, c *ftpConn, p int) net.Conn {
	t.Helper()
	host, _, _ := net.SplitHostPort(c.nc.RemoteAddr().String())
	d, err := net.DialTimeout("tcp", net.JoinHostPort(host, strconv.Itoa(p)), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	d.SetDeadline(time.Now().Add(2 * time.Minute))
	return d
}

// retr downloads name over EPSV and returns its content.
func retr(t *testing.T, c *ftpConn, name string) string {
	t.Helper()
	d := dialData(t, c, epsvPort(t, c))
	c.PrintfLine("RETR %s", name)
	expectCode(t, c.Conn, 150)
	b, err := io.ReadAll(d)
	if err != nil {
		t.Fatalf("RETR %s: %v", name, err)
	}
	d.Close()
	expectCode(t, c.Conn, 226)
	return string(b)
}

func inRange(p int, r string) bool {
	lo, hi, _ := strings.Cut(r, "-")
	l, _ := strconv.Atoi(lo)
	h, _ := strconv.Atoi(hi)
	return p >= l && p <= h
}

// linesAfter returns the first word after prefix on each line holding it.
func linesAfter(out, prefix string) []string {
	var got []string
	for _, l := range strings.Split(out, "\n") {
		if a, ok := addrAfter(l, prefix); ok {
			got = append(got, a)
		}
	}
	return got
}

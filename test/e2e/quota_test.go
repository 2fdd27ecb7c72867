package e2e

import (
	"context"
	"fmt"
	"net"
	"net/textproto"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/quota"
	"github.com/ferryftp/ferry/internal/storage/local"
	"github.com/ferryftp/ferry/internal/testenv/pgenv"
)

// rawUpload is one STOR over a raw control connection, for uploads run
// from goroutines (no t.Fatal).
type rawUpload struct {
	c    *textproto.Conn
	nc   net.Conn
	data net.Conn
}

// startUpload logs in to addr, opens EPSV and sends STOR name; the data
// connection is then ready for writes.
func startUpload(addr, user, pass, name string) (*rawUpload, error) {
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	nc.SetDeadline(time.Now().Add(2 * time.Minute))
	u := &rawUpload{c: textproto.NewConn(nc), nc: nc}
	step := func(line string, code int) (string, error) {
		if line != "" {
			if err := u.c.PrintfLine("%s", line); err != nil {
				return "", err
			}
		}
		got, text, err := u.c.ReadResponse(0)
		if got != code {
			return "", fmt.Errorf("%q: %d %s (%v), want %d", line, got, text, err, code)
		}
		return text, nil
	}
	for _, s := range []struct {
		line string
		code int
	}{{"", 220}, {"USER " + user, 331}, {"PASS " + pass, 230}, {"TYPE I", 200}} {
		if _, err := step(s.line, s.code); err != nil {
			nc.Close()
			return nil, err
		}
	}
	text, err := step("EPSV", 229)
	if err != nil {
		nc.Close()
		return nil, err
	}
	i, j := strings.Index(text, "(|||"), strings.Index(text, "|)")
	if i < 0 || j < i {
		nc.Close()
		return nil, fmt.Errorf("EPSV reply %q", text)
	}
	host, _, _ := net.SplitHostPort(addr)
	u.data, err = net.DialTimeout("tcp", net.JoinHostPort(host, text[i+4:j]), 10*time.Second)
	if err != nil {
		nc.Close()
		return nil, err
	}
	u.data.SetDeadline(time.Now().Add(2 * time.Minute))
	if _, err := step("STOR "+name, 150); err != nil {
		u.close()
		return nil, err
	}
	return u, nil
}

// write sends data in writes of 32 KiB; an error means the server closed
// the data connection (a refused upload).
func (u *rawUpload) write(data []byte) error {
	for p := data; len(p) > 0; {
		n := min(len(p), 32<<10)
		if _, err := u.data.Write(p[:n]); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// finish closes the data connection and returns the final reply's code.
func (u *rawUpload) finish() (int, error) {
	u.data.Close()
	code, _, err := u.c.ReadResponse(0)
	if code == 0 {
		return 0, err
	}
	u.c.PrintfLine("QUIT")
	u.nc.Close()
	return code, nil
}

func (u *rawUpload) close() {
	if u.data != nil {
		u.data.Close()
	}
	u.nc.Close()
}

// stored counts home as the quota does.
func stored(t *testing.T, home string) (int64, int64) {
	t.Helper()
	fsys, err := local.Open(home)
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	b, f, err := quota.Scan(context.Background(), fsys)
	if err != nil {
		t.Fatal(err)
	}
	return b, f
}

var usedRE = regexp.MustCompile(`(?m)^used-bytes +(\d+)\n^used-files +(\d+)$`)

// shownUsage is the usage `ferry user show` prints.
func shownUsage(t *testing.T, s *server, url, name string) (int64, int64) {
	t.Helper()
	r := s.ferry(t, "", "user", "show", name, "--database", url, "--data", s.Data)
	m := usedRE.FindStringSubmatch(r.Stdout)
	if r.Code != 0 || m == nil {
		t.Fatalf("user show: %s", r)
	}
	b, _ := strconv.ParseInt(m[1], 10, 64)
	f, _ := strconv.ParseInt(m[2], 10, 64)
	return b, f
}

// TestPostgresSharedQuota: two built servers with two data directories on
// one PostgreSQL serve one user whose home they share. Uploads on both at
// once stop at the quota, and the usage the database keeps equals what the
// home holds after them, after an aborted upload, after one server is
// SIGKILLed mid-upload (once the other sees its heartbeat stop), and after
// quota-scan.
func TestPostgresSharedQuota(t *testing.T) {
	url := pgenv.DB(t)
	const limit = 3 << 20
	const timeout = 2 * time.Second
	extra := fmt.Sprintf("\n[database]\nurl = %q\nnode_heartbeat = \"250ms\"\nnode_timeout = %q\n", url, timeout.String())
	s1 := startServer(t, serverConfig{NoAnonymous: true, ConfigFile: true, ConfigExtra: extra})
	s2 := startServer(t, serverConfig{NoAnonymous: true, ConfigFile: true, ConfigExtra: extra})
	home := t.TempDir()
	if r := s1.ferry(t, "pw\n", "user", "add", "q", "--home", home, "--database", url, "--password-stdin", "--data", s1.Data); r.Code != 0 {
		t.Fatalf("user add: %s", r)
	}
	if r := s1.ferry(t, "", "user", "set", "q", "--quota-bytes", strconv.Itoa(limit), "--database", url, "--data", s1.Data); r.Code != 0 {
		t.Fatalf("user set: %s", r)
	}

	// Eight uploads of 700 KiB at once, four on each server: at most
	// four fit.
	data := randBytes(11, 700<<10)
	var wg sync.WaitGroup
	codes := make([]int, 8)
	errs := make([]error, 8)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := []*server{s1, s2}[i%2]
			u, err := startUpload(s.Addr, "q", "pw", fmt.Sprintf("f%d", i))
			if err != nil {
				errs[i] = err
				return
			}
			u.write(data) // a refused upload's data connection is closed under it
			codes[i], errs[i] = u.finish()
		}()
	}
	wg.Wait()
	ok := 0
	for i, code := range codes {
		switch {
		case errs[i] != nil:
			t.Fatalf("upload %d: %v", i, errs[i])
		case code == 226:
			ok++
		case code != 552:
			t.Fatalf("upload %d: %d, want 226 or 552", i, code)
		}
	}
	b, f := stored(t, home)
	if b > limit || ok > 4 || int64(ok) != f {
		t.Fatalf("%d uploads stored, the home holds %d bytes in %d files under a %d-byte quota", ok, b, f, limit)
	}
	if ub, uf := shownUsage(t, s1, url, "q"); ub != b || uf != f {
		t.Fatalf("the database counts %d bytes, %d files; the home holds %d, %d", ub, uf, b, f)
	}
	t.Logf("two servers, 8 concurrent uploads: %d stored, %d bytes of %d (over the quota by %d)", ok, b, limit, max(b-limit, 0))

	// Make room, then an aborted upload leaves the usage exact.
	for i := range codes {
		if codes[i] == 226 {
			c, _ := dialFTP(t, s2.Addr)
			login2(t, c, "q", "pw")
			c.PrintfLine("DELE f%d", i)
			expectCode(t, c.Conn, 250)
			c.PrintfLine("QUIT")
		}
	}
	u, err := startUpload(s1.Addr, "q", "pw", "aborted")
	if err != nil {
		t.Fatal(err)
	}
	u.write(data[:300<<10])
	u.c.PrintfLine("ABOR")
	if code, text, err := u.c.ReadResponse(0); code != 426 {
		t.Fatalf("ABOR: %d %s %v, want 426", code, text, err)
	}
	if code, text, err := u.c.ReadResponse(0); code != 226 {
		t.Fatalf("ABOR: %d %s %v, want 226 after the 426", code, text, err)
	}
	u.close()
	b, f = stored(t, home)
	if ub, uf := shownUsage(t, s1, url, "q"); ub != b || uf != f {
		t.Fatalf("after an aborted upload the database counts %d bytes, %d files; the home holds %d, %d", ub, uf, b, f)
	}

	// SIGKILL mid-upload: the dead server's reservation is counted until
	// the live one sees it gone, then released.
	u, err = startUpload(s2.Addr, "q", "pw", "killed")
	if err != nil {
		t.Fatal(err)
	}
	defer u.close()
	u.write(data[:300<<10])
	deadline := time.Now().Add(30 * time.Second)
	for {
		if ub, _ := shownUsage(t, s1, url, "q"); ub > b {
			break // reserved
		}
		if time.Now().After(deadline) {
			t.Fatal("the upload on the second server reserved nothing")
		}
		time.Sleep(100 * time.Millisecond)
	}
	s2.stopped = true
	s2.cmd.Process.Kill()
	<-s2.done
	killed := time.Now()
	for {
		ub, uf := shownUsage(t, s1, url, "q")
		if ub == b && uf == f {
			break
		}
		if time.Now().After(killed.Add(30 * time.Second)) {
			t.Fatalf("the killed server's reservation was never released: %d bytes, %d files counted, %d, %d stored\n%s", ub, uf, b, f, s1.LogTail(20))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("released %v after the SIGKILL (node_timeout %v)", time.Since(killed).Round(10*time.Millisecond), timeout)
	if !strings.Contains(s1.LogTail(100), "released a gone node") {
		t.Errorf("the live server did not log the release:\n%s", s1.LogTail(20))
	}

	// quota-scan counts what was put in the home behind the servers'
	// backs.
	writeFile(t, home+"/behind", make([]byte, 1234))
	r := s1.ferry(t, "", "user", "quota-scan", "q", "--database", url, "--data", s1.Data)
	if want := fmt.Sprintf("quota usage of q: %d bytes, %d files (was %d bytes, %d files)", b+1234, f+1, b, f); r.Code != 0 || !strings.Contains(r.Stdout, want) {
		t.Fatalf("quota-scan: %s\nwant %q", r, want)
	}
	c, _ := dialFTP(t, s1.Addr)
	login2(t, c, "q", "pw")
	c.PrintfLine("SITE QUOTA")
	if text := expectCode(t, c.Conn, 200); !strings.Contains(text, fmt.Sprintf("Bytes: %d used of %d", b+1234, limit)) {
		t.Fatalf("SITE QUOTA after quota-scan: %q", text)
	}
}

// login2 logs in as user.
func login2(t *testing.T, c *ftpConn, user, pass string) {
	t.Helper()
	c.PrintfLine("USER %s", user)
	expectCode(t, c.Conn, 331)
	c.PrintfLine("PASS %s", pass)
	expectCode(t, c.Conn, 230)
}

package ftp

// Hardening tests: data-connection safety, admission limits and timeouts,
// brute-force bans, permissions, upload integrity and reply safety
// (TestHardening*), and the abuse suite of hostile raw protocol lines
// (TestAbuse*). Every test speaks raw lines to an in-process server on
// loopback (harness_test.go) and waits on replies or on observable state,
// never on a fixed sleep. The tests that touch files reach them through
// storage.FS (backend_test.go) and run on local and mem, unless a comment
// in the test says why it stays on one; the admission, timeout and ban
// tests open no file and run once. To run them all:
//
//	go test -race ./internal/ftp/ -run 'Hardening|Abuse'

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/ban"
	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/users"
)

// ---- helpers (prefixed "hard" so they cannot collide with other test files) ----

// hardWaitLimit bounds every wait for an observable condition.
const hardWaitLimit = 20 * time.Second

// hardWait polls cond until it holds; it fails the test after hardWaitLimit.
// Used only where no signal exists (file system state, server counters).
func hardWait(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hardWaitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// hardDialFrom connects to addr from the local address local (127.0.0.2 and
// the like: Linux routes all of 127/8 to lo) and reads the greeting.
func hardDialFrom(t testing.TB, addr, local string) *client {
	t.Helper()
	c := hardConnFrom(t, addr, local)
	cl := &client{t: t, conn: c, r: bufio.NewReader(c)}
	cl.expect(220)
	return cl
}

func hardConnFrom(t testing.TB, addr, local string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, local, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// hardDialRec connects and records every byte the server sends into tr.
func hardDialRec(t testing.TB, addr string, tr *syncBuffer) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cl := &client{t: t, conn: c, r: bufio.NewReader(io.TeeReader(c, tr))}
	cl.expect(220)
	return cl
}

// hardEPSVPort sends EPSV and returns the advertised port.
func hardEPSVPort(c *client) int {
	c.t.Helper()
	text := c.cmd("EPSV", 229)
	i := strings.Index(text, "(|||")
	j := strings.Index(text, "|)")
	if i < 0 || j < i {
		c.t.Fatalf("bad EPSV reply %q", text)
	}
	p, err := strconv.Atoi(text[i+4 : j])
	if err != nil {
		c.t.Fatalf("bad EPSV port in %q", text)
	}
	return p
}

// hardPASVPort sends PASV and returns the advertised port.
func hardPASVPort(c *client) int {
	c.t.Helper()
	text := c.cmd("PASV", 227)
	i, j := strings.Index(text, "("), strings.Index(text, ")")
	f := strings.Split(text[i+1:j], ",")
	if len(f) != 6 {
		c.t.Fatalf("bad PASV reply %q", text)
	}
	p1, _ := strconv.Atoi(f[4])
	p2, _ := strconv.Atoi(f[5])
	return p1<<8 | p2
}

// hardClosed asserts that the server closes the connection (after any
// replies still buffered, which are returned).
func hardClosed(c *client) []string {
	c.t.Helper()
	var extra []string
	c.conn.SetReadDeadline(time.Now().Add(hardWaitLimit))
	for {
		line, err := c.r.ReadString('\n')
		if line != "" {
			extra = append(extra, strings.TrimRight(line, "\r\n"))
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				c.t.Fatalf("connection still open after %v (extra lines %q)", hardWaitLimit, extra)
			}
			return extra
		}
	}
}

// hardTempFiles lists in-progress upload files below dir.
func hardTempFiles(dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), storage.TempPrefix) {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// hardTempBytes returns the total size of the temporary upload files below dir.
func hardTempBytes(dir string) int64 {
	var n int64
	for _, p := range hardTempFiles(dir) {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// hardListenPorts returns the local ports of the TCP sockets in LISTEN state
// that this process holds (in-process servers included).
func hardListenPorts(t testing.TB) map[int]bool {
	t.Helper()
	inodes := map[string]bool{}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		link, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	ports := map[int]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fl := strings.Fields(line)
			if len(fl) < 10 || fl[3] != "0A" || !inodes[fl[9]] {
				continue
			}
			_, hexPort, _ := strings.Cut(fl[1], ":")
			if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil {
				ports[int(p)] = true
			}
		}
	}
	return ports
}

// hardAddUser adds a user to the in-memory store of ts.
func hardAddUser(ts *testServer, pass string, u users.User) {
	if u.Home == "" {
		u.Home = filepath.Join(ts.data, "home", u.Name)
	}
	os.MkdirAll(u.Home, 0o755)
	ts.auth.mu.Lock()
	ts.auth.users[u.Name] = memUser{pass: pass, u: u}
	ts.auth.mu.Unlock()
}

// hardWrite writes p to a file, failing the test on error.
func hardWrite(t testing.TB, path string, p []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, p, 0o644); err != nil {
		t.Fatal(err)
	}
}

func hardPattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed
	}
	return b
}

// hardSessions waits until the server holds exactly n control connections.
func hardSessions(t testing.TB, ts *testServer, n int) {
	t.Helper()
	hardWait(t, fmt.Sprintf("%d open sessions (have %d)", n, ts.srv.Sessions()), func() bool { return ts.srv.Sessions() == n })
}

// hardAbort closes a connection with a TCP reset instead of a FIN.
func hardAbort(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// hardRawReply reads one reply without the testing.T plumbing, for goroutines.
func hardRawReply(r *bufio.Reader) (int, string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return 0, line, err
	}
	if len(line) < 4 {
		return 0, line, fmt.Errorf("malformed reply %q", line)
	}
	code, err := strconv.Atoi(line[:3])
	if err != nil {
		return 0, line, fmt.Errorf("malformed reply %q", line)
	}
	text := strings.TrimRight(line[4:], "\r\n")
	if line[3] == '-' {
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return 0, text, err
			}
			text += "\n" + strings.TrimRight(l, "\r\n")
			if strings.HasPrefix(l, line[:3]+" ") {
				break
			}
		}
	}
	return code, text, nil
}

// ---- 1. Data-connection safety ----

// TestHardeningPassiveForeignPeer: a passive data connection from an address
// other than the control connection's is closed and logged, and the server
// keeps waiting for the client's own: a stranger who can reach the passive
// range cannot cancel the transfer.
func TestHardeningPassiveForeignPeer(t *testing.T) {
	// One backend: the subject is the data connection's peer, not storage.
	ts := startServer(t, nil)
	secret := []byte("alice's private data\n")
	hardWrite(t, filepath.Join(ts.home, "f.txt"), secret)
	c := dial(t, ts.addr)
	c.login("alice", "secret")
	c.cmd("TYPE I", 200)

	for _, verb := range []string{"RETR f.txt", "LIST", "STOR up.txt"} {
		port := hardEPSVPort(c)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		thief := hardConnFrom(t, addr, "127.0.0.2")
		c.send(verb)
		// The thief is accepted, closed without a byte, and nothing is
		// answered on the control connection yet.
		thief.SetReadDeadline(time.Now().Add(hardWaitLimit))
		got, err := io.ReadAll(thief)
		if len(got) > 0 {
			t.Fatalf("%s: foreign data connection received %q", verb, got)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("%s: foreign data connection left open", verb)
		}
		d := hardConnFrom(t, addr, "127.0.0.1")
		c.expect(150)
		switch {
		case strings.HasPrefix(verb, "STOR"):
			d.Write(secret)
			d.Close()
		default:
			d.SetReadDeadline(time.Now().Add(hardWaitLimit))
			b, err := io.ReadAll(d)
			if err != nil {
				t.Fatalf("%s: %v", verb, err)
			}
			if verb == "RETR f.txt" && !bytes.Equal(b, secret) {
				t.Fatalf("RETR after a foreign connect: %q", b)
			}
		}
		c.expect(226)
	}
	if !strings.Contains(ts.logText(), "data connection refused") {
		t.Fatalf("the refusal was not logged:\n%s", ts.logText())
	}
	if got, err := os.ReadFile(filepath.Join(ts.home, "up.txt")); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("STOR after a foreign connect stored %q, %v", got, err)
	}
	if tmp := hardTempFiles(ts.home); len(tmp) > 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
}

// TestHardeningActiveBounce: PORT/EPRT to another host or to a privileged
// port is refused with 504; FXP users may name another host, never a
// privileged port; a legitimate active transfer works.
func TestHardeningActiveBounce(t *testing.T) {
	// One backend: the subject is the PORT target, not storage.
	ts := startServer(t, nil)
	hardAddUser(ts, "pw", users.User{Name: "fxp", AllowFXP: true})
	data := hardPattern(100000, 3)
	hardWrite(t, filepath.Join(ts.home, "f.bin"), data)
	c := dial(t, ts.addr)
	c.login("alice", "secret")
	c.cmd("TYPE I", 200)
	for _, line := range []string{
		"PORT 127,0,0,2,200,10",
		"PORT 10,0,0,1,200,10",
		"PORT 192,168,1,1,0,25",
		"PORT 127,0,0,1,0,21",
		"PORT 127,0,0,1,3,255", // 1023
		"EPRT |1|127.0.0.2|5000|",
		"EPRT |1|127.0.0.1|80|",
		"EPRT |1|127.0.0.1|1023|",
		"EPRT |2|::1|5000|",
	} {
		c.cmd(line, 504)
		// A refused target must not survive: a data command has no target.
		c.cmd("RETR f.bin", 425)
	}
	// Malformed targets are syntax errors, not accepted.
	// Malformed or doubtful targets are refused one way or another.
	for _, line := range []string{"PORT 127,0,0,1,300,1", "PORT 127,0,0,1,4", "PORT 1,2,3,4,5,6,7", "PORT 127,0,0,1,0,0",
		"EPRT |1|127.0.0.1|99999|", "EPRT |3|x|5000|", "EPRT |2|::ffff:127.0.0.2|5000|", "EPRT |2|::ffff:127.0.0.1|25|",
		"PORT 127,0,0,01,200,10x", "EPRT |1|127.0.0.2%lo|5000|", "EPRT |1|0x7f.1|5000|", "PORT 2130706433,200,10"} {
		c.send(line)
		if code, text := c.read(); code/100 != 5 {
			t.Fatalf("%s: got %d %s, want a refusal", line, code, text)
		}
		c.cmd("RETR f.bin", 425)
	}

	// The client's own address and an unprivileged port: allowed, and used.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	c.cmd(fmt.Sprintf("PORT 127,0,0,1,%d,%d", port>>8, port&255), 200)
	c.send("RETR f.bin")
	got := make(chan []byte, 1)
	go func() {
		d, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer d.Close()
		b, _ := io.ReadAll(d)
		got <- b
	}()
	c.expect(150)
	c.expect(226)
	if b := <-got; !bytes.Equal(b, data) {
		t.Fatalf("active RETR got %d bytes, want %d", len(b), len(data))
	}

	// FXP: another host is fine for a user allowed to, a low port is not.
	f := dial(t, ts.addr)
	f.login("fxp", "pw")
	f.cmd("PORT 127,0,0,2,200,10", 200)
	f.cmd("EPRT |1|127.0.0.2|5000|", 200)
	f.cmd("PORT 127,0,0,2,0,21", 504)
	f.cmd("EPRT |1|127.0.0.2|22|", 504)
}

// TestHardeningFXPPassivePeer: a user with AllowFXP may have the passive
// data connection come from a third address.
func TestHardeningFXPPassivePeer(t *testing.T) {
	// One backend: the subject is the data connection's peer, not storage.
	ts := startServer(t, nil)
	hardAddUser(ts, "pw", users.User{Name: "fxp", AllowFXP: true})
	data := hardPattern(5000, 9)
	hardWrite(t, filepath.Join(ts.data, "home", "fxp", "f.bin"), data)
	c := dial(t, ts.addr)
	c.login("fxp", "pw")
	c.cmd("TYPE I", 200)
	port := hardEPSVPort(c)
	d := hardConnFrom(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), "127.0.0.2")
	c.cmd("RETR f.bin", 150)
	d.SetReadDeadline(time.Now().Add(hardWaitLimit))
	b, _ := io.ReadAll(d)
	c.expect(226)
	if !bytes.Equal(b, data) {
		t.Fatalf("FXP passive RETR got %d bytes", len(b))
	}
}

// TestHardeningPASVFloodOneListener: 1,000 PASV/EPSV on one session leave
// exactly one passive listener, the last one; every earlier port is closed.
func TestHardeningPASVFloodOneListener(t *testing.T) {
	// One backend: the subject is passive listeners, not storage.
	ts := startServer(t, nil)
	hardWrite(t, filepath.Join(ts.home, "f.txt"), []byte("x"))
	c := dial(t, ts.addr)
	c.login("alice", "secret")
	before := hardListenPorts(t)
	seen := map[int]bool{}
	var last int
	for i := 0; i < 1000; i++ {
		if i%2 == 0 {
			last = hardPASVPort(c)
		} else {
			last = hardEPSVPort(c)
		}
		seen[last] = true
	}
	after := hardListenPorts(t)
	var added []int
	for p := range after {
		if !before[p] {
			added = append(added, p)
		}
	}
	if len(added) != 1 || added[0] != last {
		t.Fatalf("after 1000 PASV the process listens on %d new ports %v, want only the last one %d", len(added), added, last)
	}
	for p := range seen {
		if p != last && after[p] {
			t.Fatalf("earlier passive port %d still listening", p)
		}
	}
	// ABOR without a transfer drops the pending listener too.
	c.cmd("ABOR", 225)
	hardWait(t, "the passive listener to close after ABOR", func() bool { return !hardListenPorts(t)[last] })
	// The session still works.
	if got := c.retr("f.txt"); string(got) != "x" {
		t.Fatalf("RETR after the flood: %q", got)
	}
}

// ---- 2. Limits and timeouts ----

func TestHardeningMaxSessionsPerIP(t *testing.T) {
	ts := startServer(t, func(c *Site, _ *Server) { c.MaxSessionsPerIP = 2; c.MaxSessions = 0 })
	a := dial(t, ts.addr)
	dial(t, ts.addr)
	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	third := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
	text := third.expect(421)
	if !strings.Contains(text, "Too many connections from your address") {
		t.Fatalf("per-IP refusal text %q is not clear", text)
	}
	hardClosed(third)
	// Another address is counted apart.
	hardDialFrom(t, ts.addr, "127.0.0.2").cmd("NOOP", 200)
	// A slot freed is a slot available again (the count drops when the
	// server has finished with the session, a moment after 221).
	a.cmd("QUIT", 221)
	hardDialEventually(t, ts.addr).cmd("NOOP", 200)
}

// hardDialEventually dials until the server greets with 220 rather than 421.
func hardDialEventually(t testing.TB, addr string) *client {
	t.Helper()
	var cl *client
	hardWait(t, "a connection to be admitted", func() bool {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return false
		}
		r := bufio.NewReader(c)
		c.SetReadDeadline(time.Now().Add(hardWaitLimit))
		if code, _, err := hardRawReply(r); err != nil || code != 220 {
			c.Close()
			return false
		}
		t.Cleanup(func() { c.Close() })
		cl = &client{t: t, conn: c, r: r}
		return true
	})
	return cl
}

func TestHardeningMaxSessionsGlobal(t *testing.T) {
	ts := startServer(t, func(c *Site, _ *Server) { c.MaxSessions = 2; c.MaxSessionsPerIP = 0 })
	dial(t, ts.addr)
	hardDialFrom(t, ts.addr, "127.0.0.2")
	hardSessions(t, ts, 2)
	conn := hardConnFrom(t, ts.addr, "127.0.0.3")
	third := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
	text := third.expect(421)
	if !strings.Contains(text, "Too many users connected") {
		t.Fatalf("global refusal text %q is not clear", text)
	}
	hardClosed(third)
}

// TestHardeningMaxSessionsBurst: the global limit holds when many
// connections arrive at once, not only when they arrive one by one.
func TestHardeningMaxSessionsBurst(t *testing.T) {
	const limit, burst = 5, 200
	ts := startServer(t, func(c *Site, _ *Server) { c.MaxSessions = limit; c.MaxSessionsPerIP = 0 })
	var admitted, refused atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	conns := make(chan net.Conn, burst)
	for i := 0; i < burst; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			c, err := net.DialTimeout("tcp", ts.addr, 5*time.Second)
			if err != nil {
				return
			}
			conns <- c
			c.SetReadDeadline(time.Now().Add(hardWaitLimit))
			code, _, _ := hardRawReply(bufio.NewReader(c))
			switch code {
			case 220:
				admitted.Add(1)
			case 421:
				refused.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(conns)
	defer func() {
		for c := range conns {
			c.Close()
		}
	}()
	if n := admitted.Load(); n > limit {
		t.Fatalf("MaxSessions=%d but %d of %d simultaneous connections were greeted with 220 (%d refused)", limit, n, burst, refused.Load())
	}
	if n := ts.srv.Sessions(); n > limit {
		t.Fatalf("MaxSessions=%d but the server holds %d sessions", limit, n)
	}
}

func TestHardeningMaxSessionsPerUser(t *testing.T) {
	t.Run("config", func(t *testing.T) {
		ts := startServer(t, func(c *Site, _ *Server) { c.MaxSessionsPerUser = 1 })
		a := dial(t, ts.addr)
		a.login("alice", "secret")
		b := dial(t, ts.addr)
		b.cmd("USER alice", 331)
		text := b.cmd("PASS secret", 421)
		if !strings.Contains(text, "Too many sessions of this user") {
			t.Fatalf("per-user refusal text %q", text)
		}
		hardClosed(b)
		// Other users are not affected.
		dial(t, ts.addr).login("bob", "hunter2")
		a.cmd("QUIT", 221)
		hardSessions(t, ts, 1)
		dial(t, ts.addr).login("alice", "secret")
	})
	t.Run("user", func(t *testing.T) {
		ts := startServer(t, func(c *Site, _ *Server) { c.MaxSessionsPerUser = 10 })
		hardAddUser(ts, "pw", users.User{Name: "carol", MaxSessions: 2})
		a := dial(t, ts.addr)
		a.login("carol", "pw")
		dial(t, ts.addr).login("carol", "pw")
		c := dial(t, ts.addr)
		c.cmd("USER carol", 331)
		c.cmd("PASS pw", 421)
		hardClosed(c)
		// REIN gives the slot back.
		a.cmd("REIN", 220)
		dial(t, ts.addr).login("carol", "pw")
	})
}

func TestHardeningMaxLoginFailures(t *testing.T) {
	ts := startServer(t, func(c *Site, _ *Server) { c.MaxLoginFailures = 3 })
	c := dial(t, ts.addr)
	for i := 0; i < 3; i++ {
		c.cmd("USER alice", 331)
		c.cmd("PASS wrong", 530) // delayed by failedLoginDelay; we only need it to come
	}
	c.expect(421)
	hardClosed(c)
	hardSessions(t, ts, 0)
}

func TestHardeningLoginTimeout(t *testing.T) {
	ts := startServer(t, func(c *Site, _ *Server) { c.LoginTimeout = 200 * time.Millisecond })
	c := dial(t, ts.addr)
	if text := c.expect(421); !strings.Contains(text, "Login timeout") {
		t.Fatalf("login timeout text %q", text)
	}
	hardClosed(c)
	hardSessions(t, ts, 0)
}

// TestHardeningLoginTimeoutNotExtended: commands before login must not push
// the login deadline back, or a client that never logs in holds its slot
// forever by sending NOOP (or USER) now and then.
func TestHardeningLoginTimeoutNotExtended(t *testing.T) {
	for _, line := range []string{"NOOP", "USER alice"} {
		t.Run(strings.Fields(line)[0], func(t *testing.T) {
			ts := startServer(t, func(c *Site, s *Server) {
				c.LoginTimeout = 200 * time.Millisecond
				c.IdleTimeout = time.Hour
				s.Logger = slog.New(slog.DiscardHandler) // thousands of commands
			})
			c := dial(t, ts.addr)
			// The bound is a liveness limit, 25 login timeouts long; the
			// test fails only if the session outlives it.
			bound := time.Now().Add(5 * time.Second)
			for {
				if time.Now().After(bound) {
					t.Fatalf("an unauthenticated client sending %q every few microseconds kept its session past 25 login timeouts (the login deadline is reset to the idle timeout by every command)", line)
				}
				c.send(line)
				code, text := c.read()
				if code == 421 {
					if !strings.Contains(text, "Login timeout") {
						t.Fatalf("closed with %d %s, want the login timeout", code, text)
					}
					break
				}
			}
			hardClosed(c)
		})
	}
}

func TestHardeningIdleTimeout(t *testing.T) {
	ts := startServer(t, func(c *Site, _ *Server) { c.IdleTimeout = 300 * time.Millisecond })
	c := dial(t, ts.addr)
	c.login("alice", "secret")
	if text := c.expect(421); !strings.Contains(text, "Idle timeout") {
		t.Fatalf("idle timeout text %q", text)
	}
	hardClosed(c)
	hardSessions(t, ts, 0)
}

func TestHardeningDataTimeout(t *testing.T) {
	// One backend: its timeouts take about 2 s; the subject is the timer.
	testHardeningDataTimeout(t, backends[0])
}

func testHardeningDataTimeout(t *testing.T, be backend) {
	ts := startOn(t, be, func(c *Site, _ *Server) { c.DataTimeout = 300 * time.Millisecond })
	fsPut(t, ts.fs(t), "f.txt", []byte("data"))
	c := dial(t, ts.addr)
	c.login("alice", "secret")

	// Nobody connects to the passive port: 425.
	port := hardEPSVPort(c)
	c.cmd("RETR f.txt", 425)
	if hardListenPorts(t)[port] {
		t.Fatalf("passive port %d still listening after the data timeout", port)
	}

	// A PASV that is never used closes by itself.
	port = hardEPSVPort(c)
	hardWait(t, "an unused passive listener to close", func() bool { return !hardListenPorts(t)[port] })

	// Connected but silent upload: cut, nothing stored.
	d := c.pasv()
	c.cmd("STOR silent.bin", 150)
	c.expect(426)
	if _, err := fsStat(t, ts.fs(t), "silent.bin"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a stalled upload created its file: %v", err)
	}
	if tmp := fsTempNames(t, ts.fs(t), "."); len(tmp) > 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
	d.Close()

	// Connected but a download the client never reads: cut too.
	// Larger than what the loopback socket buffers hold (tcp_wmem and
	// tcp_rmem maxima: 4 MiB and 6 MiB by default).
	fsPut(t, ts.fs(t), "big.bin", bytes.Repeat([]byte("0123456789abcdef"), 2<<20))
	c.cmd("TYPE I", 200)
	d = c.pasv()
	c.cmd("RETR big.bin", 150)
	if code, text := c.read(); code != 426 && code != 451 {
		t.Fatalf("stalled download: got %d %s, want 426", code, text)
	}
	d.Close()
	c.cmd("NOOP", 200)
}

// TestHardeningSlowClientsReleased: silent clients and clients that stream
// bytes without ever ending a line hold nothing past the login timeout.
func TestHardeningSlowClientsReleased(t *testing.T) {
	ts := startServer(t, func(c *Site, _ *Server) {
		c.LoginTimeout = 300 * time.Millisecond
		c.MaxSessionsPerIP = 0
	})
	var conns []net.Conn
	for i := 0; i < 20; i++ {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	// Five flooders: megabytes of a never-ending line.
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			junk := bytes.Repeat([]byte("A"), 4096)
			c.SetWriteDeadline(time.Now().Add(hardWaitLimit))
			for {
				if _, err := c.Write(junk); err != nil {
					return // the server closed the connection
				}
			}
		}()
		conns = append(conns, c)
	}
	hardWait(t, "every slow client to be released", func() bool { return ts.srv.Sessions() == 0 })
	wg.Wait()
	for _, c := range conns[:20] {
		c.SetReadDeadline(time.Now().Add(hardWaitLimit))
		b, _ := io.ReadAll(c)
		if !strings.Contains(string(b), "421 Login timeout") {
			t.Fatalf("silent client got %q, want the 421 login timeout", b)
		}
	}
}

// TestHardeningUnreadRepliesReleased: a client that sends commands but never
// reads the replies blocks the server's writes once the socket buffers are
// full. Before login, that must not keep the session past the login timeout.
// "HELP <long word>" echoes the word, so 4 KB lines fill the buffers fast.
func TestHardeningUnreadRepliesReleased(t *testing.T) {
	ts := startServer(t, func(c *Site, s *Server) {
		c.LoginTimeout = 2 * time.Second
		c.IdleTimeout = time.Hour
		s.Logger = slog.New(slog.DiscardHandler)
	})
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hardSessions(t, ts, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		line := []byte("HELP " + strings.Repeat("X", 4000) + "\r\n")
		c.SetWriteDeadline(time.Now().Add(hardWaitLimit))
		for {
			if _, err := c.Write(line); err != nil {
				return // blocked until the deadline, or the server closed
			}
		}
	}()
	// 10 login timeouts: a liveness bound, not a timing assertion.
	bound := time.Now().Add(20 * time.Second)
	for ts.srv.Sessions() != 0 {
		if time.Now().After(bound) {
			t.Fatalf("a client that never reads its replies held its unauthenticated session past 10 login timeouts")
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.Close()
	<-done
}

func TestHardeningOverlongLine(t *testing.T) {
	ts := startServer(t, nil)
	c := dial(t, ts.addr)
	for _, n := range []int{4097, 10000, 1 << 20} {
		c.send("USER " + strings.Repeat("a", n))
		c.expect(500)
		c.cmd("NOOP", 200)
	}
	c.login("alice", "secret")
	c.send("CWD " + strings.Repeat("d/", 5000))
	c.expect(500)
	c.cmd("PWD", 257)
}

// TestHardeningPendingCommands: at most 16 commands wait behind a transfer;
// the 17th closes the session, and the cut upload leaves nothing.
func TestHardeningPendingCommands(t *testing.T) {
	eachBackend(t, testHardeningPendingCommands)
}

func testHardeningPendingCommands(t *testing.T, be backend) {
	ts := startOn(t, be, nil)
	c := dial(t, ts.addr)
	c.login("alice", "secret")

	// 16 queued commands run, in order, after the transfer.
	d := c.pasv()
	c.cmd("STOR a.txt", 150)
	c.cmd("NOOP", 200) // answered at once mid-transfer
	for i := 0; i < maxQueued; i++ {
		c.send("MKD q" + strconv.Itoa(i))
	}
	d.Write([]byte("hello"))
	d.Close()
	c.expect(226)
	for i := 0; i < maxQueued; i++ {
		if text := c.expect(257); !strings.Contains(text, "/q"+strconv.Itoa(i)) {
			t.Fatalf("queued reply %d out of order: %q", i, text)
		}
	}

	// One more than the queue holds: 421 and the connection closes.
	fsPut(t, ts.fs(t), "b.txt", []byte("old"))
	d = c.pasv()
	c.cmd("STOR b.txt", 150)
	d.Write([]byte("partial"))
	for i := 0; i <= maxQueued; i++ {
		c.send("PWD")
	}
	text := c.expect(421)
	if !strings.Contains(text, "Too many commands pending") {
		t.Fatalf("queue overflow text %q", text)
	}
	hardClosed(c)
	hardSessions(t, ts, 0)
	if got, _ := fsRead(t, ts.fs(t), "b.txt"); string(got) != "old" {
		t.Fatalf("cut upload replaced the old file with %q", got)
	}
	if tmp := fsTempNames(t, ts.fs(t), "."); len(tmp) > 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
}

// ---- 3. Brute force ----

// hardHammer makes attempts failed logins as alice from local, with workers
// connections at a time, and counts the outcomes.
type hardHammerResult struct {
	failed, refusedAtConnect, closedByBan, other atomic.Int32
}

func hardHammer(t *testing.T, addr, local string, attempts, workers int) *hardHammerResult {
	t.Helper()
	var res hardHammerResult
	var left atomic.Int32
	left.Store(int32(attempts))
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
			var conn net.Conn
			var r *bufio.Reader
			defer func() {
				if conn != nil {
					conn.Close()
				}
			}()
			for left.Add(-1) >= 0 {
				if conn == nil {
					c, err := d.Dial("tcp", addr)
					if err != nil {
						errs <- err
						return
					}
					conn, r = c, bufio.NewReader(c)
					conn.SetDeadline(time.Now().Add(time.Minute))
					code, text, err := hardRawReply(r)
					if err != nil {
						errs <- err
						return
					}
					if code == 421 {
						res.refusedAtConnect.Add(1)
						conn.Close()
						conn = nil
						continue
					}
					if code != 220 {
						errs <- fmt.Errorf("greeting %d %s", code, text)
						return
					}
				}
				io.WriteString(conn, "USER alice\r\nPASS wrong-password\r\n")
				code, text, err := hardRawReply(r)
				if err == nil && code == 331 {
					code, text, err = hardRawReply(r)
				}
				switch {
				case err != nil:
					errs <- fmt.Errorf("no reply to a failed PASS: %v", err)
					return
				case code == 530:
					res.failed.Add(1)
				case code == 421 && strings.Contains(text, "Too many failures"):
					res.closedByBan.Add(1)
					conn.Close()
					conn = nil
				default:
					res.other.Add(1)
					conn.Close()
					conn = nil
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return &res
}

// TestHardeningBruteForceBan: 200 rapid failed logins ban 127.0.0.1 (new
// connections get 421 at connect), while an allow-listed address is never
// banned however often it fails.
func TestHardeningBruteForceBan(t *testing.T) {
	d := ban.NewDefender(ban.NewMemoryStore(), ban.Options{
		Threshold: 50,
		Window:    time.Hour,
		Duration:  time.Hour,
		Allow:     []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")},
	})
	ts := startServer(t, func(c *Site, s *Server) {
		c.MaxSessionsPerIP = 0
		c.MaxSessions = 0
		c.MaxLoginFailures = 0 // one connection may fail many times: only the Defender stops it
		s.Defender = BanDefender(d)
	})

	allowed := hardHammer(t, ts.addr, "127.0.0.2", 200, 50)
	if allowed.failed.Load() != 200 || allowed.refusedAtConnect.Load() != 0 || allowed.closedByBan.Load() != 0 || allowed.other.Load() != 0 {
		t.Fatalf("allow-listed address: %d failed, %d refused at connect, %d closed by ban, %d other; want 200 plain failures",
			allowed.failed.Load(), allowed.refusedAtConnect.Load(), allowed.closedByBan.Load(), allowed.other.Load())
	}
	if _, banned := d.Banned(context.Background(), netip.MustParseAddr("127.0.0.2")); banned {
		t.Fatal("the allow-listed address was banned")
	}

	res := hardHammer(t, ts.addr, "127.0.0.1", 200, 50)
	t.Logf("127.0.0.1: %d failed logins answered 530, %d sessions closed by the ban, %d connections refused at connect",
		res.failed.Load(), res.closedByBan.Load(), res.refusedAtConnect.Load())
	if res.other.Load() != 0 {
		t.Fatalf("%d unexpected replies", res.other.Load())
	}
	if res.failed.Load() >= 200 || res.refusedAtConnect.Load()+res.closedByBan.Load() == 0 {
		t.Fatal("200 failed logins did not ban 127.0.0.1")
	}
	if _, banned := d.Banned(context.Background(), netip.MustParseAddr("127.0.0.1")); !banned {
		t.Fatal("127.0.0.1 is not banned")
	}
	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
	if text := c.expect(421); !strings.Contains(text, "try again later") {
		t.Fatalf("banned connect text %q", text)
	}
	hardClosed(c)
	// The right password does not help a banned address either, and the
	// allow-listed neighbour still logs in.
	hardDialFrom(t, ts.addr, "127.0.0.2").login("alice", "secret")
}

// ---- 4. Permissions ----

func TestHardeningBobPermissions(t *testing.T) {
	eachBackend(t, testHardeningBobPermissions)
}

func testHardeningBobPermissions(t *testing.T, be backend) {
	ts := startOn(t, be, nil)
	bobHome := filepath.Join(ts.data, "home", "bob")
	fsPut(t, ts.fsAt(t, bobHome), "readme.txt", []byte("readme"))
	fsPut(t, ts.fsAt(t, bobHome), "incoming/x.txt", []byte("x"))
	fsMkdirAll(t, ts.fsAt(t, bobHome), "docs")
	c := dial(t, ts.addr)
	c.login("bob", "hunter2")

	if ls := c.listing("LIST"); !strings.Contains(ls, "readme.txt") || !strings.Contains(ls, "incoming") {
		t.Fatalf("LIST /: %q", ls)
	}
	if ls := c.listing("NLST incoming"); !strings.Contains(ls, "x.txt") {
		t.Fatalf("NLST incoming: %q", ls)
	}
	if got := c.retr("readme.txt"); string(got) != "readme" {
		t.Fatalf("RETR readme.txt: %q", got)
	}
	if got := c.retr("incoming/x.txt"); string(got) != "x" {
		t.Fatalf("RETR incoming/x.txt: %q", got)
	}
	c.stor("STOR", "incoming/new.txt", []byte("new"))
	if got, _ := fsRead(t, ts.fsAt(t, bobHome), "incoming/new.txt"); string(got) != "new" {
		t.Fatalf("upload to /incoming: %q", got)
	}

	denied := []string{
		"STOR top.txt", "STOR docs/a.txt", "STOU", "APPE readme.txt",
		"STOR incoming/x.txt", // overwrite is not granted
		"APPE incoming/x.txt", // nor append
		"DELE readme.txt", "DELE incoming/new.txt",
		"RNFR readme.txt", "RNFR incoming/new.txt",
		"MKD d", "MKD incoming/d", "RMD docs", "RMD incoming",
		"SITE CHMOD 600 incoming/new.txt", "MFMT 20200101000000 incoming/new.txt",
	}
	for _, line := range denied {
		if strings.HasPrefix(line, "STO") || strings.HasPrefix(line, "APPE") {
			hardEPSVPort(c)
		}
		c.send(line)
		if code, text := c.read(); code != 550 {
			t.Fatalf("bob: %s: got %d %s, want 550", line, code, text)
		}
	}
	c.cmd("TYPE I", 200)
	c.cmd("REST 1", 350)
	hardEPSVPort(c)
	c.cmd("STOR incoming/x.txt", 550) // REST+STOR needs append
	if got, _ := fsRead(t, ts.fsAt(t, bobHome), "incoming/x.txt"); string(got) != "x" {
		t.Fatalf("x.txt changed to %q", got)
	}
	for _, p := range []string{"readme.txt", "incoming/new.txt", "docs", "incoming"} {
		if _, err := fsStat(t, ts.fsAt(t, bobHome), p); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
	// MLSD's perm facts tell the same story.
	ml := c.listing("MLSD")
	for _, line := range strings.Split(ml, "\r\n") {
		if strings.HasSuffix(line, " incoming") && !strings.Contains(line, "perm=cel;") {
			t.Fatalf("MLSD incoming facts: %q", line)
		}
		if strings.HasSuffix(line, " readme.txt") && !strings.Contains(line, "perm=r;") {
			t.Fatalf("MLSD readme.txt facts: %q", line)
		}
	}
}

func TestHardeningHiddenPatterns(t *testing.T) {
	eachBackend(t, testHardeningHiddenPatterns)
}

func testHardeningHiddenPatterns(t *testing.T, be backend) {
	ts := startOn(t, be, func(c *Site, _ *Server) { c.Hidden = mustPatterns(false, "*.secret") })
	fsPut(t, ts.fs(t), "plain.txt", []byte("plain"))
	fsPut(t, ts.fs(t), "a.secret", []byte("HIDDEN-A"))
	fsPut(t, ts.fs(t), "d.secret/inner.txt", []byte("HIDDEN-B"))
	fsPut(t, ts.fs(t), "sub/b.secret", []byte("HIDDEN-C"))
	fsPut(t, ts.fs(t), storage.TempPrefix+"123-x", []byte("HIDDEN-D"))
	c := dial(t, ts.addr)
	c.login("alice", "secret")
	for _, line := range []string{"LIST", "LIST -la", "NLST", "MLSD", "LIST sub", "NLST sub", "MLSD sub"} {
		ls := c.listing(line)
		if strings.Contains(ls, "secret") || strings.Contains(ls, storage.TempPrefix) {
			t.Fatalf("%s shows a hidden name: %q", line, ls)
		}
	}
	stat := c.cmd("STAT /", 213)
	if strings.Contains(stat, "secret") || strings.Contains(stat, storage.TempPrefix) {
		t.Fatalf("STAT / shows a hidden name: %q", stat)
	}
	for _, line := range []string{
		"SIZE a.secret", "MDTM a.secret", "MLST a.secret", "CWD d.secret", "SIZE d.secret/inner.txt",
		"SIZE sub/b.secret", "CWD sub/../d.secret", "STAT a.secret", "RNFR a.secret", "DELE a.secret",
		"SITE CHMOD 777 a.secret", "RMD d.secret", "SIZE " + storage.TempPrefix + "123-x",
	} {
		c.send(line)
		if code, text := c.read(); code != 550 {
			t.Fatalf("%s: got %d %s, want 550", line, code, text)
		}
	}
	for _, line := range []string{"RETR a.secret", "RETR d.secret/inner.txt", "RETR /sub/./b.secret", "LIST d.secret", "STOR new.secret", "APPE a.secret"} {
		hardEPSVPort(c)
		c.send(line)
		if code, text := c.read(); code != 550 {
			t.Fatalf("%s: got %d %s, want 550", line, code, text)
		}
	}
	c.cmd("RNFR plain.txt", 350)
	c.cmd("RNTO plain.secret", 550)
	c.cmd("MKD x.secret", 550)
	if got, _ := fsRead(t, ts.fs(t), "a.secret"); string(got) != "HIDDEN-A" {
		t.Fatalf("a.secret changed: %q", got)
	}
	for _, p := range []string{"new.secret", "plain.secret", "x.secret"} {
		if _, err := fsStat(t, ts.fs(t), p); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s was created", p)
		}
	}
}

func TestHardeningDenyUpload(t *testing.T) {
	eachBackend(t, testHardeningDenyUpload)
}

func testHardeningDenyUpload(t *testing.T, be backend) {
	ts := startOn(t, be, func(c *Site, _ *Server) { c.DenyUpload = mustPatterns(false, "*.exe") })
	c := dial(t, ts.addr)
	c.login("alice", "secret")
	for _, line := range []string{"STOR a.exe", "STOR sub/../b.exe", "APPE c.exe", "STOR /d.exe"} {
		hardEPSVPort(c)
		c.cmd(line, 553)
	}
	c.stor("STOR", "a.txt", []byte("MZ"))
	// Renaming into a denied name is an upload of that name by other means.
	c.cmd("RNFR a.txt", 350)
	c.send("RNTO a.exe")
	if code, text := c.read(); code != 553 {
		t.Errorf("RNFR a.txt / RNTO a.exe: got %d %s, want 553 (deny_upload_patterns bypassed by rename)", code, text)
	}
	for _, p := range []string{"a.exe", "b.exe", "c.exe", "d.exe"} {
		if _, err := fsStat(t, ts.fs(t), p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s exists after the refusals", p)
		}
	}
}

func TestHardeningUmask(t *testing.T) {
	// local only: permission bits of files on the host disk.
	ts := startServer(t, func(c *Site, _ *Server) { c.FileUmask = 0o077; c.DirUmask = 0o077 })
	c := dial(t, ts.addr)
	c.login("alice", "secret")
	c.stor("STOR", "f.txt", []byte("x"))
	c.stor("APPE", "g.txt", []byte("x"))
	c.cmd("MKD d", 257)
	for name, want := range map[string]fs.FileMode{"f.txt": 0o600, "g.txt": 0o600, "d": 0o700} {
		fi, err := os.Stat(filepath.Join(ts.home, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %o, want %o", name, got, want)
		}
	}
	// A replacing upload gets the umask too, not the old file's mode.
	os.Chmod(filepath.Join(ts.home, "f.txt"), 0o666)
	c.stor("STOR", "f.txt", []byte("y"))
	if fi, _ := os.Stat(filepath.Join(ts.home, "f.txt")); fi.Mode().Perm() != 0o600 {
		t.Errorf("replaced f.txt: mode %o, want 600", fi.Mode().Perm())
	}
}

func TestHardeningChmodSpecialBits(t *testing.T) {
	// local only: permission bits of files on the host disk.
	ts := startServer(t, nil)
	hardWrite(t, filepath.Join(ts.home, "f"), []byte("x"))
	os.Chmod(filepath.Join(ts.home, "f"), 0o644)
	c := dial(t, ts.addr)
	c.login("alice", "secret")
	for _, m := range []string{"4755", "2755", "1755", "7777", "6755", "4000"} {
		c.cmd("SITE CHMOD "+m+" f", 550)
	}
	c.cmd("SITE CHMOD 17777 f", 501)
	fi, _ := os.Stat(filepath.Join(ts.home, "f"))
	if fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 || fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode changed to %v", fi.Mode())
	}
	c.cmd("SITE CHMOD 600 f", 200)
	if fi, _ := os.Stat(filepath.Join(ts.home, "f")); fi.Mode().Perm() != 0o600 {
		t.Fatalf("SITE CHMOD 600 gave %v", fi.Mode())
	}
}

func TestHardeningAnonymousReadOnly(t *testing.T) {
	eachBackend(t, testHardeningAnonymousReadOnly)
}

func testHardeningAnonymousReadOnly(t *testing.T, be backend) {
	ts := startOn(t, be, nil)
	pub := filepath.Join(ts.data, "public")
	fsPut(t, ts.fsAt(t, pub), "pub.txt", []byte("public"))
	fsMkdirAll(t, ts.fsAt(t, pub), "dir")
	c := dial(t, ts.addr)
	c.login("anonymous", "guest@example.com")
	if got := c.retr("pub.txt"); string(got) != "public" {
		t.Fatalf("anonymous RETR: %q", got)
	}
	if ls := c.listing("LIST"); !strings.Contains(ls, "pub.txt") {
		t.Fatalf("anonymous LIST: %q", ls)
	}
	for _, line := range []string{"STOR x.txt", "STOR pub.txt", "APPE pub.txt", "STOU", "STOR dir/x.txt"} {
		hardEPSVPort(c)
		c.cmd(line, 550)
	}
	for _, line := range []string{"DELE pub.txt", "MKD new", "RMD dir", "RNFR pub.txt", "SITE CHMOD 777 pub.txt", "MFMT 20200101000000 pub.txt"} {
		c.cmd(line, 550)
	}
	if got, _ := fsRead(t, ts.fsAt(t, pub), "pub.txt"); string(got) != "public" {
		t.Fatalf("pub.txt changed: %q", got)
	}
	if _, err := fsStat(t, ts.fsAt(t, pub), "x.txt"); err == nil {
		t.Fatal("anonymous created x.txt")
	}
	// Anonymous never needs a password that means anything, and "ftp" is anonymous too.
	f := dial(t, ts.addr)
	f.login("ftp", "")
	f.cmd("DELE pub.txt", 550)
}

func TestHardeningAnonymousDropBox(t *testing.T) {
	eachBackend(t, testHardeningAnonymousDropBox)
}

func testHardeningAnonymousDropBox(t *testing.T, be backend) {
	ts := startOn(t, be, func(c *Site, _ *Server) {
		c.DropBox = mustPath("/incoming")
		c.DenyUpload = mustPatterns(false, "*.exe")
	})
	pub := filepath.Join(ts.data, "public")
	fsMkdirAll(t, ts.fsAt(t, pub), "incoming")
	fsPut(t, ts.fsAt(t, pub), "incoming/earlier.txt", []byte("SOMEONE-ELSES-UPLOAD"))
	c := dial(t, ts.addr)
	c.login("anonymous", "guest@example.com")

	c.stor("STOR", "incoming/up.txt", []byte("dropped"))
	if got, _ := fsRead(t, ts.fsAt(t, pub), "incoming/up.txt"); string(got) != "dropped" {
		t.Fatalf("drop-box upload: %q", got)
	}
	for _, line := range []string{"LIST incoming", "LIST -la incoming", "NLST incoming", "MLSD incoming"} {
		ls := c.listing(line)
		if strings.Contains(ls, "up.txt") || strings.Contains(ls, "earlier.txt") {
			t.Errorf("%s shows the drop box's contents: %q", line, ls)
		}
	}
	// The control-connection listing must be as empty as the data one.
	c.send("STAT incoming")
	if code, text := c.read(); strings.Contains(text, "up.txt") || strings.Contains(text, "earlier.txt") {
		t.Errorf("STAT incoming (%d) shows the drop box's contents: %q", code, text)
	}
	for _, line := range []string{"RETR incoming/up.txt", "RETR incoming/earlier.txt", "STOR incoming/earlier.txt", "APPE incoming/up.txt", "STOR incoming/evil.exe", "LIST incoming/up.txt"} {
		hardEPSVPort(c)
		c.send(line)
		if code, text := c.read(); code/100 != 5 {
			t.Errorf("%s: got %d %s, want a refusal", line, code, text)
		}
	}
	c.cmd("TYPE I", 200)
	c.cmd("REST 3", 350)
	hardEPSVPort(c)
	c.send("STOR incoming/earlier.txt")
	if code, text := c.read(); code/100 != 5 {
		t.Errorf("REST+STOR over an earlier upload: got %d %s", code, text)
	}
	for _, line := range []string{"DELE incoming/up.txt", "RNFR incoming/up.txt", "SIZE incoming/up.txt", "MDTM incoming/up.txt",
		"MLST incoming/up.txt", "STAT incoming/up.txt", "MKD incoming/sub", "SITE CHMOD 777 incoming/up.txt", "RMD incoming"} {
		c.send(line)
		if code, text := c.read(); code/100 != 5 {
			t.Errorf("%s: got %d %s, want a refusal", line, code, text)
		}
	}
	// Entering it is fine; its listing is still empty.
	c.cmd("CWD incoming", 250)
	if ls := c.listing("NLST"); ls != "" {
		t.Errorf("NLST inside the drop box: %q", ls)
	}
	if got, _ := fsRead(t, ts.fsAt(t, pub), "incoming/earlier.txt"); string(got) != "SOMEONE-ELSES-UPLOAD" {
		t.Errorf("earlier upload changed: %q", got)
	}
	if _, err := fsStat(t, ts.fsAt(t, pub), "incoming/evil.exe"); err == nil {
		t.Error("evil.exe was stored")
	}
	// Still read-only outside the drop box.
	c.cmd("CWD /", 250)
	hardEPSVPort(c)
	c.cmd("STOR top.txt", 550)
}

// ---- 5. Uploads never lose data ----

// hardStartUpload starts an upload (verb STOR or APPE) of name in binary
// mode, sends first, and returns the data connection, still open.
func hardStartUpload(t *testing.T, c *client, verb, name string, first []byte) net.Conn {
	t.Helper()
	c.cmd("TYPE I", 200)
	d := c.pasv()
	c.cmd(verb+" "+name, 150)
	if _, err := d.Write(first); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestHardeningUploadCutKeepsOldFile(t *testing.T) {
	// local only: it waits on the temporary file growing on the host disk.
	old := hardPattern(300000, 1)
	cases := []struct {
		name string
		cut  func(t *testing.T, c *client, d net.Conn)
	}{
		{"data-reset-then-control-reset", func(t *testing.T, c *client, d net.Conn) {
			hardAbort(d)
			hardAbort(c.conn)
		}},
		{"control-reset-then-data-reset", func(t *testing.T, c *client, d net.Conn) {
			hardAbort(c.conn)
			hardAbort(d)
		}},
		{"control-closed-then-data-closed", func(t *testing.T, c *client, d net.Conn) {
			// The client dies: the control connection goes first; the
			// server must abort the transfer (it closes our data
			// connection: that is the signal), and whatever the client
			// does with its data connection afterwards changes nothing.
			c.conn.Close()
			d.SetReadDeadline(time.Now().Add(hardWaitLimit))
			if _, err := io.ReadAll(d); err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatal("the server did not abort the upload when the control connection closed")
				}
			}
			d.Close()
		}},
		{"data-reset-control-alive", func(t *testing.T, c *client, d net.Conn) {
			hardAbort(d)
			if code, text := c.read(); code != 426 {
				t.Fatalf("reset data connection: got %d %s, want 426", code, text)
			}
			c.cmd("NOOP", 200)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, nil)
			target := filepath.Join(ts.home, "f.bin")
			hardWrite(t, target, old)
			c := dial(t, ts.addr)
			c.login("alice", "secret")
			d := hardStartUpload(t, c, "STOR", "f.bin", hardPattern(1<<20, 2))
			hardWait(t, "the server to write part of the upload", func() bool { return hardTempBytes(ts.home) > 0 })
			// A second session never sees the temporary file.
			o := dial(t, ts.addr)
			o.login("alice", "secret")
			for _, line := range []string{"LIST -la", "NLST", "MLSD"} {
				if ls := o.listing(line); strings.Contains(ls, storage.TempPrefix) {
					t.Fatalf("%s during an upload shows the temporary file: %q", line, ls)
				}
			}
			o.cmd("QUIT", 221)
			tc.cut(t, c, d)
			if tc.name != "data-reset-control-alive" {
				hardSessions(t, ts, 0)
			} else {
				c.cmd("QUIT", 221)
				hardSessions(t, ts, 0)
			}
			got, err := os.ReadFile(target)
			if err != nil || !bytes.Equal(got, old) {
				t.Fatalf("old file not intact after a cut upload: %d bytes, err %v", len(got), err)
			}
			if tmp := hardTempFiles(ts.data); len(tmp) > 0 {
				t.Fatalf("temporary files left: %v", tmp)
			}
		})
	}
}

// TestHardeningUploadClientCrash: a client killed mid-upload. Its kernel
// closes the control connection (the lower descriptor) and then the data
// connection, both with a FIN. A FIN on the data connection alone is how
// stream mode ends a file (RFC 959 §3.4.1), but a FIN that follows the death
// of the control connection ends nothing: the old file must survive. The
// outcome depends on which goroutine wakes first, so it is tried 20 times;
// none may lose the old file.
func TestHardeningUploadClientCrash(t *testing.T) {
	// local only: it waits on the temporary file growing on the host disk.
	const trials, sent = 20, 256 << 10
	ts := startServer(t, func(_ *Site, s *Server) { s.Logger = slog.New(slog.DiscardHandler) })
	old := hardPattern(100000, 1)
	target := filepath.Join(ts.home, "f.bin")
	lost := 0
	for i := 0; i < trials; i++ {
		hardWrite(t, target, old)
		c := dial(t, ts.addr)
		c.login("alice", "secret")
		d := hardStartUpload(t, c, "STOR", "f.bin", hardPattern(sent, 2))
		// Everything sent has reached the disk: the server is idle in its
		// read when the client dies.
		hardWait(t, "the server to write what was sent", func() bool { return hardTempBytes(ts.home) == sent })
		c.conn.Close()
		d.Close()
		hardSessions(t, ts, 0)
		if got, _ := os.ReadFile(target); !bytes.Equal(got, old) {
			lost++
		}
		if tmp := hardTempFiles(ts.data); len(tmp) > 0 {
			t.Fatalf("trial %d: temporary files left: %v", i, tmp)
		}
	}
	if lost > 0 {
		t.Errorf("in %d of %d trials a client that died mid-upload (control connection closed, then data) replaced the old file with its partial upload", lost, trials)
	}
}

func TestHardeningABORMidUpload(t *testing.T) {
	// local only: it waits on the temporary file growing on the host disk.
	ts := startServer(t, nil)
	old := hardPattern(300000, 1)
	target := filepath.Join(ts.home, "f.bin")
	hardWrite(t, target, old)
	c := dial(t, ts.addr)
	c.login("alice", "secret")
	d := hardStartUpload(t, c, "STOR", "f.bin", hardPattern(1<<20, 2))
	hardWait(t, "the server to write part of the upload", func() bool { return hardTempBytes(ts.home) > 0 })
	c.send("ABOR")
	c.expect(426)
	c.expect(226)
	d.Close()
	c.cmd("NOOP", 200)
	if got, _ := os.ReadFile(target); !bytes.Equal(got, old) {
		t.Fatalf("ABOR replaced the old file (%d bytes)", len(got))
	}
	if tmp := hardTempFiles(ts.data); len(tmp) > 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
	if ls := c.listing("LIST -la"); strings.Contains(ls, storage.TempPrefix) {
		t.Fatalf("LIST shows a temporary file: %q", ls)
	}
}

// TestHardeningABORReplyMatchesOutcome: ABOR racing the end of an upload.
// Whichever wins, the client is told the truth: 426 means the old file is
// still there, 226 means the new one replaced it. The race is decided by
// the scheduler, so it is run 40 times.
func TestHardeningABORReplyMatchesOutcome(t *testing.T) {
	eachBackend(t, testHardeningABORReplyMatchesOutcome)
}

func testHardeningABORReplyMatchesOutcome(t *testing.T, be backend) {
	const trials = 40
	ts := startOn(t, be, func(_ *Site, s *Server) { s.Logger = slog.New(slog.DiscardHandler) })
	old, upload := hardPattern(50000, 1), hardPattern(200000, 2)
	target := "f.bin"
	c := dial(t, ts.addr)
	c.login("alice", "secret")
	c.cmd("TYPE I", 200)
	var aborted, completed int
	for i := 0; i < trials; i++ {
		fsPut(t, ts.fs(t), target, old)
		d := c.pasv()
		c.cmd("STOR f.bin", 150)
		d.Write(upload)
		d.Close()
		c.send("ABOR")
		code, text := c.read()
		got, _ := fsRead(t, ts.fs(t), target)
		switch code {
		case 426:
			c.expect(226) // ABOR successful
			aborted++
			if !bytes.Equal(got, old) {
				t.Fatalf("trial %d: told 426 %q, but the upload replaced the file", i, text)
			}
		case 226:
			// The ABOR itself: 226 (RFC 959 §4.1.3: the service was
			// completed) or 225 if it came after the transfer ended.
			if code, text := c.read(); code != 225 && code != 226 {
				t.Fatalf("trial %d: ABOR after a completed upload: %d %s", i, code, text)
			}
			completed++
			if !bytes.Equal(got, upload) {
				t.Fatalf("trial %d: told 226, but the file holds %d bytes", i, len(got))
			}
		default:
			t.Fatalf("trial %d: %d %s", i, code, text)
		}
		if tmp := fsTempNames(t, ts.fs(t), "."); len(tmp) > 0 {
			t.Fatalf("trial %d: temporary files left: %v", i, tmp)
		}
	}
	t.Logf("%d trials: %d aborted, %d completed", trials, aborted, completed)
}

func TestHardeningQuotaMidUpload(t *testing.T) {
	eachBackend(t, testHardeningQuotaMidUpload)
}

func testHardeningQuotaMidUpload(t *testing.T, be backend) {
	ts := startOn(t, be, nil)
	home := filepath.Join(ts.data, "home", "quinn")
	old := hardPattern(10000, 1)
	fsPut(t, ts.fsAt(t, home), "old.bin", old)
	hardAddUser(ts, "pw", users.User{Name: "quinn", Home: home, QuotaBytes: 100000})
	c := dial(t, ts.addr)
	c.login("quinn", "pw")
	c.cmd("TYPE I", 200)
	for _, name := range []string{"old.bin", "new.bin"} {
		d := c.pasv()
		c.cmd("STOR "+name, 150)
		go func() {
			d.Write(hardPattern(2<<20, 5)) // fails once the server gives up; that is fine
			d.Close()
		}()
		if code, text := c.read(); code != 552 {
			t.Fatalf("STOR %s over quota: got %d %s, want 552", name, code, text)
		}
	}
	if got, _ := fsRead(t, ts.fsAt(t, home), "old.bin"); !bytes.Equal(got, old) {
		t.Fatalf("old.bin not intact: %d bytes", len(got))
	}
	if _, err := fsStat(t, ts.fsAt(t, home), "new.bin"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("a partial new.bin was kept")
	}
	if tmp := hardTempFiles(home); len(tmp) > 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
	// The quota is intact: what fits still fits.
	c.stor("STOR", "small.bin", hardPattern(50000, 6))
	// APPE past the quota is cut and removed back to where it started.
	d := c.pasv()
	c.cmd("APPE old.bin", 150)
	go func() { d.Write(hardPattern(2<<20, 7)); d.Close() }()
	c.expect(552)
	if got, _ := fsRead(t, ts.fsAt(t, home), "old.bin"); !bytes.Equal(got, old) {
		t.Fatalf("APPE over quota changed old.bin to %d bytes", len(got))
	}
}

func TestHardeningRESTAndAPPEInPlace(t *testing.T) {
	eachBackend(t, testHardeningRESTAndAPPEInPlace)
}

func testHardeningRESTAndAPPEInPlace(t *testing.T, be backend) {
	ts := startOn(t, be, nil)
	c := dial(t, ts.addr)
	c.login("alice", "secret")
	c.cmd("TYPE I", 200)
	target := "r.bin"
	fsPut(t, ts.fs(t), target, bytes.Repeat([]byte("A"), 100))
	c.cmd("REST 50", 350)
	c.stor("STOR", "r.bin", bytes.Repeat([]byte("B"), 30))
	if got, _ := fsRead(t, ts.fs(t), target); string(got) != strings.Repeat("A", 50)+strings.Repeat("B", 30) {
		t.Fatalf("REST 50 + STOR: %q", got)
	}
	c.stor("APPE", "r.bin", []byte("CC"))
	if got, _ := fsRead(t, ts.fs(t), target); string(got) != strings.Repeat("A", 50)+strings.Repeat("B", 30)+"CC" {
		t.Fatalf("APPE: %q", got)
	}
	if tmp := fsTempNames(t, ts.fs(t), "."); len(tmp) > 0 {
		t.Fatalf("in-place uploads used temporary files: %v", tmp)
	}

	// A cut APPE keeps what arrived, so the client can resume.
	old := hardPattern(1000, 1)
	appe := "a.bin"
	fsPut(t, ts.fs(t), appe, old)
	sent := hardPattern(1<<20, 2)
	d := hardStartUpload(t, c, "APPE", "a.bin", sent)
	// STAT reports the bytes handed to the storage: on S3 they are not
	// visible in the object before Commit, so the test asks the server.
	var seen int64
	bytesRE := regexp.MustCompile(`Bytes transferred: (\d+)`)
	hardWait(t, "the server to append part of the upload", func() bool {
		if m := bytesRE.FindStringSubmatch(c.cmd("STAT", 211)); m != nil {
			seen, _ = strconv.ParseInt(m[1], 10, 64)
		}
		return seen > 0
	})
	hardAbort(d)
	c.expect(426)
	got, _ := fsRead(t, ts.fs(t), appe)
	if len(got) < len(old)+int(seen) || !bytes.Equal(got[:len(old)], old) || !bytes.Equal(got[len(old):], sent[:len(got)-len(old)]) {
		t.Fatalf("cut APPE: file is %d bytes (had seen %d); want the old data plus a prefix of what was sent", len(got), seen)
	}
	// Resume it with REST at the current size.
	c.cmd(fmt.Sprintf("REST %d", len(got)), 350)
	c.stor("STOR", "a.bin", sent[len(got)-len(old):])
	if got, _ := fsRead(t, ts.fs(t), appe); !bytes.Equal(got, append(append([]byte{}, old...), sent...)) {
		t.Fatalf("resumed upload: %d bytes, want %d", len(got), len(old)+len(sent))
	}
}

// TestHardeningCommitFailureNotReported: when the final rename of an upload
// fails (here: another session made a directory of that name meanwhile), the
// client must not be told 226: its data was not stored.
func TestHardeningCommitFailureNotReported(t *testing.T) {
	// local only: it waits on the temporary file growing on the host disk.
	ts := startServer(t, nil)
	c := dial(t, ts.addr)
	c.login("alice", "secret")
	d := hardStartUpload(t, c, "STOR", "x", []byte("some data"))
	hardWait(t, "the server to write part of the upload", func() bool { return hardTempBytes(ts.home) > 0 })
	o := dial(t, ts.addr)
	o.login("alice", "secret")
	o.cmd("MKD x", 257)
	o.cmd("MKD x/keep", 257)
	d.Close()
	code, text := c.read()
	if code == 226 {
		t.Errorf("STOR x answered 226 %q although x is a directory and nothing was stored", text)
	}
	if tmp := hardTempFiles(ts.home); len(tmp) > 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

// ---- 6. Reply safety ----

func TestHardeningForgedNamesNotListed(t *testing.T) {
	// local only: names holding CR or LF reach storage only from the host disk (vpath refuses them).
	ts := startServer(t, nil)
	for _, name := range []string{"evil\r\n226 fake", "evil2\n226 fake", "evil3\r226 fake"} {
		hardWrite(t, filepath.Join(ts.home, name), []byte("x"))
		hardWrite(t, filepath.Join(ts.data, "public", name), []byte("x"))
	}
	hardWrite(t, filepath.Join(ts.home, "ok.txt"), []byte("x"))
	for _, who := range [][2]string{{"alice", "secret"}, {"anonymous", "a@b"}} {
		tr := &syncBuffer{}
		c := hardDialRec(t, ts.addr, tr)
		c.login(who[0], who[1])
		for _, line := range []string{"LIST", "LIST -la", "NLST", "MLSD"} {
			ls := c.listing(line)
			if strings.Contains(ls, "226 fake") || strings.Contains(ls, "evil") {
				t.Fatalf("%s %s lists a forged name: %q", who[0], line, ls)
			}
			for _, l := range strings.Split(strings.TrimSuffix(ls, "\r\n"), "\r\n") {
				if strings.ContainsAny(l, "\r\n") {
					t.Fatalf("%s: listing line with a bare CR/LF: %q", line, l)
				}
			}
		}
		c.cmd("STAT /", 213)
		c.cmd("STAT -la .", 213)
		c.cmd("NOOP", 200)
		for _, l := range strings.Split(tr.String(), "\r\n") {
			if strings.Contains(l, "fake") || strings.Contains(l, "evil") {
				t.Fatalf("the control connection carried a forged line %q", l)
			}
		}
	}
}

// ---- 7. Abuse suite: raw protocol lines ----

// TestAbusePathEscapes tries every known way out of the user's root. Nothing
// outside it is ever served, listed, created or changed, and no reply carries
// a host path.
func TestAbusePathEscapes(t *testing.T) {
	// local only: symlinks and paths outside the root on the host disk.
	ts := startServer(t, nil)
	const marker = "OUTSIDE-THE-ROOT"
	hardWrite(t, filepath.Join(ts.data, "outside.txt"), []byte(marker))
	hardWrite(t, filepath.Join(ts.data, "home", "outside.txt"), []byte(marker))
	hardWrite(t, filepath.Join(ts.home, "inside.txt"), []byte("inside"))
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink(ts.data, filepath.Join(ts.home, "abslink")))
	must(os.Symlink("/", filepath.Join(ts.home, "rootlink")))
	must(os.Symlink("../outside.txt", filepath.Join(ts.home, "rellink")))
	must(os.Symlink("../../outside.txt", filepath.Join(ts.home, "rellink2")))
	must(os.Symlink("/etc/passwd", filepath.Join(ts.home, "passwd")))
	must(os.Symlink("inside.txt", filepath.Join(ts.home, "goodlink")))
	dataInfo, _ := os.Stat(ts.data)

	tr := &syncBuffer{}
	c := hardDialRec(t, ts.addr, tr)
	c.login("alice", "secret")
	c.cmd("TYPE I", 200)

	escapes := []string{
		"../outside.txt", "../../outside.txt", "/../outside.txt", "/../../outside.txt", "./../../outside.txt",
		"..\\outside.txt", "..\\..\\outside.txt", "%2e%2e/outside.txt", "%2e%2e%2foutside.txt", "%2E%2E/%2E%2E/outside.txt",
		"..%2f..%2foutside.txt", "....//outside.txt", "..;/outside.txt", "~/../outside.txt", "~root/.bashrc",
		"/etc/passwd", "../../../../../../../../etc/passwd", "//etc/passwd", "/./../etc/passwd",
		"abslink/outside.txt", "abslink/../outside.txt", "rootlink/etc/passwd", "rootlink/../etc/passwd",
		"rellink", "rellink2", "passwd", "abslink", "rootlink", "file:///etc/passwd", "C:\\Windows\\win.ini",
	}
	retrOK := func(line, got string) {
		if strings.Contains(got, marker) || strings.Contains(got, "root:") {
			t.Fatalf("%s served data from outside the root: %q", line, got)
		}
	}
	for _, p := range escapes {
		d := c.pasv()
		c.send("RETR " + p)
		code, text := c.read()
		if code == 150 {
			d.SetReadDeadline(time.Now().Add(hardWaitLimit))
			b, _ := io.ReadAll(d)
			retrOK("RETR "+p, string(b))
			c.read()
			continue
		}
		if code/100 != 5 && code != 425 {
			t.Fatalf("RETR %s: %d %s", p, code, text)
		}
		d.Close()
	}
	// Listings of escaping paths show only the user's own tree.
	for _, p := range []string{"..", "../..", "/..", "/../..", "abslink", "rootlink", "rootlink/", "abslink/..", "%2e%2e", "-la ../..", "-R /"} {
		for _, verb := range []string{"LIST", "NLST", "MLSD"} {
			d := c.pasv()
			c.send(verb + " " + p)
			code, _ := c.read()
			if code == 150 {
				d.SetReadDeadline(time.Now().Add(hardWaitLimit))
				b, _ := io.ReadAll(d)
				c.read()
				for _, bad := range []string{"outside.txt", "public", "usr", "proc", "alice", "bin"} {
					if strings.Contains(string(b), bad) {
						t.Fatalf("%s %s lists %q from outside the root: %q", verb, p, bad, b)
					}
				}
				continue
			}
			d.Close()
		}
	}
	// Navigation never leaves the root, and what PWD shows is virtual.
	for _, p := range []string{"..", "../..", "/..", "%2e%2e", "abslink", "rootlink", "rootlink/etc", "/etc", "~", "abslink/..", "rellink"} {
		c.send("CWD " + p)
		code, _ := c.read()
		pwd := c.cmd("PWD", 257)
		if code == 250 && pwd != `"/" is the current directory.` {
			t.Fatalf("CWD %s led to %s", p, pwd)
		}
		c.cmd("CWD /", 250)
	}
	for _, verb := range []string{"SIZE", "MDTM", "MLST", "STAT"} {
		for _, p := range escapes {
			c.send(verb + " " + p)
			code, text := c.read()
			for _, bad := range []string{marker, "root:", "outside.txt", "shadow", "hostname"} {
				if code/100 == 2 && strings.Contains(text, bad) {
					t.Fatalf("%s %s: %d %s reached outside the root", verb, p, code, text)
				}
			}
			if verb == "SIZE" && code == 213 {
				t.Fatalf("SIZE %s: %d %s reached a file outside the root", p, code, text)
			}
		}
	}
	// Writes: nothing outside changes or appears.
	for _, line := range []string{"APPE rellink2", "APPE abslink/outside.txt", "APPE passwd", "STOU abslink/x",
		"STOR ../escape.txt", "STOR /../../escape.txt", "STOR abslink/escape.txt", "STOR rootlink/tmp/escape.txt", "STOR rellink", "STOR passwd"} {
		d := c.pasv()
		c.send(line)
		if code, _ := c.read(); code == 150 {
			d.Write([]byte("escaped"))
			d.Close()
			c.read()
		} else {
			d.Close()
		}
	}
	for _, line := range []string{
		"MKD ../../escdir", "MKD abslink/escdir", "MKD rootlink/tmp/escdir-ferry", "RMD abslink/home", "DELE abslink/outside.txt",
		"DELE rellink2/x", "SITE CHMOD 777 abslink", "SITE CHMOD 777 rootlink/etc/passwd", "SITE CHMOD 777 rellink",
		"MFMT 20000101000000 abslink/outside.txt", "MFMT 20000101000000 rellink",
	} {
		c.send(line)
		c.read()
	}
	c.cmd("RNFR inside.txt", 350)
	c.send("RNTO abslink/moved.txt")
	c.read()
	c.cmd("RNFR abslink/outside.txt", 550)

	if got, _ := os.ReadFile(filepath.Join(ts.data, "outside.txt")); string(got) != marker {
		t.Fatalf("outside.txt changed: %q", got)
	}
	if fi, _ := os.Stat(ts.data); fi.Mode() != dataInfo.Mode() || !fi.ModTime().Equal(dataInfo.ModTime()) {
		t.Fatalf("the data directory changed: %v %v -> %v %v", dataInfo.Mode(), dataInfo.ModTime(), fi.Mode(), fi.ModTime())
	}
	for _, p := range []string{filepath.Join(ts.data, "escape.txt"), filepath.Join(ts.data, "home", "escape.txt"), "/tmp/escape.txt",
		filepath.Join(ts.data, "escdir"), "/tmp/escdir-ferry", filepath.Join(ts.data, "moved.txt")} {
		if _, err := os.Lstat(p); err == nil {
			os.RemoveAll(p)
			t.Fatalf("%s was created outside the root", p)
		}
	}
	if fi, err := os.Stat("/etc/passwd"); err == nil && fi.Mode().Perm()&0o002 != 0 {
		t.Fatal("/etc/passwd became world-writable")
	}
	hardNoHostPath(t, ts, tr.String())
}

// hardNoHostPath fails if any reply in transcript names the host directory.
func hardNoHostPath(t *testing.T, ts *testServer, transcript string) {
	t.Helper()
	for _, p := range []string{ts.data, filepath.Dir(ts.data), ts.home} {
		if strings.Contains(transcript, p) {
			i := strings.Index(transcript, p)
			t.Fatalf("a reply carries the host path %q: %q", p, transcript[max(0, i-80):min(len(transcript), i+80)])
		}
	}
}

// TestAbuseSymlinkRace swaps a directory for a symlink to / in a loop while a
// client runs RETR, CWD, LIST and SIZE through it: whatever the timing,
// nothing outside the root is served.
func TestAbuseSymlinkRace(t *testing.T) {
	// local only: symlinks swapped on the host disk.
	ts := startServer(t, nil)
	const inside = "INSIDE-THE-ROOT"
	real := filepath.Join(ts.home, "realdir")
	hardWrite(t, filepath.Join(real, "etc", "passwd"), []byte(inside))
	link := filepath.Join(ts.home, "linkdir")
	if err := os.Symlink("/", link); err != nil {
		t.Fatal(err)
	}
	swap := filepath.Join(ts.home, "swap")
	hold := filepath.Join(ts.home, "hold")
	if err := os.Rename(real, swap); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var swaps atomic.Int64
	var swapper sync.WaitGroup
	swapper.Add(1)
	go func() {
		defer swapper.Done()
		spare := link // the name not currently at swap
		for {
			select {
			case <-stop:
				return
			default:
			}
			// swap -> hold, spare -> swap, hold -> spare: swap is a
			// directory and a symlink to / in turn.
			if os.Rename(swap, hold) != nil {
				continue
			}
			os.Rename(spare, swap)
			os.Rename(hold, spare)
			swaps.Add(1)
		}
	}()
	defer func() { close(stop); swapper.Wait() }()

	tr := &syncBuffer{}
	c := hardDialRec(t, ts.addr, tr)
	c.login("alice", "secret")
	c.cmd("TYPE I", 200)
	allowedTop := map[string]bool{"etc": true, ".": true}
	var served, refused int
	checkNames := func(what, listing string, allowed map[string]bool) {
		for _, l := range strings.Split(strings.TrimSuffix(listing, "\r\n"), "\r\n") {
			if l == "" {
				continue
			}
			name := l
			if i := strings.LastIndex(l, " "); i >= 0 {
				name = l[i+1:]
			}
			if i := strings.LastIndex(name, "/"); i >= 0 {
				name = name[i+1:]
			}
			if !allowed[name] {
				t.Fatalf("%s listed %q from outside the root (line %q)", what, name, l)
			}
		}
	}
	deadline := time.Now().Add(8 * time.Second)
	for i := 0; i < 150 && time.Now().Before(deadline); i++ {
		d := c.pasv()
		c.send("RETR swap/etc/passwd")
		if code, _ := c.read(); code == 150 {
			d.SetReadDeadline(time.Now().Add(hardWaitLimit))
			b, _ := io.ReadAll(d)
			c.read()
			if string(b) != inside && len(b) > 0 {
				t.Fatalf("RETR through the swapped directory served %q", b)
			}
			served++
		} else {
			d.Close()
			refused++
		}
		for _, verb := range []string{"NLST", "LIST"} {
			d = c.pasv()
			c.send(verb + " swap")
			if code, _ := c.read(); code == 150 {
				d.SetReadDeadline(time.Now().Add(hardWaitLimit))
				b, _ := io.ReadAll(d)
				c.read()
				checkNames(verb+" swap", string(b), allowedTop)
			} else {
				d.Close()
			}
		}
		c.send("CWD swap/etc")
		if code, _ := c.read(); code == 250 {
			d = c.pasv()
			c.send("NLST")
			if code, _ := c.read(); code == 150 {
				d.SetReadDeadline(time.Now().Add(hardWaitLimit))
				b, _ := io.ReadAll(d)
				c.read()
				checkNames("NLST in swap/etc", string(b), map[string]bool{"passwd": true})
			} else {
				d.Close()
			}
			c.send("SIZE passwd")
			if code, text := c.read(); code == 213 && text != strconv.Itoa(len(inside)) {
				t.Fatalf("SIZE passwd in the swapped directory: %s", text)
			}
		}
		c.cmd("CWD /", 250)
		c.send("SIZE swap/etc/shadow")
		if code, text := c.read(); code == 213 {
			t.Fatalf("SIZE swap/etc/shadow reached the host's file: %s", text)
		}
	}
	t.Logf("%d swaps; RETR served the inside file %d times and was refused %d times", swaps.Load(), served, refused)
	hardNoHostPath(t, ts, tr.String())
}

// TestAbuseControlGarbage: NUL, CR, invalid UTF-8, Telnet sequences and
// overlong lines are refused one by one and the session carries on.
func TestAbuseControlGarbage(t *testing.T) {
	eachBackend(t, testAbuseControlGarbage)
}

func testAbuseControlGarbage(t *testing.T, be backend) {
	ts := startOn(t, be, nil)
	ts.put(t, "ab", []byte("ab"))
	tr := &syncBuffer{}
	c := hardDialRec(t, ts.addr, tr)
	send := func(raw string) (int, string) {
		c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c.conn, raw); err != nil {
			t.Fatalf("send %q: %v", raw, err)
		}
		return c.read()
	}
	for _, tc := range []struct {
		raw  string
		code int
	}{
		{"USER al\x00ice\r\n", 501},
		{"USER al\rice\r\n", 501},
		{"USER \xc3\x28\r\n", 501},
		{"USER a\xff\xffb\r\n", 501}, // IAC IAC is one 0xFF byte: invalid UTF-8
		{"NO\x00OP\r\n", 500},
		{"\x00\x00\x00\r\n", 500},
		{"\r\n", 500},
		{"N\xff\xf4OOP\r\n", 200}, // Telnet IP inside the verb is removed
		{"\xff\xfb\x01NOOP\r\n", 200},
		{"NOOP\n", 200},
		{"XYZZY " + strings.Repeat("x", 100) + "\r\n", 500},
		{"USER " + strings.Repeat("é", 3000) + "\r\n", 500},
	} {
		if code, text := send(tc.raw); code != tc.code {
			t.Fatalf("%q: got %d %s, want %d", tc.raw, code, text, tc.code)
		}
	}
	c.login("alice", "secret")
	byteName := func(code int) int {
		if !ts.hasCap(t, storage.CapByteNames) {
			return 553
		}
		return code
	}
	for _, tc := range []struct {
		raw  string
		code int
	}{
		{"SIZE a\x00b\r\n", 553},
		{"SIZE a\rb\r\n", 553},
		// Invalid UTF-8 is a byte name: missing, not refused (553 on
		// storage without byte names: S3).
		{"SIZE \xc3\x28\r\n", byteName(550)},
		{"MKD \xed\xa0\x80\r\n", byteName(257)}, // a UTF-16 surrogate in UTF-8: bytes like any other
		{"RMD \xed\xa0\x80\r\n", byteName(250)},
		{"MKD \xc2\x85\r\n", 553},     // but not a C1 control (NEL)
		{"MKD \xe9\xc2\x9b\r\n", 553}, // not even in a name that is not UTF-8
		{"CWD /\x00/etc\r\n", 553},
		{"SIZE a\xff\xffb\r\n", byteName(550)}, // IAC IAC: one 0xFF byte
		{"RNFR ab\x00\r\n", 553},
		{"SIZE ab\r\n", 213},
		{"MLST ab\r\n", 250},
	} {
		if code, text := send(tc.raw); code != tc.code {
			t.Fatalf("%q: got %d %s, want %d", tc.raw, code, text, tc.code)
		}
	}
	for _, name := range ts.names(t, ".") {
		if name != "ab" {
			t.Fatalf("garbage created %q", name)
		}
	}
	c.cmd("NOOP", 200)
	hardNoHostPath(t, ts, tr.String())
}

// TestAbuseCommandsBeforeLogin: every command of the table that needs a
// login answers 530 before one, whatever its argument.
func TestAbuseCommandsBeforeLogin(t *testing.T) {
	eachBackend(t, testAbuseCommandsBeforeLogin)
}

func testAbuseCommandsBeforeLogin(t *testing.T, be backend) {
	ts := startOn(t, be, nil)
	ts.put(t, "f", []byte("x"))
	tr := &syncBuffer{}
	c := hardDialRec(t, ts.addr, tr)
	n := 0
	for verb, row := range commands {
		if row.public {
			continue
		}
		for _, arg := range []string{"", " f", " /etc/passwd", " 127,0,0,1,200,10"} {
			c.send(verb + arg)
			if code, text := c.read(); code != 530 {
				t.Fatalf("%s%s before login: got %d %s, want 530", verb, arg, code, text)
			}
			n++
		}
	}
	if n == 0 {
		t.Fatal("the command table has no login-only command")
	}
	// Half a login is no login.
	c.cmd("USER alice", 331)
	c.cmd("RETR f", 530)
	c.cmd("CWD /", 530)
	c.cmd("NOOP", 200)
	hardNoHostPath(t, ts, tr.String())
}

package ftp

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/storage/local"
)

// loadSessions is how many concurrent logged-in sessions TestLoadManySessions
// holds, with or without the race detector (about 25 s with -race on two
// cores).
const loadSessions = 10000

// loadRaiseNOFILE raises RLIMIT_NOFILE so that n sessions costing perSession
// descriptors each fit, raising the hard limit too when we may (root with
// CAP_SYS_RESOURCE); it returns how many sessions fit.
func loadRaiseNOFILE(t *testing.T, n, perSession int) int {
	t.Helper()
	need := uint64(n*perSession + 256)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	t.Logf("RLIMIT_NOFILE before: soft %d, hard %d; need %d", lim.Cur, lim.Max, need)
	if lim.Max < need {
		raised := syscall.Rlimit{Cur: need, Max: need}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
			t.Logf("cannot raise the hard limit to %d (%v); running with fewer sessions", need, err)
		}
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatal(err)
		}
	}
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	if lim.Cur < need {
		n = int((lim.Cur - 256) / uint64(perSession))
	}
	return n
}

// loadOpenFDs counts this process's open descriptors.
func loadOpenFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents) - 1 // the directory being read
}

// loadConn is one client with the least memory we can give it.
type loadConn struct {
	c net.Conn
	r *bufio.Reader
}

// loadExpect reads one single-line reply and checks its code.
func (lc *loadConn) expect(code int) error {
	line, err := lc.r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("want %d: %w (got %q)", code, err, line)
	}
	if !strings.HasPrefix(line, fmt.Sprintf("%d ", code)) {
		return fmt.Errorf("want %d, got %q", code, line)
	}
	return nil
}

// loadEach runs f on every index with a few workers and returns the first error.
func loadEach(n, workers int, f func(i int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var failed atomic.Bool
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { first = fmt.Errorf("session %d: %w", i, err) })
					failed.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// loadLogin connects n anonymous sessions to addr, rotating the source
// address over 127.0.0.1-4 so that no address runs short of ephemeral ports.
func loadLogin(addr string, n int, deadline time.Time) ([]*loadConn, error) {
	return loadLoginAs(addr, n, deadline, "anonymous", "load@test")
}

// loadLoginAs is loadLogin as the user name with password pass.
func loadLoginAs(addr string, n int, deadline time.Time, name, pass string) ([]*loadConn, error) {
	conns := make([]*loadConn, n)
	locals := make([]net.Dialer, 4)
	for i := range locals {
		locals[i] = net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(i+1))}}
	}
	err := loadEach(n, 32, func(i int) error {
		c, err := locals[i%len(locals)].Dial("tcp", addr)
		if err != nil {
			return err
		}
		c.SetDeadline(deadline)
		lc := &loadConn{c: c, r: bufio.NewReaderSize(c, 128)}
		conns[i] = lc
		if err := lc.expect(220); err != nil {
			return err
		}
		if _, err := io.WriteString(c, "USER "+name+"\r\nPASS "+pass+"\r\n"); err != nil {
			return err
		}
		if err := lc.expect(331); err != nil {
			return err
		}
		return lc.expect(230)
	})
	return conns, err
}

func loadNOOP(conns []*loadConn) error {
	return loadEach(len(conns), 32, func(i int) error {
		if _, err := io.WriteString(conns[i].c, "NOOP\r\n"); err != nil {
			return err
		}
		return conns[i].expect(200)
	})
}

func loadClose(conns []*loadConn) {
	for _, lc := range conns {
		if lc != nil {
			lc.c.Close()
		}
	}
}

// loadBaseline waits until the goroutines, descriptors and sessions of the
// process are back within margin of the baseline and returns them.
func loadBaseline(t *testing.T, ts *testServer, baseG, baseFD int) (int, int) {
	t.Helper()
	const margin = 10
	var g, fds int
	limit := time.Now().Add(2 * time.Minute)
	for {
		g, fds = runtime.NumGoroutine(), loadOpenFDs(t)
		if g <= baseG+margin && fds <= baseFD+margin && ts.srv.Sessions() == 0 {
			return g, fds
		}
		if time.Now().After(limit) {
			t.Fatalf("after closing every session: %d goroutines (baseline %d), %d descriptors (baseline %d), %d sessions",
				g, baseG, fds, baseFD, ts.srv.Sessions())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// loadSharedFS is one storage.FS shared by every anonymous session. It hides
// Close, so that a session's logout does not close it for the others.
type loadSharedFS struct{ storage.FS }

// TestLoadManySessions holds 10,000 concurrent logged-in anonymous sessions
// on one in-process server, checks that each answers NOOP, closes them all,
// and checks that the server's goroutines and descriptors return to their
// baseline.
//
// Descriptors are the limit: this machine's hard RLIMIT_NOFILE is 20,000
// and root here lacks CAP_SYS_RESOURCE to raise it. So the clients run in a
// child process (this test binary again, TestLoadClientProcess), and the
// anonymous sessions share one os.Root of DATA/public through Site.Storage,
// which leaves one descriptor per session in the server's process. The
// per-session os.Root that the default opener opens is covered at a smaller
// scale by TestLoadSessionStorageReleased.
func TestLoadManySessions(t *testing.T) {
	n := loadRaiseNOFILE(t, loadSessions, 1)
	ts := startServer(t, func(c *Site, s *Server) {
		c.MaxSessions = 0
		c.MaxSessionsPerIP = 0
		c.LoginTimeout = 10 * time.Minute
		c.IdleTimeout = 10 * time.Minute
		s.Logger = slog.New(slog.DiscardHandler)
		shareAnonymousRoot(t, c)
	})
	runtime.GC()
	baseG, baseFD := runtime.NumGoroutine(), loadOpenFDs(t)
	start := time.Now()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestLoadClientProcess$", "-test.v=false")
	cmd.Env = append(os.Environ(), "FERRY_LOAD_CLIENT="+ts.addr+","+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			syscall.Kill(pid, syscall.SIGKILL)
			cmd.Wait()
		}
	})
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	await := func(want string) {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("client process ended before %q", want)
				}
				if strings.HasPrefix(l, "ERR ") {
					t.Fatalf("client process: %s", l)
				}
				if l == want {
					return
				}
			case <-ctx.Done():
				t.Fatalf("waiting for %q from the client process: %v", want, ctx.Err())
			}
		}
	}

	await("READY")
	loggedIn := time.Since(start)
	peakG, peakFD := runtime.NumGoroutine(), loadOpenFDs(t)
	if got := ts.srv.Sessions(); got != n {
		t.Fatalf("server holds %d sessions, want %d", got, n)
	}
	io.WriteString(stdin, "NOOP\n")
	await("NOOPED")
	nooped := time.Since(start)
	io.WriteString(stdin, "CLOSE\n")
	await("CLOSED")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("client process: %v", err)
	}
	g, fds := loadBaseline(t, ts, baseG, baseFD)
	released := time.Since(start)
	t.Logf("race detector: %v; sessions held at once: %d (wanted %d)", raceDetector, n, loadSessions)
	t.Logf("server baseline: %d goroutines, %d descriptors", baseG, baseFD)
	t.Logf("server peak: %d goroutines (%.2f per session), %d descriptors (%.2f per session)",
		peakG, float64(peakG-baseG)/float64(n), peakFD, float64(peakFD-baseFD)/float64(n))
	t.Logf("server after close: %d goroutines, %d descriptors", g, fds)
	t.Logf("times: all logged in %v, all NOOPs answered %v, all released %v",
		loggedIn.Round(time.Millisecond), nooped.Round(time.Millisecond), released.Round(time.Millisecond))
	if n < loadSessions {
		t.Errorf("held only %d sessions, not %d: RLIMIT_NOFILE could not be raised", n, loadSessions)
	}
}

// TestLoadClientProcess is the client side of TestLoadManySessions, run in a
// child process. Run directly, without FERRY_LOAD_CLIENT, it does nothing.
func TestLoadClientProcess(t *testing.T) {
	spec := os.Getenv("FERRY_LOAD_CLIENT")
	if spec == "" {
		return
	}
	// addr,n or addr,n,user,password
	f := strings.Split(spec, ",")
	addr, name, pass := f[0], "anonymous", "load@test"
	n, _ := strconv.Atoi(f[1])
	if len(f) == 4 {
		name, pass = f[2], f[3]
	}
	out := func(s string) { fmt.Fprintln(os.Stdout, s) }
	loadRaiseNOFILE(t, n, 1)
	conns, err := loadLoginAs(addr, n, time.Now().Add(5*time.Minute), name, pass)
	defer loadClose(conns)
	if err != nil {
		out("ERR login: " + err.Error())
		os.Exit(1)
	}
	out("READY")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "NOOP":
			if err := loadNOOP(conns); err != nil {
				out("ERR NOOP: " + err.Error())
				os.Exit(1)
			}
			out("NOOPED")
		case "CLOSE":
			loadClose(conns)
			out("CLOSED")
			os.Exit(0)
		}
	}
	os.Exit(1)
}

// TestLoadSessionStorageReleased holds as many sessions as fit in this
// process with the default storage (client socket, server socket and the
// session's os.Root: three descriptors each), up to 5,000, and checks that
// closing them gives back every goroutine and descriptor, the storage roots
// included.
func TestLoadSessionStorageReleased(t *testing.T) {
	n := loadRaiseNOFILE(t, 5000, 3)
	ts := startServer(t, func(c *Site, s *Server) {
		c.MaxSessions = 0
		c.MaxSessionsPerIP = 0
		s.Logger = slog.New(slog.DiscardHandler)
	})
	runtime.GC()
	baseG, baseFD := runtime.NumGoroutine(), loadOpenFDs(t)
	conns, err := loadLogin(ts.addr, n, time.Now().Add(5*time.Minute))
	defer loadClose(conns)
	if err != nil {
		t.Fatalf("logging in: %v", err)
	}
	peakFD := loadOpenFDs(t)
	if got := ts.srv.Sessions(); got != n {
		t.Fatalf("server holds %d sessions, want %d", got, n)
	}
	if err := loadNOOP(conns); err != nil {
		t.Fatalf("NOOP: %v", err)
	}
	loadClose(conns)
	g, fds := loadBaseline(t, ts, baseG, baseFD)
	t.Logf("%d sessions: %d descriptors at peak (%.2f per session, baseline %d); after close %d goroutines (baseline %d), %d descriptors",
		n, peakFD, float64(peakFD-baseFD)/float64(n), baseFD, g, baseG, fds)
	if n < 5000 {
		t.Errorf("held only %d sessions, not 5000: RLIMIT_NOFILE could not be raised", n)
	}
}

// shareAnonymousRoot makes the site's anonymous sessions share one os.Root
// of DATA/public, so that a test holding many of them keeps one descriptor
// per session in the server's process.
func shareAnonymousRoot(t testing.TB, c *Site) {
	public := c.AnonymousRoot
	shared, err := local.Open(public)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shared.Close() })
	c.Storage = storage.OpenerFunc(func(_ context.Context, root string) (storage.FS, error) {
		if root == public {
			return loadSharedFS{shared}, nil
		}
		return local.Open(root)
	})
}

package e2e

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestUpgrade: `ferry upgrade` after the binary was replaced. A client loop
// connecting every 2 ms during the upgrade sees no refused connection; a
// 50 MB download started before completes with the right SHA-256, then
// 421; an idle session gets 421 at once; a transfer of the old process
// still waiting for its passive data connection keeps its port, and a new
// session's EPSV gets another one (the ports cannot collide); new sessions
// are served by the new PID (checked in /proc), which tells systemd it is
// the main PID; the old process exits cleanly. Then a new binary that exits
// at start, and one that never says it is ready, leave the new process
// serving and `ferry upgrade` exits 1.
func TestUpgrade(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "ferry")
	copyExecutable(t, ferryBin, bin)
	notify, notifyPath := notifySocket(t)
	s := startServer(t, serverConfig{
		ConfigFile:   true,
		PassiveCount: 2,
		Binary:       bin,
		Env:          []string{"NOTIFY_SOCKET=" + notifyPath},
		ConfigExtra:  "drain_timeout = \"2m\"\nupgrade_timeout = \"1m\"\ndata_timeout = \"2m\"\n",
	})
	oldPID := s.cmd.Process.Pid
	waitDatagram(t, notify, "READY=1")
	home := s.addUser(t, testUser, testPass)
	const size = 50 << 20
	if err := writeRandom(filepath.Join(home, "big.bin"), size, uint64(time.Now().UnixNano())); err != nil {
		t.Fatal(err)
	}
	wantSum, err := fileSHA(filepath.Join(home, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(home, "small.txt"), []byte("small\n"))

	idle, _ := dialFTP(t, s.Addr)
	login(t, idle)
	dl, _ := dialFTP(t, s.Addr)
	login(t, dl)
	data := dialData(t, dl, epsvPort(t, dl))
	dl.PrintfLine("RETR big.bin")
	expectCode(t, dl.Conn, 150)
	h := sha256.New()
	if _, err := io.CopyN(h, data, 1<<20); err != nil {
		t.Fatal(err)
	}
	// A transfer waiting for its data connection: its passive port stays
	// open in the old process.
	pend, _ := dialFTP(t, s.Addr)
	login(t, pend)
	pendPort := epsvPort(t, pend)
	pend.PrintfLine("RETR small.txt")

	loop := startConnectLoops(s.Addr, 4)
	waitAttempts(t, loop, 20)

	copyExecutable(t, ferryBin, bin+".new")
	if err := os.Rename(bin+".new", bin); err != nil {
		t.Fatal(err)
	}
	before := loop.count()
	r := s.ferry(t, "", "upgrade", "--data", s.Data)
	during := loop.count() - before
	if r.Code != 0 {
		t.Fatalf("ferry upgrade: %s", r)
	}
	m := regexp.MustCompile(`pid (\d+) serves now; pid (\d+) drains`).FindStringSubmatch(r.Stdout)
	if m == nil || m[2] != strconv.Itoa(oldPID) {
		t.Fatalf("ferry upgrade printed %q", r.Stdout)
	}
	newPID, _ := strconv.Atoi(m[1])
	t.Cleanup(func() { stopPID(t, newPID) })
	waitDatagram(t, notify, "MAINPID="+m[1]+"\nREADY=1")
	// Connections keep coming after the hand-over.
	waitAttempts(t, loop, loop.count()+200)
	attempts, refused, bye, errs := loop.stop()
	t.Logf("connect loop: %d attempts (%d while ferry upgrade ran), %d refused, %d told 421 after their greeting", attempts, during, refused, bye)
	if refused > 0 {
		t.Errorf("%d of %d connection attempts refused during the upgrade: %q", refused, attempts, errs)
	}

	// The idle session is told to reconnect.
	if text := expectCode(t, idle.Conn, 421); !strings.Contains(text, "restarting") {
		t.Errorf("idle session's 421: %q", text)
	}
	// A new session is the new process's; its EPSV cannot take the port
	// the old process still listens on.
	nw, banner := dialFTP(t, s.Addr)
	if !strings.HasPrefix(banner, "Ferry") {
		t.Fatalf("new session's banner %q", banner)
	}
	if !servedBy(t, newPID, nw.nc) {
		t.Fatalf("a session opened after the upgrade is not served by the new pid %d", newPID)
	}
	login(t, nw)
	if p := epsvPort(t, nw); p == pendPort {
		t.Fatalf("the new process took passive port %d, which the old one still listens on", p)
	}
	if got := retr(t, nw, "small.txt"); got != "small\n" {
		t.Fatalf("RETR on the new process: %q", got)
	}
	// The old process's waiting transfer and running download finish.
	pd := dialData(t, pend, pendPort)
	expectCode(t, pend.Conn, 150)
	if b, err := io.ReadAll(pd); err != nil || string(b) != "small\n" {
		t.Fatalf("old process's pending RETR: %q %v", b, err)
	}
	expectCode(t, pend.Conn, 226)
	expectCode(t, pend.Conn, 421)
	n, err := io.Copy(h, data)
	if err != nil || n+1<<20 != size {
		t.Fatalf("download across the upgrade: %d of %d bytes, %v", n+1<<20, size, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != wantSum {
		t.Fatalf("download across the upgrade: sha256 %s, want %s", got, wantSum)
	}
	expectCode(t, dl.Conn, 226)
	expectCode(t, dl.Conn, 421)
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		t.Fatalf("the old process did not exit after its drain\n%s", s.LogTail(40))
	}
	s.stopped = true
	if s.waitErr != nil {
		t.Fatalf("the old process exited with %v\n%s", s.waitErr, s.LogTail(40))
	}

	// A new binary that exits at start, then one that never says it is
	// ready: the serving process stays.
	src, err := os.ReadFile(s.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, s.ConfigPath, []byte(strings.Replace(string(src), `upgrade_timeout = "1m"`, `upgrade_timeout = "1s"`, 1)))
	if r := s.ferry(t, "", "reload", "--data", s.Data); r.Code != 0 {
		t.Fatalf("reload: %s", r)
	}
	for _, c := range []struct{ script, want string }{
		{"#!/bin/sh\nexit 3\n", "exited before it was ready: exit status 3"},
		{"#!/bin/sh\nexec sleep 60\n", "was not ready within upgrade_timeout (1s)"},
	} {
		writeFile(t, bin+".new", []byte(c.script))
		os.Chmod(bin+".new", 0o755)
		if err := os.Rename(bin+".new", bin); err != nil {
			t.Fatal(err)
		}
		r := s.ferry(t, "", "upgrade", "--data", s.Data)
		if r.Code != 1 || !strings.Contains(r.Stderr, c.want) || !strings.Contains(r.Stderr, "pid "+m[1]+" keeps serving") {
			t.Fatalf("upgrade to a broken binary: want exit 1 and %q\n%s", c.want, r)
		}
		c2, _ := dialFTP(t, s.Addr)
		if !servedBy(t, newPID, c2.nc) {
			t.Fatalf("after a failed upgrade, a new session is not served by pid %d", newPID)
		}
		login(t, c2)
		if got := retr(t, c2, "small.txt"); got != "small\n" {
			t.Fatalf("RETR after a failed upgrade: %q", got)
		}
		if st := s.ferry(t, "", "status", "--data", s.Data); !strings.Contains(st.Stdout, "pid "+m[1]+"\n") {
			t.Fatalf("status after a failed upgrade:\n%s", st)
		}
	}
	// A real binary whose start fails after it took the control socket
	// (its settings name an address in use): the socket stays the
	// serving process's.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	copyExecutable(t, ferryBin, bin+".new")
	if err := os.Rename(bin+".new", bin); err != nil {
		t.Fatal(err)
	}
	cur, _ := os.ReadFile(s.ConfigPath)
	writeFile(t, s.ConfigPath, []byte(string(cur)+fmt.Sprintf("extra_listen = [%q]\n", busy.Addr().String())))
	r = s.ferry(t, "", "upgrade", "--data", s.Data)
	if r.Code != 1 || !strings.Contains(r.Stderr, "failed to start: control "+busy.Addr().String()) || !strings.Contains(r.Stderr, "address already in use") {
		t.Fatalf("upgrade to a binary that cannot bind: want exit 1 and its reason\n%s", r)
	}
	if st := s.ferry(t, "", "status", "--data", s.Data); st.Code != 0 || !strings.Contains(st.Stdout, "pid "+m[1]+"\n") {
		t.Fatalf("status after a new process failed with the control socket in hand:\n%s", st)
	}
	writeFile(t, s.ConfigPath, cur)
}

// TestSystemd: the notifications of a server under a notify socket (READY
// with a STATUS, watchdog pings when WATCHDOG_USEC is set, RELOADING with
// MONOTONIC_USEC then READY on reload, STOPPING on SIGTERM), and socket
// activation: the control listener passed as descriptor 3 with LISTEN_FDS,
// LISTEN_PID (the server's own PID: a shell sets it, then execs ferry) and
// LISTEN_FDNAMES is the one served, and an upgrade hands it to the new
// process.
func TestSystemd(t *testing.T) {
	notify, notifyPath := notifySocket(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, serverConfig{
		Wrap:       []string{"sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`},
		ExtraFiles: []*os.File{f},
		Env:        []string{"NOTIFY_SOCKET=" + notifyPath, "WATCHDOG_USEC=200000", "LISTEN_FDS=1", "LISTEN_FDNAMES=control"},
	})
	f.Close()
	ln.Close() // the server holds its own descriptor of the socket
	if s.Addr != ln.Addr().String() {
		t.Fatalf("the server listens on %s, not on the socket passed (%s)", s.Addr, ln.Addr())
	}
	if got := waitDatagram(t, notify, "READY=1"); !strings.Contains(got, "STATUS=serving on "+s.Addr) {
		t.Errorf("READY without the status: %q", got)
	}
	for range 2 {
		waitDatagram(t, notify, "WATCHDOG=1")
	}
	home := s.addUser(t, testUser, testPass)
	writeFile(t, filepath.Join(home, "f.txt"), []byte("hello\n"))
	c, _ := dialFTP(t, s.Addr)
	login(t, c)
	if got := retr(t, c, "f.txt"); got != "hello\n" {
		t.Fatalf("RETR through the activated socket: %q", got)
	}

	r := s.ferry(t, "", "reload", "--data", s.Data)
	if r.Code != 0 || !strings.Contains(r.Stdout, "socket activation") {
		t.Fatalf("reload under socket activation: %s", r)
	}
	got := waitDatagram(t, notify, "RELOADING=1")
	if !regexp.MustCompile(`\nMONOTONIC_USEC=[1-9][0-9]*\n`).MatchString(got) {
		t.Errorf("RELOADING without MONOTONIC_USEC: %q", got)
	}
	waitDatagram(t, notify, "READY=1")

	// An upgrade hands systemd's socket over like Ferry's own.
	r = s.ferry(t, "", "upgrade", "--data", s.Data)
	m := regexp.MustCompile(`pid (\d+) serves now`).FindStringSubmatch(r.Stdout)
	if r.Code != 0 || m == nil {
		t.Fatalf("upgrade under socket activation: %s", r)
	}
	newPID, _ := strconv.Atoi(m[1])
	t.Cleanup(func() { stopPID(t, newPID) })
	waitDatagram(t, notify, "MAINPID="+m[1]+"\nREADY=1")
	c2, _ := dialFTP(t, s.Addr)
	if !servedBy(t, newPID, c2.nc) {
		t.Fatalf("after the upgrade, the activated socket is not served by pid %d", newPID)
	}
	login(t, c2)
	if got := retr(t, c2, "f.txt"); got != "hello\n" {
		t.Fatalf("RETR on the new process: %q", got)
	}
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		t.Fatalf("the old process did not exit after the upgrade\n%s", s.LogTail(40))
	}
	s.stopped = true
	stopPID(t, newPID)
	waitDatagram(t, notify, "STOPPING=1")
}

// copyExecutable copies the file src to dst, mode 0755.
func copyExecutable(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// notifySocket is a unixgram socket standing in for systemd's.
func notifySocket(t *testing.T) (*net.UnixConn, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, path
}

// waitDatagram reads notifications until one holds want, and returns it.
func waitDatagram(t *testing.T, c *net.UnixConn, want string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	b := make([]byte, 4096)
	var seen []string
	for {
		c.SetReadDeadline(deadline)
		n, err := c.Read(b)
		if err != nil {
			t.Fatalf("no notification with %q (%v); got %q", want, err, seen)
		}
		if got := string(b[:n]); strings.Contains(got, want) {
			return got
		} else {
			seen = append(seen, got)
		}
	}
}

// connectLoop runs clients that each connect to a server every 2 ms, read
// the greeting and quit, counting the attempts that were refused or got no
// 220.
type connectLoop struct {
	mu       sync.Mutex
	attempts int
	refused  int
	bye      int // greeted with 220, then 421 to the QUIT (drained at once)
	errs     []string
	done     chan struct{}
	stopped  chan struct{}
}

func startConnectLoops(addr string, clients int) *connectLoop {
	l := &connectLoop{done: make(chan struct{}), stopped: make(chan struct{})}
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go l.run(addr, &wg)
	}
	go func() { wg.Wait(); close(l.stopped) }()
	return l
}

func (l *connectLoop) run(addr string, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		select {
		case <-l.done:
			return
		default:
		}
		refused, bye, why := connectOnce(addr)
		l.mu.Lock()
		l.attempts++
		if refused {
			l.refused++
			if len(l.errs) < 10 {
				l.errs = append(l.errs, why)
			}
		}
		if bye {
			l.bye++
		}
		l.mu.Unlock()
		time.Sleep(2 * time.Millisecond)
	}
}

func connectOnce(addr string) (refused, bye bool, why string) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return true, false, err.Error()
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "220 ") {
		return true, false, fmt.Sprintf("greeting %q, %v", line, err)
	}
	fmt.Fprintf(c, "QUIT\r\n")
	line, err = r.ReadString('\n')
	switch {
	case strings.HasPrefix(line, "221 "):
		return false, false, ""
	case strings.HasPrefix(line, "421 "):
		return false, true, ""
	}
	return true, false, fmt.Sprintf("QUIT answered %q, %v", line, err)
}

func (l *connectLoop) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.attempts
}

func (l *connectLoop) stop() (attempts, refused, bye int, errs []string) {
	close(l.done)
	<-l.stopped
	return l.attempts, l.refused, l.bye, l.errs
}

// waitAttempts waits until the loop made n attempts.
func waitAttempts(t *testing.T, l *connectLoop, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for l.count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("the connect loop made %d attempts, not %d", l.count(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// servedBy reports whether process pid holds the server's end of the TCP
// connection c (an IPv4 loopback connection), read from /proc.
func servedBy(t *testing.T, pid int, c net.Conn) bool {
	t.Helper()
	hexAddr := func(a net.Addr) string {
		ta := a.(*net.TCPAddr)
		ip := ta.IP.To4()
		return fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], ta.Port)
	}
	// The server's end: local is the client's remote, and the reverse.
	local, remote := hexAddr(c.RemoteAddr()), hexAddr(c.LocalAddr())
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	inode := ""
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 9 && f[1] == local && f[2] == remote {
			inode = f[9]
		}
	}
	if inode == "" {
		t.Fatalf("no server socket %s -> %s in /proc/net/tcp", local, remote)
	}
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("process %d: %v", pid, err)
	}
	for _, e := range entries {
		if l, _ := os.Readlink(filepath.Join(dir, e.Name())); l == "socket:["+inode+"]" {
			return true
		}
	}
	return false
}

// stopPID stops a server that is not the test's child (an upgrade's new
// process): SIGTERM, then SIGKILL if it is still running after
// stopTimeout. A zombie counts as stopped.
func stopPID(t *testing.T, pid int) {
	if !alive(pid) {
		return
	}
	syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(stopTimeout)
	for alive(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Errorf("pid %d still running %v after SIGTERM; killed", pid, stopTimeout)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

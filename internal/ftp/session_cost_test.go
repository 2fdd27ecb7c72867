package ftp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/storage/local"
)

// homeCounter is a memOpener that counts MakeHome calls per location.
type homeCounter struct {
	*memOpener
	mu    sync.Mutex
	homes map[string]int
}

func (o *homeCounter) MakeHome(ctx context.Context, location string) error {
	o.mu.Lock()
	o.homes[location]++
	o.mu.Unlock()
	return o.memOpener.MakeHome(ctx, location)
}

func (o *homeCounter) count(location string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.homes[location]
}

// TestAnonymousRootMadeOnce: the shared anonymous tree is made (and, on
// local storage, checked against the protected paths) when it is first
// opened, not at every anonymous login; a named user's home still is, at
// each of theirs.
func TestAnonymousRootMadeOnce(t *testing.T) {
	op := &homeCounter{memOpener: newMemOpener(), homes: map[string]int{}}
	ts := startServer(t, func(st *Site, _ *Server) { st.Storage = op })
	for range 3 {
		c := dial(t, ts.addr)
		c.login("anonymous", "guest@")
		c.cmd("PWD", 257)
		c.cmd("QUIT", 221)
		loggedIn(t, ts).cmd("QUIT", 221)
	}
	if n := op.count(ts.site.AnonymousRoot); n != 1 {
		t.Errorf("MakeHome of the anonymous root: %d calls for 3 logins, want 1", n)
	}
	if n := op.count(ts.home); n != 3 {
		t.Errorf("MakeHome of alice's home: %d calls for 3 logins, want 3", n)
	}
}

// TestAnonymousProtectedRoot: an anonymous root that holds the server's own
// files is refused at every anonymous login, not only the first: a refused
// root is never kept as the shared tree.
func TestAnonymousProtectedRoot(t *testing.T) {
	ts := startServer(t, func(st *Site, _ *Server) {
		data := filepath.Dir(st.AnonymousRoot)
		st.AnonymousRoot = data
		st.Storage = &local.Opener{Protected: []string{filepath.Join(data, "users.db")}}
	})
	for range 2 {
		c := dial(t, ts.addr)
		c.cmd("USER anonymous", 331)
		c.cmd("PASS guest@", 530)
		c.cmd("PWD", 530)
	}
}

// keepAlive reads SO_KEEPALIVE of the socket under c.
func keepAlive(t testing.TB, c net.Conn) int {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	v := -1
	rc.Control(func(fd uintptr) { v, err = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE) })
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestDataConnSockets: passive and active data connections have no TCP
// keepalive (the data timeout bounds them), and passive listeners are
// plain TCP, not MPTCP; the control connection keeps Go's keepalive.
func TestDataConnSockets(t *testing.T) {
	var mu sync.Mutex
	got := map[ConnKind][]int{}
	var protos []int
	ts := startServer(t, func(_ *Site, srv *Server) {
		srv.WrapListener = func(kind ConnKind, ln net.Listener) net.Listener {
			if kind == PassiveConn {
				rc, err := ln.(*net.TCPListener).SyscallConn()
				if err != nil {
					t.Fatal(err)
				}
				var p int
				rc.Control(func(fd uintptr) { p, err = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_PROTOCOL) })
				if err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				protos = append(protos, p)
				mu.Unlock()
			}
			return ln
		}
		srv.WrapConn = func(kind ConnKind, c net.Conn) net.Conn {
			v := keepAlive(t, c)
			mu.Lock()
			got[kind] = append(got[kind], v)
			mu.Unlock()
			return c
		}
	})
	os.WriteFile(filepath.Join(ts.home, "f"), []byte("data"), 0o644)
	c := loggedIn(t, ts)
	if b := c.retr("f"); string(b) != "data" {
		t.Fatalf("EPSV RETR: %q", b)
	}
	ln := c.activeListener()
	c.cmd("EPRT |1|127.0.0.1|"+strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)+"|", 200)
	c.cmd("RETR f", 150)
	if b := readAll(t, accept(t, ln)); string(b) != "data" {
		t.Fatalf("EPRT RETR: %q", b)
	}
	c.expect(226)
	mu.Lock()
	defer mu.Unlock()
	if len(protos) == 0 {
		t.Error("no passive listener seen")
	}
	for _, p := range protos {
		if p != syscall.IPPROTO_TCP {
			t.Errorf("passive listener: protocol %d, want TCP (%d)", p, syscall.IPPROTO_TCP)
		}
	}
	for kind, want := range map[ConnKind]int{ControlConn: 1, PassiveConn: 0, ActiveConn: 0} {
		if len(got[kind]) == 0 {
			t.Errorf("kind %v: no connection seen", kind)
		}
		for _, v := range got[kind] {
			if v != want {
				t.Errorf("kind %v: SO_KEEPALIVE %d, want %d", kind, v, want)
			}
		}
	}
}

// tcpPair returns both ends of a loopback TCP connection; rcvbuf, when
// positive, fixes the client end's receive buffer and the server end's
// send buffer (which turns off their autotuning).
func tcpPair(t *testing.T, rcvbuf int) (server *net.TCPConn, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := net.Dialer{}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf) })
		}
	}
	client, err = d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close() })
	server = sc.(*net.TCPConn)
	if rcvbuf > 0 {
		server.SetWriteBuffer(rcvbuf)
	}
	return server, client
}

// openAt writes data to a file and opens it at offset, as storage's Open
// does for REST.
func openAt(t *testing.T, data []byte, offset int64) *os.File {
	t.Helper()
	name := filepath.Join(t.TempDir(), "f")
	writeFile(t, name, data)
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestCopyOutSmallFile: a file of at most chunk bytes goes by the poller's
// sendfile (through a wrapper: its Write), a larger one by the blocking
// sendfile (the wrapper is told its bytes); both send every byte from the
// file's offset, and the count and progress agree.
func TestCopyOutSmallFile(t *testing.T) {
	for _, tc := range []struct {
		name              string
		n                 int
		offset            int64
		size              int64 // as copyOut is told
		wrap, viaSendFile bool
	}{
		{"4KiB", 4096, 0, 4096, false, false},
		{"4KiB REST", 4096, 1000, 3096, false, false},
		{"empty", 0, 0, 0, false, false},
		{"chunk", chunk, 0, chunk, false, false},
		{"grew past its size", 3 * chunk, 0, 4096, false, false},
		{"large", chunk + 1, 0, chunk + 1, false, true},
		{"unknown size", 4096, 0, -1, false, true},
		{"4KiB wrapped", 4096, 0, 4096, true, false},
		{"4KiB REST wrapped", 4096, 1000, 3096, true, false},
		{"large wrapped", chunk + 1, 0, chunk + 1, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := allBytes(tc.n)
			src := openAt(t, data, tc.offset)
			sc, cc := tcpPair(t, 0)
			var c net.Conn = sc
			var written, sent, read atomic.Int64
			if tc.wrap {
				c = &countConn{Conn: sc, read: &read, written: &written, sentFile: &sent}
			}
			got := make(chan []byte, 1)
			go func() {
				b, _ := io.ReadAll(cc)
				got <- b
			}()
			var progress atomic.Int64
			n, err := copyOut(t.Context(), c, src, tc.size, 5*time.Second, nil, &progress)
			sc.Close()
			if err != nil {
				t.Fatal(err)
			}
			want := data[tc.offset:]
			if b := <-got; !bytes.Equal(b, want) {
				t.Fatalf("client got %d bytes, want %d", len(b), len(want))
			}
			if n != int64(len(want)) || progress.Load() != n {
				t.Fatalf("copyOut: %d bytes, progress %d, want %d", n, progress.Load(), len(want))
			}
			if !tc.wrap {
				return
			}
			if tc.viaSendFile && (sent.Load() != n || written.Load() != 0) {
				t.Errorf("wrapper: %d written, %d by sendfile; want all %d by sendfile", written.Load(), sent.Load(), n)
			}
			if !tc.viaSendFile && (written.Load() != n || sent.Load() != 0) {
				t.Errorf("wrapper: %d written, %d by sendfile; want all %d written", written.Load(), sent.Load(), n)
			}
		})
	}
}

// TestCopyOutSmallFileStall: a small file that a client does not read is
// cut at the data timeout like a large one, by the write deadline.
func TestCopyOutSmallFileStall(t *testing.T) {
	for _, wrap := range []bool{false, true} {
		t.Run("wrapped="+strconv.FormatBool(wrap), func(t *testing.T) {
			src := openAt(t, allBytes(chunk), 0)
			// 4 KiB buffers each way hold far less than the file.
			sc, _ := tcpPair(t, 4096)
			var c net.Conn = sc
			if wrap {
				var a, b, d atomic.Int64
				c = &countConn{Conn: sc, read: &a, written: &b, sentFile: &d}
			}
			var progress atomic.Int64
			n, err := copyOut(t.Context(), c, src, chunk, 200*time.Millisecond, nil, &progress)
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("copyOut to a client that does not read: %d bytes, %v; want a deadline error", n, err)
			}
			if n >= chunk {
				t.Fatalf("copyOut sent all %d bytes to a client that does not read", n)
			}
		})
	}
}

// TestLogObserverSkipsCheaply: an event below the log level (a command at
// the default info level) costs the log observer no allocation; one that
// is logged still carries the session's keys.
func TestLogObserverSkipsCheaply(t *testing.T) {
	var buf bytes.Buffer
	l := &logObserver{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})), sub: &Subscription{}}
	e := Event{Kind: KindCommand, Session: "7", Remote: netip.MustParseAddrPort("192.0.2.1:4242"), Cmd: "SIZE", Arg: "small.bin", Code: 213}
	if n := testing.AllocsPerRun(100, func() { l.Observe(e) }); n != 0 {
		t.Errorf("a command event below the log level: %v allocations, want 0", n)
	}
	if buf.Len() != 0 {
		t.Fatalf("a debug event was logged at info: %q", buf.String())
	}
	e.Kind, e.Result = KindDisconnect, ""
	l.Observe(e)
	if s := buf.String(); !strings.Contains(s, "msg=disconnect session=7 remote=192.0.2.1:4242") {
		t.Errorf("disconnect line: %q", s)
	}
}

// TestCommandContextLazy: a command's context is made at its first use and
// kept for the command; between commands the session's serves; and a
// command the reader interrupted (ABOR or QUIT read ahead) before it made
// its context gets one already cancelled, so its backend call still ends.
func TestCommandContextLazy(t *testing.T) {
	srv := &Server{}
	srv.init()
	s := &session{srv: srv, site: &Site{}}
	s.sctx, s.sCancel = context.WithCancel(t.Context())
	defer s.sCancel()
	if s.ctx() != s.sctx || s.longCtx() != s.sctx {
		t.Fatal("between commands: not the session's context")
	}
	s.inCmd = true
	c1 := s.ctx()
	if c1 == s.sctx || s.ctx() != c1 || s.longCtx() == s.sctx {
		t.Fatal("in a command: no context of its own, or a new one at each call")
	}
	s.interrupt()
	if c1.Err() == nil {
		t.Fatal("interrupt did not cancel the command's context")
	}
	s.cmdCtx, s.cmdLong, s.cmdCancel, s.cmdStop = nil, nil, nil, nil
	s.cmdInterrupted = false
	s.interrupt() // before the command made its context
	if s.longCtx().Err() == nil || s.ctx().Err() == nil {
		t.Fatal("a context made after the interrupt is not cancelled")
	}
}

// BenchmarkSession runs the sessions scenario of cmd/ferry-bench in
// process, one session at a time: connect, anonymous login, TYPE I, SIZE,
// EPSV, RETR of a 4 KiB file, QUIT. Its allocations are the server's and
// this minimal client's together.
func BenchmarkSession(b *testing.B) {
	ts := startServer(b, func(_ *Site, srv *Server) {
		srv.Logger = slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	})
	os.MkdirAll(ts.site.AnonymousRoot, 0o755)
	writeFile(b, filepath.Join(ts.site.AnonymousRoot, "small.bin"), allBytes(4096))
	buf := make([]byte, 64<<10)
	b.ReportAllocs()
	for b.Loop() {
		if err := benchSession(ts.addr, buf); err != nil {
			b.Fatal(err)
		}
	}
}

func benchSession(addr string, buf []byte) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	r := bufio.NewReader(c)
	expect := func(code string) (string, error) {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return "", err
			}
			if len(line) >= 4 && line[:3] == code && line[3] == ' ' {
				return line, nil
			}
			if len(line) < 4 || line[3] != '-' && line[:3] != code {
				return "", fmt.Errorf("want %s, got %q", code, line)
			}
		}
	}
	cmd := func(line, code string) (string, error) {
		if _, err := io.WriteString(c, line+"\r\n"); err != nil {
			return "", err
		}
		return expect(code)
	}
	if _, err := expect("220"); err != nil {
		return err
	}
	for _, s := range [][2]string{{"USER anonymous", "331"}, {"PASS bench@", "230"}, {"TYPE I", "200"}, {"SIZE small.bin", "213"}} {
		if _, err := cmd(s[0], s[1]); err != nil {
			return err
		}
	}
	text, err := cmd("EPSV", "229")
	if err != nil {
		return err
	}
	i, j := strings.Index(text, "(|||"), strings.Index(text, "|)")
	if i < 0 || j < i {
		return fmt.Errorf("EPSV: %q", text)
	}
	d, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", text[i+4:j]))
	if err != nil {
		return err
	}
	defer d.Close()
	if _, err := cmd("RETR small.bin", "150"); err != nil {
		return err
	}
	n := 0
	for {
		k, err := d.Read(buf)
		n += k
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if n != 4096 {
		return fmt.Errorf("RETR: %d bytes", n)
	}
	if _, err := expect("226"); err != nil {
		return err
	}
	_, err = cmd("QUIT", "221")
	return err
}

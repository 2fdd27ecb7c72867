package ftp

// Connection lifecycle tests: data channels that a failed command leaves
// behind, login deadlines, graceful shutdown, session contexts and the
// connection hooks.
//
//	go test -race ./internal/ftp/ -run 'Lifecycle'

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/vpath"
)

// TestLifecycleRefusedTransferClosesData: a transfer refused before its
// data connection was used (missing file, missing directory, missing path)
// answers on the control connection, and the data connection the client
// already opened then ends with end-of-file, not a reset: basic-ftp takes a
// reset for a failure of its own and never reads the reply.
func TestLifecycleRefusedTransferClosesData(t *testing.T) {
	eachBackend(t, testLifecycleRefusedTransferClosesData)
}

func testLifecycleRefusedTransferClosesData(t *testing.T, be backend) {
	ts := startOn(t, be, nil)
	c := loggedIn(t, ts)
	c.cmd("TYPE I", 200)
	for _, tc := range []struct {
		pasv, line string
	}{
		{"PASV", "RETR missing.bin"},
		{"EPSV", "RETR missing.bin"},
		{"EPSV", "STOR nodir/up.bin"},
		{"PASV", "MLSD nodir"},
		{"EPSV", "LIST nodir"},
	} {
		var d net.Conn
		if tc.pasv == "PASV" {
			port := hardPASVPort(c)
			d = hardConnFrom(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), "127.0.0.1")
		} else {
			d = c.pasv()
		}
		c.send(tc.line)
		if code, text := c.read(); code != 550 {
			t.Fatalf("%s %s: got %d %s, want 550", tc.pasv, tc.line, code, text)
		}
		d.SetReadDeadline(time.Now().Add(hardWaitLimit))
		n, err := d.Read(make([]byte, 1))
		if n != 0 || !errors.Is(err, io.EOF) {
			if errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("%s %s: the data connection was reset after the 550", tc.pasv, tc.line)
			}
			t.Fatalf("%s %s: data read = %d, %v; want EOF", tc.pasv, tc.line, n, err)
		}
	}
	// The session goes on.
	ts.put(t, "f.txt", []byte("ok"))
	if got := c.retr("f.txt"); string(got) != "ok" {
		t.Fatalf("RETR afterwards: %q", got)
	}
}

// TestLifecycleREINKeepsLoginDeadline: REIN before a login does not restart
// the login timer, so a client that never logs in is closed at the login
// deadline however often it sends REIN; REIN after a login starts a new
// login deadline, not the idle one.
func TestLifecycleREINKeepsLoginDeadline(t *testing.T) {
	// No file is opened: the default backend is enough.
	const login = 500 * time.Millisecond
	ts := startServer(t, func(st *Site, _ *Server) { st.LoginTimeout = login })
	for _, loggedIn := range []bool{false, true} {
		c := dial(t, ts.addr)
		if loggedIn {
			c.login("alice", "secret")
		}
		// Without the fix REIN keeps the connection forever: give up
		// after many login timeouts.
		giveUp := time.Now().Add(20 * login)
		for {
			if time.Now().After(giveUp) {
				t.Fatalf("logged in %v: REIN kept an unauthenticated connection past its login deadline", loggedIn)
			}
			c.send("REIN")
			code, text := c.read()
			if code == 421 {
				if !strings.Contains(text, "Login timeout") {
					t.Fatalf("logged in %v: got 421 %s, want the login timeout", loggedIn, text)
				}
				break
			}
			if code != 220 {
				t.Fatalf("REIN: got %d %s", code, text)
			}
			time.Sleep(login / 10) // pacing, not synchronisation
		}
	}
}

// lifeBigFile makes a sparse file far larger than the loopback socket
// buffers, so that a download of it stays in flight while the client does
// not read.
func lifeBigFile(t *testing.T, path string) int64 {
	t.Helper()
	const size = 64 << 20
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return size
}

// lifeShutdown runs Shutdown in the background and returns its result.
func lifeShutdown(srv *Server) <-chan error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()
	return done
}

// lifeClosed asserts that the server sends nothing more and closes c.
func lifeClosed(t *testing.T, c *client) {
	t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(hardWaitLimit))
	rest, err := io.ReadAll(c.r)
	if len(rest) > 0 || err != nil {
		t.Fatalf("after the 421: %q, %v; want the connection closed", rest, err)
	}
}

// TestLifecycleShutdownLetsTransfersFinish: Shutdown ends idle sessions with
// 421 at once, lets a running download finish within the grace period (226,
// then 421) and returns once it has.
func TestLifecycleShutdownLetsTransfersFinish(t *testing.T) {
	// local only: a 64 MiB sparse file keeps the download in flight.
	ts := startServer(t, func(st *Site, _ *Server) { st.ShutdownGrace = time.Minute })
	size := lifeBigFile(t, filepath.Join(ts.home, "big.bin"))
	idle := loggedIn(t, ts)
	c := loggedIn(t, ts)
	c.cmd("TYPE I", 200)
	d := c.pasv()
	c.cmd("RETR big.bin", 150)

	done := lifeShutdown(ts.srv)
	idle.expect(421)
	lifeClosed(t, idle)
	hardWait(t, "the session to wait for its transfer", func() bool {
		return strings.Contains(ts.logText(), "shutdown: waiting for the running transfer")
	})
	d.SetReadDeadline(time.Now().Add(time.Minute))
	n, err := io.Copy(io.Discard, d)
	if err != nil || n != size {
		t.Fatalf("download during shutdown: %d of %d bytes, %v", n, size, err)
	}
	c.expect(226)
	c.expect(421)
	lifeClosed(t, c)
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestLifecycleShutdownGraceEnds: a transfer still running when the grace
// period ends is aborted: 426, then 421, and no 226 for an ABOR the client
// never sent. A grace of 0 aborts at once.
func TestLifecycleShutdownGraceEnds(t *testing.T) {
	for _, grace := range []time.Duration{200 * time.Millisecond, 0} {
		t.Run(grace.String(), func(t *testing.T) {
			// local only: a 64 MiB sparse file keeps the download in flight.
			ts := startServer(t, func(st *Site, _ *Server) { st.ShutdownGrace = grace })
			lifeBigFile(t, filepath.Join(ts.home, "big.bin"))
			c := loggedIn(t, ts)
			c.cmd("TYPE I", 200)
			c.pasv() // never read
			c.cmd("RETR big.bin", 150)

			done := lifeShutdown(ts.srv)
			c.expect(426)
			c.expect(421)
			lifeClosed(t, c)
			if err := <-done; err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
		})
	}
}

// hangFS is a storage whose Stat of a name starting with "hang" blocks until
// its context ends, as a hung backend would; entered receives each such call.
type hangFS struct {
	storage.FS
	entered chan string
}

func (h hangFS) Stat(ctx context.Context, name vpath.Path) (fs.FileInfo, error) {
	if strings.HasPrefix(name.Rel(), "hang") {
		h.entered <- name.Rel()
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return h.FS.Stat(ctx, name)
}

// startHangServer serves alice's home through hangFS.
func startHangServer(t *testing.T, mod func(*Site)) (*testServer, chan string) {
	entered := make(chan string, 4)
	ts := startServer(t, func(st *Site, _ *Server) {
		st.Storage = wrapLocal(func(fsys storage.FS, location string) storage.FS {
			return hangFS{FS: fsys, entered: entered}
		})
		if mod != nil {
			mod(st)
		}
	})
	return ts, entered
}

// TestLifecycleHungBackend: a storage call that never returns on its own
// cannot freeze a session: ABOR and QUIT are still answered (the command
// that hung first, in order), the backend deadline ends it, and Shutdown
// finishes.
func TestLifecycleHungBackend(t *testing.T) {
	// hangFS is the backend under test (over local disk): no battery backend applies.
	t.Run("ABOR", func(t *testing.T) {
		ts, entered := startHangServer(t, nil)
		c := loggedIn(t, ts)
		c.send("CWD hang")
		<-entered
		c.send("ABOR")
		if code, text := c.read(); code != 451 {
			t.Fatalf("CWD interrupted by ABOR: got %d %s, want 451", code, text)
		}
		c.expect(225)
		c.cmd("NOOP", 200)
	})
	t.Run("QUIT", func(t *testing.T) {
		ts, entered := startHangServer(t, nil)
		c := loggedIn(t, ts)
		c.send("CWD hang")
		<-entered
		c.send("QUIT")
		if code, text := c.read(); code != 451 {
			t.Fatalf("CWD interrupted by QUIT: got %d %s, want 451", code, text)
		}
		c.expect(221)
		lifeClosed(t, c)
	})
	t.Run("deadline", func(t *testing.T) {
		ts, entered := startHangServer(t, func(st *Site) { st.BackendTimeout = 200 * time.Millisecond })
		c := loggedIn(t, ts)
		c.send("CWD hang")
		<-entered
		if code, text := c.read(); code != 451 || !strings.Contains(text, "in time") {
			t.Fatalf("CWD past the backend deadline: got %d %s, want 451 ... in time", code, text)
		}
		c.cmd("NOOP", 200)
	})
	t.Run("Shutdown", func(t *testing.T) {
		ts, entered := startHangServer(t, func(st *Site) { st.ShutdownGrace = 200 * time.Millisecond })
		c := loggedIn(t, ts)
		c.send("CWD hang")
		<-entered
		done := lifeShutdown(ts.srv)
		if code, text := c.read(); code != 451 {
			t.Fatalf("CWD at the end of the shutdown grace: got %d %s, want 451", code, text)
		}
		c.expect(421)
		lifeClosed(t, c)
		if err := <-done; err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	})
}

// countConn is a byte-counting connection wrapper that follows the Unwrap
// convention; sentFile counts what sendfile sent beneath it.
type countConn struct {
	net.Conn
	read, written, sentFile *atomic.Int64
}

func (c *countConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

func (c *countConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.written.Add(int64(n))
	return n, err
}

func (c *countConn) Unwrap() net.Conn { return c.Conn }
func (c *countConn) SentFile(n int64) { c.sentFile.Add(n) }

// countListener wraps the connections it accepts in countConn.
type countListener struct {
	net.Listener
	wrapped *atomic.Int64
}

func (l countListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.wrapped.Add(1)
	}
	return c, err
}

// TestLifecycleWrapHooks: with every listener and connection wrapped by a
// byte-counting hook that implements Unwrap, downloads still go through
// sendfile (and the wrapper is told their bytes), uploads and listings are
// intact, the counts match, and an urgent ABOR (SO_OOBINLINE) still works.
func TestLifecycleWrapHooks(t *testing.T) {
	// local only: sendfile from a host file, and a 64 MiB sparse file for the urgent ABOR.
	var listeners, dataRead, dataWritten, dataSent, ctlRead, ctlWritten, ctlSent atomic.Int64
	kinds := map[ConnKind]*atomic.Int64{ControlConn: {}, PassiveConn: {}, ActiveConn: {}}
	ts := startServer(t, func(_ *Site, srv *Server) {
		srv.WrapListener = func(kind ConnKind, ln net.Listener) net.Listener {
			return countListener{Listener: ln, wrapped: &listeners}
		}
		srv.WrapConn = func(kind ConnKind, c net.Conn) net.Conn {
			kinds[kind].Add(1)
			if kind == ControlConn {
				return &countConn{Conn: c, read: &ctlRead, written: &ctlWritten, sentFile: &ctlSent}
			}
			return &countConn{Conn: c, read: &dataRead, written: &dataWritten, sentFile: &dataSent}
		}
	})
	payload := bytes.Repeat([]byte("ferry wraps "), 100000)
	writeFile(t, filepath.Join(ts.home, "f.bin"), payload)
	c := loggedIn(t, ts)
	c.cmd("TYPE I", 200)

	if got := c.retr("f.bin"); !bytes.Equal(got, payload) {
		t.Fatalf("RETR through the wrappers: %d bytes, want %d", len(got), len(payload))
	}
	if n := dataSent.Load(); n != int64(len(payload)) {
		t.Fatalf("sendfile reported %d bytes to the wrapper, want %d (sendfile not used?)", n, len(payload))
	}
	c.stor("STOR", "up.bin", payload)
	if got, err := os.ReadFile(filepath.Join(ts.home, "up.bin")); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("STOR through the wrappers: %d bytes, %v", len(got), err)
	}
	if n := dataRead.Load(); n != int64(len(payload)) {
		t.Fatalf("the data wrapper read %d bytes, want %d", n, len(payload))
	}
	if l := c.listing("NLST"); !strings.Contains(l, "up.bin") {
		t.Fatalf("NLST through the wrappers: %q", l)
	}

	// Urgent ABOR (Python's ftplib.abort): the last byte of the line is
	// out-of-band data, which only SO_OOBINLINE keeps in the line.
	lifeBigFile(t, filepath.Join(ts.home, "big.bin"))
	c.pasv() // never read
	c.cmd("RETR big.bin", 150)
	raw, err := c.conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	raw.Write(func(fd uintptr) bool {
		serr = syscall.Sendto(int(fd), []byte("ABOR\r\n"), syscall.MSG_OOB, nil)
		return true
	})
	if serr != nil {
		t.Fatal(serr)
	}
	c.expect(426)
	c.expect(226)
	c.cmd("NOOP", 200)

	if kinds[ControlConn].Load() != 1 || kinds[PassiveConn].Load() < 4 {
		t.Fatalf("wrapped: %d control, %d passive connections", kinds[ControlConn].Load(), kinds[PassiveConn].Load())
	}
	if listeners.Load() < 5 { // the control connection and four passive ones
		t.Fatalf("wrapped listeners accepted %d connections, want 5 at least", listeners.Load())
	}
	if ctlRead.Load() == 0 || ctlWritten.Load() == 0 || ctlSent.Load() != 0 {
		t.Fatalf("control wrapper counts: read %d, written %d, sendfile %d", ctlRead.Load(), ctlWritten.Load(), ctlSent.Load())
	}
}

// TestLifecyclePipelinedQuit: the reader reads QUIT ahead while the command
// before it runs, but lets that command finish: RETR and QUIT sent in one
// write still deliver the file, then 221.
func TestLifecyclePipelinedQuit(t *testing.T) {
	eachBackend(t, testLifecyclePipelinedQuit)
}

func testLifecyclePipelinedQuit(t *testing.T, be backend) {
	ts := startOn(t, be, nil)
	payload := bytes.Repeat([]byte("pipelined "), 50000)
	ts.put(t, "p.bin", payload)
	c := loggedIn(t, ts)
	c.cmd("TYPE I", 200)
	d := c.pasv()
	c.conn.Write([]byte("RETR p.bin\r\nQUIT\r\n"))
	c.expect(150)
	d.SetReadDeadline(time.Now().Add(hardWaitLimit))
	got, err := io.ReadAll(d)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("pipelined RETR: %d of %d bytes, %v", len(got), len(payload), err)
	}
	c.expect(226)
	c.expect(221)
	lifeClosed(t, c)
}

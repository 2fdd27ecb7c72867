package faults

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// procStatusKiB reads one "Vm…" field of /proc/PID/status, in KiB.
func procStatusKiB(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("%s: %q", field, line)
			}
			return n
		}
	}
	t.Fatalf("/proc/%d/status has no %s", pid, field)
	return 0
}

// countLog counts the server's log lines that contain s.
func (f *ferry) countLog(s string) int {
	b, _ := os.ReadFile(f.LogPath)
	return strings.Count(string(b), s)
}

// smallDial connects with a small receive buffer, set before connecting, so
// the kernel absorbs little of what the server sends and the server has to
// wait for the reader.
func smallDial(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestFaultListingNotReadStaysBounded: clients that ask for the listing of a
// large directory and never read it must cost the server bounded memory
// each, whether the listing goes over the control connection (STAT with a
// path) or a data connection (LIST, NLST, MLSD): listings are streamed in
// chunks under the write deadline, never built whole in memory. Sixteen
// clients sending STAT of a directory whose listing is about 14 MB once grew
// the server by over 500 MiB.
func TestFaultListingNotReadStaysBounded(t *testing.T) {
	const (
		entries = 60000
		clients = 16
		// budgetKiB bounds the growth of the server's peak RSS over
		// its RSS before the clients send their command: far below one
		// listing per client (about 14 MB each), far above the few
		// tens of KiB of buffers a streaming session holds.
		budgetKiB = 48 << 10
	)
	data := t.TempDir()
	home := addUser(t, data, "alice", "secret")
	big := filepath.Join(home, "big")
	if err := os.MkdirAll(big, 0o755); err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("long-name-", 16)
	for i := range entries {
		f, err := os.Create(filepath.Join(big, fmt.Sprintf("%s%06d", pad, i)))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	// The idle timeout is the control connection's write deadline, the
	// data timeout the data connection's: a reply or listing not read for
	// that long ends the session or the transfer (and then the idle
	// timeout ends the session).
	srv := startFerry(t, data, "--idle-timeout", "2s", "--data-timeout", "2s")
	pid := srv.cmd.Process.Pid

	// Warm up: one client reads a whole STAT, so the baseline includes
	// what any listing costs once (code paths, pools, the GC's heap goal).
	c := dial(t, srv.Addr)
	c.login("alice", "secret")
	if _, err := c.conn.Write([]byte("STAT big\r\n")); err != nil {
		t.Fatal(err)
	}
	c.conn.SetReadDeadline(time.Now().Add(waitLimit))
	lines := 0
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			t.Fatalf("STAT big, after %d lines: %v", lines, err)
		}
		lines++
		if strings.HasPrefix(l, "213 ") {
			break
		}
	}
	if lines < entries {
		t.Fatalf("STAT big: %d lines, want at least %d", lines, entries)
	}
	c.cmd("QUIT", 221)
	ended := 1
	waitFor(t, "the warm-up session to end", func() bool { return srv.countLog("msg=disconnect") >= ended })

	for _, verb := range []string{"STAT", "LIST", "NLST", "MLSD"} {
		// Every client logs in first: a login costs a password hash's
		// memory, which is not what this test measures.
		var ctrl []net.Conn
		for range clients {
			conn := smallDial(t, srv.Addr)
			cl := &client{t: t, conn: conn, r: bufio.NewReader(conn), host: c.host}
			cl.expect(220)
			cl.login("alice", "secret")
			if verb != "STAT" {
				cl.pasvSmall()
			}
			ctrl = append(ctrl, conn)
		}
		// Reset the peak to the current RSS (proc(5), clear_refs "5"), so
		// the logins do not count.
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
			t.Fatal(err)
		}
		before := procStatusKiB(t, pid, "VmHWM")
		for _, conn := range ctrl {
			conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := conn.Write([]byte(verb + " big\r\n")); err != nil { // and never read
				t.Fatal(err)
			}
		}
		// Each session ends once its writes hit their deadlines; the
		// server logs the disconnect after that.
		ended += clients
		waitFor(t, "the non-reading sessions to end", func() bool { return srv.countLog("msg=disconnect") >= ended })
		peak := procStatusKiB(t, pid, "VmHWM")
		t.Logf("%s: server RSS before %d KiB, peak after %d KiB (+%d KiB for %d clients)", verb, before, peak, peak-before, clients)
		if peak-before > budgetKiB {
			t.Errorf("%d clients not reading %s grew the server's peak RSS by %d KiB, budget %d KiB", clients, verb, peak-before, budgetKiB)
		}
	}
}

// pasvSmall opens a passive data connection with a small receive buffer.
func (c *client) pasvSmall() net.Conn {
	c.t.Helper()
	text := c.cmd("EPSV", 229)
	i, j := strings.Index(text, "(|||"), strings.Index(text, "|)")
	if i < 0 || j < i {
		c.t.Fatalf("bad EPSV reply %q", text)
	}
	return smallDial(c.t, net.JoinHostPort(c.host, text[i+4:j]))
}

package systemd

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// notifySocket listens on a unixgram socket and points NOTIFY_SOCKET at it.
func notifySocket(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return c
}

func readDatagram(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 4096)
	n, err := c.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[:n])
}

func TestNotify(t *testing.T) {
	c := notifySocket(t)
	n := NewNotifier()
	if !n.Enabled() {
		t.Fatal("NOTIFY_SOCKET set, notifier disabled")
	}
	n.Ready("serving\non two lines")
	if got := readDatagram(t, c); got != "READY=1\nSTATUS=serving on two lines\n" {
		t.Errorf("Ready sent %q", got)
	}
	before := MonotonicUsec()
	n.Reloading()
	got := readDatagram(t, c)
	lines := strings.Split(got, "\n")
	if lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
		t.Fatalf("Reloading sent %q", got)
	}
	if us, err := strconv.ParseInt(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64); err != nil || us < before || us > MonotonicUsec() {
		t.Errorf("MONOTONIC_USEC %q is not the monotonic clock now", lines[1])
	}
	n.Stopping("bye")
	if got := readDatagram(t, c); got != "STOPPING=1\nSTATUS=bye\n" {
		t.Errorf("Stopping sent %q", got)
	}
	n.Watchdog()
	if got := readDatagram(t, c); got != "WATCHDOG=1" {
		t.Errorf("Watchdog sent %q", got)
	}
	n.MainPID(42, "")
	if got := readDatagram(t, c); got != "MAINPID=42\nREADY=1\n" {
		t.Errorf("MainPID sent %q", got)
	}
}

func TestNotifyOff(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := NewNotifier()
	if n.Enabled() || n.Ready("x") != nil {
		t.Error("a notifier without NOTIFY_SOCKET sends")
	}
	var nilN *Notifier
	if nilN.Enabled() || nilN.Notify("READY=1") != nil {
		t.Error("a nil notifier sends")
	}
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "nobody"))
	if err := NewNotifier().Ready("x"); err == nil {
		t.Error("no error for a socket nobody listens on")
	}
}

func TestWatchdogInterval(t *testing.T) {
	for _, c := range []struct {
		usec, pid string
		want      time.Duration
		ok        bool
	}{
		{"", "", 0, false},
		{"500000", "", 500 * time.Millisecond, true},
		{"500000", strconv.Itoa(os.Getpid()), 500 * time.Millisecond, true},
		{"500000", "1", 0, false},
		{"0", "", 0, false},
		{"-5", "", 0, false},
		{"soon", "", 0, false},
	} {
		t.Setenv("WATCHDOG_USEC", c.usec)
		t.Setenv("WATCHDOG_PID", c.pid)
		if got, ok := WatchdogInterval(); got != c.want || ok != c.ok {
			t.Errorf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: %v %v, want %v %v", c.usec, c.pid, got, ok, c.want, c.ok)
		}
	}
}

// TestListeners re-runs the test binary with a listener at descriptor 3,
// as systemd passes it; the child checks what Listeners returns.
func TestListeners(t *testing.T) {
	if os.Getenv("SYSTEMD_TEST_CHILD") != "" {
		listenersChild()
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, mode := range []string{"ok", "other-pid", "bad-count", "not-a-socket"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestListeners$")
		cmd.Env = append(os.Environ(), "SYSTEMD_TEST_CHILD="+mode, "WANT_ADDR="+ln.Addr().String())
		cmd.ExtraFiles = []*os.File{f}
		if mode == "not-a-socket" {
			cmd.ExtraFiles = []*os.File{os.Stdin}
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", mode, err, out)
		}
	}
}

// listenersChild runs in the child: it sets LISTEN_PID itself (a service
// manager would set the child's PID) and exits non-zero on a mismatch.
func listenersChild() {
	mode := os.Getenv("SYSTEMD_TEST_CHILD")
	fail := func(format string, args ...any) {
		os.Stderr.WriteString(mode + ": " + fmt.Sprintf(format, args...) + "\n")
		os.Exit(1)
	}
	pid := strconv.Itoa(os.Getpid())
	switch mode {
	case "other-pid":
		pid = "1"
	}
	os.Setenv("LISTEN_PID", pid)
	os.Setenv("LISTEN_FDS", "1")
	os.Setenv("LISTEN_FDNAMES", "control")
	if mode == "bad-count" {
		os.Setenv("LISTEN_FDS", "x")
	}
	ls, err := Listeners()
	if os.Getenv("LISTEN_PID") != "" || os.Getenv("LISTEN_FDS") != "" || os.Getenv("LISTEN_FDNAMES") != "" {
		fail("the variables were not unset")
	}
	switch mode {
	case "ok":
		if err != nil || len(ls) != 1 || ls[0].Name != "control" || ls[0].Addr().String() != os.Getenv("WANT_ADDR") {
			fail("got %v, %v", ls, err)
		}
	case "other-pid":
		if err != nil || ls != nil {
			fail("another PID's descriptors taken: %v, %v", ls, err)
		}
	case "bad-count", "not-a-socket":
		if err == nil {
			fail("no error")
		}
	}
	os.Exit(0)
}

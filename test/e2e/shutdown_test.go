package e2e

import (
	"io"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestShutdownSignals: SIGTERM lets a running download finish within
// --shutdown-grace (226, then 421) and the process exits cleanly; a second
// SIGTERM during the grace aborts the transfer at once (426, then 421, no
// 226).
func TestShutdownSignals(t *testing.T) {
	for _, second := range []bool{false, true} {
		name := map[bool]string{false: "grace", true: "second-signal"}[second]
		t.Run(name, func(t *testing.T) {
			s := startServer(t, serverConfig{Args: []string{"--shutdown-grace", "2m"}})
			home := s.addUser(t, testUser, testPass)
			const size = 64 << 20 // far more than the socket buffers hold
			f, err := os.Create(filepath.Join(home, "big.bin"))
			if err != nil {
				t.Fatal(err)
			}
			f.Truncate(size)
			f.Close()

			c, data := shutdownClient(t, s)
			if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			waitLog(t, s, "shutdown: waiting for the running transfer")
			if second {
				s.cmd.Process.Signal(syscall.SIGTERM)
				expectCode(t, c, 426)
			} else {
				data.SetReadDeadline(time.Now().Add(time.Minute))
				if n, err := io.Copy(io.Discard, data); n != size || err != nil {
					t.Fatalf("download during shutdown: %d of %d bytes, %v", n, size, err)
				}
				expectCode(t, c, 226)
			}
			expectCode(t, c, 421)
			if line, err := c.ReadLine(); err == nil {
				t.Fatalf("after the 421: %q", line)
			}
			select {
			case <-s.done:
			case <-time.After(stopTimeout):
				t.Fatalf("ferry did not exit after the shutdown\n%s", s.LogTail(40))
			}
			s.stopped = true
			if s.waitErr != nil {
				t.Fatalf("ferry exited with %v\n%s", s.waitErr, s.LogTail(40))
			}
		})
	}
}

// shutdownClient logs in and starts a binary download of big.bin that it
// does not read; it returns the control and data connections after the 150.
func shutdownClient(t *testing.T, s *server) (*textproto.Conn, net.Conn) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", s.Addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(2 * time.Minute))
	c := textproto.NewConn(nc)
	expectCode(t, c, 220)
	for _, step := range []struct {
		line string
		code int
	}{{"USER " + testUser, 331}, {"PASS " + testPass, 230}, {"TYPE I", 200}} {
		c.PrintfLine("%s", step.line)
		expectCode(t, c, step.code)
	}
	c.PrintfLine("EPSV")
	text := expectCode(t, c, 229)
	i, j := strings.Index(text, "(|||"), strings.Index(text, "|)")
	if i < 0 || j < i {
		t.Fatalf("bad EPSV reply %q", text)
	}
	data, err := net.DialTimeout("tcp", net.JoinHostPort(s.Host, text[i+4:j]), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { data.Close() })
	c.PrintfLine("RETR big.bin")
	expectCode(t, c, 150)
	return c, data
}

func expectCode(t *testing.T, c *textproto.Conn, code int) string {
	t.Helper()
	got, text, err := c.ReadResponse(0)
	if err != nil && got == 0 {
		t.Fatalf("want %d: %v", code, err)
	}
	if got != code {
		t.Fatalf("want %d, got %d %s", code, got, text)
	}
	return text
}

// waitLog waits until the server's log holds want.
func waitLog(t *testing.T, s *server, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, _ := os.ReadFile(s.LogPath); strings.Contains(string(b), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log never said %q\n%s", want, s.LogTail(40))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

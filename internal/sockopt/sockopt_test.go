package sockopt

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// pair returns the two ends of a loopback TCP connection.
func pair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return s.(*net.TCPConn), c.(*net.TCPConn)
}

// noDelay reads TCP_NODELAY of c's socket.
func noDelay(t *testing.T, c *net.TCPConn) bool {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		v, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY)
	}); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	return v != 0
}

// hiding wraps a connection without Unwrap: its socket is out of reach.
type hiding struct{ net.Conn }

func TestCoalesce(t *testing.T) {
	for _, tc := range []struct {
		name string
		wrap func(net.Conn) net.Conn
		hits bool
	}{
		{"plain", func(c net.Conn) net.Conn { return c }, true},
		{"TLS", func(c net.Conn) net.Conn { return tls.Server(c, &tls.Config{}) }, true},
		{"hidden", func(c net.Conn) net.Conn { return hiding{c} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := pair(t)
			if !noDelay(t, s) {
				t.Fatal("TCP_NODELAY is off before Coalesce: Go's default changed")
			}
			restore := Coalesce(tc.wrap(s))
			if got := noDelay(t, s); got == tc.hits {
				t.Errorf("during Coalesce: TCP_NODELAY %v", got)
			}
			restore()
			if !noDelay(t, s) {
				t.Error("after restore: TCP_NODELAY off")
			}
		})
	}
}

// TestSendFileUncorks: SendFile sends every byte of the file and leaves the
// socket uncorked, so that what is written after it is not held back.
func TestSendFileUncorks(t *testing.T) {
	s, c := pair(t)
	data := make([]byte, 3<<20+17)
	for i := range data {
		data[i] = byte(i * 7)
	}
	f, err := os.CreateTemp(t.TempDir(), "sendfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	f.Seek(0, io.SeekStart)
	got := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(c); got <- b }()
	n, err := SendFile(t.Context(), s, f, 5*time.Second, nil)
	if err != nil || n != int64(len(data)) {
		t.Fatalf("SendFile = %d, %v; want %d bytes", n, err, len(data))
	}
	rc, _ := s.SyscallConn()
	var cork int
	rc.Control(func(fd uintptr) { cork, err = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CORK) })
	if err != nil || cork != 0 {
		t.Errorf("TCP_CORK after SendFile = %d, %v; want 0", cork, err)
	}
	s.Close()
	if b := <-got; !bytes.Equal(b, data) {
		t.Fatalf("client got %d bytes, want %d", len(b), len(data))
	}
}

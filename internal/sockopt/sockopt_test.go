package sockopt

import (
	"crypto/tls"
	"net"
	"syscall"
	"testing"
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

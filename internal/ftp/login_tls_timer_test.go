package ftp

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// TestLoginTimerRestartsAfterTLSHandshake: the login deadline starts again
// when a TLS handshake completes, so a user who reads the client's
// certificate prompt before the handshake ends is not timed out. The client
// waits 0.7 of the login timeout inside the handshake (after 234, before
// its ClientHello), then logs in at 1.3 timeouts after connecting: past the
// deadline counted from connect, well within the one counted from the
// handshake (at least 1.7 timeouts after connect).
func TestLoginTimerRestartsAfterTLSHandshake(t *testing.T) {
	const timeout = 2 * time.Second
	f := newFTPSFixture(t)
	ts := startFTPS(t, f, func(c *Site, _ *Server) { c.LoginTimeout = timeout })

	t.Run("AUTH TLS", func(t *testing.T) {
		t0 := time.Now()
		c := dial(t, ts.addr)
		c.cmd("AUTH TLS", 234)
		time.Sleep(time.Until(t0.Add(timeout * 7 / 10)))
		if err := c.startTLSFTPS(f.client(0, nil)); err != nil {
			t.Fatalf("handshake: %v", err)
		}
		time.Sleep(time.Until(t0.Add(timeout * 13 / 10)))
		c.login("alice", "secret")
	})
	t.Run("implicit", func(t *testing.T) {
		addr := serveImplicit(t, ts)
		t0 := time.Now()
		raw, err := net.DialTimeout("tcp", addr, ftpsDeadline)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { raw.Close() })
		c := &client{t: t, conn: raw, r: bufio.NewReader(raw)}
		time.Sleep(time.Until(t0.Add(timeout * 7 / 10)))
		if err := c.startTLSFTPS(f.client(0, nil)); err != nil {
			t.Fatalf("handshake: %v", err)
		}
		c.expect(220)
		time.Sleep(time.Until(t0.Add(timeout * 13 / 10)))
		c.login("alice", "secret")
	})
	t.Run("no TLS: the deadline counts from connect", func(t *testing.T) {
		// The control case: without a handshake the same wait times out.
		t0 := time.Now()
		c := dial(t, ts.addr)
		time.Sleep(time.Until(t0.Add(timeout * 13 / 10)))
		c.send("USER alice")
		c.expect(421)
	})
}

package ftp

import (
	"strings"
	"testing"
	"time"
)

// Regression tests for holes found by the second audit of issue 9 ("the
// class, not the example").

// TestAuditAUTHAfterLoginNewLoginDeadline: AUTH TLS after a plaintext login
// resets the login (RFC 2228 §3), like REIN, so it starts a new login
// deadline. It kept the one counted from connect, long past: the first
// command after the handshake met an expired deadline and the session
// ended with "421 Login timeout" (or its reply could not be written), and a
// session that sent nothing more kept the idle timeout instead.
func TestAuditAUTHAfterLoginNewLoginDeadline(t *testing.T) {
	t.Parallel()
	f := newFTPSFixture(t)
	ts := startFTPS(t, f, func(c *Site, _ *Server) { c.LoginTimeout = 2 * time.Second })
	quiet, again := dial(t, ts.addr), dial(t, ts.addr)
	quiet.login("alice", "secret")
	again.login("alice", "secret")
	// A connection opened after both is the clock: when it gets its 421,
	// the login deadlines counted from their connects have passed.
	dial(t, ts.addr).expect(421)
	for _, c := range []*client{quiet, again} {
		c.cmd("AUTH TLS", 234)
		if err := c.startTLSFTPS(f.client(0, nil)); err != nil {
			t.Fatal(err)
		}
	}
	// Logging in again works within the new deadline...
	again.cmd("USER alice", 331)
	again.cmd("PASS secret", 230)
	again.cmd("PWD", 257)
	// ...and a session that does not log in again ends at it.
	if text := quiet.expect(421); !strings.Contains(text, "Login timeout") {
		t.Fatalf("421 %s", text)
	}
}

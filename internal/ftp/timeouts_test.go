package ftp

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The login and idle timeout tests open no file, so the backend does not
// matter to them; they run once, on the default.

// TestTimeoutLogin: a client that does not log in gets 421 and is closed.
func TestTimeoutLogin(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *Site, _ *Server) {
		c.LoginTimeout = 300 * time.Millisecond
	})
	c := dial(t, ts.addr)
	if got := c.expect(421); !strings.Contains(strings.ToLower(got), "timeout") {
		t.Errorf("421 text %q", got)
	}
	c.expectEOF()

	// Commands before login do not extend the login timeout. Two idle
	// connections opened one after the other are the clock: when the second
	// gets its 421, the login time of c ran out a whole timeout ago.
	c = dial(t, ts.addr)
	for _, line := range []string{"USER alice", "NOOP"} {
		c.send(line)
		if code, _ := c.read(); code == 421 {
			// The machine is so slow that the timeout came first: fine.
			c.expectEOF()
			return
		}
	}
	dial(t, ts.addr).expect(421)
	dial(t, ts.addr).expect(421)
	c.send("NOOP")
	if code, text := c.read(); code != 421 {
		t.Fatalf("a session that sent USER and NOOP outlived the login timeout: %d %s", code, text)
	}
	c.expectEOF()
}

// TestTimeoutIdle: a logged-in client that sends nothing gets 421.
func TestTimeoutIdle(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *Site, _ *Server) {
		c.IdleTimeout = 300 * time.Millisecond
	})
	c := dial(t, ts.addr)
	c.login("alice", "secret")
	if got := c.expect(421); !strings.Contains(strings.ToLower(got), "timeout") {
		t.Errorf("421 text %q", got)
	}
	c.expectEOF()
}

// TestTimeoutIdleSparesTransfers: the idle timeout does not cut a session
// whose transfer is running. A second, idle session is the clock: when it
// gets its 421, the first has been silent for longer than the timeout.
func TestTimeoutIdleSparesTransfers(t *testing.T) {
	// local only: a 256 MiB sparse file keeps the transfer running without a timer.
	t.Parallel()
	ts := startServer(t, func(c *Site, _ *Server) {
		c.IdleTimeout = time.Second
	})
	bigFile(t, filepath.Join(ts.home, "big"))
	c := loggedIn(t, ts)
	d := c.dataCmd("RETR big")
	defer d.Close()

	clock := loggedIn(t, ts)
	clock.expect(421)

	c.cmd("NOOP", 200) // not 421: the transfer kept the session alive
	c.cmd("ABOR", 426)
	c.expect(226)
	c.cmd("NOOP", 200)
}

// TestLineLimit: a control line longer than MaxLineBytes is answered 500
// and the session goes on.
func TestLineLimit(t *testing.T) {
	eachBackend(t, testLineLimit)
}

func testLineLimit(t *testing.T, be backend) {
	ts := startOn(t, be, nil)
	max := ts.srv.siteFor(nil).MaxLineBytes
	c := dial(t, ts.addr)
	c.cmd("NOOP "+strings.Repeat("x", max), 500)
	c.cmd("NOOP", 200)
	c.cmd("NOOP "+strings.Repeat("x", max-len("NOOP ")), 200) // exactly the limit
	c.cmd("USER "+strings.Repeat("a", 10*max), 500)
	c.login("alice", "secret")
	for range 5 {
		c.cmd("MKD "+strings.Repeat("d", max), 500)
	}
	c.cmd("PWD", 257)
	// A long line in pieces, then a command in the same write as its end.
	c.sendRaw("STOR " + strings.Repeat("y", max))
	c.sendRaw(strings.Repeat("y", max) + "\r\nNOOP\r\n")
	c.expect(500)
	c.expect(200)
	if names := ts.names(t, "."); len(names) != 0 {
		t.Errorf("over-long lines created %q", names)
	}

	ts = startOn(t, be, func(c *Site, _ *Server) { c.MaxLineBytes = 64 })
	c = loggedIn(t, ts)
	c.cmd("MKD "+strings.Repeat("n", 100), 500)
	c.cmd("MKD short", 257)
	if names := ts.names(t, "."); len(names) != 1 || names[0] != "short" {
		t.Errorf("home holds %q", names)
	}
}

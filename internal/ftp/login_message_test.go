package ftp

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/users"
)

// rawReply reads one reply's lines exactly as sent, without CRLF.
func rawReply(t *testing.T, c *client) []string {
	t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var lines []string
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			t.Fatalf("read: %v (%q)", err, lines)
		}
		if !strings.HasSuffix(l, "\r\n") {
			t.Fatalf("line without CRLF: %q", l)
		}
		l = strings.TrimSuffix(l, "\r\n")
		lines = append(lines, l)
		if len(lines) == 1 && (len(l) < 4 || l[3] != '-') {
			return lines
		}
		if len(lines) > 1 && len(l) >= 4 && l[:3] == lines[0][:3] && l[3] == ' ' {
			return lines
		}
	}
}

// TestLoginMessage: the site's login message comes before the usual 230
// text as one multi-line reply (RFC 959 §4.2), for named and anonymous
// logins; a line of the message that looks like a final reply is indented,
// and CR in it cannot end a line early. Without a message the 230 is one
// line.
func TestLoginMessage(t *testing.T) {
	ts := startServer(t, func(st *Site, _ *Server) {
		st.LoginMessage = "Welcome to the archive.\n230 not the end\nMind the\rrules."
	})
	c := dial(t, ts.addr)
	c.cmd("USER alice", 331)
	c.send("PASS secret")
	want := []string{"230-Welcome to the archive.", " 230 not the end", " Mind the?rules.", "230 Login successful."}
	if got := rawReply(t, c); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("login reply %q, want %q", got, want)
	}
	c.cmd("NOOP", 200)

	a := dial(t, ts.addr)
	a.cmd("USER anonymous", 331)
	a.send("PASS guest@example.com")
	if got := rawReply(t, a); len(got) != 4 || got[0] != "230-Welcome to the archive." || got[3] != "230 Anonymous access granted, restrictions apply." {
		t.Errorf("anonymous login reply %q", got)
	}

	plain := startServer(t, nil)
	p := dial(t, plain.addr)
	p.cmd("USER alice", 331)
	p.send("PASS secret")
	if got := rawReply(t, p); len(got) != 1 || got[0] != "230 Login successful." {
		t.Errorf("login reply without a message: %q", got)
	}
}

// TestUserLoginMessage: a user's own message follows the site's, both
// before the usual 230 text; another user without one sees the site's only.
func TestUserLoginMessage(t *testing.T) {
	ts := startServer(t, func(st *Site, _ *Server) { st.LoginMessage = "Site rules." })
	hardAddUser(ts, "pw", users.User{Name: "msg", Home: filepath.Join(ts.data, "home", "msg"), LoginMessage: "Hello msg.\nYour files are kept 30 days."})
	c := dial(t, ts.addr)
	c.cmd("USER msg", 331)
	c.send("PASS pw")
	want := []string{"230-Site rules.", " Hello msg.", " Your files are kept 30 days.", "230 Login successful."}
	if got := rawReply(t, c); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("login reply %q, want %q", got, want)
	}
	a := dial(t, ts.addr)
	a.cmd("USER alice", 331)
	a.send("PASS secret")
	if got := rawReply(t, a); strings.Join(got, "|") != "230-Site rules.|230 Login successful." {
		t.Errorf("login reply of a user without a message: %q", got)
	}
}

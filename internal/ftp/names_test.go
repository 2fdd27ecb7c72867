package ftp

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
)

// controlNames hold terminal escape sequences: OSC title (ESC ] … BEL),
// erase screen (ESC [ 2 J), the C1 CSI (U+009B), DEL and a tab.
var controlNames = []string{"t\x1b]0;pwned\x07", "e\x1b[2J", "csi\u009b2J", "del\x7f", "tab\tx"}

// TestNewNamesWithControlsRefused: uploads (STOR, APPE, STOU), MKD and RNTO
// refuse a new name holding a control character with 553, and create
// nothing; names with ordinary non-ASCII characters are still accepted.
func TestNewNamesWithControlsRefused(t *testing.T) {
	eachBackend(t, testNewNamesWithControlsRefused)
}

func testNewNamesWithControlsRefused(t *testing.T, be backend) {
	ts := startOn(t, be, nil)
	ts.put(t, "good.txt", []byte("x"))
	before := ts.names(t, ".")
	c := loggedIn(t, ts)
	for _, name := range controlNames {
		for _, verb := range []string{"STOR", "APPE", "STOU"} {
			c.pasv()
			c.cmd(verb+" "+name, 553)
		}
		c.cmd("MKD "+name, 553)
		c.cmd("XMKD "+name, 553)
		c.cmd("MKD sub", 257)
		c.cmd("MKD sub/"+name, 553)
		c.cmd("RMD sub", 250)
		c.cmd("RNFR good.txt", 350)
		c.cmd("RNTO "+name, 553)
	}
	if got := ts.names(t, "."); !slices.Equal(got, before) {
		t.Errorf("home after refused names: %q, want %q", got, before)
	}
	c.cmd("MKD café\u00a0日本", 257)
	c.cmd("RNFR good.txt", 350)
	c.cmd("RNTO naïve.txt", 250)
}

// TestListingsEscapeControls: a file that already holds control characters
// on disk (placed there by other means) is listed with each of them shown
// as '?' by LIST, NLST, MLSD, MLST and STAT, and stays reachable by its raw
// name; the logs show its name escaped.
func TestListingsEscapeControls(t *testing.T) {
	eachBackend(t, testListingsEscapeControls)
}

func testListingsEscapeControls(t *testing.T, be backend) {
	logs := &syncBuffer{}
	ts := startOn(t, be, jsonLogs(logs))
	names, want := controlNames, []string{"t?]0;pwned?", "e?[2J", "csi?2J", "del?", "tab?x"}
	if be.isS3() {
		// ListObjectsV2 answers in XML 1.0, which cannot carry ESC or BEL:
		// an engine that ignores encoding-type=url (versitygw 1.8.0, the
		// one tested) lists such keys with U+FFFD in their place, so only
		// the names XML can carry are listed faithfully there.
		names, want = names[2:], want[2:]
	}
	for _, n := range names {
		ts.put(t, "d/"+n, []byte("payload"))
	}
	c := loggedIn(t, ts)
	check := func(what, out string) {
		t.Helper()
		for _, bad := range []string{"\x1b", "\x07", "\u009b", "\x7f", "\t"} {
			if strings.Contains(out, bad) {
				t.Errorf("%s holds %q: %q", what, bad, out)
			}
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s lacks %q: %q", what, w, out)
			}
		}
	}
	check("LIST", c.listing("LIST d"))
	check("NLST", c.listing("NLST d"))
	check("MLSD", c.listing("MLSD d"))
	c.send("STAT d")
	check("STAT", strings.Join(c.rawReply(), "\n"))
	var mlst []string
	for _, n := range names {
		c.send("MLST d/" + n)
		mlst = append(mlst, c.rawReply()...)
		// NLST of a single file prints its path.
		if got := c.listing("NLST d/" + n); strings.ContainsAny(got, "\x1b\x07\x7f\t") || strings.Contains(got, "\u009b") {
			t.Errorf("NLST of one file: %q", got)
		}
	}
	check("MLST", strings.Join(mlst, "\n"))

	// The raw name still reaches the file; the log escapes it.
	if got := c.retr("d/" + names[0]); string(got) != "payload" {
		t.Errorf("RETR by raw name: %q", got)
	}
	c.cmd("QUIT", 221)
	ts.logText()
	if be.isS3() {
		checkLog(t, logs.String(), `csi\\u009b2J`)
	} else {
		checkLog(t, logs.String(), `t\\x1b]0;pwned\\x07`)
	}
}

// jsonLogs makes the server log JSON to logs: JSON escapes C0 controls by
// itself but not C1 ones, and nothing but Ferry escapes them as \xNN.
func jsonLogs(logs *syncBuffer) func(*Site, *Server) {
	return func(_ *Site, srv *Server) {
		srv.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
}

// checkLog: the log holds no control character, raw or JSON-escaped, and
// holds want.
func checkLog(t *testing.T, logs, want string) {
	t.Helper()
	for _, bad := range []string{"\x1b", "\x07", "\u009b", `\u001b`, `\u0007`} {
		if strings.Contains(logs, bad) {
			t.Errorf("the log holds %q:\n%s", bad, logs)
		}
	}
	if !strings.Contains(logs, want) {
		t.Errorf("the log lacks %s:\n%s", want, logs)
	}
}

// TestLogEscapesUserName: a user name with escape sequences is logged
// escaped, even for a failed login.
func TestLogEscapesUserName(t *testing.T) {
	// No file is opened: the default backend is enough.
	logs := &syncBuffer{}
	ts := startServer(t, jsonLogs(logs))
	c := dial(t, ts.addr)
	c.cmd("USER eve\x1b[2J\u009b", 331)
	c.cmd("PASS x", 530)
	c.cmd("QUIT", 221)
	ts.logText()
	checkLog(t, logs.String(), `eve\\x1b[2J\\u009b`)
}

package ftp

import (
	"strings"
	"testing"
)

// patternsSite sets hidden_patterns *.secret and deny_upload_patterns
// *.exe, matched exactly when caseSensitive is set.
func patternsSite(caseSensitive bool) func(*Site, *Server) {
	return func(c *Site, _ *Server) {
		c.Hidden = mustPatterns(caseSensitive, "*.secret")
		c.DenyUpload = mustPatterns(caseSensitive, "*.exe")
	}
}

// TestPatternsIgnoreCase: by default the upload and hiding patterns match a
// name in any case, so EVIL.EXE is refused like evil.exe and KEY.SECRET is
// hidden like key.secret.
func TestPatternsIgnoreCase(t *testing.T) {
	eachBackend(t, testPatternsIgnoreCase)
}

func testPatternsIgnoreCase(t *testing.T, be backend) {
	ts := startOn(t, be, patternsSite(false))
	ts.put(t, "KEY.SECRET", []byte("HIDDEN-A"))
	ts.put(t, "Dir.Secret/inner.txt", []byte("HIDDEN-B"))
	ts.put(t, "plain.txt", []byte("plain"))
	c := dial(t, ts.addr)
	c.login("alice", "secret")
	for _, line := range []string{"STOR EVIL.EXE", "STOR evil.Exe", "APPE Other.eXe", "STOR evil.exe.", "STOR Evil.exe. "} {
		hardEPSVPort(c)
		c.send(line)
		if code, text := c.read(); code != 553 {
			t.Errorf("%s: got %d %s, want 553", line, code, text)
		}
	}
	c.cmd("RNFR plain.txt", 350)
	c.send("RNTO PLAIN.EXE")
	if code, text := c.read(); code != 553 {
		t.Errorf("RNTO PLAIN.EXE: got %d %s, want 553", code, text)
	}
	for _, line := range []string{"LIST", "NLST", "MLSD"} {
		if ls := c.listing(line); strings.Contains(strings.ToLower(ls), "secret") {
			t.Errorf("%s shows a hidden name: %q", line, ls)
		}
	}
	for _, line := range []string{"SIZE KEY.SECRET", "MLST KEY.SECRET", "CWD Dir.Secret", "SIZE Dir.Secret/inner.txt"} {
		c.send(line)
		if code, text := c.read(); code != 550 {
			t.Errorf("%s: got %d %s, want 550", line, code, text)
		}
	}
	hardEPSVPort(c)
	c.send("RETR KEY.SECRET")
	if code, text := c.read(); code != 550 {
		t.Errorf("RETR KEY.SECRET: got %d %s, want 550", code, text)
	}
	for _, p := range []string{"EVIL.EXE", "evil.Exe", "Other.eXe", "PLAIN.EXE"} {
		if ts.has(t, p) {
			t.Errorf("%s exists after the refusal", p)
		}
	}
}

// TestPatternsCaseSensitive: with patterns_case_sensitive the patterns match
// exactly, as path.Match does.
func TestPatternsCaseSensitive(t *testing.T) {
	eachBackend(t, testPatternsCaseSensitive)
}

func testPatternsCaseSensitive(t *testing.T, be backend) {
	ts := startOn(t, be, patternsSite(true))
	ts.put(t, "KEY.SECRET", []byte("shown"))
	c := dial(t, ts.addr)
	c.login("alice", "secret")
	c.stor("STOR", "EVIL.EXE", []byte("MZ"))
	hardEPSVPort(c)
	c.cmd("STOR evil.exe", 553)
	if ls := c.listing("NLST"); !strings.Contains(ls, "KEY.SECRET") {
		t.Errorf("NLST does not show KEY.SECRET: %q", ls)
	}
	c.cmd("SIZE KEY.SECRET", 213)
}

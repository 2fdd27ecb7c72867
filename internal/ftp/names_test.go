package ftp

import (
	"path/filepath"
	"slices"
	"testing"
)

// controlNames hold terminal escape sequences: OSC title (ESC ] … BEL),
// erase screen (ESC [ 2 J), the C1 CSI (U+009B), DEL and a tab.
var controlNames = []string{"t\x1b]0;pwned\x07", "e\x1b[2J", "csi\u009b2J", "del\x7f", "tab\tx"}

// TestNewNamesWithControlsRefused: uploads (STOR, APPE, STOU), MKD and RNTO
// refuse a new name holding a control character with 553, and create
// nothing; names with ordinary non-ASCII characters are still accepted.
func TestNewNamesWithControlsRefused(t *testing.T) {
	ts := startServer(t, nil)
	writeFile(t, filepath.Join(ts.home, "good.txt"), []byte("x"))
	before := dirNames(t, ts.home)
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
	if got := dirNames(t, ts.home); !slices.Equal(got, before) {
		t.Errorf("home after refused names: %q, want %q", got, before)
	}
	c.cmd("MKD café\u00a0日本", 257)
	c.cmd("RNFR good.txt", 350)
	c.cmd("RNTO naïve.txt", 250)
}

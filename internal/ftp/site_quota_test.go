package ftp

import (
	"strings"
	"testing"
)

// TestSiteQuota: SITE QUOTA reports bytes and files used and the limits,
// following uploads and deletes; a user without a quota, and anonymous,
// are told there is none; it takes no argument and needs a login.
func TestSiteQuota(t *testing.T) {
	ts := startServer(t, nil)
	quotaUser(ts, "q", 5000, 3)
	c := dial(t, ts.addr)
	c.cmd("SITE QUOTA", 530)
	c.login("q", "pw")
	c.cmd("TYPE I", 200)
	want := "Quota of q:\n Bytes: 0 used of 5000 (0%), 5000 free\n Files: 0 used of 3 (0%), 3 free\n200 End of quota."
	if got := c.cmd("SITE QUOTA", 200); got != want {
		t.Errorf("SITE QUOTA of an empty home:\n%s\nwant\n%s", got, want)
	}
	c.stor("STOR", "a", make([]byte, 1200))
	c.stor("STOR", "b", make([]byte, 300))
	want = "Quota of q:\n Bytes: 1500 used of 5000 (30%), 3500 free\n Files: 2 used of 3 (66%), 1 free\n200 End of quota."
	if got := c.cmd("site quota", 200); got != want {
		t.Errorf("SITE QUOTA after two uploads:\n%s\nwant\n%s", got, want)
	}
	c.cmd("DELE a", 250)
	want = "Quota of q:\n Bytes: 300 used of 5000 (6%), 4700 free\n Files: 1 used of 3 (33%), 2 free\n200 End of quota."
	if got := c.cmd("SITE QUOTA", 200); got != want {
		t.Errorf("SITE QUOTA after a delete:\n%s\nwant\n%s", got, want)
	}
	c.cmd("SITE QUOTA now", 501)
	if help := c.cmd("SITE HELP", 214); !strings.Contains(help, "QUOTA") {
		t.Errorf("SITE HELP does not list QUOTA: %q", help)
	}

	a := dial(t, ts.addr)
	a.login("alice", "secret")
	if got := a.cmd("SITE QUOTA", 200); got != "No quota: bytes and files are unlimited." {
		t.Errorf("SITE QUOTA without a quota: %q", got)
	}
	an := dial(t, ts.addr)
	an.login("anonymous", "x@example.com")
	if got := an.cmd("SITE QUOTA", 200); got != "No quota: bytes and files are unlimited." {
		t.Errorf("SITE QUOTA of anonymous: %q", got)
	}
}

// TestQuotaLine: the numbers of one SITE QUOTA line.
func TestQuotaLine(t *testing.T) {
	for _, c := range []struct {
		used, limit int64
		want        string
	}{
		{0, 0, "0 used, unlimited"},
		{7, 0, "7 used, unlimited"},
		{1, 3, "1 used of 3 (33%), 2 free"},
		{6000, 5000, "6000 used of 5000 (120%), 0 free"},
	} {
		if got := quotaLine(c.used, c.limit); got != c.want {
			t.Errorf("quotaLine(%d, %d) = %q, want %q", c.used, c.limit, got, c.want)
		}
	}
}

package ftp

import (
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/ban"
	"github.com/ferryftp/ferry/internal/users"
	"github.com/ferryftp/ferry/internal/users/sqlstore"
)

// sqlAuth opens an SQLite user store in dir with carol (password "right"),
// for tests that need the real store's behaviour rather than memAuth's.
func sqlAuth(t *testing.T, dir string, carol users.User) *sqlstore.Store {
	t.Helper()
	st, err := sqlstore.Open(filepath.Join(dir, "users.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if carol.Name == "" {
		carol.Name = "carol"
	}
	if carol.Home == "" {
		carol.Home = filepath.Join(dir, "home", carol.Name)
	}
	if err := st.Add(t.Context(), carol, "right"); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestLoginBanScoreIgnoresExistence: failed logins for a name that does not
// exist and for an existing name with a wrong password move the ban score
// alike, so the moment of the ban does not tell which names exist. Two
// failures stay under a threshold of three for both; the third bans both.
func TestLoginBanScoreIgnoresExistence(t *testing.T) {
	d := ban.NewDefender(ban.NewMemoryStore(), ban.Options{Threshold: 3, Window: time.Hour, Duration: time.Hour})
	ts := startServer(t, func(c *Site, s *Server) {
		c.MaxLoginFailures = 0
		c.Auth = sqlAuth(t, filepath.Dir(c.AnonymousRoot), users.User{})
		s.Defender = BanDefender(d)
	})
	cases := map[string]string{"127.0.0.3": "carol", "127.0.0.4": "nobody"}
	// fail sends times wrong logins from each address; the last one's PASS
	// must get code.
	fail := func(times, code int) {
		var wg sync.WaitGroup
		for from, name := range cases {
			wg.Go(func() {
				c := hardDialFrom(t, ts.addr, from)
				for i := range times {
					c.cmd("USER "+name, 331)
					want := 530
					if i == times-1 {
						want = code
					}
					c.cmd("PASS wrong", want)
				}
			})
		}
		wg.Wait()
	}
	banned := func(from string) bool {
		_, b := d.Banned(t.Context(), netip.MustParseAddr(from))
		return b
	}

	fail(2, 530)
	for from, name := range cases {
		if banned(from) {
			t.Errorf("%s (%s) banned after 2 failures, threshold 3", from, name)
		}
	}
	fail(1, 421) // the ban closes the session
	for from, name := range cases {
		if !banned(from) {
			t.Errorf("%s (%s) not banned after 3 failures, threshold 3", from, name)
		}
	}
}

package ftp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/ban"
	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/storage/local"
	"github.com/ferryftp/ferry/internal/users"
	"github.com/ferryftp/ferry/internal/users/sqlstore"
)

// sqlAuth opens an SQLite user store in dir holding the accounts given
// (password "right"; home DIR/home/NAME when not set), for tests that need
// the real store's behaviour rather than memAuth's.
func sqlAuth(t *testing.T, dir string, accounts ...users.User) *sqlstore.Store {
	t.Helper()
	st, err := sqlstore.Open(filepath.Join(dir, "users.db"), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, u := range accounts {
		if u.Home == "" {
			u.Home = filepath.Join(dir, "home", u.Name)
		}
		if err := st.Add(t.Context(), u, "right"); err != nil {
			t.Fatal(err)
		}
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
		c.Auth = sqlAuth(t, filepath.Dir(c.AnonymousRoot), users.User{Name: "carol"})
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

// TestLoginRefusedBeforePassword: an account that requires TLS, or a client
// certificate, is refused over a plaintext connection before its password is
// checked, so the connection it forbids is no password oracle: the right and
// a wrong password get the same reply as a name that does not exist, and the
// logged reason shows that the password played no part.
func TestLoginRefusedBeforePassword(t *testing.T) {
	ts := startServer(t, func(c *Site, s *Server) {
		c.MaxLoginFailures = 0
		c.Auth = sqlAuth(t, filepath.Dir(c.AnonymousRoot),
			users.User{Name: "carol", TLSRequired: "control"},
			users.User{Name: "dave", TLSRequired: "all"},
			users.User{Name: "erin", CertRequired: true})
	})
	reply := func(name, pass string) string {
		c := dial(t, ts.addr)
		c.cmd("USER "+name, 331)
		c.send("PASS " + pass)
		code, text := c.read()
		return strconv.Itoa(code) + " " + text
	}
	want := reply("nobody", "right")
	if !strings.HasPrefix(want, "530 ") {
		t.Fatalf("unknown user: %q; want 530", want)
	}
	for _, name := range []string{"carol", "dave", "erin"} {
		for _, pass := range []string{"right", "wrong"} {
			if got := reply(name, pass); got != want {
				t.Errorf("%s with the %s password over plaintext: %q; want %q as for an unknown name", name, pass, got, want)
			}
		}
	}
	logs := ts.logText()
	if n := strings.Count(logs, "wrong password"); n != 0 {
		t.Errorf("%d passwords were checked before the TLS or certificate refusal", n)
	}
	for reason, n := range map[string]int{"user requires TLS": 4, "user requires a client certificate": 2} {
		if got := strings.Count(logs, reason); got != n {
			t.Errorf("%d logins logged %q; want %d", got, reason, n)
		}
	}
}

// TestLoginStoreOverTLS: with the SQLite store, an account that requires
// TLS logs in over AUTH TLS, and the HOST, remote address and TLS state
// reach the store.
func TestLoginStoreOverTLS(t *testing.T) {
	f := newFTPSFixture(t)
	rec := &recordingAuth{}
	ts := startFTPS(t, f, func(c *Site, s *Server) {
		rec.Authenticator = sqlAuth(t, filepath.Dir(c.AnonymousRoot), users.User{Name: "carol", TLSRequired: "all"})
		c.Auth = rec
	})
	c := dialFTPS(t, ts.addr, f.client(tls.VersionTLS13, nil))
	c.cmd("HOST 127.0.0.1", 220)
	c.cmd("USER carol", 331)
	c.cmd("PASS wrong", 530)
	c.cmd("USER carol", 331)
	c.cmd("PASS right", 230)
	req := rec.last()
	if req.Name != "carol" || req.Host != "127.0.0.1" || !req.Remote.Addr().IsLoopback() ||
		req.TLS == nil || req.TLS.Version != tls.VersionTLS13 || req.Cert != nil {
		t.Errorf("the store saw %+v", req)
	}
}

// recordingAuth remembers the last request it passed on.
type recordingAuth struct {
	users.Authenticator
	mu  sync.Mutex
	req users.LoginRequest
}

func (r *recordingAuth) Authenticate(ctx context.Context, req users.LoginRequest) (*users.User, error) {
	r.mu.Lock()
	r.req = req
	r.mu.Unlock()
	return r.Authenticator.Authenticate(ctx, req)
}

func (r *recordingAuth) last() users.LoginRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.req
}

// busyAuth is a store whose password checks never get their share of the
// memory budget: it waits for the end of the context it is given.
type busyAuth struct{ users.Authenticator }

func (busyAuth) Authenticate(ctx context.Context, _ users.LoginRequest) (*users.User, error) {
	if _, ok := ctx.Deadline(); !ok {
		return nil, errors.New("the login context has no deadline")
	}
	<-ctx.Done()
	return nil, fmt.Errorf("%w: %w", users.ErrBusy, ctx.Err())
}

// TestLoginBusy: a login whose password check cannot start before the login
// deadline gets 421 and the connection closes, with no ban score.
func TestLoginBusy(t *testing.T) {
	d := ban.NewDefender(ban.NewMemoryStore(), ban.Options{Threshold: 1, Window: time.Hour, Duration: time.Hour})
	ts := startServer(t, func(c *Site, s *Server) {
		c.LoginTimeout = time.Second
		c.Auth = busyAuth{}
		s.Defender = BanDefender(d)
	})
	c := dial(t, ts.addr)
	c.cmd("USER alice", 331)
	if text := c.cmd("PASS secret", 421); !strings.Contains(text, "Too many logins in progress") {
		t.Errorf("421 text %q", text)
	}
	hardClosed(c)
	if _, banned := d.Banned(t.Context(), netip.MustParseAddr("127.0.0.1")); banned {
		t.Error("a busy login was scored")
	}
}

// queuedAuth is a store whose password check, once it gets to run, logs
// alice in (home: the harness's) and refuses anyone else, and reports
// ErrBusy when its context has already ended: a check that had to wait for
// its share of the memory budget. It records when the check returned.
type queuedAuth struct {
	users.Authenticator
	mu   sync.Mutex
	done time.Time // guarded by mu
}

func (a *queuedAuth) Authenticate(ctx context.Context, req users.LoginRequest) (*users.User, error) {
	u, err := a.Authenticator.Authenticate(ctx, req)
	if ctx.Err() != nil {
		u, err = nil, fmt.Errorf("%w: %w", users.ErrBusy, ctx.Err())
	}
	a.mu.Lock()
	a.done = time.Now()
	a.mu.Unlock()
	return u, err
}

// TestLoginWaitsPastBackendDeadline: a password check waits for its turn
// until the login deadline, not the backend deadline, which a burst of
// logins behind auth_hash_memory outlasts (issue 10: a quarter of 100
// simultaneous logins got 421 at backend_timeout); and the calls after the
// check (the home's storage) get a backend deadline counted from the end
// of the check, not from PASS. Here every backend deadline passes at once.
func TestLoginWaitsPastBackendDeadline(t *testing.T) {
	var auth *queuedAuth
	ts := startServer(t, func(c *Site, _ *Server) {
		c.BackendTimeout = time.Nanosecond
		c.LoginTimeout = time.Minute
		auth = &queuedAuth{Authenticator: c.Auth}
		c.Auth = auth
		c.Storage = storage.OpenerFunc(func(ctx context.Context, location string) (storage.FS, error) {
			auth.mu.Lock()
			done := auth.done
			auth.mu.Unlock()
			if dl, ok := ctx.Deadline(); !ok || !dl.After(done) {
				return nil, fmt.Errorf("the home is opened under the deadline of PASS (%v), which ended before the check did (%v)", dl, done)
			}
			return (&local.Opener{}).Open(context.WithoutCancel(ctx), location)
		})
	})
	c := dial(t, ts.addr)
	c.cmd("USER alice", 331)
	c.cmd("PASS wrong", 530)
	c.cmd("USER alice", 331)
	c.cmd("PASS secret", 230)
}

// TestLoginStoreDown: every store failure during USER/PASS ends in 421
// "Service not available: user database error." and the connection
// closes, never 530 nor a login: the user store failing at PASS (not
// scored), the ban store failing while a wrong password is scored, and the
// user store failing at a certificate login's USER.
func TestLoginStoreDown(t *testing.T) {
	const text = "Service not available: user database error."
	dir := t.TempDir()
	down := sqlAuth(t, dir, users.User{Name: "carol"})
	down.Close()
	d := ban.NewDefender(ban.NewMemoryStore(), ban.Options{Threshold: 1, Window: time.Hour, Duration: time.Hour})
	ts := startServer(t, func(c *Site, s *Server) {
		c.Auth = down
		s.Defender = BanDefender(d)
	})
	c := dial(t, ts.addr)
	c.cmd("USER carol", 331)
	if got := c.cmd("PASS right", 421); got != text {
		t.Errorf("user store down: 421 %q", got)
	}
	hardClosed(c)
	if _, banned := d.Banned(t.Context(), netip.MustParseAddr("127.0.0.1")); banned {
		t.Error("a login the store could not check was scored")
	}

	// The ban store is down, the user store is not: the wrong password
	// cannot be scored, so it is not answered 530.
	bans, err := ban.OpenSQL(filepath.Join(t.TempDir(), "bans.db"))
	if err != nil {
		t.Fatal(err)
	}
	bans.Close()
	ts = startServer(t, func(c *Site, s *Server) {
		c.Auth = sqlAuth(t, t.TempDir(), users.User{Name: "carol"})
		s.Defender = BanDefender(ban.NewDefender(bans, ban.Options{Threshold: 5}))
	})
	c = dial(t, ts.addr)
	c.cmd("USER carol", 331)
	if got := c.cmd("PASS wrong", 421); got != text {
		t.Errorf("ban store down: 421 %q", got)
	}
	hardClosed(c)
	if !strings.Contains(ts.logText(), "ban store failed") {
		t.Errorf("the ban store's failure was not logged:\n%s", ts.logText())
	}

	// A certificate login whose user store is down.
	f := newFTPSFixture(t)
	ca := newTestCA(t)
	ts = startFTPS(t, f, func(cfg *Site, _ *Server) {
		cfg.TLS.ClientCAs = ca.pool
		cfg.TLS.ClientAuth = tls.VerifyClientCertIfGiven
		cfg.Auth = down
	})
	cc := f.client(0, nil)
	cc.Certificates = []tls.Certificate{ca.issue(t, "carol")}
	c = dialFTPS(t, ts.addr, cc)
	if got := c.cmd("USER carol", 421); got != text {
		t.Errorf("certificate login, user store down: 421 %q", got)
	}
	hardClosed(c)
}

package sqlacme

import (
	"context"
	"crypto/tls"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/acme"
	"github.com/ferryftp/ferry/internal/db"
	"github.com/ferryftp/ferry/internal/testenv"
	"github.com/ferryftp/ferry/internal/testenv/pebbleenv"
	"github.com/ferryftp/ferry/internal/testenv/pgenv"
)

func TestMain(m *testing.M) { pgenv.Main(m) }

// deadline bounds every wait: a safety net, never a measured threshold.
const deadline = 60 * time.Second

var engines = []struct {
	name string
	url  func(t *testing.T) string
}{
	{"sqlite", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "ferry.db") }},
	{"postgres", func(t *testing.T) string { return pgenv.DB(t) }},
}

func openDB(t *testing.T, url string) *db.DB {
	t.Helper()
	d, err := db.Open(context.Background(), url, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// TestStore: values, first-wins Create, the lease and the challenges, on
// both engines.
func TestStore(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			ctx := context.Background()
			s := New(openDB(t, e.url(t)))
			if _, err := s.Get(ctx, acme.NameCert); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("Get of nothing: %v", err)
			}
			if v, err := s.Create(ctx, acme.NameAccountKey, []byte("first")); err != nil || string(v) != "first" {
				t.Fatalf("Create: %q %v", v, err)
			}
			if v, err := s.Create(ctx, acme.NameAccountKey, []byte("second")); err != nil || string(v) != "first" {
				t.Fatalf("a second Create: %q %v, want the first value kept", v, err)
			}
			if err := s.Put(ctx, acme.Entry{Name: acme.NameKey, Value: []byte("k1")}, acme.Entry{Name: acme.NameCert, Value: []byte("c1")}); err != nil {
				t.Fatal(err)
			}
			if err := s.Put(ctx, acme.Entry{Name: acme.NameCert, Value: []byte("c2")}); err != nil {
				t.Fatal(err)
			}
			if v, _ := s.Get(ctx, acme.NameCert); string(v) != "c2" {
				t.Errorf("cert = %q", v)
			}
			if v, _ := s.Get(ctx, acme.NameKey); string(v) != "k1" {
				t.Errorf("key = %q", v)
			}

			now := time.Unix(1000, 0)
			s.now = func() time.Time { return now }
			if ok, err := s.TryLease(ctx, "a", time.Minute); !ok || err != nil {
				t.Fatalf("a's first lease: %v %v", ok, err)
			}
			if ok, err := s.TryLease(ctx, "b", time.Minute); ok || err != nil {
				t.Fatalf("b took a's unexpired lease: %v %v", ok, err)
			}
			if ok, _ := s.TryLease(ctx, "a", time.Minute); !ok {
				t.Fatal("a could not extend its lease")
			}
			if h, _ := s.LeaseHolder(ctx); h != "a" {
				t.Errorf("holder %q", h)
			}
			s.ReleaseLease(ctx, "b") // not b's: no effect
			if ok, _ := s.TryLease(ctx, "b", time.Minute); ok {
				t.Fatal("b's release ended a's lease")
			}
			now = now.Add(2 * time.Minute)
			if h, _ := s.LeaseHolder(ctx); h != "" {
				t.Errorf("expired lease still held by %q", h)
			}
			if ok, _ := s.TryLease(ctx, "b", time.Minute); !ok {
				t.Fatal("b could not take the expired lease")
			}
			if err := s.ReleaseLease(ctx, "b"); err != nil {
				t.Fatal(err)
			}
			if ok, _ := s.TryLease(ctx, "a", time.Minute); !ok {
				t.Fatal("a could not take the released lease")
			}

			k := acme.ChallengeKey(acme.HTTP01, "tok")
			if err := s.PutChallenge(ctx, k, "tok.thumb", time.Minute); err != nil {
				t.Fatal(err)
			}
			if ka, err := s.Challenge(ctx, k); ka != "tok.thumb" || err != nil {
				t.Fatalf("Challenge: %q %v", ka, err)
			}
			now = now.Add(2 * time.Minute)
			if _, err := s.Challenge(ctx, k); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("an expired challenge: %v", err)
			}
			s.PutChallenge(ctx, k, "tok.thumb", time.Minute)
			if err := s.DeleteChallenge(ctx, k); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Challenge(ctx, k); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a withdrawn challenge: %v", err)
			}
		})
	}
}

// orderCounter counts the new-order requests sent to Pebble.
type orderCounter struct {
	next   http.RoundTripper
	orders atomic.Int64
}

func (c *orderCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/order-plz") {
		c.orders.Add(1)
	}
	return c.next.RoundTrip(r)
}

type cluster struct {
	p       *pebbleenv.Pebble
	client  *http.Client
	counter *orderCounter
	url     string
	httpLn  net.Listener // the port Pebble validates HTTP-01 on
	tlsLn   net.Listener // and TLS-ALPN-01
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{url: pgenv.DB(t)}
	var err error
	if c.httpLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if c.tlsLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.httpLn.Close(); c.tlsLn.Close() })
	c.p = pebbleenv.Start(t, pebbleenv.Options{HTTPPort: c.httpLn.Addr().(*net.TCPAddr).Port,
		TLSPort: c.tlsLn.Addr().(*net.TCPAddr).Port})
	c.counter = &orderCounter{next: c.p.Client.Transport}
	c.client = &http.Client{Timeout: c.p.Client.Timeout, Transport: c.counter}
	return c
}

// node is one server: a manager on its own *db.DB over the shared database.
func (c *cluster) node(t *testing.T, name string, challenges []string, store func(*Store) acme.Store, tune func(*acme.Options)) (*acme.Manager, *testenv.LogBuffer) {
	t.Helper()
	s := New(openDB(t, c.url))
	var st acme.Store = s
	if store != nil {
		st = store(s)
	}
	log := &testenv.LogBuffer{}
	o := acme.Options{
		Domains: []string{"localhost"}, DirectoryURL: c.p.Directory, HTTPClient: c.client,
		DataDir: t.TempDir(), Store: st, NodeID: name, Challenges: challenges, RetryAfter: time.Second,
		SyncInterval: time.Hour, Logger: slog.New(slog.NewTextHandler(log, nil)).With("node", name),
	}
	if tune != nil {
		tune(&o)
	}
	m, err := acme.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return m, log
}

// serveHTTP01 answers m's HTTP-01 challenges on ln until the test ends.
func serveHTTP01(t *testing.T, m *acme.Manager, ln net.Listener) {
	hs := &http.Server{Handler: m.HTTPHandler(), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
}

func run(t *testing.T, m *acme.Manager) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func waitCh(t *testing.T, ch <-chan struct{}, what string, logs ...*testenv.LogBuffer) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(deadline):
		var all []string
		for _, l := range logs {
			all = append(all, l.String())
		}
		t.Fatalf("no %s within %v; logs:\n%s", what, deadline, strings.Join(all, "\n"))
	}
}

// TestTwoNodesOneOrder: two servers starting at once on one PostgreSQL
// database order once between them, and serve the same certificate; the
// CA validates at node B's listener whichever node ordered.
func TestTwoNodesOneOrder(t *testing.T) {
	c := newCluster(t)
	a, logA := c.node(t, "a", []string{acme.HTTP01}, nil, nil)
	b, logB := c.node(t, "b", []string{acme.HTTP01}, nil, nil)
	serveHTTP01(t, b, c.httpLn)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	errs := make(chan error, 2)
	for _, m := range []*acme.Manager{a, b} {
		go func() { errs <- m.Obtain(ctx) }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("Obtain: %v\n%s\n%s", err, logA, logB)
		}
	}
	if n := c.counter.orders.Load(); n != 1 {
		t.Fatalf("%d orders at the CA, want 1\n%s\n%s", n, logA, logB)
	}
	ca, cb := a.Current(), b.Current()
	if ca == nil || cb == nil || !ca.Leaf.Equal(cb.Leaf) {
		t.Fatal("the two nodes serve different certificates")
	}
	for _, m := range []*acme.Manager{a, b} {
		got, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: "localhost"})
		if err != nil || got.Leaf.SerialNumber.Cmp(ca.Leaf.SerialNumber) != 0 {
			t.Errorf("a handshake got %v (%v), want serial %s", got, err, ca.Leaf.SerialNumber)
		}
	}
	// A third node starting later loads it without an order.
	d, _ := c.node(t, "d", []string{acme.HTTP01}, nil, nil)
	if d.Current() == nil || !d.Current().Leaf.Equal(ca.Leaf) {
		t.Error("a later node did not load the shared certificate")
	}
	if n := c.counter.orders.Load(); n != 1 {
		t.Errorf("%d orders after a third node started", n)
	}
}

// TestChallengeAnsweredByAnotherNode: node A orders with no challenge
// listener of its own; Pebble validates at node B's listener, which answers
// from the database (HTTP-01: the token's key authorization; TLS-ALPN-01:
// a challenge certificate built from it).
func TestChallengeAnsweredByAnotherNode(t *testing.T) {
	for _, typ := range []string{acme.HTTP01, acme.TLSALPN01} {
		t.Run(typ, func(t *testing.T) {
			c := newCluster(t)
			a, logA := c.node(t, "a", []string{typ}, nil, nil)
			b, logB := c.node(t, "b", []string{typ}, nil, nil)
			if typ == acme.HTTP01 {
				serveHTTP01(t, b, c.httpLn)
			} else {
				go acme.ServeTLSALPN(c.tlsLn, b, slog.New(slog.DiscardHandler))
			}
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			if err := a.Obtain(ctx); err != nil {
				t.Fatalf("A's order, validated at B: %v\n%s\n%s", err, logA, logB)
			}
			if a.Current() == nil || c.counter.orders.Load() != 1 {
				t.Fatalf("certificate %v, orders %d", a.Current(), c.counter.orders.Load())
			}
			if !strings.Contains(logA.String(), "type="+typ) {
				t.Errorf("A's log:\n%s", logA)
			}
			// Withdrawn once validated: B answers it no more.
			if typ == acme.TLSALPN01 {
				if _, err := b.GetCertificate(&tls.ClientHelloInfo{ServerName: "localhost", SupportedProtos: []string{"acme-tls/1"}}); err == nil {
					t.Error("B still builds a challenge certificate after the order")
				}
			}
		})
	}
}

// silent hides a store's notifications: only the periodic check is left.
type silent struct{ *Store }

func (silent) Changes(context.Context) (<-chan string, error) {
	return nil, errors.New("notifications off for the test")
}

// TestRenewalReachesOtherNode: node A renews; node B, running, hot-swaps
// to A's new certificate without ordering: by the notification, or with
// notifications off by its periodic check.
func TestRenewalReachesOtherNode(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store func(*Store) acme.Store
		sync  time.Duration
	}{
		{"notify", nil, time.Hour},
		{"periodic", func(s *Store) acme.Store { return silent{s} }, 100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t)
			a, logA := c.node(t, "a", []string{acme.HTTP01}, nil, nil)
			serveHTTP01(t, a, c.httpLn)
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			if err := a.Obtain(ctx); err != nil {
				t.Fatalf("%v\n%s", err, logA)
			}
			first := a.Current().Leaf
			b, logB := c.node(t, "b", []string{acme.HTTP01}, tc.store, func(o *acme.Options) { o.SyncInterval = tc.sync })
			if b.Current() == nil || !b.Current().Leaf.Equal(first) {
				t.Fatal("B did not load A's certificate")
			}
			renewed := b.Renewed()
			if tc.name == "notify" {
				// A's Obtain listened while it ran: wait until that
				// session is gone, so that the one seen next is B's.
				waitListeners(t, c.url, func(n int) bool { return n == 0 })
			}
			run(t, b)
			if tc.name == "notify" {
				// B's Run listens before A's renewal is put.
				waitListeners(t, c.url, func(n int) bool { return n > 0 })
			}
			if err := a.Obtain(ctx); err != nil {
				t.Fatalf("A's renewal: %v\n%s", err, logA)
			}
			second := a.Current().Leaf
			if second.Equal(first) {
				t.Fatal("A's renewal kept the certificate")
			}
			waitCh(t, renewed, "hot swap on B", logA, logB)
			if got := b.Current().Leaf; !got.Equal(second) {
				t.Errorf("B serves serial %s, want A's renewed %s", got.SerialNumber, second.SerialNumber)
			}
			if n := c.counter.orders.Load(); n != 2 {
				t.Errorf("%d orders, want A's two", n)
			}
			if !strings.Contains(logB.String(), "ACME certificate of another server installed") {
				t.Errorf("B's log:\n%s", logB)
			}
		})
	}
}

// waitListeners waits until the number of sessions that LISTEN on
// Channel satisfies ok.
func waitListeners(t *testing.T, url string, ok func(int) bool) {
	t.Helper()
	d := openDB(t, url)
	var n int
	for end := time.Now().Add(deadline); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if err := d.SQL().QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND query LIKE 'LISTEN %ferry_acme%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if ok(n) {
			return
		}
	}
	t.Fatalf("%d sessions listen on %s", n, Channel)
}

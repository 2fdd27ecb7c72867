package ban

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a fake clock, safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

// memStore returns a MemoryStore on clk.
func memStore(clk *clock) *MemoryStore {
	s := NewMemoryStore()
	s.now = clk.Now
	return s
}

// defender returns a Defender on a MemoryStore, both on clk.
func defender(t *testing.T, clk *clock, o Options) (*Defender, *MemoryStore) {
	s := memStore(clk)
	o.Now = clk.Now
	o.Logger = testLogger(t)
	return NewDefender(s, o), s
}

var ip1 = netip.MustParseAddr("192.0.2.1")

func TestScoring(t *testing.T) {
	type step struct {
		wait time.Duration // clock advance before the event
		e    Event
	}
	const m = time.Minute
	for _, tc := range []struct {
		name  string
		steps []step
		want  []bool // Record's result per step
	}{
		{
			name:  "five failures reach five",
			steps: []step{{0, FailedLogin}, {m, FailedLogin}, {m, FailedLogin}, {m, FailedLogin}, {m, FailedLogin}},
			want:  []bool{false, false, false, false, true},
		},
		{
			name:  "protocol errors weigh one",
			steps: []step{{0, ProtocolError}, {0, ProtocolError}, {0, ProtocolError}, {0, FailedLogin}},
			want:  []bool{false, false, false, false, true},
		},
		{
			name:  "window expires whole",
			steps: []step{{0, FailedLogin}, {0, FailedLogin}, {0, FailedLogin}, {0, FailedLogin}, {10*m + 1, FailedLogin}, {0, FailedLogin}},
			want:  []bool{false, false, false, false, false, false},
		},
		{
			// Events at 0, 3, 6, 9 min; at 10.5 the first has left the
			// window (score 4), at 11 the fifth inside it arrives.
			name:  "window slides",
			steps: []step{{0, FailedLogin}, {3 * m, FailedLogin}, {3 * m, FailedLogin}, {3 * m, FailedLogin}, {m + m/2, FailedLogin}, {m / 2, FailedLogin}},
			want:  []bool{false, false, false, false, false, true},
		},
		{
			name:  "an event exactly one window old no longer counts",
			steps: []step{{0, FailedLogin}, {0, FailedLogin}, {0, FailedLogin}, {0, FailedLogin}, {10 * m, FailedLogin}},
			want:  []bool{false, false, false, false, false},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			d, _ := defender(t, clk, Options{Threshold: 5, Window: 10 * m})
			for i, s := range tc.steps {
				clk.Advance(s.wait)
				if got := record(t, d, ip1, s.e); got != tc.want[i] {
					t.Fatalf("step %d (%v): Record = %v, want %v", i, s.e, got, tc.want[i])
				}
				_, banned := d.Banned(t.Context(), ip1)
				if banned != tc.want[i] {
					t.Fatalf("step %d: Banned = %v, want %v", i, banned, tc.want[i])
				}
			}
		})
	}
}

func TestEscalation(t *testing.T) {
	clk := newClock()
	d, s := defender(t, clk, Options{Threshold: 1, Duration: time.Minute, MaxDuration: 5 * time.Minute})
	for i, want := range []time.Duration{1, 2, 4, 5, 5} {
		want *= time.Minute
		start := clk.Now()
		if !record(t, d, ip1, FailedLogin) {
			t.Fatalf("ban %d: not banned", i+1)
		}
		until, banned := d.Banned(t.Context(), ip1)
		if !banned || until.Sub(start) != want {
			t.Fatalf("ban %d: banned=%v for %v, want %v", i+1, banned, until.Sub(start), want)
		}
		b, ok, _ := s.Get(t.Context(), ip1)
		if !ok || b.Count != i+1 || !b.Until.Equal(until) || b.Reason == "" {
			t.Fatalf("ban %d: stored %+v", i+1, b)
		}
		// Events during the ban neither extend nor escalate it.
		record(t, d, ip1, FailedLogin)
		if b2, _, _ := s.Get(t.Context(), ip1); b2 != b {
			t.Fatalf("ban %d: changed by an event during the ban: %+v", i+1, b2)
		}
		clk.Advance(want)
		if _, banned := d.Banned(t.Context(), ip1); banned {
			t.Fatalf("ban %d: still banned after it ended", i+1)
		}
	}

	// Good behaviour for long enough starts over.
	clk.Advance(forgetAfter + time.Minute)
	start := clk.Now()
	record(t, d, ip1, FailedLogin)
	if until, _ := d.Banned(t.Context(), ip1); until.Sub(start) != time.Minute {
		t.Errorf("after %v of quiet: banned for %v, want a first ban", forgetAfter, until.Sub(start))
	}
}

func TestLengthCap(t *testing.T) {
	d := NewDefender(NewMemoryStore(), Options{Threshold: 1, Duration: 15 * time.Minute})
	for _, tc := range []struct {
		previous int
		want     time.Duration
	}{
		{0, 15 * time.Minute},
		{1, 30 * time.Minute},
		{6, 16 * time.Hour},
		{7, 24 * time.Hour}, // default cap
		{1000, 24 * time.Hour},
	} {
		if got := d.length(tc.previous); got != tc.want {
			t.Errorf("length(%d) = %v, want %v", tc.previous, got, tc.want)
		}
	}
}

func TestAllowList(t *testing.T) {
	clk := newClock()
	d, s := defender(t, clk, Options{Threshold: 1, Allow: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("::ffff:192.168.0.0/112"), // written mapped
	}})
	for _, a := range []string{"10.1.2.3", "::ffff:10.1.2.3", "2001:db8:1::1", "192.168.4.5", "fe80::1%eth0"} {
		ip := netip.MustParseAddr(a)
		if a == "fe80::1%eth0" { // not allowed: a control that bans
			if !record(t, d, ip, FailedLogin) {
				t.Errorf("%s: not banned", a)
			}
			continue
		}
		for range 10 {
			if record(t, d, ip, FailedLogin) {
				t.Fatalf("%s: allow-listed address banned", a)
			}
		}
		// Not even an operator's ban applies.
		if err := s.Put(t.Context(), Ban{IP: Key(ip), Until: clk.Now().Add(time.Hour), Count: 1}); err != nil {
			t.Fatal(err)
		}
		if _, banned := d.Banned(t.Context(), ip); banned {
			t.Errorf("%s: allow-listed address reported banned", a)
		}
	}
	if n := len(d.scores); n != 0 {
		t.Errorf("%d allow-listed addresses scored", n)
	}
}

// strictStore fails the test if the Defender touches it.
type strictStore struct{ t *testing.T }

func (s strictStore) fail() error { s.t.Error("store used"); return errors.New("no") }
func (s strictStore) Get(context.Context, netip.Addr) (Ban, bool, error) {
	return Ban{}, false, s.fail()
}
func (s strictStore) Put(context.Context, Ban) error           { return s.fail() }
func (s strictStore) Delete(context.Context, netip.Addr) error { return s.fail() }
func (s strictStore) List(context.Context) ([]Ban, error)      { return nil, s.fail() }

func TestThresholdZeroDisables(t *testing.T) {
	d := NewDefender(strictStore{t}, Options{Threshold: 0})
	for range 100 {
		if record(t, d, ip1, FailedLogin) {
			t.Fatal("banned with threshold 0")
		}
	}
	if _, banned := d.Banned(t.Context(), ip1); banned {
		t.Error("Banned with threshold 0")
	}
	if len(d.scores) != 0 {
		t.Error("scored with threshold 0")
	}
}

func TestEvictionBound(t *testing.T) {
	clk := newClock()
	d, _ := defender(t, clk, Options{Threshold: 2, MaxTracked: 100})
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}) }

	// A spray of one event from each of many addresses.
	for i := range 1000 {
		record(t, d, addr(i), FailedLogin)
		if n, l := len(d.scores), d.lru.Len(); n > 100 || n != l {
			t.Fatalf("after %d addresses: %d scored, %d in LRU; want at most 100, equal", i+1, n, l)
		}
	}
	// The oldest were evicted, so their next event starts afresh...
	if record(t, d, addr(0), FailedLogin) {
		t.Error("evicted address kept its score")
	}
	// ...while the most recent still have theirs.
	if !record(t, d, addr(999), FailedLogin) {
		t.Error("recent address lost its score")
	}

	// Addresses quiet for a whole window are dropped at the next event.
	clk.Advance(10*time.Minute + time.Second)
	record(t, d, addr(5000), FailedLogin)
	if n := len(d.scores); n != 1 {
		t.Errorf("%d addresses scored after the window passed, want 1", n)
	}

	// The lookup cache is bounded too.
	for i := range 1000 {
		d.Banned(t.Context(), addr(i))
		if n := len(d.cache); n > 100 {
			t.Fatalf("after %d lookups: %d cached, want at most 100", i+1, n)
		}
	}
}

func TestKeys(t *testing.T) {
	for _, tc := range []struct{ in, key, network string }{
		{"192.0.2.1", "192.0.2.1", "192.0.2.1/32"},
		{"::ffff:192.0.2.1", "192.0.2.1", "192.0.2.1/32"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::", "fe80::/64"},
	} {
		k := Key(netip.MustParseAddr(tc.in))
		if k.String() != tc.key || Network(k).String() != tc.network {
			t.Errorf("Key(%s) = %s, Network %s; want %s, %s", tc.in, k, Network(k), tc.key, tc.network)
		}
	}
}

func TestIPv6PerSlash64AndMapped(t *testing.T) {
	clk := newClock()
	d, _ := defender(t, clk, Options{Threshold: 2})
	ctx := t.Context()

	record(t, d, netip.MustParseAddr("2001:db8::1"), FailedLogin)
	if !record(t, d, netip.MustParseAddr("2001:db8::2"), FailedLogin) {
		t.Error("two addresses of one /64 not scored together")
	}
	for a, want := range map[string]bool{
		"2001:db8::ffff:1":   true,
		"2001:db8:0:1::1":    false,
		"::ffff:192.0.2.200": false,
	} {
		if _, got := d.Banned(ctx, netip.MustParseAddr(a)); got != want {
			t.Errorf("Banned(%s) = %v, want %v", a, got, want)
		}
	}

	record(t, d, netip.MustParseAddr("::ffff:192.0.2.7"), FailedLogin)
	if !record(t, d, netip.MustParseAddr("192.0.2.7"), FailedLogin) {
		t.Error("mapped and plain IPv4 not scored together")
	}
	if _, banned := d.Banned(ctx, netip.MustParseAddr("::ffff:192.0.2.7")); !banned {
		t.Error("mapped form of a banned address let in")
	}
}

// countingStore counts Gets, and can be made to fail.
type countingStore struct {
	Store
	gets atomic.Int64
	fail atomic.Bool
}

func (s *countingStore) Get(ctx context.Context, ip netip.Addr) (Ban, bool, error) {
	s.gets.Add(1)
	if s.fail.Load() {
		return Ban{}, false, errors.New("disk on fire")
	}
	return s.Store.Get(ctx, ip)
}

func (s *countingStore) Put(ctx context.Context, b Ban) error {
	if s.fail.Load() {
		return errors.New("disk on fire")
	}
	return s.Store.Put(ctx, b)
}

func TestBannedCache(t *testing.T) {
	clk := newClock()
	store := &countingStore{Store: memStore(clk)}
	d := NewDefender(store, Options{Threshold: 5, Now: clk.Now, Logger: testLogger(t)})
	ctx := t.Context()

	// An operator's ban (another process) is seen at the first lookup...
	if err := store.Put(ctx, Ban{IP: ip1, Until: clk.Now().Add(time.Hour), Count: 1, Reason: "manual"}); err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		if _, banned := d.Banned(ctx, ip1); !banned {
			t.Fatal("stored ban not enforced")
		}
	}
	// ...and a flood of connections costs one store lookup per second.
	if n := store.gets.Load(); n != 1 {
		t.Errorf("%d store lookups for 1000 connections within the cache time, want 1", n)
	}

	// Its deletion takes effect once the cached answer expires.
	if err := store.Delete(ctx, ip1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(DefaultCacheTTL)
	if _, banned := d.Banned(ctx, ip1); banned {
		t.Error("deleted ban still enforced after the cache time")
	}

	// A negative answer is cached the same way, and a ban made here is
	// enforced at once regardless.
	for range 4 {
		record(t, d, ip1, FailedLogin)
	}
	d.Banned(ctx, ip1)
	if !record(t, d, ip1, FailedLogin) {
		t.Fatal("not banned")
	}
	if _, banned := d.Banned(ctx, ip1); !banned {
		t.Error("fresh ban not enforced within the cache time")
	}
}

func TestStoreFailure(t *testing.T) {
	clk := newClock()
	store := &countingStore{Store: memStore(clk)}
	store.fail.Store(true)
	d := NewDefender(store, Options{Threshold: 1, Now: clk.Now, Logger: testLogger(t)})
	ctx := t.Context()

	// A broken store lets clients in rather than locking everyone out.
	if _, banned := d.Banned(ctx, ip1); banned {
		t.Error("store failure reported as banned")
	}
	// A ban made here is still enforced here, and the failure reported
	// (a login it happens in is answered 421).
	clk.Advance(DefaultCacheTTL)
	if banned, err := d.Record(ctx, ip1, FailedLogin); !banned || err == nil {
		t.Errorf("Record = %v, %v; want banned and the store's error", banned, err)
	}
	if _, banned := d.Banned(ctx, ip1); !banned {
		t.Error("locally made ban not enforced")
	}
	// The store does not know it, so no notification lifts it: "" (forget
	// everything) and the cache time leave it in force until it ends.
	d.Invalidate(netip.Addr{})
	clk.Advance(10 * DefaultCacheTTL)
	if _, banned := d.Banned(ctx, ip1); !banned {
		t.Error("locally made ban forgotten by Invalidate")
	}
	clk.Advance(15 * time.Minute)
	if _, banned := d.Banned(ctx, ip1); banned {
		t.Error("locally made ban outlives its end")
	}
}

// TestConcurrent is for the race detector: many sessions of one attacker
// and of others at once.
func TestConcurrent(t *testing.T) {
	clk := newClock()
	d, s := defender(t, clk, Options{Threshold: 10, MaxTracked: 50})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				record(t, d, ip1, FailedLogin)
				record(t, d, netip.AddrFrom4([4]byte{203, 0, 113, byte(g*25 + i%25)}), ProtocolError)
				d.Banned(t.Context(), ip1)
			}
		})
	}
	wg.Wait()
	if _, banned := d.Banned(t.Context(), ip1); !banned {
		t.Error("attacker not banned")
	}
	if b, _, _ := s.Get(t.Context(), ip1); b.Count != 1 {
		t.Errorf("one burst banned %d times, want once", b.Count)
	}
}

func TestEventString(t *testing.T) {
	for e, want := range map[Event]string{FailedLogin: "failed login", ProtocolError: "protocol error", 9: "event 9"} {
		if got := fmt.Sprint(e); got != want {
			t.Errorf("%d: %q, want %q", int(e), got, want)
		}
	}
}

// record is d.Record, failing the test on a store error.
func record(t *testing.T, d *Defender, ip netip.Addr, e Event) bool {
	t.Helper()
	banned, err := d.Record(t.Context(), ip, e)
	if err != nil {
		t.Errorf("Record(%v, %v): %v", ip, e, err)
	}
	return banned
}

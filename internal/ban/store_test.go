package ban

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/db"
	"github.com/ferryftp/ferry/internal/testenv/pgenv"
)

// storeCase opens a fresh store whose clock is clk.
type storeCase struct {
	name string
	open func(t *testing.T, clk *clock) Store
}

func openSQLTest(t *testing.T, path string, clk *clock) *SQLStore {
	t.Helper()
	s, err := OpenSQL(path)
	if err != nil {
		t.Fatal(err)
	}
	s.now = clk.Now
	t.Cleanup(func() { s.Close() })
	return s
}

// openPGTest returns n handles on one fresh PostgreSQL database, as n
// Ferry processes (or a server and the CLI) hold them.
func openPGTest(t *testing.T, clk *clock, n int) []*SQLStore {
	t.Helper()
	url := pgenv.DB(t)
	var out []*SQLStore
	for range n {
		d, err := db.Open(t.Context(), url, db.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		s := NewSQLStore(d)
		s.now = clk.Now
		out = append(out, s)
	}
	return out
}

var storeCases = []storeCase{
	{"memory", func(t *testing.T, clk *clock) Store { return memStore(clk) }},
	{"sqlite", func(t *testing.T, clk *clock) Store {
		return openSQLTest(t, filepath.Join(t.TempDir(), "bans.db"), clk)
	}},
	{"postgres", func(t *testing.T, clk *clock) Store { return openPGTest(t, clk, 1)[0] }},
}

// TestStores is the contract every Store (and History) must meet.
func TestStores(t *testing.T) {
	for _, sc := range storeCases {
		t.Run(sc.name, func(t *testing.T) {
			ctx := t.Context()
			clk := newClock()
			s := sc.open(t, clk)
			now := clk.Now()
			addrs := []string{"10.0.0.10", "10.0.0.9", "2001:db8::", "192.0.2.1", "2001:db8:0:1::"}
			for i, a := range addrs {
				b := Ban{IP: netip.MustParseAddr(a), Until: now.Add(time.Duration(i+1) * time.Hour), Count: i + 1, Reason: "reason " + a}
				if err := s.Put(ctx, b); err != nil {
					t.Fatal(err)
				}
			}

			ip := netip.MustParseAddr("192.0.2.1")
			b, ok, err := s.Get(ctx, ip)
			if err != nil || !ok {
				t.Fatalf("Get = %v, %v", ok, err)
			}
			if want := (Ban{IP: ip, Until: now.Add(4 * time.Hour), Count: 4, Reason: "reason 192.0.2.1"}); b.IP != want.IP || !b.Until.Equal(want.Until) || b.Count != want.Count || b.Reason != want.Reason {
				t.Errorf("Get = %+v, want %+v", b, want)
			}
			if _, ok, err := s.Get(ctx, netip.MustParseAddr("192.0.2.2")); ok || err != nil {
				t.Errorf("Get of an unknown address = %v, %v", ok, err)
			}

			list := func() []string {
				t.Helper()
				bans, err := s.List(ctx)
				if err != nil {
					t.Fatal(err)
				}
				var out []string
				for _, b := range bans {
					out = append(out, b.IP.String())
				}
				return out
			}
			// Ordered as addresses, not as text.
			if got, want := list(), []string{"10.0.0.9", "10.0.0.10", "192.0.2.1", "2001:db8::", "2001:db8:0:1::"}; !slices.Equal(got, want) {
				t.Errorf("List = %v, want %v", got, want)
			}

			// Put replaces.
			if err := s.Put(ctx, Ban{IP: ip, Until: now.Add(30 * time.Minute), Count: 7, Reason: "again"}); err != nil {
				t.Fatal(err)
			}
			if b, _, _ := s.Get(ctx, ip); b.Count != 7 || b.Reason != "again" || !b.Until.Equal(now.Add(30*time.Minute)) {
				t.Errorf("after replacing: %+v", b)
			}

			// Ended bans are neither returned nor listed, but remembered.
			clk.Advance(90 * time.Minute)
			if _, ok, _ := s.Get(ctx, ip); ok {
				t.Error("Get returned an ended ban")
			}
			if got, want := list(), []string{"10.0.0.9", "2001:db8::", "2001:db8:0:1::"}; !slices.Equal(got, want) {
				t.Errorf("List after 90 minutes = %v, want %v", got, want)
			}
			h := s.(History)
			if b, ok, err := h.Last(ctx, ip); !ok || err != nil || b.Count != 7 {
				t.Errorf("Last of an ended ban = %+v, %v, %v", b, ok, err)
			}

			// Delete forgets the history too, and tolerates unknown addresses.
			if err := s.Delete(ctx, ip); err != nil {
				t.Fatal(err)
			}
			if _, ok, _ := h.Last(ctx, ip); ok {
				t.Error("Last after Delete found the ban")
			}
			if err := s.Delete(ctx, netip.MustParseAddr("198.51.100.1")); err != nil {
				t.Errorf("Delete of an unknown address: %v", err)
			}

			// Long after the end, bans are forgotten.
			clk.Advance(forgetAfter + 6*time.Hour)
			if _, ok, _ := h.Last(ctx, netip.MustParseAddr("10.0.0.10")); ok {
				t.Error("ban remembered past forgetAfter")
			}
			if got := list(); len(got) != 0 {
				t.Errorf("List = %v, want none", got)
			}
		})
	}
}

// TestMemoryStoreSweeps checks that forgotten bans do not accumulate.
func TestMemoryStoreSweeps(t *testing.T) {
	clk := newClock()
	s := memStore(clk)
	for i := range sweepEvery {
		s.Put(t.Context(), Ban{IP: netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), Until: clk.Now(), Count: 1})
	}
	clk.Advance(forgetAfter + time.Second)
	for i := range sweepEvery {
		s.Put(t.Context(), Ban{IP: netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), Until: clk.Now(), Count: 1})
	}
	if n := len(s.bans); n != sweepEvery {
		t.Errorf("%d bans kept, want %d", n, sweepEvery)
	}
}

// TestSQLSharedFile is what `ferry ban` relies on: two handles on one file,
// as the server and the CLI hold them, see each other's changes.
func TestSQLSharedFile(t *testing.T) {
	ctx := t.Context()
	clk := newClock()
	path := filepath.Join(t.TempDir(), "bans.db")
	server := openSQLTest(t, path, clk)
	cli := openSQLTest(t, path, clk)

	for pragma, want := range map[string]string{"journal_mode": "wal", "busy_timeout": fmt.Sprint(db.DefaultStatementTimeout.Milliseconds())} {
		var got string
		if err := cli.db.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil || got != want {
			t.Errorf("PRAGMA %s = %q, %v; want %q", pragma, got, err, want)
		}
	}
	testShared(t, clk, server, cli, func() *SQLStore { return openSQLTest(t, path, clk) })
}

// TestSQLSharedPostgres is TestSQLSharedFile on one PostgreSQL database.
func TestSQLSharedPostgres(t *testing.T) {
	clk := newClock()
	h := openPGTest(t, clk, 3)
	testShared(t, clk, h[0], h[1], func() *SQLStore { return h[2] })
}

func testShared(t *testing.T, clk *clock, server, cli *SQLStore, reopen func() *SQLStore) {
	ctx := t.Context()

	d := NewDefender(server, Options{Threshold: 1, Now: clk.Now, Logger: testLogger(t)})
	if !record(t, d, ip1, FailedLogin) {
		t.Fatal("not banned")
	}
	bans, err := cli.List(ctx)
	if err != nil || len(bans) != 1 || bans[0].IP != ip1 || bans[0].Count != 1 {
		t.Fatalf("second handle lists %+v, %v", bans, err)
	}

	if err := cli.Delete(ctx, ip1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(DefaultCacheTTL)
	if _, banned := d.Banned(ctx, ip1); banned {
		t.Error("ban deleted through the second handle still enforced")
	}

	// A ban added through the second handle survives a reopen and applies.
	if err := cli.Put(ctx, Ban{IP: ip1, Until: clk.Now().Add(time.Hour), Count: 1, Reason: "manual"}); err != nil {
		t.Fatal(err)
	}
	cli.Close()
	reopened := reopen()
	if b, ok, err := reopened.Get(ctx, ip1); !ok || err != nil || b.Reason != "manual" {
		t.Errorf("after reopening: %+v, %v, %v", b, ok, err)
	}
	clk.Advance(DefaultCacheTTL)
	if _, banned := d.Banned(ctx, ip1); !banned {
		t.Error("ban added through the second handle not enforced")
	}
}

func TestOpenSQLErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{
		filepath.Join(file, "bans.db"), // a directory that is a file
		dir,                            // a directory
	} {
		if s, err := OpenSQL(path); err == nil {
			s.Close()
			t.Errorf("OpenSQL(%q) succeeded", path)
		}
	}
}

func TestMain(m *testing.M) { pgenv.Main(m) }

// sharedCases open two handles on one fresh database, as two Ferry
// processes hold them.
var sharedCases = []struct {
	name string
	open func(t *testing.T, clk *clock) (a, b *SQLStore)
}{
	{"sqlite", func(t *testing.T, clk *clock) (*SQLStore, *SQLStore) {
		path := filepath.Join(t.TempDir(), "bans.db")
		return openSQLTest(t, path, clk), openSQLTest(t, path, clk)
	}},
	{"postgres", func(t *testing.T, clk *clock) (*SQLStore, *SQLStore) {
		h := openPGTest(t, clk, 2)
		return h[0], h[1]
	}},
}

// TestSharedScore: the score is the database's: failures on two processes
// add up (10 + 10 reach a threshold of 20), within the window; a ban starts
// the score over; Delete forgets it.
func TestSharedScore(t *testing.T) {
	for _, sc := range sharedCases {
		t.Run(sc.name, func(t *testing.T) {
			clk := newClock()
			a, b := sc.open(t, clk)
			o := Options{Threshold: 20, Window: 10 * time.Minute, Now: clk.Now, Logger: testLogger(t)}
			da, db := NewDefender(a, o), NewDefender(b, o)
			for i := range 10 {
				if record(t, da, ip1, FailedLogin) {
					t.Fatalf("banned by process A's failure %d", i+1)
				}
				clk.Advance(time.Second)
			}
			for i := range 9 {
				if record(t, db, ip1, FailedLogin) {
					t.Fatalf("banned by process B's failure %d (score %d)", i+1, 11+i)
				}
			}
			if !record(t, db, ip1, FailedLogin) {
				t.Fatal("10 failures on A and 10 on B did not ban")
			}
			if ban, ok, err := a.Get(t.Context(), ip1); !ok || err != nil || ban.Count != 1 {
				t.Fatalf("ban as process A reads it: %+v, %v, %v", ban, ok, err)
			}
			var rows int
			if err := a.db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM ban_failures WHERE ip = $1`, ip1.String()).Scan(&rows); err != nil || rows != 0 {
				t.Errorf("after the ban, %d score rows (%v); want the score started over", rows, err)
			}

			// The window: 19 points, then the window passes (plus its
			// slot), and the 20th is a first point again.
			ip := netip.MustParseAddr("192.0.2.77")
			for range 19 {
				if _, err := a.AddScore(t.Context(), ip, 1, clk.Now(), o.Window); err != nil {
					t.Fatal(err)
				}
			}
			clk.Advance(o.Window - time.Minute)
			if n, err := b.AddScore(t.Context(), ip, 1, clk.Now(), o.Window); err != nil || n != 20 {
				t.Errorf("within the window: score %d, %v; want 20", n, err)
			}
			clk.Advance(o.Window/scoreSlots + 2*time.Minute)
			if n, err := b.AddScore(t.Context(), ip, 1, clk.Now(), o.Window); err != nil || n != 2 {
				t.Errorf("after the window: score %d, %v; want 2 (the last point and this one)", n, err)
			}
			if err := a.Delete(t.Context(), ip); err != nil {
				t.Fatal(err)
			}
			if n, err := b.AddScore(t.Context(), ip, 1, clk.Now(), o.Window); err != nil || n != 1 {
				t.Errorf("after Delete: score %d, %v; want 1", n, err)
			}
		})
	}
}

// TestSharedScoreConcurrent: concurrent upserts of two processes lose no
// point, and the crossing of the threshold is seen by one of them.
func TestSharedScoreConcurrent(t *testing.T) {
	for _, sc := range sharedCases {
		t.Run(sc.name, func(t *testing.T) {
			clk := newClock()
			a, b := sc.open(t, clk)
			const workers, each = 4, 25
			var wg sync.WaitGroup
			var seen sync.Map
			for w := range workers {
				s := a
				if w%2 == 1 {
					s = b
				}
				wg.Go(func() {
					for range each {
						n, err := s.AddScore(t.Context(), ip1, 1, clk.Now(), time.Hour)
						if err != nil {
							t.Error(err)
							return
						}
						if _, dup := seen.LoadOrStore(n, true); dup {
							t.Errorf("two writers saw the score %d", n)
						}
					}
				})
			}
			wg.Wait()
			n, err := a.AddScore(t.Context(), ip1, 0, clk.Now(), time.Hour)
			if err != nil || n != workers*each {
				t.Errorf("score %d, %v; want %d", n, err, workers*each)
			}
		})
	}
}

// TestFollow: a Defender that follows the store's changes applies a ban
// made by another process, and its deletion, at once: its cache time is an
// hour and the clock does not move, so only the notification can explain
// the change.
func TestFollow(t *testing.T) {
	for _, sc := range sharedCases {
		t.Run(sc.name, func(t *testing.T) {
			clk := newClock()
			a, b := sc.open(t, clk)
			changes, err := a.Changes(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			d := NewDefender(a, Options{Threshold: 5, CacheTTL: time.Hour, Now: clk.Now, Logger: testLogger(t)})
			go d.Follow(changes)
			ctx := t.Context()
			if _, banned := d.Banned(ctx, ip1); banned {
				t.Fatal("banned before")
			}
			waitBanned := func(want bool) {
				t.Helper()
				deadline := time.Now().Add(30 * time.Second)
				for {
					if _, banned := d.Banned(ctx, ip1); banned == want {
						return
					}
					if time.Now().After(deadline) {
						t.Fatalf("no notification: banned is not %v after 30 s", want)
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			if err := b.Put(ctx, Ban{IP: ip1, Until: clk.Now().Add(time.Hour), Count: 1, Reason: "manual"}); err != nil {
				t.Fatal(err)
			}
			waitBanned(true)
			if err := b.Delete(ctx, ip1); err != nil {
				t.Fatal(err)
			}
			waitBanned(false)
		})
	}
}

// TestInvalidateRace: a lookup that was reading the store while a change
// was announced answers what it read but does not cache it.
func TestInvalidateRace(t *testing.T) {
	clk := newClock()
	st := &blockingStore{Store: memStore(clk), in: make(chan struct{}), out: make(chan struct{})}
	d := NewDefender(st, Options{Threshold: 5, CacheTTL: time.Hour, Now: clk.Now, Logger: testLogger(t)})
	done := make(chan bool)
	go func() {
		_, banned := d.Banned(t.Context(), ip1)
		done <- banned
	}()
	<-st.in // the lookup read "not banned"
	if err := st.Store.Put(t.Context(), Ban{IP: ip1, Until: clk.Now().Add(time.Hour), Count: 1}); err != nil {
		t.Fatal(err)
	}
	d.Invalidate(ip1) // the notification of that Put
	close(st.out)
	if <-done {
		t.Fatal("the lookup saw the later ban")
	}
	if _, banned := d.Banned(t.Context(), ip1); !banned {
		t.Error("the stale answer was cached over the notification")
	}
}

// blockingStore holds its first Get after reading, until out is closed.
type blockingStore struct {
	Store
	in, out chan struct{}
	once    sync.Once
}

func (s *blockingStore) Get(ctx context.Context, ip netip.Addr) (Ban, bool, error) {
	b, ok, err := s.Store.Get(ctx, ip)
	first := false
	s.once.Do(func() { first = true })
	if first {
		s.in <- struct{}{}
		<-s.out
	}
	return b, ok, err
}

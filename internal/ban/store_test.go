package ban

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
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
	if !d.Record(ctx, ip1, FailedLogin) {
		t.Fatal("not banned")
	}
	bans, err := cli.List(ctx)
	if err != nil || len(bans) != 1 || bans[0].IP != ip1 || bans[0].Count != 1 {
		t.Fatalf("second handle lists %+v, %v", bans, err)
	}

	if err := cli.Delete(ctx, ip1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(cacheTTL)
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
	clk.Advance(cacheTTL)
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

package sqlquota_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/db"
	"github.com/ferryftp/ferry/internal/quota"
	"github.com/ferryftp/ferry/internal/quota/sqlquota"
	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/storage/local"
	"github.com/ferryftp/ferry/internal/storage/storagetest"
	"github.com/ferryftp/ferry/internal/testenv/pgenv"
)

func TestMain(m *testing.M) { pgenv.Main(m) }

// engines are the databases every test runs on.
var engines = []struct {
	name string
	url  func(t *testing.T) string
}{
	{"sqlite", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "ferry.db") }},
	{"postgres", func(t *testing.T) string { return pgenv.DB(t) }},
}

// wait bounds a wait that must end; the bound only stops a hung test.
const wait = 30 * time.Second

func open(t *testing.T, url string) *db.DB {
	t.Helper()
	d, err := db.Open(t.Context(), url, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// process is one Ferry process on the database: its own handle, node and
// store, and its own view of the shared home.
type process struct {
	d     *db.DB
	node  *db.Node
	store *sqlquota.Store
	fs    storage.FS
	usage *quota.Usage
	q     *quota.FS
}

func newProcess(t *testing.T, url, home string, l quota.Limits, timeout time.Duration, chunk int64) *process {
	t.Helper()
	p := &process{d: open(t, url)}
	var err error
	p.node, err = p.d.StartNode(t.Context(), db.NodeOptions{Heartbeat: timeout / 4, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.node.Close(context.Background()) })
	p.store = sqlquota.New(p.d, p.node, sqlquota.Options{Chunk: chunk})
	fsys, err := local.Open(home)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fsys.Close() })
	p.fs = fsys
	p.usage = quota.NewUsage(p.store.Counter("alice", home), p.store.Chunk())
	p.usage.Load(t.Context(), func() (storage.FS, error) { return local.Open(home) })
	if err := p.usage.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	p.q = quota.Wrap(fsys, p.usage, l)
	return p
}

// exact fails unless the shared counts equal a fresh scan of the home.
func exact(t *testing.T, p *process) (int64, int64) {
	t.Helper()
	b, f, err := quota.Scan(context.Background(), p.fs)
	if err != nil {
		t.Fatal(err)
	}
	gb, gf, err := p.usage.Counts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if gb != b || gf != f {
		t.Fatalf("the database counts %d bytes, %d files; the home holds %d bytes, %d files", gb, gf, b, f)
	}
	return b, f
}

// put stores data under name in writes of 32 KiB.
func put(fsys storage.FS, name string, data []byte) error {
	up, err := fsys.Create(context.Background(), storagetest.P(name), storage.CreateOptions{})
	if err != nil {
		return err
	}
	for p := data; len(p) > 0; {
		n := min(len(p), 32<<10)
		if _, err := up.Write(p[:n]); err != nil {
			up.Abort(context.Background())
			return err
		}
		p = p[n:]
	}
	return up.Commit(context.Background())
}

// TestTwoProcessesStopAtTheQuota: two processes upload for one user at
// once, four uploads each, into one home under a 3 MiB quota: what is
// stored never passes the quota and the counts equal what is stored.
func TestTwoProcessesStopAtTheQuota(t *testing.T) {
	const limit = 3 << 20
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			url, home := e.url(t), t.TempDir()
			ps := []*process{
				newProcess(t, url, home, quota.Limits{Bytes: limit, Files: 100}, 10*time.Second, 0),
				newProcess(t, url, home, quota.Limits{Bytes: limit, Files: 100}, 10*time.Second, 0),
			}
			data := bytes.Repeat([]byte("q"), 700<<10)
			var wg sync.WaitGroup
			var mu sync.Mutex
			stored, refused := 0, 0
			for i := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					err := put(ps[i%2].q, fmt.Sprintf("f%d", i), data)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						stored++
					case errors.Is(err, storage.ErrQuota):
						refused++
					default:
						t.Errorf("upload %d: %v", i, err)
					}
				}()
			}
			wg.Wait()
			b, _ := exact(t, ps[0])
			if b > limit {
				t.Fatalf("%d bytes stored under a %d-byte quota", b, limit)
			}
			// At most 4 of 8 fit (4 × 700 KiB ≤ 3 MiB < 5 × 700 KiB);
			// fewer when uploads in flight held chunks that others needed.
			if stored > 4 || stored+refused != 8 {
				t.Fatalf("%d uploads stored, %d refused", stored, refused)
			}
			t.Logf("%d uploads stored, %d refused: %d bytes of a %d-byte quota", stored, refused, b, limit)
			for _, p := range ps {
				var held int64
				p.d.SQL().QueryRow(`SELECT COALESCE(SUM(bytes + files), 0) FROM quota_reservations`).Scan(&held)
				if held != 0 {
					t.Fatalf("reservations held after every upload ended: %d", held)
				}
			}
		})
	}
}

// TestAbortAndFailExact: an aborted upload, one refused by the quota
// mid-way and one whose commit fails leave the counts exact, and hold
// nothing.
func TestAbortAndFailExact(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			url, home := e.url(t), t.TempDir()
			p := newProcess(t, url, home, quota.Limits{Bytes: 2 << 20, Files: 3}, 10*time.Second, 0)
			ctx := t.Context()
			if err := put(p.q, "kept", make([]byte, 100<<10)); err != nil {
				t.Fatal(err)
			}
			up, err := p.q.Create(ctx, storagetest.P("aborted"), storage.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			up.Write(make([]byte, 1500<<10))
			if b, _, _ := p.usage.Counts(ctx); b < 1600<<10 {
				t.Fatalf("counts during an upload: %d bytes, want its reservation", b)
			}
			if err := up.Abort(ctx); err != nil {
				t.Fatal(err)
			}
			exact(t, p)
			if err := put(p.q, "toobig", make([]byte, 3<<20)); !errors.Is(err, storage.ErrQuota) {
				t.Fatalf("upload past the quota: %v", err)
			}
			exact(t, p)
			// A commit into a directory removed meanwhile fails.
			if err := p.q.Mkdir(ctx, storagetest.P("d"), 0o755); err != nil {
				t.Fatal(err)
			}
			up, err = p.q.Create(ctx, storagetest.P("d/x"), storage.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			up.Write(make([]byte, 10))
			if err := up.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			up, err = p.q.Create(ctx, storagetest.P("d/y"), storage.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			up.Write(make([]byte, 10))
			if err := p.q.Remove(ctx, storagetest.P("d/x")); err != nil {
				t.Fatal(err)
			}
			up.Abort(ctx)
			if err := p.q.RemoveDir(ctx, storagetest.P("d")); err != nil {
				t.Fatal(err)
			}
			exact(t, p)
			// Overwrite: the old file's bytes go at commit.
			if err := put(p.q, "kept", make([]byte, 10)); err != nil {
				t.Fatal(err)
			}
			exact(t, p)
			// A file quota: the fourth name is refused.
			put(p.q, "a", nil)
			put(p.q, "b", nil)
			if err := put(p.q, "c", nil); !errors.Is(err, quota.ErrFiles) {
				t.Fatalf("fourth file: %v, want ErrFiles", err)
			}
			exact(t, p)
		})
	}
}

// TestGoneNodeReleased: a process that stops without a word (its
// heartbeat ends, as at SIGKILL) holds its reservations until another
// node sees its heartbeat older than the timeout and releases them.
func TestGoneNodeReleased(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			url, home := e.url(t), t.TempDir()
			const timeout = time.Second
			dead := newProcess(t, url, home, quota.Limits{Bytes: 1 << 30}, timeout, 0)
			live := newProcess(t, url, home, quota.Limits{Bytes: 1 << 30}, timeout, 0)
			up, err := dead.q.Create(t.Context(), storagetest.P("cut"), storage.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			up.Write(make([]byte, 300<<10))
			if b, f, _ := live.usage.Counts(t.Context()); b != sqlquota.DefaultChunk || f != 1 {
				t.Fatalf("the live node sees %d bytes, %d files of the dead one's upload; want a chunk and a slot", b, f)
			}
			dead.d.Close() // no heartbeat, no release, like SIGKILL
			deadline := time.Now().Add(wait)
			for {
				// The live node's heartbeat releases it (ReapGone).
				var n int
				if err := live.d.SQL().QueryRow(`SELECT COUNT(*) FROM nodes WHERE id = $1`, dead.node.ID()).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the dead node was never released")
				}
				time.Sleep(timeout / 4)
			}
			exact(t, live)
			var rows int
			live.d.SQL().QueryRow(`SELECT COUNT(*) FROM quota_reservations WHERE node = $1`, dead.node.ID()).Scan(&rows)
			if rows != 0 {
				t.Fatalf("%d reservation rows of the gone node left", rows)
			}
		})
	}
}

// TestSetAndForget: Set makes the counts a scan plus what uploads hold;
// Forget deletes them, and the next use counts the home again.
func TestSetAndForget(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			url, home := e.url(t), t.TempDir()
			p := newProcess(t, url, home, quota.Limits{Bytes: 1 << 30}, 10*time.Second, -1)
			ctx := t.Context()
			if err := put(p.q, "f", make([]byte, 1000)); err != nil {
				t.Fatal(err)
			}
			up, err := p.q.Create(ctx, storagetest.P("g"), storage.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			up.Write(make([]byte, 50))
			cli := sqlquota.New(p.d, nil, sqlquota.Options{})
			if b, f, err := cli.Set(ctx, "alice", home, 7, 7); err != nil || b != 57 || f != 8 {
				t.Fatalf("Set(7, 7) with 50 bytes and a slot held = %d, %d, %v; want 57, 8", b, f, err)
			}
			if b, f, ok, err := cli.Usage(ctx, "alice", home); err != nil || !ok || b != 57 || f != 8 {
				t.Fatalf("Usage = %d %d %v %v", b, f, ok, err)
			}
			if err := up.Abort(ctx); err != nil {
				t.Fatal(err)
			}
			if b, f, _ := p.usage.Counts(ctx); b != 7 || f != 7 {
				t.Fatalf("after the abort: %d, %d; want the scan's 7, 7", b, f)
			}
			if err := cli.Forget(ctx, "alice"); err != nil {
				t.Fatal(err)
			}
			if _, _, ok, _ := cli.Usage(ctx, "alice", home); ok {
				t.Fatal("Forget kept the row")
			}
			// The process counts the home again at its next reservation.
			if err := put(p.q, "h", make([]byte, 5)); err != nil {
				t.Fatal(err)
			}
			exact(t, p)
		})
	}
}

// TestChunks: with chunked reservations an upload holds at most one chunk
// it has not written, a write near the limit still gets its own bytes, and
// the counts are exact after the commit.
func TestChunks(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			url, home := e.url(t), t.TempDir()
			const chunk = 100 << 10
			p := newProcess(t, url, home, quota.Limits{Bytes: 260 << 10}, 10*time.Second, chunk)
			ctx := t.Context()
			up, err := p.q.Create(ctx, storagetest.P("f"), storage.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var written int64
			for range 5 {
				n, err := up.Write(make([]byte, 50<<10))
				if err != nil {
					t.Fatal(err)
				}
				written += int64(n)
				b, _, _ := p.usage.Counts(ctx)
				if b < written || b > written+chunk {
					t.Fatalf("%d bytes written, %d reserved: more than a chunk ahead", written, b)
				}
			}
			if _, err := up.Write(make([]byte, 10<<10)); err != nil {
				t.Fatalf("a write that fits beside a chunk that does not: %v", err)
			}
			if _, err := up.Write(make([]byte, 50<<10)); !errors.Is(err, storage.ErrQuota) {
				t.Fatalf("a write past the quota: %v", err)
			}
			if err := up.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if b, _ := exact(t, p); b != 260<<10 {
				t.Fatalf("stored %d", b)
			}
		})
	}
}

// BenchmarkReserve measures one chunk's reservation of an upload (the
// conditional UPDATE and the node's reservation row, in one transaction).
func BenchmarkReserve(b *testing.B) {
	for _, e := range []string{"sqlite", "postgres"} {
		b.Run(e, func(b *testing.B) {
			url := "sqlite:" + filepath.Join(b.TempDir(), "ferry.db")
			if e == "postgres" {
				url = pgenv.DB(b)
			}
			d, err := db.Open(b.Context(), url, db.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			node, err := d.StartNode(b.Context(), db.NodeOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer node.Close(context.Background())
			c := sqlquota.New(d, node, sqlquota.Options{}).Counter("bench", "/h")
			if err := c.Load(b.Context(), func(context.Context) (int64, int64, error) { return 0, 0, nil }); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if err := c.Reserve(b.Context(), quota.Limits{Bytes: 1 << 62}, quota.Change{Bytes: 1 << 20, HeldBytes: 1 << 20}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

package quota_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ferryftp/ferry/internal/quota"
	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/storage/local"
	"github.com/ferryftp/ferry/internal/storage/mem"
	"github.com/ferryftp/ferry/internal/storage/storagetest"
	"github.com/ferryftp/ferry/internal/vpath"
)

// backends are the file systems every accounting test runs on.
var backends = []struct {
	name string
	new  func(t *testing.T) (storage.FS, string)
}{
	{"local", newLocal},
	{"mem", func(t *testing.T) (storage.FS, string) { return mem.New(), "" }},
}

func newLocal(t *testing.T) (storage.FS, string) {
	dir := t.TempDir()
	fsys, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fsys.Close() })
	return fsys, dir
}

// keepOpen is a local FS that the scan cannot close.
type keepOpen struct{ *local.FS }

func (keepOpen) Close() error { return nil }

// loaded returns a Usage of fsys, loaded.
func loaded(t *testing.T, fsys storage.FS) *quota.Usage {
	t.Helper()
	u := &quota.Usage{}
	u.Load(t.Context(), func() (storage.FS, error) {
		if l, ok := fsys.(*local.FS); ok {
			return keepOpen{l}, nil
		}
		return fsys, nil
	})
	if err := u.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	return u
}

// exact fails unless u's counters equal a fresh scan of fsys.
func exact(t *testing.T, fsys storage.FS, u *quota.Usage) {
	t.Helper()
	b, f, err := quota.Scan(context.Background(), fsys)
	if err != nil {
		t.Fatal(err)
	}
	if gb, gf, _ := u.Counts(context.Background()); gb != b || gf != f {
		t.Fatalf("usage counts %d bytes, %d files; the tree holds %d bytes, %d files", gb, gf, b, f)
	}
}

// put stores data under name through fsys.
func put(fsys storage.FS, name string, o storage.CreateOptions, data []byte) error {
	up, err := fsys.Create(context.Background(), storagetest.P(name), o)
	if err != nil {
		return err
	}
	for p := data; len(p) > 0; {
		n := min(len(p), 4096)
		if _, err := up.Write(p[:n]); err != nil {
			up.Abort(context.Background())
			return err
		}
		p = p[n:]
	}
	return up.Commit(context.Background())
}

func mustPut(t *testing.T, fsys storage.FS, name string, data []byte) {
	t.Helper()
	if err := put(fsys, name, storage.CreateOptions{}, data); err != nil {
		t.Fatalf("store %s: %v", name, err)
	}
}

// TestConformance: the wrapper keeps the storage contract, and its counters
// are exact after every check of the suite (but ReadDirLarge, which makes
// its entries as hard links on the host, behind the wrapper's back).
func TestConformance(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			storagetest.Run(t, func(t *testing.T) (storage.FS, string) {
				inner, host := b.new(t)
				u := loaded(t, inner)
				if !strings.HasSuffix(t.Name(), "/ReadDirLarge") {
					t.Cleanup(func() { exact(t, inner, u) })
				}
				return quota.Wrap(inner, u, quota.Limits{Bytes: 1 << 40, Files: 1 << 20}), host
			})
		})
	}
}

// noScanner hides a backend's ScanUsage, so Scan walks ReadDir.
type noScanner struct{ storage.FS }

type noScannerLstat struct{ *local.FS }

func (noScannerLstat) ScanUsage() {} // a different signature: not a UsageScanner

// TestScan counts regular files by their own entries: links count as
// nothing (a link to a directory is not walked), temporary upload files are
// skipped.
func TestScan(t *testing.T) {
	inner, dir := newLocal(t)
	os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755)
	os.WriteFile(filepath.Join(dir, "one"), make([]byte, 100), 0o644)
	os.WriteFile(filepath.Join(dir, "a", "two"), make([]byte, 20), 0o644)
	os.WriteFile(filepath.Join(dir, "a", "b", "three"), make([]byte, 3), 0o644)
	os.WriteFile(filepath.Join(dir, "a", storage.TempPrefix+"0123-up"), make([]byte, 5000), 0o644)
	os.Symlink("one", filepath.Join(dir, "link"))
	os.Symlink("a", filepath.Join(dir, "dirlink"))
	os.Symlink("/etc/passwd", filepath.Join(dir, "outside"))
	for _, fsys := range []storage.FS{inner, noScannerLstat{inner.(*local.FS)}} {
		b, f, err := quota.Scan(t.Context(), fsys)
		if err != nil || b != 123 || f != 3 {
			t.Errorf("%T: Scan = %d bytes, %d files, %v; want 123, 3", fsys, b, f, err)
		}
	}

	m := mem.New()
	mustPut(t, m, "x", make([]byte, 7))
	m.Mkdir(t.Context(), storagetest.P("d"), 0o755)
	mustPut(t, m, "d/y", make([]byte, 8))
	if b, f, err := quota.Scan(t.Context(), noScanner{m}); err != nil || b != 15 || f != 2 {
		t.Errorf("mem: Scan = %d bytes, %d files, %v; want 15, 2", b, f, err)
	}
}

// blockingFS blocks ReadDir until release is closed.
type blockingFS struct {
	storage.FS
	started chan struct{}
	release chan struct{}
	once    sync.Once
}

func (b *blockingFS) ReadDir(ctx context.Context, name vpath.Path) (storage.DirIter, error) {
	b.once.Do(func() { close(b.started) })
	<-b.release
	return b.FS.ReadDir(ctx, name)
}

// TestLoadInBackground: Load returns while the scan runs; operations that
// count wait for it, within their context.
func TestLoadInBackground(t *testing.T) {
	m := mem.New()
	mustPut(t, m, "old", make([]byte, 10))
	b := &blockingFS{FS: m, started: make(chan struct{}), release: make(chan struct{})}
	u := &quota.Usage{}
	u.Load(t.Context(), func() (storage.FS, error) { return noScanner{b}, nil })
	<-b.started // Load has returned and the scan is blocked
	q := quota.Wrap(m, u, quota.Limits{Files: 2})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := q.Create(ctx, storagetest.P("new"), storage.CreateOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Create before the load ended: %v, want context.Canceled", err)
	}
	if err := q.Remove(ctx, storagetest.P("old")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Remove before the load ended: %v, want context.Canceled", err)
	}
	done := make(chan error, 1)
	go func() { done <- put(q, "new", storage.CreateOptions{}, []byte("abc")) }()
	close(b.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if gb, gf, _ := u.Counts(t.Context()); gb != 13 || gf != 2 {
		t.Fatalf("counts %d bytes, %d files; want 13, 2", gb, gf)
	}
	exact(t, m, u)
	if err := put(q, "third", storage.CreateOptions{}, nil); !errors.Is(err, storage.ErrQuota) {
		t.Fatalf("third file: %v, want ErrQuota", err)
	}
	// A never-loaded Usage refuses to count.
	if _, err := quota.Wrap(m, &quota.Usage{}, quota.Limits{}).Create(t.Context(), storagetest.P("x"), storage.CreateOptions{}); err == nil {
		t.Fatal("Create on an unloaded usage succeeded")
	}
}

// TestConcurrentNewFiles: eight uploads of new names under a three-file
// quota, all created before any commits: exactly three get a slot.
func TestConcurrentNewFiles(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			for round := range 20 {
				inner, _ := b.new(t)
				u := loaded(t, inner)
				q := quota.Wrap(inner, u, quota.Limits{Files: 3})
				var wg sync.WaitGroup
				errs := make([]error, 8)
				start := make(chan struct{})
				for i := range errs {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						errs[i] = put(q, fmt.Sprintf("f%d", i), storage.CreateOptions{}, []byte("data"))
					}()
				}
				close(start)
				wg.Wait()
				ok := 0
				for _, err := range errs {
					switch {
					case err == nil:
						ok++
					case !errors.Is(err, storage.ErrQuota):
						t.Fatalf("round %d: %v", round, err)
					}
				}
				if ok != 3 {
					t.Fatalf("round %d: %d uploads stored under a 3-file quota", round, ok)
				}
				exact(t, inner, u)
			}
		})
	}
}

// TestOverwriteRaces: overwrites of one name while others delete and rename
// it, under a byte quota: what is stored never passes the quota and the
// counters stay exact.
func TestOverwriteRaces(t *testing.T) {
	const limit = 100 << 10
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			inner, _ := b.new(t)
			u := loaded(t, inner)
			q := quota.Wrap(inner, u, quota.Limits{Bytes: limit})
			data := bytes.Repeat([]byte("x"), 40<<10)
			mustPut(t, q, "f", data)
			var wg sync.WaitGroup
			var mu sync.Mutex
			var over []int64
			check := func() {
				sb, _, _ := quota.Scan(context.Background(), inner)
				if cb, _, _ := u.Counts(context.Background()); sb > limit || cb > limit {
					mu.Lock()
					over = append(over, max(sb, cb))
					mu.Unlock()
				}
			}
			for w := range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range 30 {
						err := put(q, "f", storage.CreateOptions{}, data)
						if err != nil && !errors.Is(err, storage.ErrQuota) {
							t.Errorf("writer %d: %v", w, err)
						}
						check()
					}
				}()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx := context.Background()
				for i := range 60 {
					switch i % 3 {
					case 0:
						q.Remove(ctx, storagetest.P("f"))
					case 1:
						q.Rename(ctx, storagetest.P("f"), storagetest.P("g"))
					case 2:
						q.Rename(ctx, storagetest.P("g"), storagetest.P("f"))
					}
					check()
				}
			}()
			wg.Wait()
			if len(over) > 0 {
				t.Fatalf("stored past the %d-byte quota: %v", limit, over)
			}
			exact(t, inner, u)
		})
	}
}

// TestOverwriteNeedsSlotAtCommit: a file removed while its replacement
// uploads makes the upload a new file at commit, which needs a slot.
func TestOverwriteNeedsSlotAtCommit(t *testing.T) {
	inner := mem.New()
	u := loaded(t, inner)
	q := quota.Wrap(inner, u, quota.Limits{Files: 1})
	mustPut(t, q, "f", []byte("old"))
	up, err := q.Create(t.Context(), storagetest.P("f"), storage.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	up.Write([]byte("new"))
	if err := q.Remove(t.Context(), storagetest.P("f")); err != nil {
		t.Fatal(err)
	}
	mustPut(t, q, "g", []byte("takes the slot"))
	if err := up.Commit(t.Context()); !errors.Is(err, storage.ErrQuota) {
		t.Fatalf("commit without a slot: %v, want ErrQuota", err)
	}
	if _, err := inner.Stat(t.Context(), storagetest.P("f")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("f after the refused commit: %v", err)
	}
	exact(t, inner, u)
}

// TestSymlinks: a link counts as nothing, whatever it points to: removing
// it, renaming onto it or uploading over it changes only what the link
// itself was.
func TestSymlinks(t *testing.T) {
	inner, dir := newLocal(t)
	os.WriteFile(filepath.Join(dir, "target"), make([]byte, 1000), 0o644)
	os.Symlink("target", filepath.Join(dir, "l1"))
	os.Symlink("target", filepath.Join(dir, "l2"))
	os.Symlink("target", filepath.Join(dir, "l3"))
	u := loaded(t, inner)
	q := quota.Wrap(inner, u, quota.Limits{})
	ctx := t.Context()
	if err := q.Remove(ctx, storagetest.P("l1")); err != nil {
		t.Fatal(err)
	}
	exact(t, inner, u)
	os.WriteFile(filepath.Join(dir, "small"), make([]byte, 10), 0o644)
	u = loaded(t, inner)
	q = quota.Wrap(inner, u, quota.Limits{})
	if err := q.Rename(ctx, storagetest.P("small"), storagetest.P("l2")); err != nil { // replaces the link
		t.Fatal(err)
	}
	exact(t, inner, u)
	mustPut(t, q, "l3", []byte("new file over a link"))
	exact(t, inner, u)
	os.Symlink("target", filepath.Join(dir, "l4"))
	if err := q.Rename(ctx, storagetest.P("l4"), storagetest.P("l2")); err != nil { // a link replaces a file
		t.Fatal(err)
	}
	exact(t, inner, u)
}

// TestRenameOverFile subtracts the replaced file; renaming onto another
// link of the same file removes nothing.
func TestRenameOverFile(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			inner, dir := b.new(t)
			u := loaded(t, inner)
			q := quota.Wrap(inner, u, quota.Limits{})
			ctx := t.Context()
			mustPut(t, q, "a", make([]byte, 10))
			mustPut(t, q, "b", make([]byte, 20))
			if err := q.Rename(ctx, storagetest.P("a"), storagetest.P("b")); err != nil {
				t.Fatal(err)
			}
			if gb, gf, _ := u.Counts(ctx); gb != 10 || gf != 1 {
				t.Fatalf("after RNTO over a file: %d bytes, %d files; want 10, 1", gb, gf)
			}
			exact(t, inner, u)
			if dir != "" {
				os.Link(filepath.Join(dir, "b"), filepath.Join(dir, "c"))
				u = loaded(t, inner)
				q = quota.Wrap(inner, u, quota.Limits{})
				if err := q.Rename(ctx, storagetest.P("b"), storagetest.P("c")); err != nil {
					t.Fatal(err)
				}
				exact(t, inner, u)
			}
		})
	}
}

// TestInPlace: REST truncates or extends, APPE grows, Abort cuts back or
// removes, and the name is busy while it is written.
func TestInPlace(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			inner, _ := b.new(t)
			u := loaded(t, inner)
			q := quota.Wrap(inner, u, quota.Limits{Bytes: 1000, Files: 3})
			ctx := t.Context()
			mustPut(t, q, "f", make([]byte, 500))
			if err := put(q, "f", storage.CreateOptions{Offset: 100}, make([]byte, 50)); err != nil {
				t.Fatal(err)
			}
			exact(t, inner, u) // 150 bytes
			if err := put(q, "f", storage.CreateOptions{Append: true}, make([]byte, 50)); err != nil {
				t.Fatal(err)
			}
			exact(t, inner, u) // 200 bytes
			// An offset past the end is a hole the quota must hold.
			if err := put(q, "f", storage.CreateOptions{Offset: 5000}, nil); !errors.Is(err, storage.ErrQuota) {
				t.Fatalf("REST past the quota: %v, want ErrQuota", err)
			}
			exact(t, inner, u)
			if err := put(q, "f", storage.CreateOptions{Append: true}, make([]byte, 900)); !errors.Is(err, storage.ErrQuota) {
				t.Fatalf("APPE past the quota: %v, want ErrQuota", err)
			}
			exact(t, inner, u)
			if err := put(q, "new", storage.CreateOptions{Append: true}, make([]byte, 30)); err != nil {
				t.Fatal(err)
			}
			exact(t, inner, u)
			up, err := q.Create(ctx, storagetest.P("u"), storage.CreateOptions{Exclusive: true})
			if err != nil {
				t.Fatal(err)
			}
			up.Write(make([]byte, 40))
			exact(t, inner, u)
			if _, err := q.Create(ctx, storagetest.P("x"), storage.CreateOptions{Exclusive: true}); !errors.Is(err, storage.ErrQuota) {
				t.Fatalf("fourth file: %v, want ErrQuota", err)
			}
			if err := q.Remove(ctx, storagetest.P("u")); !errors.Is(err, quota.ErrBusy) {
				t.Errorf("Remove of a name being written: %v, want ErrBusy", err)
			}
			if err := q.Rename(ctx, storagetest.P("f"), storagetest.P("u")); !errors.Is(err, quota.ErrBusy) {
				t.Errorf("Rename onto a name being written: %v, want ErrBusy", err)
			}
			if _, err := q.Create(ctx, storagetest.P("u"), storage.CreateOptions{}); !errors.Is(err, quota.ErrBusy) {
				t.Errorf("whole upload of a name being written: %v, want ErrBusy", err)
			}
			if _, err := q.Create(ctx, storagetest.P("u"), storage.CreateOptions{Append: true}); !errors.Is(err, quota.ErrBusy) {
				t.Errorf("second in-place upload: %v, want ErrBusy", err)
			}
			// Renaming the file being written is allowed: the upload
			// follows it, and is measured where it went.
			if err := q.Rename(ctx, storagetest.P("u"), storagetest.P("v")); err != nil {
				t.Fatal(err)
			}
			up.Write(make([]byte, 10))
			if err := up.Abort(ctx); err != nil {
				t.Fatal(err)
			}
			exact(t, inner, u)
			if err := q.Remove(ctx, storagetest.P("f")); err != nil {
				t.Fatal(err)
			}
			exact(t, inner, u)
		})
	}
}

// TestUploadsFollowDirectoryRenames: an upload below a directory that is
// renamed is counted where it lands (or released where the backend cannot
// commit it).
func TestUploadsFollowDirectoryRenames(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			inner, _ := b.new(t)
			u := loaded(t, inner)
			q := quota.Wrap(inner, u, quota.Limits{Files: 10})
			ctx := t.Context()
			for _, d := range []string{"a", "b"} {
				if err := q.Mkdir(ctx, storagetest.P(d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			mustPut(t, q, "b/old", make([]byte, 100))
			whole, err := q.Create(ctx, storagetest.P("a/new"), storage.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			whole.Write(make([]byte, 10))
			over, err := q.Create(ctx, storagetest.P("b/old"), storage.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			over.Write(make([]byte, 20))
			app, err := q.Create(ctx, storagetest.P("b/old"), storage.CreateOptions{Append: true})
			if !errors.Is(err, quota.ErrBusy) {
				t.Fatalf("APPE while a whole upload runs: %v, %v", app, err)
			}
			if err := put(q, "a/in", storage.CreateOptions{Append: true}, make([]byte, 5)); err != nil {
				t.Fatal(err)
			}
			inPlace, err := q.Create(ctx, storagetest.P("a/in"), storage.CreateOptions{Append: true})
			if err != nil {
				t.Fatal(err)
			}
			inPlace.Write(make([]byte, 7))
			if err := q.Rename(ctx, storagetest.P("a"), storagetest.P("c")); err != nil {
				t.Fatal(err)
			}
			if err := q.Rename(ctx, storagetest.P("b"), storagetest.P("d")); err != nil {
				t.Fatal(err)
			}
			inPlace.Write(make([]byte, 3))
			for _, up := range []storage.Upload{whole, over, inPlace} {
				up.Commit(ctx) // the backend may refuse a commit into a moved directory
			}
			exact(t, inner, u)
		})
	}
}

// TestTable shares one Usage per key until it is forgotten.
func TestTable(t *testing.T) {
	var tab quota.Table
	a := tab.Get("alice", "/h")
	if tab.Get("alice", "/h") != a || tab.Get("bob", "/h") == a || tab.Get("alice", "/other") == a {
		t.Fatal("Get does not share by name and home")
	}
	tab.Forget("alice", "/h")
	if tab.Get("alice", "/h") == a {
		t.Fatal("Forget kept the usage")
	}
}

// TestChmodKeepsDirectoriesReadable: SITE CHMOD 000 of a directory would
// hide it from the next usage scan (unreadable directories are skipped), so
// its bytes would stop counting at the next start. A directory keeps its
// owner's read and search bits; a file takes any mode.
func TestChmodKeepsDirectoriesReadable(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			inner, _ := b.new(t)
			u := loaded(t, inner)
			q := quota.Wrap(inner, u, quota.Limits{Bytes: 1 << 20})
			ctx := t.Context()
			if err := q.Mkdir(ctx, storagetest.P("d"), 0o755); err != nil {
				t.Fatal(err)
			}
			mustPut(t, q, "d/f", []byte("counted"))
			for _, mode := range []fs.FileMode{0, 0o300, 0o055} {
				if err := q.Chmod(ctx, storagetest.P("d"), mode); err != nil {
					t.Fatal(err)
				}
				fi, err := inner.Stat(ctx, storagetest.P("d"))
				if err != nil {
					t.Fatal(err)
				}
				if got := fi.Mode().Perm(); got != mode|0o500 {
					t.Errorf("chmod %03o of a directory: mode %03o, want %03o", mode, got, mode|0o500)
				}
			}
			exact(t, inner, u) // a fresh scan still sees d/f
			if err := q.Chmod(ctx, storagetest.P("d/f"), 0); err != nil {
				t.Fatal(err)
			}
			if fi, err := inner.Stat(ctx, storagetest.P("d/f")); err != nil || fi.Mode().Perm() != 0 {
				t.Errorf("chmod 000 of a file: %v, %v", fi.Mode(), err)
			}
		})
	}
}

package local_test

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/storage/local"
	"github.com/ferryftp/ferry/internal/storage/storagetest"
	"github.com/ferryftp/ferry/internal/testenv"
	"github.com/ferryftp/ferry/internal/vpath"
)

// newLocal roots a file system at a fresh temporary directory.
func newLocal(t *testing.T) (storage.FS, string) {
	dir := t.TempDir()
	return openLocal(t, dir), dir
}

func openLocal(t testing.TB, dir string) *local.FS {
	t.Helper()
	fsys, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fsys.Close() })
	return fsys
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, newLocal)
}

func writeFile(t testing.TB, p, data string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t testing.TB, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

func symlink(t testing.TB, target, p string) {
	t.Helper()
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

// The outside of a jail: what a root's escaping symlinks point at.
const (
	secret      = "SECRET-OUTSIDE-CONTENT" // outside/secret and outside/dir/f
	insideData  = "inside"                 // root/sub/f: a different length than secret
	outsideOnly = "outside-only-name"      // a name that exists only outside
)

// jail is a root with symlinks leading out of it, and the directory outside.
type jail struct {
	base, root, outside string
	fsys                *local.FS
	s                   *storagetest.S
	before              storagetest.Tree
}

// escapes are names in the root that resolve outside it.
var escapes = []string{"abs", "rel", "sub/rel2", "sub/deep"}

func newJail(t *testing.T) *jail {
	j := &jail{base: t.TempDir()}
	j.root = filepath.Join(j.base, "root")
	j.outside = filepath.Join(j.base, "outside")
	buildJail(t, j.root, j.outside)
	j.fsys = openLocal(t, j.root)
	j.s = storagetest.NewS(t, j.fsys, j.root)
	// Errors must hide the whole host tree, not only the root.
	j.s.Hide = []string{j.base}
	j.before = storagetest.Snapshot(t, j.outside)
	return j
}

// buildJail lays out:
//
//	outside/secret, outside/outside-only-name, outside/empty/, outside/dir/f
//	root/sub/f
//	root/abs -> /…/outside          root/rel -> ../outside
//	root/sub/rel2 -> ../../outside   root/sub/deep -> ../../outside/dir
//	root/absfile -> /…/outside/secret   root/relfile -> ../outside/secret
//	root/in -> sub   root/infile -> sub/f   root/sub/up -> ../sub   (inside)
func buildJail(t testing.TB, root, outside string) {
	mkdir(t, filepath.Join(outside, "empty"))
	mkdir(t, filepath.Join(outside, "dir"))
	writeFile(t, filepath.Join(outside, "secret"), secret)
	writeFile(t, filepath.Join(outside, outsideOnly), secret)
	writeFile(t, filepath.Join(outside, "dir", "f"), secret)
	mkdir(t, filepath.Join(root, "sub"))
	writeFile(t, filepath.Join(root, "sub", "f"), insideData)
	for _, l := range jailLinks(outside) {
		symlink(t, l.target, filepath.Join(root, l.name))
	}
}

type link struct{ name, target string }

func jailLinks(outside string) []link {
	return []link{
		{"abs", outside},
		{"rel", "../outside"},
		{"sub/rel2", "../../outside"},
		{"sub/deep", "../../outside/dir"},
		{"absfile", filepath.Join(outside, "secret")},
		{"relfile", "../outside/secret"},
		{"in", "sub"},
		{"infile", "sub/f"},
		{"sub/up", "../sub"},
	}
}

// untouched fails the test if anything outside the root changed.
func (j *jail) untouched(t testing.TB) {
	t.Helper()
	if d := j.before.Diff(storagetest.Snapshot(t, j.outside)); d != "" {
		t.Errorf("outside the root: %s", d)
	}
	ents, err := os.ReadDir(j.base)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"outside", "root"}) {
		t.Errorf("beside the root: %q, want [outside root]", names)
	}
}

var refused = []error{fs.ErrPermission, fs.ErrNotExist}

func TestJailSymlinksOut(t *testing.T) {
	j := newJail(t)
	s, ctx, fsys := j.s, t.Context(), j.fsys
	when := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	modes := []storage.CreateOptions{{}, {Offset: 1}, {Append: true}, {Exclusive: true}}

	var names []string
	for _, e := range escapes {
		names = append(names, e, e+"/secret", e+"/f", e+"/"+outsideOnly, e+"/empty", e+"/dir/f")
	}
	names = append(names, "absfile", "relfile")
	for _, name := range names {
		isLink := slices.Contains(escapes, name) || name == "absfile" || name == "relfile"
		fi, err := fsys.Stat(ctx, storagetest.P(name))
		s.Want("Stat("+name+")", err, refused...)
		if err == nil && fi.Size() == int64(len(secret)) {
			t.Errorf("Stat(%q) reports the outside file", name)
		}
		if f, err := fsys.Open(ctx, storagetest.P(name), 0); err == nil {
			b, _ := io.ReadAll(f)
			f.Close()
			t.Errorf("Open(%q) succeeded and read %q", name, b)
		} else {
			s.Want("Open("+name+")", err, refused...)
		}
		if it, err := fsys.ReadDir(ctx, storagetest.P(name)); err == nil {
			b, _ := it.Next(100)
			it.Close()
			t.Errorf("ReadDir(%q) succeeded: %d entries", name, len(b))
		} else {
			s.Want("ReadDir("+name+")", err, append(refused, storage.ErrNotDir)...)
		}
		s.Want("Chmod("+name+")", fsys.Chmod(ctx, storagetest.P(name), 0o777), refused...)
		s.Want("Chtimes("+name+")", fsys.Chtimes(ctx, storagetest.P(name), when), refused...)
		if !isLink {
			// The links themselves are inside the root: removing or
			// renaming them is allowed (and harmless) and comes last.
			s.Want("Remove("+name+")", fsys.Remove(ctx, storagetest.P(name)), refused...)
			s.Want("RemoveDir("+name+")", fsys.RemoveDir(ctx, storagetest.P(name)), refused...)
			s.Want("Rename("+name+", stolen)", fsys.Rename(ctx, storagetest.P(name), storagetest.P("stolen")), refused...)
		}
		for _, o := range modes {
			if isLink && (o == storage.CreateOptions{}) {
				continue // replacing the link itself is not an escape; below
			}
			up, err := fsys.Create(ctx, storagetest.P(name), o)
			if err == nil {
				up.Write([]byte("planted"))
				up.Commit(t.Context())
				t.Errorf("Create(%q, %+v) succeeded", name, o)
				continue
			}
			want := refused
			if o.Exclusive && isLink {
				want = []error{fs.ErrExist} // the link exists
			}
			s.Want(fmt.Sprintf("Create(%q, %+v)", name, o), err, want...)
		}
	}
	for _, e := range escapes {
		s.Want("Mkdir("+e+"/new)", fsys.Mkdir(ctx, storagetest.P(e+"/new"), 0o755), refused...)
		for _, o := range modes {
			if _, err := fsys.Create(ctx, storagetest.P(e+"/new"), o); err == nil {
				t.Errorf("Create(%q, %+v) succeeded", e+"/new", o)
			} else {
				s.Want(fmt.Sprintf("Create(%q, %+v)", e+"/new", o), err, refused...)
			}
		}
		s.Want("Rename(sub/f, "+e+"/planted)", fsys.Rename(ctx, storagetest.P("sub/f"), storagetest.P(e+"/planted")), refused...)
		s.Want("Rename(sub, "+e+"/planted)", fsys.Rename(ctx, storagetest.P("sub"), storagetest.P(e+"/planted")), refused...)
	}
	s.Content("sub/f", insideData)

	// A listing shows escaping links as links: it does not describe what
	// lies outside.
	for _, fi := range s.List(".", 100) {
		if strings.HasPrefix(fi.Name(), "abs") || strings.HasPrefix(fi.Name(), "rel") {
			if fi.Mode()&fs.ModeSymlink == 0 {
				t.Errorf("ReadDir(.) entry %s = %v: resolved outside the root", fi.Name(), fi.Mode())
			}
		}
	}
	for _, fi := range s.List("sub", 100) {
		if fi.Name() == "rel2" || fi.Name() == "deep" {
			if fi.Mode()&fs.ModeSymlink == 0 {
				t.Errorf("ReadDir(sub) entry %s = %v: resolved outside the root", fi.Name(), fi.Mode())
			}
		}
	}
	j.untouched(t)

	// The links themselves may be replaced, renamed and removed: that acts
	// on the link inside the root, never on its target.
	s.Write("absfile", "replaced the link")
	s.Content("absfile", "replaced the link")
	s.OK("Rename(relfile)", fsys.Rename(ctx, storagetest.P("relfile"), storagetest.P("moved-link")))
	s.OK("Remove(moved-link)", fsys.Remove(ctx, storagetest.P("moved-link")))
	s.OK("Remove(abs)", fsys.Remove(ctx, storagetest.P("abs")))
	s.OK("Rename(rel)", fsys.Rename(ctx, storagetest.P("rel"), storagetest.P("rel-moved")))
	s.Want("Stat(rel-moved/secret)", func() error { _, err := fsys.Stat(ctx, storagetest.P("rel-moved/secret")); return err }(), refused...)
	j.untouched(t)
}

func TestJailSymlinksInside(t *testing.T) {
	j := newJail(t)
	s, ctx, fsys := j.s, t.Context(), j.fsys
	s.Content("infile", insideData)
	s.Content("in/f", insideData)
	s.Content("sub/up/f", insideData)
	s.Content("sub/up/up/up/f", insideData)
	if got := s.ReadAt("infile", 2); got != insideData[2:] {
		t.Errorf("Open(infile, 2) read %q", got)
	}
	fi, err := fsys.Stat(ctx, storagetest.P("in"))
	s.OK("Stat(in)", err)
	if !fi.IsDir() {
		t.Errorf("Stat(in) = %v, want a directory", fi.Mode())
	}
	// Listings show what the client can open, under the link's name.
	got := map[string]fs.FileInfo{}
	for _, fi := range s.List(".", 100) {
		got[fi.Name()] = fi
	}
	if fi := got["in"]; fi == nil || !fi.IsDir() {
		t.Errorf("ReadDir(.) entry in = %v, want a directory", fi)
	}
	if fi := got["infile"]; fi == nil || !fi.Mode().IsRegular() || fi.Size() != int64(len(insideData)) {
		t.Errorf("ReadDir(.) entry infile = %v, want the regular file it points at", fi)
	}
	s.Write("in/new", "via link")
	s.Content("sub/new", "via link")
	s.Upload("infile", storage.CreateOptions{Append: true}, "+more", true)
	s.Content("sub/f", insideData+"+more")
	s.Upload("in/f", storage.CreateOptions{Offset: 6}, "", true)
	s.Content("sub/f", insideData)
	s.OK("Mkdir(in/m)", fsys.Mkdir(ctx, storagetest.P("in/m"), 0o755))
	if fi, err := os.Stat(filepath.Join(j.root, "sub", "m")); err != nil || !fi.IsDir() {
		t.Errorf("Mkdir(in/m) made %v, %v", fi, err)
	}
	s.OK("Chmod(infile)", fsys.Chmod(ctx, storagetest.P("infile"), 0o600))
	if fi, err := os.Stat(filepath.Join(j.root, "sub", "f")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("Chmod(infile) left the target %v, %v", fi, err)
	}
	when := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	s.OK("Chtimes(in/f)", fsys.Chtimes(ctx, storagetest.P("in/f"), when))
	if fi, err := os.Stat(filepath.Join(j.root, "sub", "f")); err != nil || !fi.ModTime().Equal(when) {
		t.Errorf("Chtimes(in/f) left the target %v, %v", fi, err)
	}
	s.OK("Rename(in/new, in/new2)", fsys.Rename(ctx, storagetest.P("in/new"), storagetest.P("in/new2")))
	s.Content("sub/new2", "via link")
	s.OnlyNames("in", "deep", "f", "m", "new2", "rel2", "up")
	// Removing a link removes the link, not its target.
	s.OK("Remove(infile)", fsys.Remove(ctx, storagetest.P("infile")))
	s.Content("sub/f", insideData)
	j.untouched(t)
}

// TestCreateOnSymlinkToDir: a name that Stat reports as a directory is a
// directory to Create too, whatever path leads to it.
func TestCreateOnSymlinkToDir(t *testing.T) {
	j := newJail(t)
	s := j.s
	for _, o := range []storage.CreateOptions{{}, {Offset: 1}, {Append: true}, {Exclusive: true}} {
		up, err := j.fsys.Create(t.Context(), storagetest.P("in"), o)
		if err == nil {
			up.Abort(t.Context())
		}
		s.Want(fmt.Sprintf("Create(in, %+v)", o), err, storage.ErrIsDir, fs.ErrExist)
	}
	if fi, err := os.Lstat(filepath.Join(j.root, "in")); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("the link in is now %v, %v", fi, err)
	}
	up, err := j.fsys.Create(t.Context(), storagetest.P("in"), storage.CreateOptions{})
	if err == nil {
		up.Write([]byte("x"))
		up.Commit(t.Context())
		if fi, err := os.Lstat(filepath.Join(j.root, "in")); err == nil && fi.Mode().IsRegular() {
			t.Errorf("Create+Commit on a link to a directory replaced the link with a file")
		}
	}
	s.Content("sub/f", insideData)
}

// TestJailRace swaps a directory with a symlink out of the root while other
// goroutines work inside it: os.Root must resolve every name atomically.
func TestJailRace(t *testing.T) {
	base := t.TempDir()
	root, outside := filepath.Join(base, "root"), filepath.Join(base, "outside")
	mkdir(t, filepath.Join(outside, "empty"))
	writeFile(t, filepath.Join(outside, "f"), secret)
	writeFile(t, filepath.Join(outside, "g"), secret)
	writeFile(t, filepath.Join(outside, outsideOnly), secret)
	mkdir(t, filepath.Join(root, "d"))
	writeFile(t, filepath.Join(root, "d", "f"), insideData)
	fsys := openLocal(t, root)
	before := storagetest.Snapshot(t, outside)
	ctx := t.Context()
	outsideF, err := os.Stat(filepath.Join(outside, "f"))
	if err != nil {
		t.Fatal(err)
	}

	var (
		stop    atomic.Bool
		wg      sync.WaitGroup
		mu      sync.Mutex
		bad     []string
		swaps   atomic.Int64
		opsDone atomic.Int64
	)
	report := func(format string, args ...any) {
		mu.Lock()
		if len(bad) < 20 {
			bad = append(bad, fmt.Sprintf(format, args...))
		}
		mu.Unlock()
	}
	d, saved := filepath.Join(root, "d"), filepath.Join(root, "d.real")
	wg.Add(1)
	go func() {
		defer wg.Done()
		targets := []string{outside, "../outside"}
		for i := 0; !stop.Load(); i++ {
			if err := os.Rename(d, saved); err != nil {
				report("swap: %v", err)
				return
			}
			if err := os.Symlink(targets[i%2], d); err != nil {
				report("swap: %v", err)
				return
			}
			runtime.Gosched()
			if err := os.Remove(d); err != nil {
				report("swap: %v", err)
				return
			}
			if err := os.Rename(saved, d); err != nil {
				report("swap: %v", err)
				return
			}
			swaps.Add(1)
		}
	}()
	when := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				// Compared by inode: the uploads below can give d/f
				// any size, the outside file's included.
				if fi, err := fsys.Stat(ctx, storagetest.P("d/f")); err == nil && os.SameFile(fi, outsideF) {
					report("Stat(d/f) saw the outside file")
				}
				if f, err := fsys.Open(ctx, storagetest.P("d/f"), 0); err == nil {
					b, _ := io.ReadAll(f)
					f.Close()
					if string(b) == secret {
						report("Open(d/f) read the outside file")
					}
				}
				if it, err := fsys.ReadDir(ctx, storagetest.P("d")); err == nil {
					for {
						b, err := it.Next(64)
						for _, fi := range b {
							if fi.Name() == outsideOnly {
								report("ReadDir(d) listed the outside directory")
							}
						}
						if err != nil {
							break
						}
					}
					it.Close()
				}
				for _, o := range []storage.CreateOptions{{}, {Offset: 1}, {Append: true}, {Exclusive: true}} {
					name := fmt.Sprintf("d/new-%d", w)
					if o.Exclusive {
						name = fmt.Sprintf("d/excl-%d-%d", w, i)
					}
					if up, err := fsys.Create(ctx, storagetest.P(name), o); err == nil {
						up.Write([]byte("planted"))
						if i%2 == 0 {
							up.Commit(t.Context())
						} else {
							up.Abort(t.Context())
						}
					}
				}
				fsys.Mkdir(ctx, storagetest.P(fmt.Sprintf("d/m-%d", w)), 0o755)
				fsys.RemoveDir(ctx, storagetest.P(fmt.Sprintf("d/m-%d", w)))
				fsys.RemoveDir(ctx, storagetest.P("d/empty"))
				fsys.Chmod(ctx, storagetest.P("d/f"), 0o600|fs.FileMode(i%2)<<2)
				fsys.Chtimes(ctx, storagetest.P("d/f"), when)
				fsys.Remove(ctx, storagetest.P("d/g"))
				fsys.Rename(ctx, storagetest.P("d/"+outsideOnly), storagetest.P("stolen"))
				fsys.Rename(ctx, storagetest.P(fmt.Sprintf("d/new-%d", w)), storagetest.P("d/f"))
				opsDone.Add(1)
			}
		}()
	}
	// The race runs for about a second; nothing is asserted about time.
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	for _, b := range bad {
		t.Error(b)
	}
	if d := before.Diff(storagetest.Snapshot(t, outside)); d != "" {
		t.Errorf("outside the root: %s", d)
	}
	if _, err := os.Lstat(filepath.Join(root, "stolen")); err == nil {
		t.Errorf("a file was renamed from outside into the root")
	}
	t.Logf("%d swaps, %d rounds of operations", swaps.Load(), opsDone.Load())
}

// TestErrorsHideHostPath provokes errors the suite does not: a symlink
// loop, an offset beyond the file system's limit, a FIFO. None may carry
// the host path: errors can reach a client.
func TestErrorsHideHostPath(t *testing.T) {
	fsys, dir := newLocal(t)
	s := storagetest.NewS(t, fsys, dir)
	ctx := t.Context()
	symlink(t, "loop", filepath.Join(dir, "loop"))
	symlink(t, "b", filepath.Join(dir, "a"))
	symlink(t, "a", filepath.Join(dir, "b"))
	writeFile(t, filepath.Join(dir, "f"), "0123456789")
	for _, name := range []string{"loop", "a", "loop/x", "a/x"} {
		_, err := fsys.Stat(ctx, storagetest.P(name))
		s.Clean("Stat("+name+")", err)
		if err == nil {
			t.Errorf("Stat(%q) succeeded", name)
		}
		_, err = fsys.Open(ctx, storagetest.P(name), 0)
		s.Clean("Open("+name+")", err)
		_, err = fsys.ReadDir(ctx, storagetest.P(name))
		s.Clean("ReadDir("+name+")", err)
		for _, o := range []storage.CreateOptions{{Offset: 1}, {Append: true}} {
			_, err = fsys.Create(ctx, storagetest.P(name), o)
			s.Clean(fmt.Sprintf("Create(%s, %+v)", name, o), err)
		}
		s.Clean("Mkdir("+name+"/x)", fsys.Mkdir(ctx, storagetest.P(name+"/x"), 0o755))
		s.Clean("Chmod("+name+")", fsys.Chmod(ctx, storagetest.P(name), 0o644))
		s.Clean("Chtimes("+name+")", fsys.Chtimes(ctx, storagetest.P(name), time.Now()))
		s.Clean("Rename("+name+"/x)", fsys.Rename(ctx, storagetest.P(name+"/x"), storagetest.P("y")))
	}
	// A client chooses the REST offset: one past any file system's limit.
	for _, off := range []int64{1<<63 - 1, 1 << 62, 1 << 50} {
		up, err := fsys.Create(ctx, storagetest.P("f"), storage.CreateOptions{Offset: off})
		s.Clean(fmt.Sprintf("Create(f, Offset %d)", off), err)
		if err == nil {
			_, err = up.Write([]byte("x"))
			s.Clean(fmt.Sprintf("Write at %d", off), err)
			s.Clean("Abort", up.Abort(t.Context()))
		}
		f, err := fsys.Open(ctx, storagetest.P("f"), off)
		s.Clean(fmt.Sprintf("Open(f, %d)", off), err)
		if err == nil {
			_, err = f.Read(make([]byte, 1))
			if err != io.EOF {
				s.Clean("Read beyond the end", err)
			}
			f.Close()
		}
	}
}

// TestErrorsHideHostPathAfterClose calls methods after Close, Commit or
// Abort: a caller's mistake, but the errors still pass through the mapping
// (or should) and may end up in front of a client.
func TestErrorsHideHostPathAfterClose(t *testing.T) {
	fsys, dir := newLocal(t)
	s := storagetest.NewS(t, fsys, dir)
	ctx := t.Context()
	s.Write("f", "data")
	for _, o := range []storage.CreateOptions{{}, {Append: true}} {
		up, err := fsys.Create(ctx, storagetest.P("f"), o)
		s.OK("Create", err)
		s.OK("Commit", up.Commit(t.Context()))
		_, err = up.Write([]byte("late"))
		if err == nil {
			t.Errorf("Write after Commit (%+v) succeeded", o)
		}
		s.Clean(fmt.Sprintf("Write after Commit (%+v)", o), err)
		s.Clean(fmt.Sprintf("Commit twice (%+v)", o), up.Commit(t.Context()))
	}
	f, err := fsys.Open(ctx, storagetest.P("f"), 0)
	s.OK("Open", err)
	f.Close()
	_, err = f.Read(make([]byte, 1))
	s.Clean("File.Read after Close", err)
	it, err := fsys.ReadDir(ctx, storagetest.P("."))
	s.OK("ReadDir", err)
	it.Close()
	_, err = it.Next(1)
	s.Clean("DirIter.Next after Close", err)
}

func TestSweep(t *testing.T) {
	base := t.TempDir()
	root, outside := filepath.Join(base, "root"), filepath.Join(base, "outside")
	mkdir(t, filepath.Join(root, "a", "b", "c"))
	mkdir(t, filepath.Join(root, storage.TempPrefix+"dir")) // a directory: kept
	mkdir(t, outside)
	writeFile(t, filepath.Join(outside, storage.TempPrefix+"outside"), "keep")
	temps := []string{
		storage.TempPrefix + "0123-top",
		"a/" + storage.TempPrefix + "x",
		"a/b/c/" + storage.TempPrefix + "deep",
		storage.TempPrefix + "dir/" + storage.TempPrefix + "in-dir",
	}
	keeps := []string{
		"plain",
		"a/b/file",
		"a/x" + storage.TempPrefix, // the prefix elsewhere in the name
		"a/b/c/" + strings.TrimSuffix(storage.TempPrefix, "-"), // a shorter prefix
		storage.TempPrefix + "dir/kept",
	}
	for _, p := range append(slices.Clone(temps), keeps...) {
		writeFile(t, filepath.Join(root, p), p)
	}
	// A temporary-looking link is removed as a link; its target stays.
	symlink(t, outside, filepath.Join(root, "out"))
	symlink(t, filepath.Join(outside, storage.TempPrefix+"outside"), filepath.Join(root, storage.TempPrefix+"link"))
	temps = append(temps, storage.TempPrefix+"link")
	// An upload interrupted for real leaves such a file too.
	fsys := openLocal(t, root)
	up, err := fsys.Create(t.Context(), storagetest.P("a/b/upload"), storage.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	up.Write([]byte("interrupted"))
	beforeOut := storagetest.Snapshot(t, outside)

	n, err := local.Sweep(root)
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if want := len(temps) + 1; n != want {
		t.Errorf("Sweep removed %d, want %d", n, want)
	}
	for _, p := range temps {
		if _, err := os.Lstat(filepath.Join(root, p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s left by Sweep: %v", p, err)
		}
	}
	for _, p := range keeps {
		if b, err := os.ReadFile(filepath.Join(root, p)); err != nil || string(b) != p {
			t.Errorf("%s changed by Sweep: %q, %v", p, b, err)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "a", "b")); len(ents) != 2 {
		t.Errorf("a/b after Sweep holds %d entries, want c and file", len(ents))
	}
	if fi, err := os.Lstat(filepath.Join(root, storage.TempPrefix+"dir")); err != nil || !fi.IsDir() {
		t.Errorf("Sweep removed a directory: %v", err)
	}
	if d := beforeOut.Diff(storagetest.Snapshot(t, outside)); d != "" {
		t.Errorf("Sweep changed the outside: %s", d)
	}
	up.Abort(t.Context())
	if n, err := local.Sweep(root); n != 0 || err != nil {
		t.Errorf("second Sweep = %d, %v; want 0, nil", n, err)
	}
	if _, err := local.Sweep(filepath.Join(base, "nope")); err == nil {
		t.Errorf("Sweep of a missing directory succeeded")
	}
}

// blockedInFIFOOpen reports whether a thread of this process sleeps in
// open(2) of a FIFO waiting for its other end, and whether the kernel tells.
func blockedInFIFOOpen() (blocked, known bool) {
	tasks, _ := filepath.Glob("/proc/self/task/*/wchan")
	for _, p := range tasks {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		w := string(b)
		if w != "" && w != "0" {
			known = true
		}
		if strings.Contains(w, "wait_for_partner") || strings.Contains(w, "fifo_open") {
			return true, true
		}
	}
	return false, known
}

// callNear runs op, which may open the FIFO at host path fifo. If op
// blocks in that open, the test fails and op is released by opening the
// FIFO's other end, so the test never hangs.
func callNear(t *testing.T, fifo, what string, op func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- op() }()
	for polls := 0; ; polls++ {
		select {
		case err := <-done:
			return err
		default:
		}
		blocked, known := blockedInFIFOOpen()
		// Without wchan the kernel cannot tell us: after a while, release
		// op without judging it.
		if blocked || !known && polls > 2000 {
			if blocked {
				t.Errorf("%s blocked in open(2) of a FIFO until a peer came", what)
			} else {
				t.Logf("%s: cannot tell whether it blocked (no /proc wchan)", what)
			}
			peer, err := os.OpenFile(fifo, os.O_RDWR|syscall.O_NONBLOCK, 0)
			if err != nil {
				t.Fatalf("opening the FIFO's other end: %v", err)
			}
			err = <-done
			peer.Close()
			return err
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSpecialFiles: devices, FIFOs and sockets are never served nor
// written, and touching one never blocks.
func TestSpecialFiles(t *testing.T) {
	fsys, dir := newLocal(t)
	s := storagetest.NewS(t, fsys, dir)
	ctx := t.Context()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o666); err != nil {
		t.Fatalf("Mkfifo: %v", err)
	}
	symlink(t, "fifo", filepath.Join(dir, "fifolink"))
	for _, name := range []string{"fifo", "fifolink"} {
		err := callNear(t, fifo, "Open("+name+")", func() error {
			f, err := fsys.Open(ctx, storagetest.P(name), 0)
			if err == nil {
				f.Close()
			}
			return err
		})
		s.Want("Open("+name+")", err, fs.ErrPermission)
		err = callNear(t, fifo, "ReadDir("+name+")", func() error {
			it, err := fsys.ReadDir(ctx, storagetest.P(name))
			if err == nil {
				it.Close()
			}
			return err
		})
		s.Want("ReadDir("+name+")", err, storage.ErrNotDir, fs.ErrPermission)
		for _, o := range []storage.CreateOptions{{Offset: 1}, {Append: true}} {
			err = callNear(t, fifo, fmt.Sprintf("Create(%s, %+v)", name, o), func() error {
				up, err := fsys.Create(ctx, storagetest.P(name), o)
				if err == nil {
					up.Abort(t.Context())
				}
				return err
			})
			s.Want(fmt.Sprintf("Create(%s, %+v)", name, o), err, fs.ErrPermission)
		}
	}
	fi, err := fsys.Stat(ctx, storagetest.P("fifo"))
	s.OK("Stat(fifo)", err)
	if fi.Mode()&fs.ModeNamedPipe == 0 {
		t.Errorf("Stat(fifo) mode %v", fi.Mode())
	}

	// A character device (like /dev/zero), where the test may make one.
	dev := filepath.Join(dir, "zero")
	if err := syscall.Mknod(dev, syscall.S_IFCHR|0o666, 1<<8|5); err != nil {
		t.Logf("no device test: mknod: %v", err)
		return
	}
	_, err = fsys.Open(ctx, storagetest.P("zero"), 0)
	s.Want("Open(zero)", err, fs.ErrPermission)
	for _, o := range []storage.CreateOptions{{Offset: 1}, {Append: true}} {
		up, err := fsys.Create(ctx, storagetest.P("zero"), o)
		if err == nil {
			up.Abort(t.Context())
		}
		s.Want(fmt.Sprintf("Create(zero, %+v)", o), err, fs.ErrPermission)
	}
	if fi, err := os.Lstat(dev); err != nil || fi.Mode()&fs.ModeCharDevice == 0 {
		t.Errorf("the device is now %v, %v", fi, err)
	}
}

func TestFree(t *testing.T) {
	fsys, _ := newLocal(t)
	sr, ok := fsys.(storage.SpaceReporter)
	if !ok {
		t.Fatal("local FS does not implement storage.SpaceReporter")
	}
	n, err := sr.Free(t.Context())
	if err != nil || n <= 0 {
		t.Errorf("Free = %d, %v; want a positive number", n, err)
	}
}

func TestOSFiler(t *testing.T) {
	fsys, dir := newLocal(t)
	s := storagetest.NewS(t, fsys, dir)
	s.Write("f", "0123456789")
	f, err := fsys.Open(t.Context(), storagetest.P("f"), 3)
	s.OK("Open", err)
	defer f.Close()
	of, ok := f.(storage.OSFiler)
	if !ok {
		t.Fatal("File from Open does not implement storage.OSFiler")
	}
	osf := of.OSFile()
	if osf == nil {
		t.Fatal("OSFile() = nil")
	}
	// sendfile starts at the file's offset: the one Open was given.
	if pos, err := osf.Seek(0, io.SeekCurrent); err != nil || pos != 3 {
		t.Errorf("OSFile offset = %d, %v; want 3", pos, err)
	}
	b, err := io.ReadAll(osf)
	if err != nil || string(b) != "3456789" {
		t.Errorf("read through OSFile = %q, %v", b, err)
	}
}

func TestOpenMissingRoot(t *testing.T) {
	if _, err := local.Open(filepath.Join(t.TempDir(), "nope")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(missing dir) = %v, want fs.ErrNotExist", err)
	}
}

// FuzzLocalNames feeds client names, cleaned by vpath as the engine does,
// to every operation on a root with escaping symlinks: nothing outside the
// root may change, no error may show a host path, nothing may panic.
func FuzzLocalNames(f *testing.F) {
	for _, seed := range []string{
		".", "..", "/", "abs", "abs/secret", "abs/new", "rel/secret", "rel/new/x",
		"sub/rel2/secret", "sub/deep/f", "sub/deep/../secret", "absfile", "relfile",
		"../outside/secret", "/../outside/new", "../../../../etc/passwd", "sub/up/up/f",
		"in/f", "in/new", "infile", "sub/f", "victim", "abs/dir/f", "rel/empty",
		"abs/" + outsideOnly, strings.Repeat("x", 300), strings.Repeat("a/", 200) + "b",
		storage.TempPrefix + "x", "sub/" + storage.TempPrefix, "a\\..\\..\\outside",
		"%2e%2e/outside", "rel/./secret", "sub//rel2//secret", "é/ñ", "\x00", "a\rb",
	} {
		f.Add(seed)
	}
	base := f.TempDir()
	root, outside := filepath.Join(base, "root"), filepath.Join(base, "outside")
	buildJail(f, root, outside)
	fsys := openLocal(f, root)
	j := &jail{base: base, root: root, outside: outside, fsys: fsys, before: storagetest.Snapshot(f, outside)}
	when := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)

	f.Fuzz(func(t *testing.T, name string) {
		p, err := vpath.Resolve(vpath.Root(), name)
		if err != nil {
			return
		}
		rel := p.Rel()
		ctx := t.Context()
		s := storagetest.NewS(t, fsys, root)
		s.Hide = []string{base}
		restoreJail(t, root, outside)
		writeFile(t, filepath.Join(root, "victim"), "victim")

		_, err = fsys.Stat(ctx, storagetest.P(rel))
		s.Clean("Stat", err)
		if r, err := fsys.Open(ctx, storagetest.P(rel), 0); err == nil {
			b, _ := io.ReadAll(io.LimitReader(r, 100))
			r.Close()
			if string(b) == secret {
				t.Errorf("Open(%q) read the outside file", rel)
			}
		} else {
			s.Clean("Open", err)
		}
		if it, err := fsys.ReadDir(ctx, storagetest.P(rel)); err == nil {
			for range 3 {
				b, err := it.Next(50)
				for _, fi := range b {
					if fi.Name() == outsideOnly {
						t.Errorf("ReadDir(%q) listed the outside directory", rel)
					}
				}
				if err != nil {
					break
				}
			}
			it.Close()
		} else {
			s.Clean("ReadDir", err)
		}
		for i, o := range []storage.CreateOptions{{}, {Offset: 1}, {Append: true}, {Exclusive: true}} {
			up, err := fsys.Create(ctx, storagetest.P(rel), o)
			s.Clean(fmt.Sprintf("Create(%+v)", o), err)
			if err != nil {
				continue
			}
			_, err = up.Write([]byte("fuzz"))
			s.Clean("Write", err)
			if i%2 == 0 {
				s.Clean("Commit", up.Commit(t.Context()))
			} else {
				s.Clean("Abort", up.Abort(t.Context()))
			}
		}
		s.Clean("Mkdir", fsys.Mkdir(ctx, storagetest.P(rel), 0o755))
		s.Clean("Chmod", fsys.Chmod(ctx, storagetest.P(rel), 0o755))
		s.Clean("Chtimes", fsys.Chtimes(ctx, storagetest.P(rel), when))
		s.Clean("Rename(victim, name)", fsys.Rename(ctx, storagetest.P("victim"), storagetest.P(rel)))
		if err := fsys.Rename(ctx, storagetest.P(rel), storagetest.P("moved")); err == nil {
			fsys.Rename(ctx, storagetest.P("moved"), storagetest.P(rel))
		} else {
			s.Clean("Rename(name, moved)", err)
		}
		s.Clean("Remove", fsys.Remove(ctx, storagetest.P(rel)))
		s.Clean("RemoveDir", fsys.RemoveDir(ctx, storagetest.P(rel)))
		j.untouched(t)
		if t.Failed() {
			j.before = storagetest.Snapshot(t, outside) // report each input's own damage
		}
	})
}

// restoreJail puts back the parts of the jail a fuzz input replaced,
// removed or renamed, so that every input meets the escaping links.
func restoreJail(t *testing.T, root, outside string) {
	t.Helper()
	if fi, err := os.Lstat(filepath.Join(root, "sub")); err != nil || !fi.IsDir() {
		os.RemoveAll(filepath.Join(root, "sub"))
		mkdir(t, filepath.Join(root, "sub"))
	}
	if b, err := os.ReadFile(filepath.Join(root, "sub", "f")); err != nil || string(b) != insideData {
		os.RemoveAll(filepath.Join(root, "sub", "f"))
		writeFile(t, filepath.Join(root, "sub", "f"), insideData)
	}
	for _, l := range jailLinks(outside) {
		p := filepath.Join(root, l.name)
		if got, err := os.Readlink(p); err == nil && got == l.target {
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
		symlink(t, l.target, p)
	}
}

// TestCheckRoot refuses roots that expose the server's own files: the data
// directory, a directory holding it, the TLS key's directory, through a
// symlink too; homes inside the data directory stay fine.
func TestCheckRoot(t *testing.T) {
	base := t.TempDir()
	data := filepath.Join(base, "data")
	tlsDir := filepath.Join(data, "tls")
	db := filepath.Join(data, "users.db")
	for _, d := range []string{tlsDir, filepath.Join(data, "home", "alice"), filepath.Join(base, "elsewhere")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(db, nil, 0o600)
	if err := os.Symlink(data, filepath.Join(base, "link")); err != nil {
		t.Fatal(err)
	}
	protected := []string{data, tlsDir, db}
	for _, tc := range []struct {
		dir string
		ok  bool
	}{
		{data, false},
		{base, false},
		{tlsDir, false},
		{"/", false},
		{filepath.Join(base, "link"), false},
		{filepath.Join(base, "link", "tls"), false},
		{filepath.Join(data, "home", "alice"), true},
		{filepath.Join(data, "home"), true},
		{filepath.Join(base, "elsewhere"), true},
		{filepath.Join(base, "new", "home"), true},
	} {
		err := local.CheckRoot(tc.dir, protected)
		if tc.ok && err != nil || !tc.ok && !errors.Is(err, storage.ErrProtected) {
			t.Errorf("CheckRoot(%s) = %v, want ok %v", tc.dir, err, tc.ok)
		}
		op := &local.Opener{Protected: protected}
		fsys, err := op.Open(t.Context(), tc.dir)
		if err == nil {
			fsys.(*local.FS).Close()
		}
		if !tc.ok && !errors.Is(err, storage.ErrProtected) {
			t.Errorf("Opener.Open(%s) = %v, want storage.ErrProtected", tc.dir, err)
		}
		if err := op.MakeHome(t.Context(), tc.dir); tc.ok != (err == nil) {
			t.Errorf("Opener.MakeHome(%s) = %v, want ok %v", tc.dir, err, tc.ok)
		}
	}
}

// TestOpenerSweep removes old temporary files below its directories and
// keeps new ones and ordinary files.
func TestOpenerSweep(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "a", storage.TempPrefix+"old")
	keep := filepath.Join(dir, "a", "file")
	os.MkdirAll(filepath.Dir(old), 0o755)
	os.WriteFile(old, []byte("x"), 0o644)
	os.WriteFile(keep, []byte("x"), 0o644)
	past := time.Now().Add(-time.Hour)
	os.Chtimes(old, past, past)
	cutoff := time.Now().Add(-time.Minute)
	fresh := filepath.Join(dir, storage.TempPrefix+"new")
	os.WriteFile(fresh, []byte("x"), 0o644)
	n, err := (&local.Opener{SweepDirs: []string{dir, filepath.Join(dir, "missing")}}).Sweep(t.Context(), cutoff)
	if err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1, nil", n, err)
	}
	for p, want := range map[string]bool{old: false, keep: true, fresh: true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s exists = %v, want %v", p, err == nil, want)
		}
	}
}

// FuzzCheckRoot gives CheckRoot homes written any way below a tree where
// links lead back to the data directory and to its parent: a home that is
// or holds the data directory, its tls/ or users.db (once links are
// resolved) is always refused with storage.ErrProtected, one inside
// data/home that holds none of them is always accepted, and no other
// error is ever given for an absolute path.
func FuzzCheckRoot(f *testing.F) {
	base := f.TempDir()
	data := filepath.Join(base, "data")
	tlsDir := filepath.Join(data, "tls")
	db := filepath.Join(data, "users.db")
	homes := filepath.Join(data, "home")
	for _, d := range []string{tlsDir, filepath.Join(homes, "alice"), filepath.Join(base, "elsewhere")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			f.Fatal(err)
		}
	}
	if err := os.WriteFile(db, nil, 0o600); err != nil {
		f.Fatal(err)
	}
	for link, target := range map[string]string{
		filepath.Join(base, "link"):                   data,
		filepath.Join(base, "up"):                     base,
		filepath.Join(homes, "alice", "out"):          data,
		filepath.Join(base, "elsewhere", "dangling"):  filepath.Join(base, "missing"),
		filepath.Join(base, "elsewhere", "alicehome"): filepath.Join(homes, "alice"),
	} {
		if err := os.Symlink(target, link); err != nil {
			f.Fatal(err)
		}
	}
	protected := []string{data, tlsDir, db}
	realBase, err := filepath.EvalSymlinks(base)
	if err != nil {
		f.Fatal(err)
	}
	realProtected := []string{filepath.Join(realBase, "data"), filepath.Join(realBase, "data", "tls"), filepath.Join(realBase, "data", "users.db")}
	realHomes := filepath.Join(realBase, "data", "home")
	for _, s := range []string{
		"data", "", ".", "..", "../..", "link", "link/tls", "link/home", "link/home/alice", "up", "up/up/data", "up/link",
		"data/home", "data/home/alice", "data/home/alice/out", "data/home/alice/out/home", "data/home/alice/..", "data/home/..",
		"data/./tls/", "data/tls/..", "data//home//alice", "elsewhere", "elsewhere/dangling", "elsewhere/alicehome",
		"elsewhere/alicehome/out", "new/home", "data/users.db", "data/users.db/..", "a\x00b", "data/home/alice\x00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rel string) {
		dir := base + string(filepath.Separator) + rel
		err := local.CheckRoot(dir, protected)
		if err != nil && !errors.Is(err, storage.ErrProtected) {
			t.Fatalf("CheckRoot(%q) = %v, want nil or storage.ErrProtected", dir, err)
		}
		real, rerr := filepath.EvalSymlinks(filepath.Clean(dir))
		if rerr != nil {
			return // a home that does not exist (yet) holds nothing
		}
		holds := false
		for _, p := range realProtected {
			holds = holds || p == real || strings.HasPrefix(p, real+string(filepath.Separator)) || real == "/"
		}
		if holds && !errors.Is(err, storage.ErrProtected) {
			t.Fatalf("CheckRoot(%q) = %v, but it resolves to %s, which holds a protected path", dir, err, real)
		}
		if !holds && strings.HasPrefix(real, realHomes+string(filepath.Separator)) && err != nil {
			t.Fatalf("CheckRoot(%q) = %v, but it resolves to %s, a home that holds nothing protected", dir, err, real)
		}
	})
}

// TestStoredHashXattr checks where local disk keeps digests (user extended
// attributes, test directories are on a file system that has them) and
// that a write from outside the server makes them stale.
func TestStoredHashXattr(t *testing.T) {
	fsys, dir := newLocal(t)
	s := storagetest.NewS(t, fsys, dir)
	sum := []byte{0xde, 0xad, 0xbe, 0xef}
	s.UploadHashed("f", "hello", map[string][]byte{storage.HashSHA256: sum})
	buf := make([]byte, 256)
	n, err := unix.Getxattr(filepath.Join(dir, "f"), "user.ferry.hash.sha256", buf)
	if errors.Is(err, unix.ENOTSUP) && !testenv.InCI() {
		t.Skipf("no user extended attributes on %s", dir)
	}
	if err != nil {
		t.Fatalf("getxattr: %v", err)
	}
	if got := string(buf[:n]); !strings.HasPrefix(got, "deadbeef 5 ") {
		t.Fatalf("attribute = %q, want \"deadbeef 5 MTIME\"", got)
	}
	s.HasHash("f", storage.HashSHA256, sum, true)

	// An external append changes size and mtime.
	fl, err := os.OpenFile(filepath.Join(dir, "f"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	fl.WriteString("\n")
	fl.Close()
	s.HasHash("f", storage.HashSHA256, nil, false)

	// An external rewrite of the same length, with the old mtime put back,
	// is not seen (documented): the fingerprint is size and mtime.
	s.UploadHashed("g", "hello", map[string][]byte{storage.HashSHA256: sum})
	fi, _ := os.Stat(filepath.Join(dir, "g"))
	writeFile(t, filepath.Join(dir, "g"), "HELLO")
	s.HasHash("g", storage.HashSHA256, nil, false)
	os.Chtimes(filepath.Join(dir, "g"), time.Time{}, fi.ModTime())
	s.HasHash("g", storage.HashSHA256, sum, true)

	// A corrupt attribute is no digest.
	s.UploadHashed("h", "x", map[string][]byte{storage.HashSHA256: sum})
	if err := unix.Setxattr(filepath.Join(dir, "h"), "user.ferry.hash.sha256", []byte("zz 1 2"), 0); err != nil {
		t.Fatal(err)
	}
	s.HasHash("h", storage.HashSHA256, nil, false)
}

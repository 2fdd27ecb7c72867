//go:build linux && (amd64 || arm64)

package local

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/vpath"
)

// dirent builds one linux_dirent64 record, padded to 8 bytes.
func dirent(ino uint64, typ byte, name string) []byte {
	n := (19 + len(name) + 1 + 7) &^ 7
	b := make([]byte, n)
	binary.NativeEndian.PutUint64(b, ino)
	binary.NativeEndian.PutUint64(b[8:], 1)
	binary.NativeEndian.PutUint16(b[16:], uint16(n))
	b[18] = typ
	copy(b[19:], name)
	return b
}

func TestParseDirent(t *testing.T) {
	rec := dirent(7, unix.DT_REG, "file.txt")
	short := slices.Clone(rec)
	binary.NativeEndian.PutUint16(short[16:], 19)
	long := slices.Clone(rec)
	binary.NativeEndian.PutUint16(long[16:], uint16(len(rec)+8))
	noNUL := dirent(7, unix.DT_REG, "abcde") // 19+5+1 = 25, padded to 32
	for i := 19; i < len(noNUL); i++ {
		noNUL[i] = 'x'
	}
	for _, c := range []struct {
		name   string
		b      []byte
		want   string
		reclen int
		ok     bool
	}{
		{"regular", rec, "file.txt", len(rec), true},
		{"two records", append(slices.Clone(rec), dirent(8, unix.DT_DIR, "d")...), "file.txt", len(rec), true},
		{"byte name", dirent(9, unix.DT_UNKNOWN, "\xff\xfe"), "\xff\xfe", 24, true},
		{"255 bytes", dirent(9, unix.DT_REG, strings.Repeat("n", 255)), strings.Repeat("n", 255), 280, true},
		{"deleted (inode 0)", dirent(0, unix.DT_REG, "gone"), "", 24, true},
		{"empty", nil, "", 0, false},
		{"header cut", rec[:18], "", 0, false},
		{"record cut", rec[:len(rec)-1], "", 0, false},
		{"reclen too small", short, "", 0, false},
		{"reclen past the buffer", long, "", 0, false},
		{"no NUL", noNUL, "", 0, false},
		{"empty name", dirent(7, unix.DT_REG, ""), "", 0, false},
	} {
		name, reclen, ok := parseDirent(c.b)
		if string(name) != c.want || reclen != c.reclen || ok != c.ok {
			t.Errorf("%s: parseDirent = %q, %d, %v; want %q, %d, %v", c.name, name, reclen, ok, c.want, c.reclen, c.ok)
		}
	}
}

// FuzzParseDirent walks a buffer as Next does: it must never read past the
// buffer, loop, or return a name with a NUL in it.
func FuzzParseDirent(f *testing.F) {
	f.Add(dirent(7, unix.DT_REG, "file.txt"))
	f.Add(append(dirent(1, unix.DT_DIR, "."), dirent(2, unix.DT_DIR, "..")...))
	f.Add(dirent(0, unix.DT_REG, "gone"))
	f.Add(dirent(9, unix.DT_UNKNOWN, "\xff\r\n"))
	f.Add(dirent(9, unix.DT_LNK, strings.Repeat("n", 255)))
	if real := realDirents(f); len(real) > 0 {
		f.Add(real)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for pos := 0; pos < len(b); {
			name, reclen, ok := parseDirent(b[pos:])
			if !ok {
				return
			}
			if reclen < 20 || pos+reclen > len(b) {
				t.Fatalf("reclen %d at %d of %d", reclen, pos, len(b))
			}
			if bytes.IndexByte(name, 0) >= 0 || len(name) > reclen-20 {
				t.Fatalf("name %q of a %d-byte record", name, reclen)
			}
			pos += reclen
		}
	})
}

// realDirents returns what getdents64 gives for a small directory.
func realDirents(t testing.TB) []byte {
	dir := t.TempDir()
	for _, n := range []string{"a", "bb", "a longer name.txt", "\xff"} {
		os.WriteFile(filepath.Join(dir, n), nil, 0o644)
	}
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 4096)
	n, err := unix.Getdents(fd, buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

// list reads every entry of dir with it, in batches of n.
func list(t *testing.T, it storage.DirIter, n int) map[string]fs.FileInfo {
	t.Helper()
	defer it.Close()
	got := map[string]fs.FileInfo{}
	for {
		batch, err := it.Next(n)
		if len(batch) > n {
			t.Fatalf("Next(%d) returned %d entries", n, len(batch))
		}
		for _, fi := range batch {
			if _, dup := got[fi.Name()]; dup {
				t.Fatalf("%q listed twice", fi.Name())
			}
			got[fi.Name()] = fi
		}
		if errors.Is(err, io.EOF) {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func openDir(t *testing.T, fsys *FS, name string) *os.File {
	t.Helper()
	d, err := fsys.root.OpenFile(name, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestGetdentsMatchesReaddir compares the getdents64 iterator with the
// (*os.File).Readdir one it replaces, entry by entry, over every kind of
// entry and over several buffer refills.
func TestGetdentsMatchesReaddir(t *testing.T) {
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	os.Mkdir(outside, 0o755)
	os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644)
	root := filepath.Join(base, "root")
	d := filepath.Join(root, "d")
	os.MkdirAll(filepath.Join(d, "sub"), 0o755)
	os.WriteFile(filepath.Join(d, "data"), []byte("12345"), 0o600)
	os.WriteFile(filepath.Join(d, "\xff\xfe bytes"), nil, 0o644)
	os.WriteFile(filepath.Join(d, strings.Repeat("L", 255)), nil, 0o644)
	os.WriteFile(filepath.Join(d, "suid"), nil, 0o644)
	if err := syscall.Chmod(filepath.Join(d, "suid"), 0o6755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Chmod(filepath.Join(d, "sub"), 0o1777); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(d, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Symlink("data", filepath.Join(d, "link-in"))
	os.Symlink("sub", filepath.Join(d, "link-dir"))
	os.Symlink(filepath.Join(outside, "secret"), filepath.Join(d, "link-out"))
	os.Symlink("../../outside/secret", filepath.Join(d, "link-out-rel"))
	os.Symlink("missing", filepath.Join(d, "link-broken"))
	for i := range 3000 { // about 80 KiB of records: several refills
		os.WriteFile(filepath.Join(d, fmt.Sprintf("file-%05d", i)), nil, 0o644)
	}
	fsys, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()

	want := list(t, &dirIter{f: openDir(t, fsys, "d"), dir: "d", fsys: fsys}, 256)
	if len(want) != 3000+11 {
		t.Fatalf("Readdir listed %d entries", len(want))
	}
	if fi := want["link-out"]; fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("link-out = %v, want the link itself", fi.Mode())
	}
	procs := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(procs)
	for _, c := range []struct{ n, procs int }{{1, 2}, {7, 2}, {256, 2}, {256, 1}, {5000, 2}} {
		runtime.GOMAXPROCS(c.procs)
		got := list(t, newDirIter(openDir(t, fsys, "d"), "d", fsys), c.n)
		if len(got) != len(want) {
			t.Errorf("n=%d procs=%d: %d entries, want %d", c.n, c.procs, len(got), len(want))
		}
		for name, w := range want {
			g, ok := got[name]
			if !ok {
				t.Errorf("n=%d procs=%d: %q missing", c.n, c.procs, name)
				continue
			}
			if g.Size() != w.Size() || g.Mode() != w.Mode() || !g.ModTime().Equal(w.ModTime()) || g.IsDir() != w.IsDir() {
				t.Errorf("n=%d: %q = %v %d %v, want %v %d %v", c.n, name, g.Mode(), g.Size(), g.ModTime(), w.Mode(), w.Size(), w.ModTime())
			}
			gs, gok := g.Sys().(*syscall.Stat_t)
			ws, wok := w.Sys().(*syscall.Stat_t)
			if !gok || !wok || gs.Dev != ws.Dev || gs.Ino != ws.Ino || gs.Uid != ws.Uid || gs.Gid != ws.Gid {
				t.Errorf("n=%d: %q Sys() = %+v, want %+v", c.n, name, g.Sys(), w.Sys())
			}
		}
	}
}

// TestGetdentsDirChanges lists a directory while names are removed and
// added: a removed name the buffer still holds is left out without an
// error, no name shows twice, and every name there throughout is listed.
func TestGetdentsDirChanges(t *testing.T) {
	root := t.TempDir()
	for i := range 4000 {
		os.WriteFile(filepath.Join(root, fmt.Sprintf("f%04d", i)), nil, 0o644)
	}
	fsys, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	it, err := fsys.ReadDir(t.Context(), vpath.Root())
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	first, err := it.Next(10)
	if err != nil || len(first) != 10 {
		t.Fatalf("Next(10) = %d entries, %v", len(first), err)
	}
	seen := map[string]bool{}
	for _, fi := range first {
		seen[fi.Name()] = true
	}
	// Keep every tenth name; remove the rest (but those already listed)
	// and add new ones.
	kept := map[string]bool{}
	for i := range 4000 {
		n := fmt.Sprintf("f%04d", i)
		if i%10 == 0 || seen[n] {
			kept[n] = true
			continue
		}
		if err := os.Remove(filepath.Join(root, n)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 500 {
		os.WriteFile(filepath.Join(root, fmt.Sprintf("new%04d", i)), nil, 0o644)
	}
	for {
		batch, err := it.Next(100)
		for _, fi := range batch {
			n := fi.Name()
			if seen[n] {
				t.Fatalf("%q listed twice", n)
			}
			if !kept[n] && !strings.HasPrefix(n, "new") {
				t.Errorf("%q listed after it was removed", n)
			}
			seen[n] = true
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
	}
	for n := range kept {
		if !seen[n] {
			t.Errorf("%q, there throughout, not listed", n)
		}
	}
}

// TestGetdentsAllRemoved lists a directory whose every remaining name is
// removed after the first batch: the rest is io.EOF, not an error or an
// empty batch.
func TestGetdentsAllRemoved(t *testing.T) {
	root := t.TempDir()
	for i := range 1000 {
		os.WriteFile(filepath.Join(root, fmt.Sprintf("f%04d", i)), nil, 0o644)
	}
	fsys, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	it, err := fsys.ReadDir(t.Context(), vpath.Root())
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	if b, err := it.Next(5); len(b) != 5 || err != nil {
		t.Fatalf("Next(5) = %d entries, %v", len(b), err)
	}
	for i := range 1000 {
		os.Remove(filepath.Join(root, fmt.Sprintf("f%04d", i)))
	}
	if b, err := it.Next(100); len(b) != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("Next after removing everything = %d entries, %v; want 0, io.EOF", len(b), err)
	}
}

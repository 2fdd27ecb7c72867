// Package storagetest is the conformance suite every storage backend passes,
// in the manner of testing/fstest.TestFS: a backend's own test calls Run with
// a constructor of empty file systems, and the suite checks the contract of
// storage.FS, storage.Upload and storage.DirIter as the engine relies on it.
package storagetest

import (
	"bytes"
	"context"
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
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/vpath"
)

// NewFS returns an empty file system for one test, and the host directory of
// its root when the backend keeps one on local disk ("" otherwise). It
// registers the release of the file system with t.Cleanup.
type NewFS func(t *testing.T) (fsys storage.FS, hostDir string)

// Run checks the storage contract on file systems made by newFS. Each check
// is a parallel subtest on a fresh, empty file system. Where a backend may
// decline an optional part (permission bits, times: storage.ErrNotSupported;
// io.ReaderFrom on uploads) the check is skipped or logged; everything else
// is required.
func Run(t *testing.T, newFS NewFS) { RunOpts(t, newFS, Options{}) }

// Options declare a backend's limits that Run then respects.
type Options struct {
	// MaxNameBytes, when positive, is the longest name (one path element)
	// the backend's engine stores and replaces; the Names check uses no
	// longer ones. (versitygw's posix backend, the S3 engine of the tests,
	// fails to replace objects whose last element is over about 225 bytes.)
	MaxNameBytes int
}

// RunOpts is Run for a backend with the limits of o.
func RunOpts(t *testing.T, newFS NewFS, o Options) {
	tests := []struct {
		name string
		fn   func(*S)
	}{
		{"Root", testRoot},
		{"Stat", testStat},
		{"ReadDir", testReadDir},
		{"ReadDirBatches", testReadDirBatches},
		{"ReadDirLarge", testReadDirLarge},
		{"Open", testOpen},
		{"OpenOffset", testOpenOffset},
		{"CreateAtomicNew", testCreateAtomicNew},
		{"CreateAtomicReplace", testCreateAtomicReplace},
		{"CreateErrors", testCreateErrors},
		{"CreateOffset", testCreateOffset},
		{"CreateAppend", testCreateAppend},
		{"CreateExclusive", testCreateExclusive},
		{"CreatePerm", testCreatePerm},
		{"CreateNoReplace", testCreateNoReplace},
		{"AbortCreated", testAbortCreated},
		{"UploadDirRenamed", testUploadDirRenamed},
		{"Usage", testUsage},
		{"Capabilities", testCapabilities},
		{"ReaderFrom", testReaderFrom},
		{"Mkdir", testMkdir},
		{"Remove", testRemove},
		{"RemoveDir", testRemoveDir},
		{"Rename", testRename},
		{"RenameNoReplace", testRenameNoReplace},
		{"Chmod", testChmod},
		{"Chtimes", testChtimes},
		{"StoredHash", testStoredHash},
		{"Names", testNames},
		{"ByteNames", testByteNames},
		{"UploadsInTurn", testUploadsInTurn},
		{"UploadsConcurrent", testUploadsConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fsys, host := newFS(t)
			s := &S{T: t, FS: fsys, Host: host, Ctx: t.Context(), opts: o}
			tt.fn(s)
			s.NoTempLeft()
		})
	}
}

// S is one subtest's state with helpers that fail the test on unexpected
// results. Backend tests may use it for checks of their own (NewS).
type S struct {
	*testing.T
	FS   storage.FS
	Host string // host directory of the root, or ""
	// Hide lists more host paths no error may show (Host is always one).
	Hide []string
	Ctx  context.Context
	opts Options
}

// NewS wraps fsys for the helpers of this package.
func NewS(t *testing.T, fsys storage.FS, host string) *S {
	return &S{T: t, FS: fsys, Host: host, Ctx: t.Context()}
}

// Clean reports, on the test, an error whose text holds the host path:
// errors may reach a client, which must never learn where its root lives.
func (s *S) Clean(op string, err error) {
	s.Helper()
	if err == nil {
		return
	}
	for _, h := range append([]string{s.Host}, s.Hide...) {
		if h != "" && strings.Contains(err.Error(), h) {
			s.Errorf("%s: error %q reveals the host path %s", op, err, h)
			return
		}
	}
}

// OK fails the test at once when err is not nil.
func (s *S) OK(op string, err error) {
	s.Helper()
	if err != nil {
		s.Clean(op, err)
		s.Fatalf("%s: %v", op, err)
	}
}

// Want reports err unless it matches one of targets.
func (s *S) Want(op string, err error, targets ...error) {
	s.Helper()
	s.Clean(op, err)
	for _, w := range targets {
		if errors.Is(err, w) {
			return
		}
	}
	want := make([]string, len(targets))
	for i, w := range targets {
		want[i] = fmt.Sprintf("%q", w)
	}
	s.Errorf("%s: error %v, want %s", op, err, strings.Join(want, " or "))
}

// Write stores data under name with a whole (atomic) upload.
func (s *S) Write(name string, data string) {
	s.Helper()
	s.Upload(name, storage.CreateOptions{Perm: 0o644}, data, true)
}

// Upload creates name with opts, writes data and commits (or aborts).
func (s *S) Upload(name string, opts storage.CreateOptions, data string, commit bool) {
	s.Helper()
	up, err := s.FS.Create(s.Ctx, P(name), opts)
	s.OK(fmt.Sprintf("Create(%q, %+v)", name, opts), err)
	s.WriteAll(up, data)
	if commit {
		s.OK(fmt.Sprintf("Commit(%q)", name), up.Commit(s.Ctx))
	} else {
		s.OK(fmt.Sprintf("Abort(%q)", name), up.Abort(s.Ctx))
	}
}

// WriteAll writes data to up in one call and checks the count.
func (s *S) WriteAll(up storage.Upload, data string) {
	s.Helper()
	if data == "" {
		return
	}
	n, err := up.Write([]byte(data))
	s.OK("Write", err)
	if n != len(data) {
		s.Fatalf("Write wrote %d of %d bytes", n, len(data))
	}
}

// Read returns the content of name read from offset 0.
func (s *S) Read(name string) string {
	s.Helper()
	return s.ReadAt(name, 0)
}

// ReadAt returns the content of name from offset.
func (s *S) ReadAt(name string, offset int64) string {
	s.Helper()
	f, err := s.FS.Open(s.Ctx, P(name), offset)
	s.OK(fmt.Sprintf("Open(%q, %d)", name, offset), err)
	defer f.Close()
	b, err := io.ReadAll(f)
	s.OK(fmt.Sprintf("read %q", name), err)
	return string(b)
}

// Content checks that name holds want.
func (s *S) Content(name, want string) {
	s.Helper()
	if got := s.Read(name); got != want {
		s.Errorf("content of %q = %s, want %s", name, short(got), short(want))
	}
}

// Mkdir creates a directory.
func (s *S) Mkdir(name string) {
	s.Helper()
	s.OK(fmt.Sprintf("Mkdir(%q)", name), s.FS.Mkdir(s.Ctx, P(name), 0o755))
}

// Missing checks that name does not exist.
func (s *S) Missing(name string) {
	s.Helper()
	_, err := s.FS.Stat(s.Ctx, P(name))
	s.Want(fmt.Sprintf("Stat(%q)", name), err, fs.ErrNotExist)
}

// List reads all entries of dir in batches of n, checking the batch
// contract on the way.
func (s *S) List(dir string, n int) []fs.FileInfo {
	s.Helper()
	it, err := s.FS.ReadDir(s.Ctx, P(dir))
	s.OK(fmt.Sprintf("ReadDir(%q)", dir), err)
	var all []fs.FileInfo
	for {
		batch, err := it.Next(n)
		if len(batch) > n {
			s.Errorf("ReadDir(%q).Next(%d) returned %d entries", dir, n, len(batch))
		}
		all = append(all, batch...)
		if errors.Is(err, io.EOF) {
			if len(batch) != 0 {
				s.Errorf("ReadDir(%q).Next(%d) returned %d entries with io.EOF", dir, n, len(batch))
			}
			break
		}
		s.OK(fmt.Sprintf("ReadDir(%q).Next", dir), err)
		if len(batch) == 0 {
			s.Fatalf("ReadDir(%q).Next(%d) returned no entries and no error", dir, n)
		}
	}
	if batch, err := it.Next(n); len(batch) != 0 || !errors.Is(err, io.EOF) {
		s.Errorf("ReadDir(%q).Next after io.EOF = %d entries, %v; want 0, io.EOF", dir, len(batch), err)
	}
	s.OK(fmt.Sprintf("ReadDir(%q).Close", dir), it.Close())
	return all
}

// Names lists the entry names of dir, sorted.
func (s *S) Names(dir string) []string {
	s.Helper()
	var names []string
	for _, fi := range s.List(dir, 100) {
		names = append(names, fi.Name())
	}
	slices.Sort(names)
	return names
}

// VisibleNames lists the names of dir without in-progress uploads.
func (s *S) VisibleNames(dir string) []string {
	s.Helper()
	return slices.DeleteFunc(s.Names(dir), isTemp)
}

// HostNames lists the host directory of dir, sorted, or nil without a host.
func (s *S) HostNames(dir string) []string {
	s.Helper()
	if s.Host == "" {
		return nil
	}
	ents, err := os.ReadDir(filepath.Join(s.Host, filepath.FromSlash(dir)))
	s.OK("host ReadDir", err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// OnlyNames checks that dir lists exactly want, besides names starting with
// storage.TempPrefix (in-progress uploads), both through the FS and on the
// host.
func (s *S) OnlyNames(dir string, want ...string) {
	s.Helper()
	slices.Sort(want)
	if got := s.VisibleNames(dir); !slices.Equal(got, want) {
		s.Errorf("ReadDir(%q) = %q (ignoring temporary names), want %q", dir, got, want)
	}
	if s.Host != "" {
		got := slices.DeleteFunc(s.HostNames(dir), isTemp)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			s.Errorf("host directory %q holds %q (ignoring temporary names), want %q", dir, got, want)
		}
	}
}

// NoTempLeft checks that no temporary upload file is left anywhere.
func (s *S) NoTempLeft() {
	s.Helper()
	if s.Host == "" {
		return
	}
	filepath.WalkDir(s.Host, func(p string, d fs.DirEntry, err error) error {
		if err == nil && isTemp(d.Name()) {
			s.Errorf("temporary file left behind: %s", strings.TrimPrefix(p, s.Host))
		}
		return nil
	})
}

func isTemp(name string) bool { return strings.HasPrefix(name, storage.TempPrefix) }

func short(s string) string {
	if len(s) > 40 {
		return fmt.Sprintf("%q… (%d bytes)", s[:40], len(s))
	}
	return fmt.Sprintf("%q", s)
}

// notDir are the acceptable errors for a path whose parent is a file.
var notDir = []error{storage.ErrNotDir, fs.ErrNotExist}

func testRoot(s *S) {
	fi, err := s.FS.Stat(s.Ctx, P("."))
	s.OK(`Stat(".")`, err)
	if !fi.IsDir() {
		s.Errorf(`Stat(".") mode %v, want a directory`, fi.Mode())
	}
	if got := s.List(".", 10); len(got) != 0 {
		s.Errorf(`ReadDir(".") of an empty root returned %d entries`, len(got))
	}
	// The root itself can be neither removed nor renamed, nor replaced.
	if err := s.FS.RemoveDir(s.Ctx, P(".")); err == nil {
		s.Errorf(`RemoveDir(".") of an empty root succeeded`)
	} else {
		s.Clean(`RemoveDir(".")`, err)
	}
	s.Want(`Remove(".")`, s.FS.Remove(s.Ctx, P(".")), storage.ErrIsDir, fs.ErrPermission)
	s.Write("f", "x")
	s.OnlyNames(".", "f")
	s.Mkdir("d")
	if err := s.FS.Rename(s.Ctx, P("."), P("d/x")); err == nil {
		s.Errorf(`Rename(".", "d/x") succeeded`)
	}
	if err := s.FS.Rename(s.Ctx, P("f"), P(".")); err == nil {
		s.Errorf(`Rename("f", ".") succeeded`)
	}
	_, err = s.FS.Create(s.Ctx, P("."), storage.CreateOptions{})
	s.Want(`Create(".")`, err, storage.ErrIsDir, fs.ErrExist)
	s.Want(`Mkdir(".")`, s.FS.Mkdir(s.Ctx, P("."), 0o755), fs.ErrExist)
	fi, err = s.FS.Stat(s.Ctx, P("."))
	s.OK(`Stat(".") at the end`, err)
	if !fi.IsDir() {
		s.Errorf(`Stat(".") at the end: mode %v`, fi.Mode())
	}
	s.OnlyNames(".", "d", "f")
	s.Content("f", "x")
}

func testStat(s *S) {
	s.Mkdir("d")
	s.Write("d/f", "hello")
	fi, err := s.FS.Stat(s.Ctx, P("d/f"))
	s.OK(`Stat("d/f")`, err)
	if fi.Name() != "f" || fi.Size() != 5 || !fi.Mode().IsRegular() || fi.IsDir() {
		s.Errorf(`Stat("d/f") = name %q size %d mode %v; want "f", 5, regular`, fi.Name(), fi.Size(), fi.Mode())
	}
	fi, err = s.FS.Stat(s.Ctx, P("d"))
	s.OK(`Stat("d")`, err)
	if fi.Name() != "d" || !fi.IsDir() {
		s.Errorf(`Stat("d") = name %q mode %v; want "d", directory`, fi.Name(), fi.Mode())
	}
	s.Missing("nope")
	s.Missing("d/nope")
	s.Missing("nope/nope")
	_, err = s.FS.Stat(s.Ctx, P("d/f/x"))
	s.Want(`Stat("d/f/x")`, err, notDir...)
}

func testReadDir(s *S) {
	s.Mkdir("d")
	s.Mkdir("d/sub")
	s.Mkdir("d/empty")
	s.Write("d/a", "aaa")
	s.Write("d/sub/b", "b")
	got := map[string]fs.FileInfo{}
	for _, fi := range s.List("d", 1) {
		if got[fi.Name()] != nil {
			s.Errorf("ReadDir(d) lists %q twice", fi.Name())
		}
		got[fi.Name()] = fi
	}
	if len(got) != 3 {
		s.Errorf("ReadDir(d) returned %d names, want 3", len(got))
	}
	if fi := got["a"]; fi == nil || fi.Size() != 3 || !fi.Mode().IsRegular() {
		s.Errorf("ReadDir(d) entry a = %v, want a regular file of 3 bytes", fi)
	}
	for _, n := range []string{"sub", "empty"} {
		if fi := got[n]; fi == nil || !fi.IsDir() {
			s.Errorf("ReadDir(d) entry %s = %v, want a directory", n, fi)
		}
	}
	if got := s.List("d/empty", 5); len(got) != 0 {
		s.Errorf("ReadDir of an empty directory returned %d entries", len(got))
	}
	s.OnlyNames("d/sub", "b")

	_, err := s.FS.ReadDir(s.Ctx, P("nope"))
	s.Want(`ReadDir("nope")`, err, fs.ErrNotExist)
	_, err = s.FS.ReadDir(s.Ctx, P("d/a"))
	s.Want(`ReadDir("d/a")`, err, storage.ErrNotDir)
	_, err = s.FS.ReadDir(s.Ctx, P("d/a/x"))
	s.Want(`ReadDir("d/a/x")`, err, notDir...)
}

// testReadDirBatches checks that batches never exceed n and that an
// iterator may be closed early.
func testReadDirBatches(s *S) {
	s.Mkdir("d")
	for i := range 23 {
		s.Write(fmt.Sprintf("d/f%02d", i), "x")
	}
	for _, n := range []int{1, 2, 5, 22, 23, 24, 1000} {
		if got := s.List("d", n); len(got) != 23 {
			s.Errorf("ReadDir in batches of %d: %d entries, want 23", n, len(got))
		}
	}
	it, err := s.FS.ReadDir(s.Ctx, P("d"))
	s.OK("ReadDir", err)
	b, err := it.Next(3)
	s.OK("Next(3)", err)
	if len(b) == 0 || len(b) > 3 {
		s.Errorf("Next(3) returned %d entries", len(b))
	}
	s.OK("Close after a partial read", it.Close())
}

func testReadDirLarge(s *S) {
	const n = 10000
	s.Mkdir("big")
	s.Write("big/e00000", "")
	want := make(map[string]bool, n)
	want["e00000"] = true
	for i := 1; i < n; i++ {
		name := fmt.Sprintf("e%05d", i)
		want[name] = true
		// The listing is under test, not the creation: on local disk,
		// hard links are the cheapest entries to make.
		if s.Host != "" {
			dir := filepath.Join(s.Host, "big")
			if os.Link(filepath.Join(dir, "e00000"), filepath.Join(dir, name)) == nil {
				continue
			}
		}
		if i%10 == 0 {
			s.OK("Mkdir", s.FS.Mkdir(s.Ctx, P("big/"+name), 0o755))
			continue
		}
		up, err := s.FS.Create(s.Ctx, P("big/"+name), storage.CreateOptions{Exclusive: true, Perm: 0o644})
		s.OK("Create", err)
		s.OK("Commit", up.Commit(s.Ctx))
	}
	it, err := s.FS.ReadDir(s.Ctx, P("big"))
	s.OK("ReadDir(big)", err)
	defer it.Close()
	seen := make(map[string]bool, n)
	batches := 0
	for {
		b, err := it.Next(512)
		if len(b) > 512 {
			s.Fatalf("Next(512) returned %d entries", len(b))
		}
		for _, fi := range b {
			if !want[fi.Name()] {
				s.Errorf("unexpected entry %q", fi.Name())
			}
			if seen[fi.Name()] {
				s.Errorf("entry %q listed twice", fi.Name())
			}
			seen[fi.Name()] = true
		}
		if errors.Is(err, io.EOF) {
			if len(b) != 0 {
				s.Errorf("io.EOF came with %d entries", len(b))
			}
			break
		}
		s.OK("Next", err)
		batches++
	}
	if len(seen) != n {
		s.Errorf("ReadDir of %d entries returned %d names", n, len(seen))
	}
	if batches < n/512 {
		s.Errorf("ReadDir returned %d entries in %d batches of at most 512", n, batches)
	}
}

func testOpen(s *S) {
	s.Mkdir("d")
	s.Write("d/f", "content")
	s.Write("empty", "")
	s.Content("d/f", "content")
	s.Content("empty", "")
	// Two readers at once do not disturb each other.
	a, err := s.FS.Open(s.Ctx, P("d/f"), 0)
	s.OK("Open a", err)
	b, err := s.FS.Open(s.Ctx, P("d/f"), 0)
	s.OK("Open b", err)
	buf := make([]byte, 3)
	if _, err := io.ReadFull(a, buf); err != nil || string(buf) != "con" {
		s.Errorf("read a = %q, %v", buf, err)
	}
	if all, err := io.ReadAll(b); err != nil || string(all) != "content" {
		s.Errorf("read b = %q, %v", all, err)
	}
	if all, err := io.ReadAll(a); err != nil || string(all) != "tent" {
		s.Errorf("rest of a = %q, %v", all, err)
	}
	s.OK("Close a", a.Close())
	s.OK("Close b", b.Close())

	_, err = s.FS.Open(s.Ctx, P("nope"), 0)
	s.Want(`Open("nope")`, err, fs.ErrNotExist)
	_, err = s.FS.Open(s.Ctx, P("d"), 0)
	s.Want(`Open("d")`, err, storage.ErrIsDir)
	_, err = s.FS.Open(s.Ctx, P("."), 0)
	s.Want(`Open(".")`, err, storage.ErrIsDir)
	_, err = s.FS.Open(s.Ctx, P("d/f/x"), 0)
	s.Want(`Open("d/f/x")`, err, notDir...)
}

func testOpenOffset(s *S) {
	s.Write("f", "0123456789")
	for _, tc := range []struct {
		off  int64
		want string
	}{{0, "0123456789"}, {1, "123456789"}, {9, "9"}, {10, ""}, {11, ""}, {1 << 40, ""}} {
		if got := s.ReadAt("f", tc.off); got != tc.want {
			s.Errorf("Open(f, %d) read %q, want %q", tc.off, got, tc.want)
		}
	}
}

func testCreateAtomicNew(s *S) {
	s.Mkdir("d")
	s.Write("d/other", "o")
	up, err := s.FS.Create(s.Ctx, P("d/new"), storage.CreateOptions{Perm: 0o644})
	s.OK("Create", err)
	s.WriteAll(up, "fresh")
	// Until Commit the name does not exist and nothing but a temporary
	// name appears beside it.
	s.Missing("d/new")
	s.OnlyNames("d", "other")
	s.OK("Commit", up.Commit(s.Ctx))
	s.Content("d/new", "fresh")
	s.OnlyNames("d", "new", "other")

	up, err = s.FS.Create(s.Ctx, P("d/gone"), storage.CreateOptions{Perm: 0o644})
	s.OK("Create", err)
	s.WriteAll(up, "never")
	s.OK("Abort", up.Abort(s.Ctx))
	s.Missing("d/gone")
	s.OnlyNames("d", "new", "other")
	if names := s.Names("d"); slices.ContainsFunc(names, isTemp) {
		s.Errorf("temporary name left after Abort: %q", names)
	}

	// An empty upload commits an empty file.
	up, err = s.FS.Create(s.Ctx, P("d/empty"), storage.CreateOptions{Perm: 0o644})
	s.OK("Create", err)
	s.OK("Commit", up.Commit(s.Ctx))
	s.Content("d/empty", "")
}

func testCreateAtomicReplace(s *S) {
	s.Write("f", "old content")
	up, err := s.FS.Create(s.Ctx, P("f"), storage.CreateOptions{Perm: 0o644})
	s.OK("Create", err)
	s.Content("f", "old content")
	s.WriteAll(up, "new")
	// The old file stays visible and whole until Commit, even to a reader
	// that opened it before.
	r, err := s.FS.Open(s.Ctx, P("f"), 0)
	s.OK("Open", err)
	s.WriteAll(up, " data")
	s.Content("f", "old content")
	if fi, err := s.FS.Stat(s.Ctx, P("f")); err != nil || fi.Size() != int64(len("old content")) {
		s.Errorf("Stat(f) during the upload = %v, %v", fi, err)
	}
	s.OnlyNames(".", "f")
	s.OK("Commit", up.Commit(s.Ctx))
	if b, err := io.ReadAll(r); err != nil || string(b) != "old content" {
		s.Errorf("reader opened before Commit read %q, %v; want the old content", b, err)
	}
	r.Close()
	s.Content("f", "new data")
	s.OnlyNames(".", "f")
	if names := s.Names("."); slices.ContainsFunc(names, isTemp) {
		s.Errorf("temporary name left after Commit: %q", names)
	}

	up, err = s.FS.Create(s.Ctx, P("f"), storage.CreateOptions{Perm: 0o644})
	s.OK("Create", err)
	s.WriteAll(up, "discarded, and longer than the old one")
	s.OK("Abort", up.Abort(s.Ctx))
	s.Content("f", "new data")
	if names := s.Names("."); !slices.Equal(names, []string{"f"}) {
		s.Errorf("ReadDir after Abort = %q, want [f]", names)
	}
}

func testCreateErrors(s *S) {
	s.Mkdir("d")
	s.Write("f", "file")
	modes := []storage.CreateOptions{
		{},
		{Offset: 2},
		{Append: true},
		{Exclusive: true},
	}
	for _, o := range modes {
		o.Perm = 0o644
		_, err := s.FS.Create(s.Ctx, P("d"), o)
		s.Want(fmt.Sprintf("Create(dir, %+v)", o), err, storage.ErrIsDir, fs.ErrExist)
		_, err = s.FS.Create(s.Ctx, P("nope/x"), o)
		s.Want(fmt.Sprintf("Create(missing/x, %+v)", o), err, fs.ErrNotExist)
		_, err = s.FS.Create(s.Ctx, P("f/x"), o)
		s.Want(fmt.Sprintf("Create(file/x, %+v)", o), err, notDir...)
	}
	s.Content("f", "file")
	s.OnlyNames(".", "d", "f")
	s.OnlyNames("d")
}

// writeAt reports whether the backend writes in place; when it does not,
// it checks that such uploads are refused with storage.ErrNotSupported.
func (s *S) writeAt(o storage.CreateOptions) bool {
	s.Helper()
	if storage.CapsOf(s.FS).Has(storage.CapWriteAt) {
		return true
	}
	_, err := s.FS.Create(s.Ctx, P("f"), o)
	s.Want(fmt.Sprintf("Create(%+v) without CapWriteAt", o), err, storage.ErrNotSupported)
	return false
}

func testCreateOffset(s *S) {
	s.Write("f", "0123456789")
	if !s.writeAt(storage.CreateOptions{Offset: 4, Perm: 0o644}) {
		s.Content("f", "0123456789")
		return
	}
	// REST: data goes in place from the offset; what followed is cut.
	s.Upload("f", storage.CreateOptions{Offset: 4, Perm: 0o644}, "ab", true)
	s.Content("f", "0123ab")
	// At the end it extends.
	s.Upload("f", storage.CreateOptions{Offset: 6, Perm: 0o644}, "cd", true)
	s.Content("f", "0123abcd")
	// Nothing written still truncates after the offset.
	s.Upload("f", storage.CreateOptions{Offset: 7, Perm: 0o644}, "", true)
	s.Content("f", "0123abc")
	// Abort cuts back to the offset: a cut upload can be resumed there.
	// A backend that writes nothing in place before Commit leaves the
	// file whole instead (storage.CapAbortRestores).
	s.Upload("f", storage.CreateOptions{Offset: 2, Perm: 0o644}, "XYZXYZXYZXYZ", false)
	if storage.CapsOf(s.FS).Has(storage.CapAbortRestores) {
		s.Content("f", "0123abc")
	} else {
		s.Content("f", "01")
	}
	s.OnlyNames(".", "f")
	// A resumed upload completes the file.
	s.Upload("f", storage.CreateOptions{Offset: 2, Perm: 0o644}, "23456789", true)
	s.Content("f", "0123456789")
}

func testCreateAppend(s *S) {
	s.Write("f", "abc")
	if !s.writeAt(storage.CreateOptions{Append: true, Perm: 0o644}) {
		s.Content("f", "abc")
		return
	}
	s.Upload("f", storage.CreateOptions{Append: true, Perm: 0o644}, "def", true)
	s.Content("f", "abcdef")
	s.Upload("f", storage.CreateOptions{Append: true, Perm: 0o644}, "", true)
	s.Content("f", "abcdef")
	// Abort cuts back to where the upload started.
	s.Upload("f", storage.CreateOptions{Append: true, Perm: 0o644}, "ghijklmnop", false)
	s.Content("f", "abcdef")
	s.OnlyNames(".", "f")
	// APPE creates a missing file (RFC 959 §4.1.3).
	s.Upload("new", storage.CreateOptions{Append: true, Perm: 0o644}, "first", true)
	s.Content("new", "first")
	s.OnlyNames(".", "f", "new")
}

func testCreateExclusive(s *S) {
	modes := []storage.CreateOptions{{Exclusive: true}}
	if storage.CapsOf(s.FS).Has(storage.CapWriteAt) {
		modes = append(modes, storage.CreateOptions{Exclusive: true, Offset: 2}, storage.CreateOptions{Exclusive: true, Append: true})
	}
	for _, o := range modes {
		s.Write("f", "keep")
		o.Perm = 0o644
		up, err := s.FS.Create(s.Ctx, P("f"), o)
		s.Want(fmt.Sprintf("Create(existing, %+v)", o), err, fs.ErrExist)
		if err == nil {
			up.Abort(s.Ctx)
		}
		s.Content("f", "keep")
	}
	s.Upload("u", storage.CreateOptions{Exclusive: true, Perm: 0o644}, "unique", true)
	s.Content("u", "unique")
	_, err := s.FS.Create(s.Ctx, P("u"), storage.CreateOptions{Exclusive: true, Perm: 0o644})
	s.Want("Create(u) again", err, fs.ErrExist)
	// Abort leaves nothing: the name did not exist before.
	s.Upload("v", storage.CreateOptions{Exclusive: true, Perm: 0o644}, "lost", false)
	s.Missing("v")
	s.OnlyNames(".", "f", "u")
	// While one exclusive upload runs, a second one for the name fails,
	// at Create or (a backend without in-place writes) at Commit.
	up, err := s.FS.Create(s.Ctx, P("w"), storage.CreateOptions{Exclusive: true, Perm: 0o644})
	s.OK("Create(w)", err)
	second, err := s.FS.Create(s.Ctx, P("w"), storage.CreateOptions{Exclusive: true, Perm: 0o644})
	if err != nil || storage.CapsOf(s.FS).Has(storage.CapWriteAt) {
		s.Want("second Create(w)", err, fs.ErrExist)
	}
	s.WriteAll(up, "w")
	s.OK("Commit(w)", up.Commit(s.Ctx))
	if err == nil {
		s.WriteAll(second, "second")
		s.Want("second Commit(w)", second.Commit(s.Ctx), fs.ErrExist)
	}
	s.Content("w", "w")
}

// testCreateNoReplace checks that a whole upload with NoReplace never
// replaces a file, not even one stored under its name while it ran.
func testCreateNoReplace(s *S) {
	o := storage.CreateOptions{NoReplace: true, Perm: 0o644}
	s.Upload("new", o, "mine", true)
	s.Content("new", "mine")

	up, err := s.FS.Create(s.Ctx, P("raced"), o)
	s.OK("Create(raced)", err)
	s.WriteAll(up, "late upload")
	s.Write("raced", "stored first") // another session, meanwhile
	s.Want("Commit over a file that appeared", up.Commit(s.Ctx), fs.ErrExist)
	s.Content("raced", "stored first")

	// An existing name fails at Create or at Commit, and keeps its content.
	if up, err := s.FS.Create(s.Ctx, P("new"), o); err != nil {
		s.Want("Create(existing, NoReplace)", err, fs.ErrExist)
	} else {
		s.WriteAll(up, "other")
		s.Want("Commit(existing, NoReplace)", up.Commit(s.Ctx), fs.ErrExist)
	}
	s.Content("new", "mine")
	s.OnlyNames(".", "new", "raced")
	if names := s.Names("."); slices.ContainsFunc(names, isTemp) {
		s.Errorf("temporary name left after a refused Commit: %q", names)
	}
}

// testAbortCreated checks that an aborted in-place upload of a new name
// (APPE or REST+STOR of a missing file, as after a full disk) leaves
// nothing behind, and never removes a file that replaced it meanwhile.
func testAbortCreated(s *S) {
	if !storage.CapsOf(s.FS).Has(storage.CapWriteAt) {
		return // covered by CreateOffset and CreateAppend
	}
	for _, o := range []storage.CreateOptions{{Append: true}, {Offset: 3}} {
		o.Perm = 0o644
		s.Upload("new", o, "partial", false)
		s.Missing("new")
		up, err := s.FS.Create(s.Ctx, P("new"), o)
		s.OK(fmt.Sprintf("Create(new, %+v)", o), err)
		s.Abort0(up)
		s.Missing("new")
	}
	up, err := s.FS.Create(s.Ctx, P("n"), storage.CreateOptions{Append: true, Perm: 0o644})
	s.OK("Create(n, append)", err)
	s.WriteAll(up, "appended")
	// Another upload replaces the name while this one runs (a backend or
	// wrapper may refuse that while the name is written in place).
	replaced := false
	if w, err := s.FS.Create(s.Ctx, P("n"), storage.CreateOptions{Perm: 0o644}); err == nil {
		s.WriteAll(w, "whole")
		s.OK("Commit(n)", w.Commit(s.Ctx))
		replaced = true
	} else {
		s.Clean("Create(n) during an in-place upload", err)
	}
	s.OK("Abort", up.Abort(s.Ctx))
	if replaced {
		s.Content("n", "whole")
		s.OnlyNames(".", "n")
	} else {
		s.OnlyNames(".")
	}
}

// Abort0 aborts up without writing.
func (s *S) Abort0(up storage.Upload) {
	s.Helper()
	s.OK("Abort", up.Abort(s.Ctx))
}

// testUploadDirRenamed renames the directory of running uploads: Commit
// lands in the moved directory (or fails), Abort leaves nothing, and no
// temporary file stays behind in either place.
func testUploadDirRenamed(s *S) {
	s.Mkdir("d")
	up, err := s.FS.Create(s.Ctx, P("d/f"), storage.CreateOptions{Perm: 0o644})
	s.OK("Create(d/f)", err)
	s.WriteAll(up, "moved")
	s.OK("Rename(d, e)", s.FS.Rename(s.Ctx, P("d"), P("e")))
	if err := up.Commit(s.Ctx); err == nil {
		s.Content("e/f", "moved")
	} else {
		s.Clean("Commit after its directory moved", err)
		s.Missing("e/f")
	}
	s.Missing("d")
	keep := s.VisibleNames("e")

	modes := []storage.CreateOptions{{}}
	if storage.CapsOf(s.FS).Has(storage.CapWriteAt) {
		modes = append(modes, storage.CreateOptions{Append: true}, storage.CreateOptions{Offset: 1})
	}
	from := "e"
	for i, o := range modes {
		o.Perm = 0o644
		up, err := s.FS.Create(s.Ctx, P(from+"/g"), o)
		s.OK(fmt.Sprintf("Create(%s/g, %+v)", from, o), err)
		s.WriteAll(up, "aborted")
		to := fmt.Sprintf("m%d", i)
		// A backend or wrapper may refuse to move a file being written
		// in place; a whole upload's directory always moves.
		if err := s.FS.Rename(s.Ctx, P(from), P(to)); err != nil && (o.Append || o.Offset > 0) {
			s.Clean("Rename during an in-place upload", err)
			to = from
		} else {
			s.OK("Rename", err)
		}
		s.OK("Abort after its directory moved", up.Abort(s.Ctx))
		s.OnlyNames(to, keep...)
		if names := s.Names(to); slices.ContainsFunc(names, isTemp) {
			s.Errorf("temporary name left in the moved directory: %q", names)
		}
		from = to
	}
}

// testUsage checks a backend's ScanUsage (quota.UsageScanner), when it has
// one: regular files and their bytes, without uploads in progress. The
// ReadDir walk that replaces it elsewhere is quota's own test.
func testUsage(s *S) {
	scanner, ok := s.FS.(interface {
		ScanUsage(ctx context.Context) (bytes, files int64, err error)
	})
	if !ok {
		return
	}
	usage := func(wantBytes, wantFiles int64) {
		s.Helper()
		b, f, err := scanner.ScanUsage(s.Ctx)
		s.OK("Usage", err)
		if b != wantBytes || f != wantFiles {
			s.Errorf("Usage = %d bytes, %d files; want %d, %d", b, f, wantBytes, wantFiles)
		}
	}
	usage(0, 0)
	s.Write("a", "abc")
	s.Mkdir("d")
	s.Mkdir("d/e")
	s.Write("d/e/b", "12345")
	usage(8, 2)
	up, err := s.FS.Create(s.Ctx, P("d/c"), storage.CreateOptions{Perm: 0o644})
	s.OK("Create", err)
	s.WriteAll(up, strings.Repeat("x", 100))
	usage(8, 2) // the temporary file of a running upload is not counted
	s.OK("Commit", up.Commit(s.Ctx))
	usage(108, 3)
}

// testCapabilities checks that what a backend lacks is refused with
// storage.ErrNotSupported, not half done.
func testCapabilities(s *S) {
	caps := storage.CapsOf(s.FS)
	s.Write("f", "x")
	if !caps.Has(storage.CapChtimes) {
		s.Want("Chtimes without CapChtimes", s.FS.Chtimes(s.Ctx, P("f"), time.Unix(1e9, 0)), storage.ErrNotSupported)
	}
	if !caps.Has(storage.CapChmod) {
		s.Want("Chmod without CapChmod", s.FS.Chmod(s.Ctx, P("f"), 0o600), storage.ErrNotSupported)
	}
	s.Content("f", "x")
}

// chmodSupported reports whether the backend keeps permission bits.
func (s *S) chmodSupported(name string) bool {
	s.Helper()
	err := s.FS.Chmod(s.Ctx, P(name), 0o644)
	if errors.Is(err, storage.ErrNotSupported) {
		return false
	}
	s.OK("Chmod", err)
	return true
}

func (s *S) perm(name string, want fs.FileMode) {
	s.Helper()
	fi, err := s.FS.Stat(s.Ctx, P(name))
	s.OK(fmt.Sprintf("Stat(%q)", name), err)
	if got := fi.Mode() &^ fs.ModeType; got != want {
		s.Errorf("mode of %q = %v, want %v", name, got, want)
	}
}

func testCreatePerm(s *S) {
	s.Write("probe", "")
	if !s.chmodSupported("probe") {
		s.Skip("backend keeps no permission bits")
	}
	// 0o600 and 0o700 survive any umask that keeps the owner's bits.
	s.Upload("atomic", storage.CreateOptions{Perm: 0o600}, "x", true)
	s.perm("atomic", 0o600)
	s.Upload("excl", storage.CreateOptions{Perm: 0o600, Exclusive: true}, "x", true)
	s.perm("excl", 0o600)
	s.Upload("appe", storage.CreateOptions{Perm: 0o600, Append: true}, "x", true)
	s.perm("appe", 0o600)
	s.OK("Mkdir", s.FS.Mkdir(s.Ctx, P("dir"), 0o700))
	s.perm("dir", 0o700)
}

func testReaderFrom(s *S) {
	s.Write("f", "0123456789")
	for _, tc := range []struct {
		opts storage.CreateOptions
		want string
	}{
		{storage.CreateOptions{}, "from a reader"},
		{storage.CreateOptions{Offset: 3}, "012from a reader"},
		{storage.CreateOptions{Append: true}, "0123456789from a reader"},
		{storage.CreateOptions{Exclusive: true}, "from a reader"},
	} {
		s.Write("f", "0123456789")
		if (tc.opts.Offset > 0 || tc.opts.Append) && !storage.CapsOf(s.FS).Has(storage.CapWriteAt) {
			continue
		}
		name := "f"
		if tc.opts.Exclusive {
			name = "excl"
		}
		tc.opts.Perm = 0o644
		up, err := s.FS.Create(s.Ctx, P(name), tc.opts)
		s.OK("Create", err)
		rf, ok := up.(io.ReaderFrom)
		if !ok {
			s.Logf("Upload for %+v does not implement io.ReaderFrom (optional)", tc.opts)
			up.Abort(s.Ctx)
			continue
		}
		// A reader with no WriterTo and no Len, as a network connection.
		src := io.MultiReader(strings.NewReader("from "), strings.NewReader("a reader"))
		n, err := rf.ReadFrom(src)
		s.OK("ReadFrom", err)
		if n != int64(len("from a reader")) {
			s.Errorf("ReadFrom(%+v) = %d bytes, want %d", tc.opts, n, len("from a reader"))
		}
		s.OK("Commit", up.Commit(s.Ctx))
		s.Content(name, tc.want)
	}
}

func testMkdir(s *S) {
	s.Mkdir("d")
	s.Mkdir("d/e")
	s.Write("f", "x")
	fi, err := s.FS.Stat(s.Ctx, P("d/e"))
	s.OK("Stat", err)
	if !fi.IsDir() {
		s.Errorf("Stat(d/e) mode %v, want a directory", fi.Mode())
	}
	s.Want(`Mkdir("d") again`, s.FS.Mkdir(s.Ctx, P("d"), 0o755), fs.ErrExist)
	s.Want(`Mkdir("f") on a file`, s.FS.Mkdir(s.Ctx, P("f"), 0o755), fs.ErrExist)
	s.Want(`Mkdir("nope/x")`, s.FS.Mkdir(s.Ctx, P("nope/x"), 0o755), fs.ErrNotExist)
	s.Want(`Mkdir("f/x")`, s.FS.Mkdir(s.Ctx, P("f/x"), 0o755), notDir...)
	s.OnlyNames(".", "d", "f")
	s.OnlyNames("d", "e")
	s.Content("f", "x")
}

func testRemove(s *S) {
	s.Mkdir("d")
	s.Write("d/f", "x")
	s.Write("g", "y")
	s.OK("Remove(d/f)", s.FS.Remove(s.Ctx, P("d/f")))
	s.Missing("d/f")
	s.Want("Remove(d/f) again", s.FS.Remove(s.Ctx, P("d/f")), fs.ErrNotExist)
	s.Want("Remove(d)", s.FS.Remove(s.Ctx, P("d")), storage.ErrIsDir)
	s.Want("Remove(nope/x)", s.FS.Remove(s.Ctx, P("nope/x")), fs.ErrNotExist)
	s.Want("Remove(g/x)", s.FS.Remove(s.Ctx, P("g/x")), notDir...)
	s.OnlyNames(".", "d", "g")
	s.OK("Remove(g)", s.FS.Remove(s.Ctx, P("g")))
	s.OnlyNames(".", "d")
}

func testRemoveDir(s *S) {
	s.Mkdir("d")
	s.Mkdir("d/e")
	s.Write("d/f", "x")
	s.Want("RemoveDir(d) not empty", s.FS.RemoveDir(s.Ctx, P("d")), storage.ErrNotEmpty)
	s.Want("RemoveDir(d/f) a file", s.FS.RemoveDir(s.Ctx, P("d/f")), storage.ErrNotDir)
	s.Want("RemoveDir(nope)", s.FS.RemoveDir(s.Ctx, P("nope")), fs.ErrNotExist)
	s.Want("RemoveDir(d/f/x)", s.FS.RemoveDir(s.Ctx, P("d/f/x")), notDir...)
	s.OnlyNames("d", "e", "f")
	s.OK("RemoveDir(d/e)", s.FS.RemoveDir(s.Ctx, P("d/e")))
	s.Missing("d/e")
	s.OK("Remove(d/f)", s.FS.Remove(s.Ctx, P("d/f")))
	s.OK("RemoveDir(d)", s.FS.RemoveDir(s.Ctx, P("d")))
	s.OnlyNames(".")
}

// testRenameNoReplace: a backend that offers RenameNoReplace renames files
// and directories onto free names and refuses a taken one, leaving both.
func testRenameNoReplace(s *S) {
	r, ok := s.FS.(storage.NoReplaceRenamer)
	if !ok {
		return
	}
	s.Mkdir("d")
	s.Write("d/in", "IN")
	s.Write("a", "A")
	s.Write("b", "B")
	s.Want("RenameNoReplace(a, b)", r.RenameNoReplace(s.Ctx, P("a"), P("b")), fs.ErrExist)
	s.Content("a", "A")
	s.Content("b", "B")
	s.Want("RenameNoReplace(a, d)", r.RenameNoReplace(s.Ctx, P("a"), P("d")), fs.ErrExist)
	s.OK("RenameNoReplace(a, d/a)", r.RenameNoReplace(s.Ctx, P("a"), P("d/a")))
	s.Missing("a")
	s.Content("d/a", "A")
	s.OK("RenameNoReplace(d, e)", r.RenameNoReplace(s.Ctx, P("d"), P("e")))
	s.Content("e/in", "IN")
	s.Want("RenameNoReplace(nope, x)", r.RenameNoReplace(s.Ctx, P("nope"), P("x")), fs.ErrNotExist)
	s.OnlyNames(".", "b", "e")
}

func testRename(s *S) {
	s.Mkdir("d")
	s.Mkdir("d/sub")
	s.Write("d/sub/deep", "deep")
	s.Write("a", "A")
	s.Write("b", "B")

	s.OK("Rename(a, c)", s.FS.Rename(s.Ctx, P("a"), P("c")))
	s.Missing("a")
	s.Content("c", "A")
	// Onto an existing file: replaces it.
	s.OK("Rename(c, b)", s.FS.Rename(s.Ctx, P("c"), P("b")))
	s.Missing("c")
	s.Content("b", "A")
	// Into a directory, and a directory with its content.
	s.OK("Rename(b, d/b)", s.FS.Rename(s.Ctx, P("b"), P("d/b")))
	s.Content("d/b", "A")
	s.OK("Rename(d, e)", s.FS.Rename(s.Ctx, P("d"), P("e")))
	s.Missing("d")
	s.Content("e/sub/deep", "deep")
	s.Content("e/b", "A")
	s.OnlyNames(".", "e")

	s.Want("Rename(nope, x)", s.FS.Rename(s.Ctx, P("nope"), P("x")), fs.ErrNotExist)
	s.Want("Rename(e/b, nope/x)", s.FS.Rename(s.Ctx, P("e/b"), P("nope/x")), fs.ErrNotExist)
	// Refused moves leave the source alone.
	s.Write("f", "F")
	if err := s.FS.Rename(s.Ctx, P("f"), P("e")); err == nil {
		s.Errorf("Rename(file, dir) succeeded")
	} else {
		s.Clean("Rename(file, dir)", err)
	}
	if err := s.FS.Rename(s.Ctx, P("e"), P("e/sub/inside")); err == nil {
		s.Errorf("Rename(dir, its own subdirectory) succeeded")
	} else {
		s.Clean("Rename(dir, own subdir)", err)
	}
	if err := s.FS.Rename(s.Ctx, P("e"), P("f/x")); err == nil {
		s.Errorf("Rename(dir, file/x) succeeded")
	} else {
		s.Clean("Rename(dir, file/x)", err)
	}
	s.Content("f", "F")
	s.Content("e/sub/deep", "deep")
	s.OnlyNames(".", "e", "f")
	s.OnlyNames("e", "b", "sub")
}

func testChmod(s *S) {
	s.Write("f", "x")
	s.Mkdir("d")
	if !s.chmodSupported("f") {
		s.Want("Chmod", s.FS.Chmod(s.Ctx, P("nope"), 0o644), fs.ErrNotExist, storage.ErrNotSupported)
		s.Skip("backend keeps no permission bits")
	}
	for _, m := range []fs.FileMode{0o640, 0o604, 0o755, 0o600} {
		s.OK("Chmod(f)", s.FS.Chmod(s.Ctx, P("f"), m))
		s.perm("f", m)
	}
	s.OK("Chmod(d)", s.FS.Chmod(s.Ctx, P("d"), 0o750))
	s.perm("d", 0o750)
	s.OK("Chmod(d)", s.FS.Chmod(s.Ctx, P("d"), 0o755))
	// Special bits never reach the file: a client cannot make setuid files.
	s.OK("Chmod(f, setuid)", s.FS.Chmod(s.Ctx, P("f"), fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky|0o755))
	s.perm("f", 0o755)
	s.OK("Chmod(f, 04755)", s.FS.Chmod(s.Ctx, P("f"), 0o4755))
	if fi, err := s.FS.Stat(s.Ctx, P("f")); err == nil && fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
		s.Errorf("Chmod(f, 04755) left special bits: %v", fi.Mode())
	}
	s.Content("f", "x")
	s.Want("Chmod(nope)", s.FS.Chmod(s.Ctx, P("nope"), 0o644), fs.ErrNotExist)
	s.Want("Chmod(f/x)", s.FS.Chmod(s.Ctx, P("f/x"), 0o644), notDir...)
}

func testChtimes(s *S) {
	s.Write("f", "x")
	s.Mkdir("d")
	when := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	err := s.FS.Chtimes(s.Ctx, P("f"), when)
	if errors.Is(err, storage.ErrNotSupported) {
		s.Skip("backend cannot set times")
	}
	s.OK("Chtimes(f)", err)
	for _, name := range []string{"f", "d"} {
		if name == "d" {
			s.OK("Chtimes(d)", s.FS.Chtimes(s.Ctx, P("d"), when))
		}
		fi, err := s.FS.Stat(s.Ctx, P(name))
		s.OK("Stat", err)
		if fi.ModTime().Unix() != when.Unix() {
			s.Errorf("mtime of %s = %v, want %v", name, fi.ModTime().UTC(), when)
		}
	}
	s.Content("f", "x")
	s.Want("Chtimes(nope)", s.FS.Chtimes(s.Ctx, P("nope"), when), fs.ErrNotExist)
	s.Want("Chtimes(f/x)", s.FS.Chtimes(s.Ctx, P("f/x"), when), notDir...)
}

// testNames checks that names a client may use (package vpath lets through
// everything but NUL, CR, LF and invalid UTF-8) round-trip unchanged.
func testNames(s *S) {
	names := []string{
		"space name.txt",
		"été ñ 日本語.txt",
		`back\slash`,
		"-leading-dash",
		"%2e%2e",
		"...",
		"a..b",
		".hidden",
		"tab\tname",
		`quote"'`,
		"semi;colon&amp|pipe*?[x]",
		s.long("n", 255),
		s.long("é", 127) + "x", // 255 bytes
		s.long("d", 240),
	}
	s.Mkdir("sub dir")
	for _, base := range names {
		for _, name := range []string{base, "sub dir/" + base} {
			s.Write(name, name)
			s.Content(name, name)
			fi, err := s.FS.Stat(s.Ctx, P(name))
			s.OK("Stat", err)
			if fi.Name() != base {
				s.Errorf("Stat(%q).Name() = %q", name, fi.Name())
			}
			// Replacing a long name must not need a longer temporary one.
			s.Write(name, "again")
			s.Upload(name, storage.CreateOptions{Perm: 0o644}, "aborted", false)
			s.Content(name, "again")
		}
	}
	want := append([]string{"sub dir"}, names...)
	s.OnlyNames(".", want...)
	s.OnlyNames("sub dir", names...)
	for _, base := range names {
		s.OK("Remove", s.FS.Remove(s.Ctx, P(base)))
		s.Missing(base)
	}
	s.Mkdir(s.long("D", 255))
	s.Write(s.long("D", 255)+"/"+s.long("F", 255), "deep")
	s.Content(s.long("D", 255)+"/"+s.long("F", 255), "deep")
}

// long repeats unit n times, or fewer to stay within Options.MaxNameBytes.
func (s *S) long(unit string, n int) string {
	if m := s.opts.MaxNameBytes; m > 0 {
		n = min(n, (m-1)/len(unit))
	}
	return strings.Repeat(unit, n)
}

// byteNames are names that are not UTF-8: Latin-1, bytes that cannot start
// UTF-8, a lone continuation byte (a raw C1 of no encoding).
var byteNames = []string{"caf\xe9.txt", "\xff\xfe", "a\x80b", "\xc3(latin"}

// testByteNames: a backend with storage.CapByteNames keeps names that are
// not UTF-8 as exactly those bytes through every operation; one without it
// refuses them with storage.ErrBadName (ErrNotUTF8 is the one to use) and
// creates nothing.
func testByteNames(s *S) {
	if !storage.CapsOf(s.FS).Has(storage.CapByteNames) {
		s.Write("ok", "x")
		for _, name := range byteNames {
			_, err := s.FS.Create(s.Ctx, P(name), storage.CreateOptions{Perm: 0o644})
			s.Want("Create of "+fmt.Sprintf("%q", name), err, storage.ErrBadName)
			s.Want("Mkdir", s.FS.Mkdir(s.Ctx, P(name), 0o755), storage.ErrBadName)
			s.Want("Rename", s.FS.Rename(s.Ctx, P("ok"), P(name)), storage.ErrBadName)
		}
		s.OnlyNames(".", "ok")
		return
	}
	s.Mkdir("d\xe9")
	for _, base := range byteNames {
		for _, name := range []string{base, "d\xe9/" + base} {
			s.Write(name, name)
			s.Content(name, name)
			fi, err := s.FS.Stat(s.Ctx, P(name))
			s.OK("Stat", err)
			if fi.Name() != base {
				s.Errorf("Stat(%q).Name() = %q", name, fi.Name())
			}
		}
	}
	s.OnlyNames(".", append([]string{"d\xe9"}, byteNames...)...)
	s.OnlyNames("d\xe9", slices.Clone(byteNames)...)
	s.OK("Rename", s.FS.Rename(s.Ctx, P("caf\xe9.txt"), P("d\xe9/\xe9t\xe9")))
	s.Content("d\xe9/\xe9t\xe9", "caf\xe9.txt")
	s.Missing("caf\xe9.txt")
	s.OK("Mkdir", s.FS.Mkdir(s.Ctx, P("\xfe"), 0o755))
	s.OK("RemoveDir", s.FS.RemoveDir(s.Ctx, P("\xfe")))
	s.Missing("\xfe")
	for _, name := range byteNames[1:] {
		s.OK(fmt.Sprintf("Remove(%q)", name), s.FS.Remove(s.Ctx, P(name)))
		s.Missing(name)
	}
}

// testUploadsInTurn runs two whole uploads of one name side by side: each
// Commit leaves one complete content, never a mix.
func testUploadsInTurn(s *S) {
	s.Write("f", "original")
	a, err := s.FS.Create(s.Ctx, P("f"), storage.CreateOptions{Perm: 0o644})
	s.OK("Create a", err)
	b, err := s.FS.Create(s.Ctx, P("f"), storage.CreateOptions{Perm: 0o644})
	s.OK("Create b", err)
	for range 50 {
		s.WriteAll(a, "AAAAAAAA")
		s.WriteAll(b, "bbbbbbbbbbbb")
	}
	s.Content("f", "original")
	s.OK("Commit a", a.Commit(s.Ctx))
	s.Content("f", strings.Repeat("A", 400))
	s.OK("Commit b", b.Commit(s.Ctx))
	s.Content("f", strings.Repeat("b", 600))
	s.OnlyNames(".", "f")

	// The other order, and an Abort between: the committed one wins whole.
	a, err = s.FS.Create(s.Ctx, P("f"), storage.CreateOptions{Perm: 0o644})
	s.OK("Create a", err)
	b, err = s.FS.Create(s.Ctx, P("f"), storage.CreateOptions{Perm: 0o644})
	s.OK("Create b", err)
	s.WriteAll(a, "first")
	s.WriteAll(b, "second")
	s.OK("Commit b", b.Commit(s.Ctx))
	s.OK("Abort a", a.Abort(s.Ctx))
	s.Content("f", "second")
	s.OnlyNames(".", "f")
}

// testUploadsConcurrent runs whole uploads of one name from several
// goroutines while others read it: every read sees one complete content.
func testUploadsConcurrent(s *S) {
	const writers, rounds, size = 4, 5, 24 << 10
	content := func(i int) string { return strings.Repeat(string(rune('A'+i)), size+i*101) }
	valid := func(b []byte) bool {
		if len(b) == 0 {
			return false
		}
		i := int(b[0]) - 'A'
		return i >= 0 && i < writers && len(b) == size+i*101 && bytes.Count(b, b[:1]) == len(b)
	}
	s.Write("f", content(0))
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []string
		done = make(chan struct{})
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		errs = append(errs, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := []byte(content(w))
			for range rounds {
				up, err := s.FS.Create(s.Ctx, P("f"), storage.CreateOptions{Perm: 0o644})
				if err != nil {
					fail("Create: %v", err)
					return
				}
				for p := data; len(p) > 0; {
					n := min(len(p), 4096)
					if _, err := up.Write(p[:n]); err != nil {
						fail("Write: %v", err)
						up.Abort(s.Ctx)
						return
					}
					p = p[n:]
				}
				if err := up.Commit(s.Ctx); err != nil {
					fail("Commit: %v", err)
					return
				}
			}
		}()
	}
	var rg sync.WaitGroup
	for range 2 {
		rg.Add(1)
		go func() {
			defer rg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				f, err := s.FS.Open(s.Ctx, P("f"), 0)
				if err != nil {
					fail("Open during uploads: %v", err)
					return
				}
				b, err := io.ReadAll(f)
				f.Close()
				if err != nil || !valid(b) {
					fail("read during uploads: %d bytes starting %q, %v", len(b), b[:min(len(b), 8)], err)
					return
				}
				runtime.Gosched()
			}
		}()
	}
	wg.Wait()
	close(done)
	rg.Wait()
	for _, e := range errs {
		s.Error(e)
	}
	if b := []byte(s.Read("f")); !valid(b) {
		s.Errorf("final content is not one upload: %d bytes starting %q", len(b), b[:min(len(b), 8)])
	}
	s.OnlyNames(".", "f")
	if names := s.Names("."); !slices.Equal(names, []string{"f"}) {
		s.Errorf("ReadDir after the uploads = %q, want [f]", names)
	}
}

// Tree is a snapshot of a host directory: each path's mode, size, times
// and content, to check that nothing in it changed.
type Tree map[string]string

// Snapshot records the host tree below dir without following symlinks.
func Snapshot(t testing.TB, dir string) Tree {
	t.Helper()
	tree := Tree{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		desc := fmt.Sprintf("%v %d %d", fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += " " + string(b)
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			desc += " -> " + l
		}
		tree[filepath.ToSlash(rel)] = desc
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot of %s: %v", dir, err)
	}
	return tree
}

// Diff describes how b differs from t, or returns "".
func (t Tree) Diff(b Tree) string {
	var out []string
	for p, d := range t {
		if e, ok := b[p]; !ok {
			out = append(out, "removed "+p)
		} else if e != d {
			out = append(out, fmt.Sprintf("changed %s: %s -> %s", p, d, e))
		}
	}
	for p := range b {
		if _, ok := t[p]; !ok {
			out = append(out, "created "+p)
		}
	}
	slices.Sort(out)
	if len(out) > 10 {
		out = append(out[:10], fmt.Sprintf("and %d more", len(out)-10))
	}
	return strings.Join(out, "; ")
}

// P returns the vpath.Path of a name in storage's form ("." for the root),
// for the suite and backend tests; it panics on a name vpath would not
// produce.
func P(name string) vpath.Path {
	p, err := vpath.FromRel(name)
	if err != nil {
		panic(fmt.Sprintf("storagetest.P(%q): %v", name, err))
	}
	return p
}

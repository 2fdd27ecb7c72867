package wire

import (
	"bytes"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// checkGolden compares got with testdata/name, or rewrites the file with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/ftp/wire -update to create it)", err)
	}
	if bytes.Equal(got, want) {
		return
	}
	gl, wl := bytes.SplitAfter(got, []byte("\n")), bytes.SplitAfter(want, []byte("\n"))
	for i := range max(len(gl), len(wl)) {
		var g, w []byte
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if !bytes.Equal(g, w) {
			t.Errorf("%s: line %d differs (run with -update if the change is intended)\n got: %q\nwant: %q", path, i+1, g, w)
			return
		}
	}
}

// fakeInfo is an fs.FileInfo with fixed values.
type fakeInfo struct {
	name  string
	size  int64
	mode  fs.FileMode
	mtime time.Time
}

func (f *fakeInfo) Name() string       { return f.name }
func (f *fakeInfo) Size() int64        { return f.size }
func (f *fakeInfo) Mode() fs.FileMode  { return f.mode }
func (f *fakeInfo) ModTime() time.Time { return f.mtime }
func (f *fakeInfo) IsDir() bool        { return f.mode.IsDir() }
func (f *fakeInfo) Sys() any           { return nil }

// goldenNow is "now" for every golden listing.
var goldenNow = time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)

// fixture is one listed object with its owner and group.
type fixture struct {
	info         *fakeInfo
	owner, group string
}

func fixtures() []fixture {
	now := goldenNow
	cet := time.FixedZone("CET", 3600)
	f := func(name string, size int64, mode fs.FileMode, mtime time.Time) fixture {
		return fixture{&fakeInfo{name, size, mode, mtime}, "alice", "staff"}
	}
	list := []fixture{
		f("docs", 4096, fs.ModeDir|0o755, now.Add(-2*time.Hour)),
		f("readme.txt", 1234, 0o644, time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)),
		f("empty", 0, 0o644, time.Date(2025, 12, 25, 8, 9, 0, 0, time.UTC)),
		f("big.iso", 1<<40, 0o644, now.Add(-24*time.Hour)),
		f("eight-digits", 99999999, 0o644, now.Add(-24*time.Hour)),
		f("nine-digits", 100000000, 0o644, now.Add(-24*time.Hour)),
		f("huge", 1<<63-1, 0o600, time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC)),
		f("latest", 11, fs.ModeSymlink|0o777, now.Add(-time.Minute)),
		f("my file with spaces.txt", 42, 0o600, now.Add(-30*24*time.Hour)),
		f("naïve résumé 日本語.txt", 7, 0o640, now.Add(-3*time.Hour)),
		f(" leading space", 1, 0o644, now),
		f("future.bin", 1, 0o644, now.Add(2*time.Hour)),
		f("soon.bin", 1, 0o644, now.Add(30*time.Minute)),
		f("one-hour-ahead", 1, 0o644, now.Add(time.Hour)),
		f("edge-old", 1, 0o644, now.Add(-recentWindow)),
		f("edge-recent", 1, 0o644, now.Add(-recentWindow+time.Second)),
		f("cet-mtime", 1, 0o644, time.Date(2026, 3, 1, 0, 30, 0, 0, cet)),
		f("setuid", 100, fs.ModeSetuid|0o755, now.Add(-time.Hour)),
		f("setgid-noexec", 100, fs.ModeSetgid|0o644, now.Add(-time.Hour)),
		f("tmp", 4096, fs.ModeDir|fs.ModeSticky|0o777, now.Add(-time.Hour)),
		f("sticky-noexec", 4096, fs.ModeDir|fs.ModeSticky|0o754, now.Add(-time.Hour)),
		f("all-special", 1, fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky, now.Add(-time.Hour)),
		f("fifo", 0, fs.ModeNamedPipe|0o644, now.Add(-time.Hour)),
		f("sock", 0, fs.ModeSocket|0o755, now.Add(-time.Hour)),
		f("null", 0, fs.ModeDevice|fs.ModeCharDevice|0o666, now.Add(-time.Hour)),
		f("sda", 0, fs.ModeDevice|0o660, now.Add(-time.Hour)),
		f("no-perms", 0, 0, now.Add(-time.Hour)),
	}
	list = append(list,
		fixture{&fakeInfo{"anonymous", 5, 0o644, now.Add(-time.Hour)}, "", ""},
		fixture{&fakeInfo{"long-owner", 5, 0o644, now.Add(-time.Hour)}, "averyverylongowner", "wheel"},
	)
	return list
}

func TestAppendListLineGolden(t *testing.T) {
	var buf []byte
	for _, fx := range fixtures() {
		buf = AppendListLine(buf, fx.info, fx.owner, fx.group, goldenNow)
	}
	checkGolden(t, "list.golden", buf)
}

func TestAppendFactsGolden(t *testing.T) {
	now := goldenNow
	var entries []Entry
	for i, fx := range fixtures() {
		e := Entry{Info: fx.info, Perm: "adfrw", Unique: "u" + string(rune('a'+i%26))}
		if fx.info.IsDir() {
			e.Perm = "cdeflmp"
		}
		entries = append(entries, e)
	}
	entries = append(entries,
		Entry{Name: ".", Type: "cdir", Perm: "el", Info: &fakeInfo{"pub", 4096, fs.ModeDir | 0o755, now}},
		Entry{Name: "..", Type: "pdir", Perm: "el"},
		Entry{Name: "/pub/file name.txt", Perm: "r", Info: &fakeInfo{"file name.txt", 3, 0o444, now}},
		Entry{Name: "link", Type: "OS.unix=symlink", Info: &fakeInfo{"link", 9, 0o777, now}},
		Entry{Name: "bad values", Type: "file", Perm: "a;d f\r\n", Unique: "x=y;z", Info: &fakeInfo{"bad values", 1, 0o644, now}},
		Entry{Name: "no info"},
		Entry{Name: "owned", Unique: "fd00g2a", Owner: "1000", Group: "100", Info: &fakeInfo{"owned", 5, 0o640, now}},
	)
	var buf []byte
	for _, want := range []Facts{AllFacts, DefaultFacts, FactType | FactSize | FactModify, FactModify | FactUnixMode, FactPerm, 0} {
		buf = append(buf, "# want: "...)
		buf = append(buf, want.String()...)
		buf = append(buf, '\n')
		for _, e := range entries {
			buf = AppendFacts(buf, e, want)
			buf = append(buf, '\n')
		}
	}
	checkGolden(t, "facts.golden", buf)
}

package wire

import (
	"io/fs"
	"testing"
	"time"
)

func TestAppendFacts(t *testing.T) {
	mt := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	file := &fakeInfo{"name", 12, 0o644, mt}
	tests := []struct {
		e    Entry
		want Facts
		out  string
	}{
		{Entry{Info: file, Perm: "adfrw", Unique: "abc"}, DefaultFacts,
			"type=file;size=12;modify=20260101120000;perm=adfrw;unique=abc;UNIX.mode=0644; name"},
		{Entry{Name: "/a/name", Info: file}, DefaultFacts,
			"type=file;size=12;modify=20260101120000;UNIX.mode=0644; /a/name"},
		{Entry{Info: file}, FactSize, "size=12; name"},
		{Entry{Info: file}, 0, " name"},
		{Entry{Info: &fakeInfo{"d", 4096, fs.ModeDir | 0o755, mt}}, DefaultFacts,
			"type=dir;modify=20260101120000;UNIX.mode=0755; d"},
		{Entry{Info: &fakeInfo{"l", 4, fs.ModeSymlink | 0o777, mt}}, FactType | FactSize,
			"type=OS.unix=symlink; l"},
		{Entry{Info: &fakeInfo{"s", 4, fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky | 0o755, mt}}, FactUnixMode,
			"UNIX.mode=7755; s"},
		{Entry{Name: "..", Type: "pdir"}, DefaultFacts, "type=pdir; .."},
		{Entry{Name: "x"}, DefaultFacts, " x"},
		{Entry{Name: "x", Type: "file", Perm: "r w;\x00"}, DefaultFacts, "type=file;perm=r?w??; x"},
		{Entry{Info: file, Owner: "1000", Group: "100"}, AllFacts,
			"type=file;size=12;modify=20260101120000;UNIX.mode=0644;UNIX.owner=1000;UNIX.group=100; name"},
		{Entry{Info: file, Owner: "1000", Group: "100"}, DefaultFacts,
			"type=file;size=12;modify=20260101120000;UNIX.mode=0644; name"},
		{Entry{Info: file, Owner: "1 0;0"}, FactUnixOwner | FactUnixGroup, "UNIX.owner=1?0?0; name"},
		{Entry{Name: "caf\xe9\xff", Type: "file"}, FactType, "type=file; caf\xe9\xff"},
	}
	for _, tt := range tests {
		if got := string(AppendFacts(nil, tt.e, tt.want)); got != tt.out {
			t.Errorf("AppendFacts(%+v, %v) =\n%q, want\n%q", tt.e, tt.want, got, tt.out)
		}
	}
}

func TestAppendFactsAllocs(t *testing.T) {
	e := Entry{Info: &fakeInfo{"file.txt", 12345, 0o644, goldenNow}, Perm: "adfrw", Unique: "801g1a2b"}
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { buf = AppendFacts(buf[:0], e, DefaultFacts) }); n != 0 {
		t.Errorf("AppendFacts allocates %v times, want 0", n)
	}
}

func TestParseOptsMLST(t *testing.T) {
	tests := []struct {
		arg   string
		facts Facts
		canon string
	}{
		{"", 0, ""},
		{";", 0, ""},
		{"type;size;modify;", FactType | FactSize | FactModify, "type;size;modify;"},
		{"modify;type;", FactType | FactModify, "type;modify;"},
		{"TYPE;Size", FactType | FactSize, "type;size;"},
		{"unix.MODE;", FactUnixMode, "UNIX.mode;"},
		{"type;charset;lang;media-type;", FactType, "type;"},
		{"bogus", 0, ""},
		{"type;;type;", FactType, "type;"},
		{" type ; perm ;", FactType | FactPerm, "type;perm;"},
		{"type;size;modify;perm;unique;UNIX.mode;", DefaultFacts, "type;size;modify;perm;unique;UNIX.mode;"},
		{"type*;", 0, ""},
		{"UNIX.owner;unix.GROUP;type;", FactType | FactUnixOwner | FactUnixGroup, "type;UNIX.owner;UNIX.group;"},
	}
	for _, tt := range tests {
		f, s := ParseOptsMLST(tt.arg, AllFacts)
		if f != tt.facts || s != tt.canon {
			t.Errorf("ParseOptsMLST(%q) = %v, %q; want %v, %q", tt.arg, f, s, tt.facts, tt.canon)
		}
	}
	// A fact not offered is not selected.
	if f, s := ParseOptsMLST("type;unique;UNIX.owner;", FactType|FactSize); f != FactType || s != "type;" {
		t.Errorf("ParseOptsMLST with unique and UNIX.owner not offered = %v, %q", f, s)
	}
}

func TestFeatFacts(t *testing.T) {
	tests := []struct {
		offered, f Facts
		want       string
	}{
		{AllFacts, DefaultFacts, "type*;size*;modify*;perm*;unique*;UNIX.mode*;UNIX.owner;UNIX.group;"},
		{AllFacts, 0, "type;size;modify;perm;unique;UNIX.mode;UNIX.owner;UNIX.group;"},
		{AllFacts, FactType | FactModify | FactUnixGroup, "type*;size;modify*;perm;unique;UNIX.mode;UNIX.owner;UNIX.group*;"},
		{AllFacts &^ (FactUnique | FactUnixOwner | FactUnixGroup), DefaultFacts, "type*;size*;modify*;perm*;UNIX.mode*;"},
	}
	for _, tt := range tests {
		if got := FeatFacts(tt.offered, tt.f); got != tt.want {
			t.Errorf("FeatFacts(%v, %v) = %q, want %q", tt.offered, tt.f, got, tt.want)
		}
	}
}

func TestInfoType(t *testing.T) {
	tests := []struct {
		mode fs.FileMode
		want string
	}{
		{0o644, "file"},
		{fs.ModeDir, "dir"},
		{fs.ModeSymlink, "OS.unix=symlink"},
		{fs.ModeNamedPipe, "OS.unix=fifo"},
		{fs.ModeSocket, "OS.unix=socket"},
		{fs.ModeDevice | fs.ModeCharDevice, "OS.unix=chardev"},
		{fs.ModeDevice, "OS.unix=blockdev"},
		{fs.ModeIrregular, "OS.unix=special"},
	}
	for _, tt := range tests {
		if got := infoType(&fakeInfo{mode: tt.mode}); got != tt.want {
			t.Errorf("infoType(%v) = %q, want %q", tt.mode, got, tt.want)
		}
	}
	if got := infoType(nil); got != "" {
		t.Errorf("infoType(nil) = %q", got)
	}
}

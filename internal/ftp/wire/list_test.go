package wire

import (
	"io/fs"
	"strings"
	"testing"
	"time"
)

func TestModeString(t *testing.T) {
	tests := []struct {
		mode fs.FileMode
		want string
	}{
		{0, "----------"},
		{0o644, "-rw-r--r--"},
		{0o755 | fs.ModeDir, "drwxr-xr-x"},
		{0o777 | fs.ModeSymlink, "lrwxrwxrwx"},
		{0o4755, "-rwxr-xr-x"}, // Unix bits above 0o777 are not fs.FileMode flags
		{0o755 | fs.ModeSetuid, "-rwsr-xr-x"},
		{0o644 | fs.ModeSetuid, "-rwSr--r--"},
		{0o755 | fs.ModeSetgid, "-rwxr-sr-x"},
		{0o744 | fs.ModeSetgid, "-rwxr-Sr--"},
		{0o777 | fs.ModeDir | fs.ModeSticky, "drwxrwxrwt"},
		{0o776 | fs.ModeDir | fs.ModeSticky, "drwxrwxrwT"},
		{fs.ModeNamedPipe | 0o600, "prw-------"},
		{fs.ModeSocket | 0o777, "srwxrwxrwx"},
		{fs.ModeDevice | fs.ModeCharDevice | 0o666, "crw-rw-rw-"},
		{fs.ModeDevice | 0o660, "brw-rw----"},
		{fs.ModeIrregular | 0o644, "-rw-r--r--"},
	}
	for _, tt := range tests {
		if got := string(appendModeString(nil, tt.mode)); got != tt.want {
			t.Errorf("mode %v = %q, want %q", tt.mode, got, tt.want)
		}
	}
}

func TestAppendListLine(t *testing.T) {
	now := time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)
	fi := &fakeInfo{"name", 4096, fs.ModeDir | 0o755, time.Date(2026, 1, 2, 15, 4, 0, 0, time.UTC)}
	got := string(AppendListLine([]byte("x"), fi, "owner", "group", now))
	want := "xdrwxr-xr-x    1 owner    group        4096 Jan  2 15:04 name\r\n"
	if got != want {
		t.Errorf("AppendListLine =\n%q, want\n%q", got, want)
	}
}

func TestListDate(t *testing.T) {
	now := time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		mtime time.Time
		want  string
	}{
		{now, "Mar 15 12:00"},
		{now.Add(time.Hour), "Mar 15 13:00"},
		{now.Add(time.Hour + time.Second), "Mar 15  2026"},
		{now.Add(-recentWindow + time.Second), "Sep 13 21:05"},
		{now.Add(-recentWindow), "Sep 13  2025"},
		{time.Date(2025, 12, 5, 1, 2, 0, 0, time.UTC), "Dec  5 01:02"},
		{time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC), "Dec 31  1999"},
		{time.Date(2026, 3, 15, 13, 30, 0, 0, time.FixedZone("CET", 3600)), "Mar 15 12:30"},
	}
	for _, tt := range tests {
		if got := string(appendListTime(nil, tt.mtime, now)); got != tt.want {
			t.Errorf("date of %v = %q, want %q", tt.mtime, got, tt.want)
		}
	}
}

// TestListLineColumns checks the property clients rely on: splitting on
// spaces gives nine fields, the ninth being the name.
func TestListLineColumns(t *testing.T) {
	for _, fx := range fixtures() {
		line := string(AppendListLine(nil, fx.info, fx.owner, fx.group, goldenNow))
		if !strings.HasSuffix(line, "\r\n") || strings.Count(line, "\n") != 1 {
			t.Errorf("%q: not one CRLF line", line)
			continue
		}
		f := strings.Fields(line)
		if len(f) < 9 || len(f[0]) != 10 || f[1] != "1" {
			t.Errorf("%q: fields %q", line, f)
			continue
		}
		// The name starts after the eighth field and one space.
		rest := line
		for range 8 {
			rest = strings.TrimLeft(rest, " ")
			rest = rest[strings.IndexByte(rest, ' ')+1:]
		}
		if name := strings.TrimSuffix(rest, "\r\n"); name != fx.info.name {
			t.Errorf("%q: name %q, want %q", line, name, fx.info.name)
		}
	}
}

func TestAppendListLineAllocs(t *testing.T) {
	fi := &fakeInfo{"file.txt", 12345, 0o644, goldenNow.Add(-time.Hour)}
	buf := make([]byte, 0, 256)
	n := testing.AllocsPerRun(100, func() { buf = AppendListLine(buf[:0], fi, "alice", "staff", goldenNow) })
	if n != 0 {
		t.Errorf("AppendListLine allocates %v times, want 0", n)
	}
}

// FuzzListDate checks the hand-written LIST date against time.Format.
func FuzzListDate(f *testing.F) {
	now := time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC).Unix()
	f.Add(now, now)
	f.Add(now-86400*30, now)
	f.Add(now-86400*200, now)
	f.Add(now+1800, now)
	f.Add(now+7200, now)
	f.Add(int64(253402300799), now) // 9999-12-31
	f.Add(int64(253402300800), now) // 10000-01-01
	f.Add(int64(-62167219201), now) // year -1
	f.Fuzz(func(t *testing.T, sec, nowSec int64) {
		tm, n := time.Unix(sec, 0), time.Unix(nowSec, 0)
		layout := "Jan _2  2006"
		if tm.After(n.Add(-recentWindow)) && !tm.After(n.Add(time.Hour)) {
			layout = "Jan _2 15:04"
		}
		if got, want := string(appendListTime([]byte("x"), tm, n)), "x"+tm.UTC().Format(layout); got != want {
			t.Fatalf("appendListTime(%v, %v) = %q, want %q", tm, n, got, want)
		}
	})
}

package xferlog

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/event"
)

var when = time.Date(2026, 12, 3, 14, 2, 51, 0, time.UTC)

// transfer is a completed binary download by alice over plain FTP; each
// golden case changes what it tests.
func transfer(mod func(*event.Event)) event.Event {
	e := event.Event{Kind: event.KindTransfer, Time: when, Session: "1f", Remote: netip.MustParseAddrPort("203.0.113.7:50123"),
		User: "alice", Method: "password", Cmd: "RETR", Path: "/pub/report.pdf", Direction: "download",
		Bytes: 10485760, Duration: 2600 * time.Millisecond, Result: "ok"}
	if mod != nil {
		mod(&e)
	}
	return e
}

// TestTransferGolden: one line per field case, each with its 18 fields.
func TestTransferGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		e    event.Event
		want string
	}{
		{"binary download, real user, complete", transfer(nil),
			"Thu Dec 03 14:02:51 2026 3 203.0.113.7 10485760 /pub/report.pdf b _ o r alice ftp 0 * c"},
		{"ascii upload", transfer(func(e *event.Event) { e.ASCII, e.Direction, e.Cmd, e.Bytes = true, "upload", "STOR", 12 }),
			"Thu Dec 03 14:02:51 2026 3 203.0.113.7 12 /pub/report.pdf a _ i r alice ftp 0 * c"},
		{"aborted, incomplete", transfer(func(e *event.Event) { e.Result, e.Bytes, e.Err = "aborted", 524288, errors.New("cancelled") }),
			"Thu Dec 03 14:02:51 2026 3 203.0.113.7 524288 /pub/report.pdf b _ o r alice ftp 0 * i"},
		{"failed, incomplete", transfer(func(e *event.Event) { e.Result, e.Direction, e.Bytes = "failed", "upload", 0 }),
			"Thu Dec 03 14:02:51 2026 3 203.0.113.7 0 /pub/report.pdf b _ i r alice ftp 0 * i"},
		{"anonymous: the e-mail as the user name", transfer(func(e *event.Event) {
			e.User, e.Method, e.Detail = "anonymous", "anonymous", "guest@example.com"
		}), "Thu Dec 03 14:02:51 2026 3 203.0.113.7 10485760 /pub/report.pdf b _ o a guest@example.com ftp 0 * c"},
		{"anonymous without a password", transfer(func(e *event.Event) { e.User, e.Method, e.Detail = "anonymous", "anonymous", "" }),
			"Thu Dec 03 14:02:51 2026 3 203.0.113.7 10485760 /pub/report.pdf b _ o a anonymous ftp 0 * c"},
		{"anonymous password with spaces", transfer(func(e *event.Event) { e.User, e.Method, e.Detail = "anonymous", "anonymous", "a b\tc" }),
			"Thu Dec 03 14:02:51 2026 3 203.0.113.7 10485760 /pub/report.pdf b _ o a a_b_c ftp 0 * c"},
		{"FTPS: service ftps", transfer(func(e *event.Event) { e.Secure = true }),
			"Thu Dec 03 14:02:51 2026 3 203.0.113.7 10485760 /pub/report.pdf b _ o r alice ftps 0 * c"},
		{"spaces in the name", transfer(func(e *event.Event) { e.Path = "/my docs/annual report 2026.pdf" }),
			"Thu Dec 03 14:02:51 2026 3 203.0.113.7 10485760 /my_docs/annual_report_2026.pdf b _ o r alice ftp 0 * c"},
		{"control characters in the name", transfer(func(e *event.Event) { e.Path = "/a\rb\nc\x1b[2Jd\x7fe\u009bf" }),
			"Thu Dec 03 14:02:51 2026 3 203.0.113.7 10485760 /a_b_c_[2Jd_e_f b _ o r alice ftp 0 * c"},
		{"Unicode: kept, but its spaces", transfer(func(e *event.Event) { e.Path = "/Grüße\u00a0aus\u3000Köln.txt" }),
			"Thu Dec 03 14:02:51 2026 3 203.0.113.7 10485760 /Grüße_aus_Köln.txt b _ o r alice ftp 0 * c"},
		{"a transfer under half a second takes 1 second", transfer(func(e *event.Event) { e.Duration = 40 * time.Millisecond }),
			"Thu Dec 03 14:02:51 2026 1 203.0.113.7 10485760 /pub/report.pdf b _ o r alice ftp 0 * c"},
		{"IPv6 client, single-digit day", transfer(func(e *event.Event) {
			e.Remote, e.Time = netip.MustParseAddrPort("[2001:db8::7]:40000"), time.Date(2026, 1, 5, 9, 3, 4, 0, time.UTC)
		}), "Mon Jan 05 09:03:04 2026 3 2001:db8::7 10485760 /pub/report.pdf b _ o r alice ftp 0 * c"},
		{"a user name with a space", transfer(func(e *event.Event) { e.User = "first last" }),
			"Thu Dec 03 14:02:51 2026 3 203.0.113.7 10485760 /pub/report.pdf b _ o r first_last ftp 0 * c"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(AppendTransfer(nil, tc.e, time.UTC))
			if got != tc.want+"\n" {
				t.Errorf("got  %q\nwant %q", got, tc.want+"\n")
			}
			if n := len(strings.Split(strings.TrimSuffix(got, "\n"), " ")); n != 18 {
				t.Errorf("%d fields split on single spaces, want 18: %q", n, got)
			}
			if n := len(strings.Fields(got)); n != 18 {
				t.Errorf("%d fields split on white space, want 18: %q", n, got)
			}
		})
	}
}

// TestTransfersObserve: only downloads and uploads are written, in local
// time by default; other events are not.
func TestTransfersObserve(t *testing.T) {
	f := openTemp(t)
	x := NewTransfers(f, time.UTC, nil)
	x.Observe(transfer(nil))
	x.Observe(transfer(func(e *event.Event) { e.Direction, e.Cmd = "list", "LIST" }))
	x.Observe(event.Event{Kind: event.KindLogin, Time: when, Result: "ok"})
	x.Observe(transfer(func(e *event.Event) { e.Direction = "upload" }))
	got := readFile(t, f.Path())
	if n := strings.Count(got, "\n"); n != 2 {
		t.Errorf("%d lines, want 2:\n%s", n, got)
	}
	if NewTransfers(f, nil, nil).loc != time.Local {
		t.Error("the default time zone is not local time")
	}
}

// TestReopen: after the file is moved away (logrotate), Reopen sends the
// next lines to a new file of the same name; the moved one keeps the old.
func TestReopen(t *testing.T) {
	f := openTemp(t)
	f.WriteLine([]byte("one\n"))
	rotated := f.Path() + ".1"
	if err := os.Rename(f.Path(), rotated); err != nil {
		t.Fatal(err)
	}
	f.WriteLine([]byte("two\n")) // still the moved file
	if err := f.Reopen(); err != nil {
		t.Fatal(err)
	}
	f.WriteLine([]byte("three\n"))
	if got := readFile(t, rotated); got != "one\ntwo\n" {
		t.Errorf("rotated file %q", got)
	}
	if got := readFile(t, f.Path()); got != "three\n" {
		t.Errorf("new file %q", got)
	}
	if fi, err := os.Stat(f.Path()); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("new file: %v, %v", fi, err)
	}
	f.Close()
	if err := f.WriteLine([]byte("four\n")); err == nil {
		t.Error("a write after Close succeeded")
	}
	// A file that cannot be opened again keeps the old one.
	g := openTemp(t)
	os.Remove(g.Path())
	os.Mkdir(g.Path(), 0o755) // the name is a directory now
	if err := g.Reopen(); err == nil {
		t.Error("Reopen onto a directory succeeded")
	}
	if err := g.WriteLine([]byte("kept\n")); err != nil {
		t.Errorf("the old descriptor was lost: %v", err)
	}
}

func openTemp(t *testing.T) *File {
	t.Helper()
	f, err := Open(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

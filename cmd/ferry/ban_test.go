package main

import (
	"bytes"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/ban"
)

// banCLI runs `ferry ban ARGS...` and returns its exit status and output.
func banCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = runBan(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestRunBan(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")

	// Before anything is banned, reading commands create nothing.
	if code, out, errs := banCLI("list", "--data", data); code != 0 || !strings.Contains(out, "no bans") {
		t.Fatalf("list on an empty directory: %d %q %q", code, out, errs)
	}
	if code, _, errs := banCLI("del", "192.0.2.1", "--data", data); code != 1 || !strings.Contains(errs, "not banned") {
		t.Fatalf("del on an empty directory: %d %q", code, errs)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Fatalf("reading commands created the data directory: %v", err)
	}

	for _, args := range [][]string{
		{"add", "192.0.2.1", "--data", data, "--for", "2h", "--reason", "scanner"},
		{"add", "--data", data, "2001:db8:1:2::77"}, // flags first; bans the /64
		{"add", "::ffff:198.51.100.7", "--data", data},
	} {
		if code, out, errs := banCLI(args...); code != 0 || !strings.HasPrefix(out, "banned ") {
			t.Fatalf("%v: %d %q %q", args, code, out, errs)
		}
	}

	code, out, errs := banCLI("list", "--data", data)
	if code != 0 {
		t.Fatalf("list: %d %q", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ADDRESS") {
		t.Fatalf("list output:\n%s", out)
	}
	for i, want := range []struct {
		addr, reason string
		dur          time.Duration
	}{
		{"192.0.2.1", "scanner", 2 * time.Hour},
		{"198.51.100.7", "added by an operator", 24 * time.Hour},
		{"2001:db8:1:2::/64", "added by an operator", 24 * time.Hour},
	} {
		f := strings.Fields(lines[i+1])
		if len(f) < 4 || f[0] != want.addr || f[2] != "1" || strings.Join(f[3:], " ") != want.reason {
			t.Errorf("line %d = %q, want %s ... 1 %s", i+1, lines[i+1], want.addr, want.reason)
			continue
		}
		until, err := time.Parse(time.RFC3339, f[1])
		// Loose bounds: they only catch a wrong unit or a missing --for.
		if left := time.Until(until); err != nil || left <= want.dur-time.Hour || left > want.dur {
			t.Errorf("%s: until %q (%v), want about %v from now", want.addr, f[1], err, want.dur)
		}
	}

	// The server's store sees the CLI's bans.
	store, err := ban.OpenSQL(filepath.Join(data, "users.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	d := ban.NewDefender(store, ban.Options{Threshold: 5})
	if _, banned := d.Banned(t.Context(), netip.MustParseAddr("2001:db8:1:2:ffff::1")); !banned {
		t.Error("server does not see the CLI's /64 ban")
	}

	// A repeat ban counts on.
	banCLI("add", "192.0.2.1", "--data", data)
	if b, _, _ := store.Get(t.Context(), netip.MustParseAddr("192.0.2.1")); b.Count != 2 {
		t.Errorf("second ban of an address has count %d, want 2", b.Count)
	}

	// Any address of the /64 names it.
	if code, out, errs := banCLI("del", "2001:db8:1:2::1", "--data", data); code != 0 || !strings.Contains(out, "2001:db8:1:2::/64") {
		t.Fatalf("del: %d %q %q", code, out, errs)
	}
	if code, _, _ := banCLI("del", "--data", data, "192.0.2.1"); code != 0 {
		t.Fatal("del of 192.0.2.1 failed")
	}
	if code, _, errs := banCLI("del", "192.0.2.1", "--data", data); code != 1 || !strings.Contains(errs, "not banned") {
		t.Errorf("second del: %d %q", code, errs)
	}
	code, out, _ = banCLI("list", "--data", data)
	if code != 0 || strings.Contains(out, "192.0.2.1") || strings.Contains(out, "2001:db8") || !strings.Contains(out, "198.51.100.7") {
		t.Errorf("list after del:\n%s", out)
	}
}

func TestRunBanUsage(t *testing.T) {
	data := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		want string // in stderr, or in stdout for help
	}{
		{nil, 2, "Usage"},
		{[]string{"help"}, 0, "ferry ban list"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"add", "--data", data}, 2, "missing IP"},
		{[]string{"del", "1.2.3.4", "5.6.7.8", "--data", data}, 2, "unexpected argument"},
		{[]string{"add", "example.com", "--data", data}, 2, "not an IP address"},
		{[]string{"add", "10.0.0.0/8", "--data", data}, 2, "/32"},
		{[]string{"add", "2001:db8::/48", "--data", data}, 2, "/64"},
		{[]string{"add", "1.2.3.4", "--for", "-1h", "--data", data}, 2, "positive"},
		{[]string{"add", "1.2.3.4", "--for", "soon", "--data", data}, 2, "invalid value"},
		{[]string{"list", "--for", "1h", "--data", data}, 2, "not defined"},
	} {
		code, out, errs := banCLI(tc.args...)
		if code != tc.code || !strings.Contains(out+errs, tc.want) {
			t.Errorf("ferry ban %v: %d, stdout %q, stderr %q; want %d and %q", tc.args, code, out, errs, tc.code, tc.want)
		}
	}
	// Accepted forms of a target.
	for in, want := range map[string]string{
		"192.0.2.1/32":         "192.0.2.1",
		"::ffff:192.0.2.1/128": "192.0.2.1",
		"2001:db8::/64":        "2001:db8::",
		"2001:db8::5":          "2001:db8::",
		"::ffff:192.0.2.1":     "192.0.2.1",
		"2001:db8:0:0:1::1/64": "2001:db8::",
	} {
		if got, err := parseBanTarget(in); err != nil || got.String() != want {
			t.Errorf("parseBanTarget(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
}

// TestBanDatabase: `ferry ban --database sqlite:PATH` keeps bans in that
// database, with the users, where `ferry serve` with the same [database]
// url looks; no bans.db is made any more. A database it cannot reach fails
// at once, without the password in the message.
func TestBanDatabase(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	dir := filepath.Join(t.TempDir(), "db")
	url := "sqlite:" + filepath.Join(dir, "users.db")
	if code, _, errs := banCLI("add", "192.0.2.9", "--data", data, "--database", url); code != 0 {
		t.Fatalf("add --database: %d %s", code, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, ban.DBFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a bans.db was made beside the database: %v", err)
	}
	store, err := ban.OpenSQL(filepath.Join(dir, "users.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := store.Get(t.Context(), netip.MustParseAddr("192.0.2.9")); !ok || err != nil {
		t.Errorf("the ban is not in the database: %v, %v", ok, err)
	}
	store.Close()
	if code, out, errs := banCLI("list", "--data", data, "--database", url); code != 0 || !strings.Contains(out, "192.0.2.9") {
		t.Errorf("list --database: %d %q %q", code, out, errs)
	}
	if code, out, _ := banCLI("list", "--data", data); code != 0 || !strings.Contains(out, "no bans") {
		t.Errorf("list of the default database: %d %q; want no bans", code, out)
	}
	if _, err := os.Stat(filepath.Join(data, "users.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ban list created the default database: %v", err)
	}
	start := time.Now()
	code, _, errs := banCLI("list", "--data", data, "--database", "postgres://ferry:secret@127.0.0.1:1/ferry?sslmode=disable&connect_timeout=5")
	if code != 1 || !strings.Contains(errs, "unreachable") || strings.Contains(errs, "secret") {
		t.Errorf("list with an unreachable postgres url: %d %q", code, errs)
	}
	t.Logf("unreachable database reported after %v", time.Since(start))
}

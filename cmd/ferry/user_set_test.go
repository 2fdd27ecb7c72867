package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ferryftp/ferry/internal/config"
	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/users/sqlstore"
)

func TestUserSet(t *testing.T) {
	data := t.TempDir()
	run := func(stdin string, args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := runUser(args, strings.NewReader(stdin), &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, _, e := run("pw\n", "add", "al", "--data", data, "--password-stdin"); code != 0 {
		t.Fatalf("add: %d %s", code, e)
	}
	tests := []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"set", "al", "--quota-bytes", "10GiB", "--quota-files", "100", "--upload-rate", "5MiB", "--perms", "/=read;/in=read,upload", "--allow-fxp", "--max-sessions", "3", "--tls-required", "all", "--cert-login"}, 0, ""},
		{[]string{"set", "al"}, 1, "nothing to change"},
		{[]string{"set", "al", "--perms", "/=bogus"}, 1, "unknown verb"},
		{[]string{"set", "al", "--quota-bytes", "12XB"}, 2, "invalid size"},
		{[]string{"set", "al", "--tls-required", "sometimes"}, 1, ""},
		{[]string{"set", "nobody", "--quota-files", "1"}, 1, "no such user"},
		{[]string{"set", "--quota-files", "1"}, 2, "missing NAME"},
		{[]string{"set", "al", "--login-message", "a\rb"}, 1, "must not contain CR or NUL"},
		{[]string{"set", "al", "--login-message", strings.Repeat("l\n", 100) + "l"}, 1, "more than 100 lines"},
	}
	for _, tt := range tests {
		code, _, e := run("", append(tt.args, "--data", data)...)
		if code != tt.code || !strings.Contains(e, tt.err) {
			t.Errorf("%v: code %d stderr %q; want %d containing %q", tt.args, code, e, tt.code, tt.err)
		}
	}
	st, err := openUserStore(data, config.DefaultDatabaseURL, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	u, err := st.Get(context.Background(), "al")
	if err != nil {
		t.Fatal(err)
	}
	if u.QuotaBytes != 10<<30 || u.QuotaFiles != 100 || u.UploadRate != 5<<20 || u.Perms != "/=read;/in=read,upload" ||
		!u.AllowFXP || u.MaxSessions != 3 || u.TLSRequired != "all" || !u.CertLogin || u.CertRequired {
		t.Fatalf("settings not stored: %+v", u)
	}
	code, out, _ := run("", "show", "al", "--data", data)
	if code != 0 || !strings.Contains(out, "quota-bytes    10737418240") {
		t.Fatalf("show: %d %q", code, out)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1024": 1024, "1K": 1024, "2KiB": 2048, "3kb": 3072, "5M": 5 << 20, "1GiB": 1 << 30, "2T": 2 << 40} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1X", "K", "1.5G", "99999999999T"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) succeeded", in)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "1K", "10GiB", "5mb", "-1", "1X", "99999999999T", " 7 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSize(s)
		if err == nil && n < 0 {
			t.Fatalf("parseSize(%q) = %d", s, n)
		}
	})
}

// TestUserShowUsage: `ferry user show` prints what the home stores as the
// quota counts it (regular files; an upload's temporary file and a
// directory count nothing), and nothing for a home not made yet.
func TestUserShowUsage(t *testing.T) {
	data := t.TempDir()
	run := func(stdin string, args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := runUser(args, strings.NewReader(stdin), &out, &errb)
		return code, out.String(), errb.String()
	}
	home := filepath.Join(t.TempDir(), "u")
	if code, _, e := run("pw\n", "add", "u", "--home", home, "--data", data, "--password-stdin"); code != 0 {
		t.Fatalf("add: %d %s", code, e)
	}
	if code, out, e := run("", "show", "u", "--data", data); code != 0 || !regexp.MustCompile(`(?m)^used-bytes +0$`).MatchString(out) || !regexp.MustCompile(`(?m)^used-files +0$`).MatchString(out) {
		t.Fatalf("show before any file: %d %q %s", code, out, e)
	}
	os.MkdirAll(filepath.Join(home, "sub"), 0o755)
	for name, size := range map[string]int{"a": 1000, "sub/b": 24, "sub/" + storage.TempPrefix + "x": 500} {
		if err := os.WriteFile(filepath.Join(home, name), make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, out, e := run("", "show", "u", "--data", data)
	if code != 0 || !regexp.MustCompile(`(?m)^used-bytes +1024$`).MatchString(out) || !regexp.MustCompile(`(?m)^used-files +2$`).MatchString(out) {
		t.Fatalf("show: %d %q %s", code, out, e)
	}
	if _, _, err := homeUsage(t.Context(), "home/u"); err == nil {
		t.Error("homeUsage of a key prefix: no error")
	}
}

// TestUserLoginMessage: ferry user set --login-message stores the user's
// message (trailing newlines dropped), show prints it escaped, and an empty
// one clears it.
func TestUserLoginMessageCLI(t *testing.T) {
	data := t.TempDir()
	run := func(stdin string, args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := runUser(args, strings.NewReader(stdin), &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, _, e := run("pw\n", "add", "m", "--data", data, "--password-stdin"); code != 0 {
		t.Fatalf("add: %d %s", code, e)
	}
	if code, _, e := run("", "set", "m", "--login-message", "Hello.\nBye.\n", "--data", data); code != 0 {
		t.Fatalf("set: %d %s", code, e)
	}
	if code, out, _ := run("", "show", "m", "--data", data); code != 0 || !regexp.MustCompile(`(?m)^login-message +Hello\.\\x0aBye\.$`).MatchString(out) {
		t.Fatalf("show: %d %q", code, out)
	}
	run("", "set", "m", "--login-message", "", "--data", data)
	if code, out, _ := run("", "show", "m", "--data", data); code != 0 || !regexp.MustCompile(`(?m)^login-message +-$`).MatchString(out) {
		t.Fatalf("show after clearing: %d %q", code, out)
	}
}

// TestUserQuotaScan: quota-scan makes the home's count the usage the
// servers enforce, user show prints it, a quota set where there was none
// forgets it, and every malformed form is refused.
func TestUserQuotaScan(t *testing.T) {
	data := t.TempDir()
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := runUser(append(args, "--data", data), strings.NewReader("pw\n"), &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, _, e := run("add", "qs", "--password-stdin"); code != 0 {
		t.Fatalf("add: %d %s", code, e)
	}
	home := filepath.Join(data, "home", "qs")
	os.MkdirAll(filepath.Join(home, "d"), 0o755)
	os.WriteFile(filepath.Join(home, "a"), make([]byte, 100), 0o644)
	os.WriteFile(filepath.Join(home, "d", "b"), make([]byte, 23), 0o644)
	os.WriteFile(filepath.Join(home, "d", storage.TempPrefix+"up"), make([]byte, 1000), 0o644)
	if code, out, e := run("quota-scan", "qs"); code != 0 || !strings.Contains(out, "quota usage of qs: 123 bytes, 2 files (was none counted)") {
		t.Fatalf("quota-scan: %d %q %q", code, out, e)
	}
	// What the servers count is what show prints, even when the home
	// holds something else (a server counts an upload in progress).
	os.WriteFile(filepath.Join(home, "c"), make([]byte, 7), 0o644)
	if code, out, _ := run("show", "qs"); code != 0 || !regexp.MustCompile(`used-bytes +123\n`).MatchString(out) {
		t.Fatalf("show: %d %q", code, out)
	}
	if code, out, e := run("quota-scan", "qs"); code != 0 || !strings.Contains(out, "130 bytes, 3 files (was 123 bytes, 2 files)") {
		t.Fatalf("quota-scan again: %d %q %q", code, out, e)
	}
	// A quota where there was none: servers count afresh.
	if code, _, e := run("set", "qs", "--quota-bytes", "1MiB"); code != 0 {
		t.Fatalf("set: %d %s", code, e)
	}
	if code, out, e := run("quota-scan", "qs"); code != 0 || !strings.Contains(out, "(was none counted)") {
		t.Fatalf("quota-scan after a new quota: %d %q %q", code, out, e)
	}
	// A changed quota keeps the count.
	if code, _, e := run("set", "qs", "--quota-bytes", "2MiB"); code != 0 {
		t.Fatalf("set: %d %s", code, e)
	}
	if code, out, _ := run("quota-scan", "qs"); code != 0 || !strings.Contains(out, "(was 130 bytes, 3 files)") {
		t.Fatalf("quota-scan after a changed quota: %d %q", code, out)
	}
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"quota-scan"}, 2, "missing NAME"},
		{[]string{"quota-scan", "qs", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"quota-scan", "nobody"}, 1, "no such user"},
		{[]string{"quota-scan", "qs", "--bogus"}, 2, "flag provided but not defined"},
	} {
		if code, _, e := run(tc.args...); code != tc.code || !strings.Contains(e, tc.err) {
			t.Errorf("%v: %d %q; want %d containing %q", tc.args, code, e, tc.code, tc.err)
		}
	}
	// Deleting the user forgets the count: a user of the same name counts
	// afresh.
	if code, _, e := run("del", "qs"); code != 0 {
		t.Fatalf("del: %d %s", code, e)
	}
	if code, _, e := run("add", "qs", "--password-stdin"); code != 0 {
		t.Fatalf("add again: %d %s", code, e)
	}
	if code, out, _ := run("quota-scan", "qs"); code != 0 || !strings.Contains(out, "(was none counted)") {
		t.Fatalf("quota-scan of a new user of the name: %d %q", code, out)
	}
}

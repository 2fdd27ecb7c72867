package main

import (
	"bytes"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryftp/ferry/internal/config"
	_ "modernc.org/sqlite"
)

// noControls fails when out holds a raw escape sequence, and checks that
// it shows each of want (escaped forms) instead.
func noControls(t *testing.T, what, out string, want ...string) {
	t.Helper()
	if strings.ContainsAny(out, "\x1b\x07") || strings.Contains(out, "\u009b") {
		t.Errorf("%s sends control characters to the terminal: %q", what, out)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("%s lacks %q: %q", what, w, out)
		}
	}
}

// TestCLIEscapesControls: names and homes from the user store and ban
// reasons are printed with their control characters escaped, whoever put
// them there (here: a home given on the command line, a name written into
// the database by hand).
func TestCLIEscapesControls(t *testing.T) {
	data := t.TempDir()
	run := func(stdin string, args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := runUser(args, strings.NewReader(stdin), &out, &errb); code != 0 {
			t.Fatalf("ferry user %v: %d %s", args, code, errb.String())
		}
		return out.String()
	}
	home := filepath.Join(t.TempDir(), "h\x1b]0;t\x07")
	out := run("pw\n", "add", "mallory", "--home", home, "--data", data, "--password-stdin")
	noControls(t, "user add", out, `h\x1b]0;t\x07`)
	run("pw\n", "add", "eve", "--data", data, "--password-stdin")
	db, err := sql.Open("sqlite", filepath.Join(data, "users.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE users SET name = ?, perms = ? WHERE name = 'eve'`, "eve\x1b[2J\u009b", "/=read\x1b[2J"); err != nil {
		t.Fatal(err)
	}
	db.Close()

	noControls(t, "user list", run("", "list", "--data", data), `h\x1b]0;t\x07`, `eve\x1b[2J\u009b`)
	noControls(t, "user show", run("", "show", "mallory", "--data", data), `h\x1b]0;t\x07`)
	noControls(t, "user show", run("", "show", "eve\x1b[2J\u009b", "--data", data), `eve\x1b[2J\u009b`, `/=read\x1b[2J`)

	if code, out, errs := banCLI("add", "192.0.2.9", "--data", data, "--reason", "r\x1b[2J"); code != 0 {
		t.Fatalf("ban add: %d %q %q", code, out, errs)
	}
	_, out, _ = banCLI("list", "--data", data)
	noControls(t, "ban list", out, `r\x1b[2J`)
}

// TestLoggerEscapesControls: the server's logger escapes control
// characters in logged values, in both formats.
func TestLoggerEscapesControls(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		var buf bytes.Buffer
		cfg := config.Defaults()
		cfg.LogFormat = format
		newLogger(cfg, &buf).Info("transfer", "path", "/a\x1b]0;t\x07\u009b")
		want := `a\x1b]0;t\x07\u009b`
		if format == "json" {
			want = strings.ReplaceAll(want, `\`, `\\`)
		}
		noControls(t, format+" log", buf.String(), want)
		if strings.Contains(buf.String(), `\u001b`) {
			t.Errorf("%s log: %q", format, buf.String())
		}
	}
}

// TestCLIErrorsEscapeControls: error messages that quote a name, a path or
// an address given to the CLI (a user that does not exist, a settings file
// that cannot be read) print it with its control characters escaped too.
func TestCLIErrorsEscapeControls(t *testing.T) {
	data := t.TempDir()
	name := "no\x1b]0;t\x07one\u009b"
	for _, sub := range []string{"passwd", "del", "disable", "enable", "show"} {
		var out, errb bytes.Buffer
		if code := runUser([]string{sub, name, "--data", data}, strings.NewReader("pw\n"), &out, &errb); code == 0 {
			t.Fatalf("user %s of a missing user succeeded", sub)
		}
		noControls(t, "user "+sub, out.String()+errb.String(), `no\x1b]0;t\x07one\u009b`)
	}
	var out, errb bytes.Buffer
	if code := runUser([]string{"set", name, "--data", data, "--perms", "/=read"}, nil, &out, &errb); code == 0 {
		t.Fatal("user set of a missing user succeeded")
	}
	noControls(t, "user set", errb.String(), `no\x1b]0;t\x07one\u009b`)

	out.Reset()
	errb.Reset()
	path := filepath.Join(t.TempDir(), "f\x1b[2J.toml")
	if code := runConfig([]string{"check", path}, &out, &errb); code == 0 {
		t.Fatal("config check of a missing file succeeded")
	}
	noControls(t, "config check", errb.String(), `f\x1b[2J.toml`)
	out.Reset()
	errb.Reset()
	if code := run([]string{"serve", "--data", t.TempDir(), "--tls-cert", path, "--tls-key", path, "--listen", "127.0.0.1:0"}, nil, &out, &errb); code == 0 {
		t.Fatal("serve with a missing certificate succeeded")
	}
	noControls(t, "serve", out.String()+errb.String(), `f\x1b[2J.toml`)
}

package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryftp/ferry/internal/config"
	"github.com/ferryftp/ferry/internal/users"
	"github.com/ferryftp/ferry/internal/users/sqlstore"
)

// TestRunUser runs one `ferry user` session step by step against one data
// directory, while a second store handle, standing for a running server,
// checks logins after each change.
func TestRunUser(t *testing.T) {
	tmp := t.TempDir()
	data := filepath.Join(tmp, "data") // created by the first command
	bobHome := filepath.Join(tmp, "homes", "bob")
	fileHome := filepath.Join(tmp, "a-file")
	if err := os.WriteFile(fileHome, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	// The "server" opens the store first and keeps it open throughout.
	server, err := openUserStore(data, config.DefaultDatabaseURL, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	ctx := context.Background()
	login := func(name, pw string) error {
		_, err := server.Authenticate(ctx, users.LoginRequest{Name: name, Password: pw})
		return err
	}

	steps := []struct {
		desc   string
		args   []string
		stdin  string
		code   int
		stdout []string // each must appear
		stderr []string // each must appear
		check  func(t *testing.T)
	}{
		{desc: "no subcommand", code: 2, stderr: []string{"Usage:", "ferry user add NAME"}},
		{desc: "unknown subcommand", args: []string{"rename"}, code: 2, stderr: []string{`unknown command "rename"`, "Usage:"}},
		{desc: "help", args: []string{"help"}, code: 0, stdout: []string{"ferry user passwd NAME"}},
		{desc: "subcommand -h", args: []string{"add", "-h"}, code: 0, stderr: []string{"Usage: ferry user add NAME [flags]", "-password-stdin"}},
		{desc: "add without name", args: []string{"add", "--data", data}, code: 2, stderr: []string{"missing NAME", "Usage: ferry user add"}},
		{desc: "add two names", args: []string{"add", "x", "y", "--data", data}, code: 2, stderr: []string{`unexpected argument "y"`}},
		{desc: "add unknown flag", args: []string{"add", "dave", "--bogus", "--data", data}, code: 2, stderr: []string{"-bogus"}},
		{desc: "flag value missing", args: []string{"add", "dave", "--data"}, code: 2, stderr: []string{"needs an argument"}},

		{
			desc: "add, flags after name", args: []string{"add", "alice", "--password-stdin", "--data", data},
			stdin: "s3cret pw\r\n", code: 0, stdout: []string{"added user alice", filepath.Join(data, "home", "alice")},
			check: func(t *testing.T) {
				u, err := server.Get(ctx, "alice")
				if err != nil {
					t.Fatal(err)
				}
				if want := filepath.Join(data, "home", "alice"); u.Home != want || !filepath.IsAbs(u.Home) {
					t.Errorf("home %q; want %q", u.Home, want)
				}
				if fi, err := os.Stat(u.Home); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755 {
					t.Errorf("home not a 0755 directory: %v %v", fi, err)
				}
				if err := login("alice", "s3cret pw"); err != nil {
					t.Errorf("login: %v", err)
				}
				if fi, err := os.Stat(filepath.Join(data, "users.db")); err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("users.db: %v %v", fi, err)
				}
			},
		},
		{
			desc: "add, flags before name, password from piped stdin", args: []string{"add", "--data", data, "--home", bobHome, "bob"},
			stdin: "bobpw", code: 0, stdout: []string{"added user bob", bobHome},
			check: func(t *testing.T) {
				if fi, err := os.Stat(bobHome); err != nil || !fi.IsDir() {
					t.Errorf("home: %v %v", fi, err)
				}
				if err := login("bob", "bobpw"); err != nil {
					t.Errorf("login: %v", err)
				}
			},
		},
		{desc: "add existing", args: []string{"add", "alice", "--password-stdin", "--data", data}, stdin: "other\n", code: 1,
			stderr: []string{"already exists"},
			check: func(t *testing.T) {
				if err := login("alice", "s3cret pw"); err != nil {
					t.Errorf("first alice changed: %v", err)
				}
			}},
		{desc: "add dash name", args: []string{"add", "--data", data, "-x"}, stdin: "pw\n", code: 2, stderr: []string{"-x"}},
		{desc: "add dot name", args: []string{"add", "--data", data, ".x"}, stdin: "pw\n", code: 1, stderr: []string{"invalid user name", "must not start with"}},
		{desc: "add space name", args: []string{"add", "--data", data, "a b"}, stdin: "pw\n", code: 1, stderr: []string{"invalid user name"}},
		{desc: "add slash name", args: []string{"add", "--data", data, "../etc"}, stdin: "pw\n", code: 1, stderr: []string{"invalid user name"}},
		{desc: "add long name", args: []string{"add", "--data", data, strings.Repeat("n", 65)}, stdin: "pw\n", code: 1, stderr: []string{"1-64"}},
		{desc: "add anonymous", args: []string{"add", "--data", data, "anonymous"}, stdin: "pw\n", code: 1, stderr: []string{"reserved"}},
		{desc: "add FTP", args: []string{"add", "--data", data, "FTP"}, stdin: "pw\n", code: 1, stderr: []string{"reserved"}},
		{desc: "add empty password", args: []string{"add", "carol", "--password-stdin", "--data", data}, stdin: "\r\n", code: 1,
			stderr: []string{"empty password"}},
		{desc: "add no password", args: []string{"add", "carol", "--data", data}, stdin: "", code: 1, stderr: []string{"no password"},
			check: func(t *testing.T) {
				if _, err := server.Get(ctx, "carol"); !errors.Is(err, users.ErrNotFound) {
					t.Errorf("carol stored: %v", err)
				}
				if _, err := os.Stat(filepath.Join(data, "home", "carol")); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("carol's home created: %v", err)
				}
			}},
		{desc: "add home is a file", args: []string{"add", "carol", "--home", fileHome, "--data", data},
			stdin: "pw\n", code: 1, stderr: []string{"creating home"}},
		// Homes that would let the user download the server's own files.
		{desc: "add home is the data directory", args: []string{"add", "carol", "--home", data, "--data", data},
			stdin: "pw\n", code: 1, stderr: []string{"home " + data + " refused", "data directory"}},
		{desc: "add home contains the data directory", args: []string{"add", "carol", "--home", tmp, "--data", data},
			stdin: "pw\n", code: 1, stderr: []string{"refused"}},
		{desc: "add home is the TLS directory", args: []string{"add", "carol", "--home", filepath.Join(data, "tls"), "--data", data},
			stdin: "pw\n", code: 1, stderr: []string{"refused"}},
		{desc: "add home is the user database", args: []string{"add", "carol", "--home", filepath.Join(data, "users.db"), "--data", data},
			stdin: "pw\n", code: 1, stderr: []string{"refused"},
			check: func(t *testing.T) {
				if _, err := server.Get(ctx, "carol"); !errors.Is(err, users.ErrNotFound) {
					t.Errorf("carol stored with a protected home: %v", err)
				}
			}},
		{desc: "set home to the data directory", args: []string{"set", "alice", "--home", data, "--data", data},
			code: 1, stderr: []string{"refused"},
			check: func(t *testing.T) {
				if u, err := server.Get(ctx, "alice"); err != nil || u.Home != filepath.Join(data, "home", "alice") {
					t.Errorf("alice after a refused set: %+v, %v", u, err)
				}
			}},
		{desc: "set home to a parent of the data directory", args: []string{"set", "alice", "--home", "/", "--data", data},
			code: 1, stderr: []string{"refused"}},

		{desc: "list", args: []string{"list", "--data", data}, code: 0,
			stdout: []string{"NAME", "HOME", "DISABLED", "alice", filepath.Join(data, "home", "alice"), "bob", bobHome}},
		{desc: "list extra argument", args: []string{"list", "alice", "--data", data}, code: 2, stderr: []string{`unexpected argument "alice"`}},

		{desc: "passwd", args: []string{"passwd", "--data", data, "alice", "--password-stdin"}, stdin: "n3w\n", code: 0,
			stdout: []string{"changed the password of alice"},
			check: func(t *testing.T) {
				if err := login("alice", "s3cret pw"); !errors.Is(err, users.ErrAuth) {
					t.Errorf("old password: %v", err)
				}
				if err := login("alice", "n3w"); err != nil {
					t.Errorf("new password: %v", err)
				}
			}},
		{desc: "passwd missing user", args: []string{"passwd", "nobody", "--data", data}, stdin: "pw\n", code: 1, stderr: []string{"no such user"}},
		{desc: "passwd empty", args: []string{"passwd", "alice", "--data", data}, stdin: "\n", code: 1, stderr: []string{"empty password"}},
		{desc: "passwd has no --home", args: []string{"passwd", "alice", "--home", "/x", "--data", data}, code: 2, stderr: []string{"-home"}},
		{desc: "passwd without name", args: []string{"passwd", "--data", data}, code: 2, stderr: []string{"missing NAME"}},

		{desc: "disable", args: []string{"disable", "alice", "--data", data}, code: 0, stdout: []string{"disabled user alice"},
			check: func(t *testing.T) {
				if err := login("alice", "n3w"); !errors.Is(err, users.ErrAuth) {
					t.Errorf("disabled user logs in: %v", err)
				}
			}},
		{desc: "list shows disabled", args: []string{"list", "--data", data}, code: 0, stdout: []string{"yes"}},
		{desc: "enable", args: []string{"enable", "--data", data, "alice"}, code: 0, stdout: []string{"enabled user alice"},
			check: func(t *testing.T) {
				if err := login("alice", "n3w"); err != nil {
					t.Errorf("enabled user: %v", err)
				}
			}},
		{desc: "disable missing", args: []string{"disable", "nobody", "--data", data}, code: 1, stderr: []string{"no such user"}},
		{desc: "enable missing", args: []string{"enable", "nobody", "--data", data}, code: 1, stderr: []string{"no such user"}},

		{desc: "del", args: []string{"del", "bob", "--data", data}, code: 0, stdout: []string{"deleted user bob", "kept"},
			check: func(t *testing.T) {
				if err := login("bob", "bobpw"); !errors.Is(err, users.ErrAuth) {
					t.Errorf("deleted user logs in: %v", err)
				}
				if _, err := os.Stat(bobHome); err != nil {
					t.Errorf("home removed: %v", err)
				}
			}},
		{desc: "del again", args: []string{"del", "bob", "--data", data}, code: 1, stderr: []string{"no such user"}},
		{desc: "del after --", args: []string{"del", "--data", data, "--", "-bob"}, code: 1, stderr: []string{"no such user: -bob"}},
		{desc: "del two names", args: []string{"del", "alice", "bob", "--data", data}, code: 2},
	}
	for _, st := range steps {
		var stdout, stderr bytes.Buffer
		code := runUser(st.args, strings.NewReader(st.stdin), &stdout, &stderr)
		if code != st.code {
			t.Errorf("%s: exit %d; want %d\nstdout: %s\nstderr: %s", st.desc, code, st.code, &stdout, &stderr)
			continue
		}
		for _, s := range st.stdout {
			if !strings.Contains(stdout.String(), s) {
				t.Errorf("%s: stdout lacks %q:\n%s", st.desc, s, &stdout)
			}
		}
		for _, s := range st.stderr {
			if !strings.Contains(stderr.String(), s) {
				t.Errorf("%s: stderr lacks %q:\n%s", st.desc, s, &stderr)
			}
		}
		if st.code == 0 && stderr.Len() > 0 && st.args[len(st.args)-1] != "-h" {
			t.Errorf("%s: unexpected stderr: %s", st.desc, &stderr)
		}
		if st.code != 0 && stdout.Len() > 0 {
			t.Errorf("%s: unexpected stdout on failure: %s", st.desc, &stdout)
		}
		if st.check != nil {
			st.check(t)
		}
	}

	// The final list, exactly.
	var stdout bytes.Buffer
	if code := runUser([]string{"list", "--data", data}, strings.NewReader(""), &stdout, os.Stderr); code != 0 {
		t.Fatalf("list: exit %d", code)
	}
	want := "NAME   HOME" + strings.Repeat(" ", len(filepath.Join(data, "home", "alice"))-4+2) + "DISABLED\n" +
		"alice  " + filepath.Join(data, "home", "alice") + "  no\n"
	if stdout.String() != want {
		t.Errorf("list:\n%s\nwant:\n%s", &stdout, want)
	}
}

// TestRunUserDefaultData checks that without --data the store is
// ./ferry-data/users.db.
func TestRunUserDefaultData(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	var stdout, stderr bytes.Buffer
	if code := runUser([]string{"add", "dora", "--password-stdin"}, strings.NewReader("pw\n"), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, &stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "ferry-data", "users.db")); err != nil {
		t.Error(err)
	}
	home := filepath.Join(dir, "ferry-data", "home", "dora")
	if !strings.Contains(stdout.String(), home) {
		t.Errorf("stdout %q does not name the absolute home %s", &stdout, home)
	}
}

// TestRunUserBadDataDir checks that an unusable data directory is a clear
// failure, not a usage error.
func TestRunUserBadDataDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := runUser([]string{"list", "--data", file}, strings.NewReader(""), &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), file) {
		t.Errorf("exit %d, stderr %q; want 1 naming %s", code, &stderr, file)
	}
}

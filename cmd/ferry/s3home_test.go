package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/ferryftp/ferry/internal/users/sqlstore"
	"path/filepath"
)

// TestS3Location: what a server on S3 makes of the homes in the user store.
func TestS3Location(t *testing.T) {
	for home, want := range map[string]string{
		"/home/alice":           "home/alice",
		"/teams/blue":           "teams/blue",
		"/public":               "public",
		"/srv/other/alice":      "srv/other/alice",
		"/srv/ferry/home/alice": "home/alice",
		"/srv/ferry/home/a/b":   "home/a/b",
		"/srv/ferry/public":     "public",
		"/srv/ferry-2/home/x":   "srv/ferry-2/home/x",
	} {
		got, err := s3Location("/srv/ferry", home)
		if err != nil || got != want {
			t.Errorf("s3Location(%q) = %q, %v; want %q", home, got, err, want)
		}
	}
	for _, home := range []string{
		"/srv/ferry", "/srv/ferry/tls", "/srv/ferry/users.db", "/", "home/alice",
		"/home/../x", "/home//alice", "/home/alice/", "", ".", "/home/\x01x",
	} {
		if got, err := s3Location("/srv/ferry", home); err == nil {
			t.Errorf("s3Location(%q) = %q, want a refusal", home, got)
		}
	}
}

// TestUserAddS3: `ferry user add --storage s3` records a key prefix,
// home/NAME by default, creates nothing on disk, and refuses a prefix
// that is not a clean relative path and an unknown --storage.
func TestUserAddS3(t *testing.T) {
	data := t.TempDir()
	add := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(append([]string{"user", "add"}, append(args, "--data", data, "--password-stdin")...), strings.NewReader("pw-123456\n"), &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, out := add("alice", "--storage", "s3"); code != 0 || !strings.Contains(out, "home prefix /home/alice in the bucket") {
		t.Fatalf("user add alice --storage s3: %d %s", code, out)
	}
	if code, out := add("bob", "--storage", "s3", "--home", "teams/blue"); code != 0 {
		t.Fatalf("user add bob --home teams/blue: %d %s", code, out)
	}
	for _, bad := range [][]string{
		{"carol", "--storage", "s3", "--home", "a/../b"},
		{"carol", "--storage", "s3", "--home", "a/"},
		{"carol", "--storage", "ceph"},
	} {
		if code, out := add(bad...); code != 1 || !strings.Contains(out, "refused") && !strings.Contains(out, "not local or s3") {
			t.Errorf("user add %q: %d %s, want a refusal", bad, code, out)
		}
	}
	st, err := sqlstore.Open(data+"/users.db", sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for name, want := range map[string]string{"alice": "/home/alice", "bob": "/teams/blue"} {
		u, err := st.Get(context.Background(), name)
		if err != nil || u.Home != want {
			t.Errorf("%s: home %v, %v; want %q", name, u, err, want)
		}
	}
	if _, err := st.Get(context.Background(), "carol"); err == nil {
		t.Error("carol was added despite the refusals")
	}
	if entries, _ := filepath.Glob(data + "/home/*"); len(entries) > 0 {
		t.Errorf("user add --storage s3 made %q on disk", entries)
	}
}

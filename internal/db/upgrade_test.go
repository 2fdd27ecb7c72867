package db_test

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferryftp/ferry/internal/ban"
	"github.com/ferryftp/ferry/internal/db"
	"github.com/ferryftp/ferry/internal/users"
	"github.com/ferryftp/ferry/internal/users/sqlstore"
)

// releaseBefore writes, into a new data directory, the users.db and bans.db
// of the release before this package, from the schema text of that
// release's code and rows as it wrote them (testdata/release-before), and
// returns the directory.
func releaseBefore(t *testing.T) string {
	t.Helper()
	data := t.TempDir()
	for _, f := range []string{"users", "bans"} {
		text, err := os.ReadFile(filepath.Join("testdata", "release-before", f+".sql"))
		if err != nil {
			t.Fatal(err)
		}
		r := openRaw(t, filepath.Join(data, f+".db"))
		if _, err := r.Exec(string(text)); err != nil {
			t.Fatalf("%s.sql: %v", f, err)
		}
		r.Close()
	}
	return data
}

// TestUpgradeReleaseBefore: a data directory of the release before
// upgrades in place at the first Open: every user is there with every
// field and a working password, every ban row is imported, bans.db is
// renamed, and the old release would refuse the upgraded file.
func TestUpgradeReleaseBefore(t *testing.T) {
	data := releaseBefore(t)
	ctx := t.Context()

	// Before: status reads the old file as version 1, without changing it.
	d := open(t, "sqlite:users.db", db.Options{DataDir: data, NoMigrate: true})
	st, err := d.Status(ctx)
	if err != nil || st.Version != 1 || len(st.Pending) != st.Latest-1 {
		t.Fatalf("Status before = %+v, %v", st, err)
	}
	d.Close()

	d = open(t, "sqlite:users.db", db.Options{DataDir: data})
	st, err = d.Status(ctx)
	if err != nil || st.Version != st.Latest || len(st.Pending) != 0 || !st.Applied[0].At.IsZero() {
		t.Fatalf("Status after = %+v, %v", st, err)
	}

	us := sqlstore.New(d, sqlstore.Options{})
	list, err := us.List(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("List = %v, %v", list, err)
	}
	a := list[0]
	if a.Name != "alice" || a.Home != "/srv/ftp/alice" || a.Disabled || a.TLSRequired != "all" || a.Perms != "/=read;/incoming=read,upload" ||
		a.QuotaBytes != 1<<40 || a.QuotaFiles != 1000 || a.MaxSessions != 3 || a.UploadRate != 1<<20 || a.DownloadRate != 2<<20 ||
		!a.AllowFXP || a.CertRequired || a.CertLogin || a.Created.UnixMicro() != 1764700000000000 || a.Updated.UnixMicro() != 1764700000000001 {
		t.Errorf("alice = %+v", a)
	}
	if b := list[1]; b.Name != "bob" || !b.Disabled {
		t.Errorf("bob = %+v", b)
	}
	if _, err := us.Authenticate(ctx, users.LoginRequest{Name: "alice", Password: "alice-pw"}); err == nil {
		t.Error("alice logged in over plaintext though her account requires TLS")
	}
	u, err := us.Get(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	u.TLSRequired = ""
	if err := us.Update(ctx, *u); err != nil {
		t.Fatal(err)
	}
	if _, err := us.Authenticate(ctx, users.LoginRequest{Name: "alice", Password: "alice-pw"}); err != nil {
		t.Errorf("alice's old password: %v", err)
	}
	if _, err := us.Authenticate(ctx, users.LoginRequest{Name: "alice", Password: "wrong"}); !errors.Is(err, users.ErrAuth) {
		t.Errorf("a wrong password: %v", err)
	}
	if err := us.SetPassword(ctx, "bob", "new pw"); err != nil {
		t.Fatal(err)
	}

	bs := ban.NewSQLStore(d)
	bans, err := bs.List(ctx)
	if err != nil || len(bans) != 2 || bans[0].IP != netip.MustParseAddr("192.0.2.7") || bans[0].Count != 2 ||
		bans[0].Reason != "20 failed logins in 10m0s" || bans[1].IP != netip.MustParseAddr("2001:db8::") {
		t.Errorf("active bans = %+v, %v", bans, err)
	}
	var rows int
	if err := d.SQL().QueryRowContext(ctx, "SELECT COUNT(*) FROM bans").Scan(&rows); err != nil || rows != 3 {
		t.Errorf("%d ban rows (the ended one kept for escalation), %v; want 3", rows, err)
	}
	if _, err := os.Stat(filepath.Join(data, "bans.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("bans.db is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(data, "bans.db.imported")); err != nil {
		t.Errorf("bans.db.imported: %v", err)
	}
	// The release before reads MAX(version) FROM schema_version and refuses
	// anything above 1.
	var v int
	if err := d.SQL().QueryRowContext(ctx, "SELECT MAX(version) FROM schema_version").Scan(&v); err != nil || v != 2 {
		t.Errorf("schema_version = %d, %v; want 2", v, err)
	}
	d.Close()

	// A second start changes nothing and imports nothing again.
	d = open(t, "sqlite:users.db", db.Options{DataDir: data})
	if n, err := ban.NewSQLStore(d).List(ctx); err != nil || len(n) != 2 {
		t.Errorf("after a second Open: %v, %v", n, err)
	}
}

// TestNewDatabaseIgnoresNoBansFile: a new database beside no bans.db, or
// one whose own file is named bans.db, imports nothing.
func TestNewDatabaseIgnoresNoBansFile(t *testing.T) {
	dir := t.TempDir()
	d := open(t, "sqlite:bans.db", db.Options{DataDir: dir})
	if _, err := os.Stat(filepath.Join(dir, "bans.db")); err != nil {
		t.Errorf("the database named bans.db was renamed: %v", err)
	}
	var n int
	if err := d.SQL().QueryRowContext(t.Context(), "SELECT COUNT(*) FROM bans").Scan(&n); err != nil || n != 0 {
		t.Errorf("bans: %d, %v", n, err)
	}
}

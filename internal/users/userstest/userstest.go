// Package userstest is the conformance suite of users.Store, as
// testing/fstest is for file systems: every user store (SQLite now,
// PostgreSQL later) must pass Run.
package userstest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/users"
)

// Run checks the store that open returns against the contract of
// users.Store. open is called once per subtest and must return an empty
// store that lives until the subtest ends (close it with t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) users.Store) {
	for _, tc := range []struct {
		name string
		f    func(t *testing.T, s users.Store)
	}{
		{"AddGetList", testAddGetList},
		{"Update", testUpdate},
		{"Delete", testDelete},
		{"Exists", testExists},
		{"NotFound", testNotFound},
		{"Invalid", testInvalid},
		{"Authenticate", testAuthenticate},
		{"SetPassword", testSetPassword},
		{"Requirements", testRequirements},
		{"CertLogin", testCertLogin},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, open(t)) })
	}
}

// full is a user with every field set, so that a round trip that drops one
// shows.
func full(name string) users.User {
	return users.User{
		Name: name, Home: "/srv/ftp/" + name, TLSRequired: "all", Perms: "/=read;/incoming=read,upload",
		QuotaBytes: 1 << 40, QuotaFiles: 1000, MaxSessions: 3, UploadRate: 1 << 20, DownloadRate: 2 << 20,
		AllowFXP: true, CertRequired: true, CertLogin: true, LoginMessage: "Welcome, " + name + ".\nUploads go to /incoming.",
	}
}

// same reports whether got is want but for the times, which the store sets.
func same(got, want users.User) bool {
	got.Created, got.Updated, want.Created, want.Updated = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return reflect.DeepEqual(got, want)
}

func add(t *testing.T, s users.Store, u users.User, password string) {
	t.Helper()
	if err := s.Add(t.Context(), u, password); err != nil {
		t.Fatalf("Add(%s) = %v", u.Name, err)
	}
}

func get(t *testing.T, s users.Store, name string) users.User {
	t.Helper()
	u, err := s.Get(t.Context(), name)
	if err != nil {
		t.Fatalf("Get(%s) = %v", name, err)
	}
	return *u
}

func testAddGetList(t *testing.T, s users.Store) {
	ctx := t.Context()
	if list, err := s.List(ctx); err != nil || len(list) != 0 {
		t.Fatalf("List of an empty store = %v, %v", list, err)
	}
	before := time.Now().Add(-time.Second)
	alice := full("alice")
	add(t, s, alice, "pw-alice")
	add(t, s, users.User{Name: "Bob", Home: "/srv/bob", Disabled: true}, "pw-bob")
	add(t, s, users.User{Name: "carol@example.com", Home: "/srv/carol"}, "pw-carol")

	got := get(t, s, "alice")
	if !same(got, alice) {
		t.Errorf("Get = %+v\nwant %+v", got, alice)
	}
	if got.Created.Before(before) || got.Updated.Before(got.Created) {
		t.Errorf("Created %v, Updated %v: want about now, Updated not before Created", got.Created, got.Updated)
	}
	// Names are case-sensitive.
	if _, err := s.Get(ctx, "Alice"); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("Get(Alice) = %v; want ErrNotFound", err)
	}
	// An import keeps its creation time.
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	add(t, s, users.User{Name: "dave", Home: "/srv/dave", Created: old}, "pw-dave")
	if d := get(t, s, "dave"); !d.Created.Equal(old) {
		t.Errorf("Created of an import = %v; want %v", d.Created, old)
	}

	list, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range list {
		names = append(names, u.Name)
	}
	if want := []string{"Bob", "alice", "carol@example.com", "dave"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("List names = %q; want %q (ordered by name, bytewise)", names, want)
	}
	if !same(list[1], alice) || !list[0].Disabled {
		t.Errorf("List = %+v", list)
	}
}

func testUpdate(t *testing.T, s users.Store) {
	add(t, s, full("alice"), "pw")
	created := get(t, s, "alice").Created
	upd := users.User{Name: "alice", Home: "/srv/alice2", Disabled: true, TLSRequired: "control", Perms: "/=all",
		Created: time.Unix(1, 0)}
	if err := s.Update(t.Context(), upd); err != nil {
		t.Fatal(err)
	}
	got := get(t, s, "alice")
	if !same(got, upd) {
		t.Errorf("after Update, Get = %+v\nwant %+v", got, upd)
	}
	if !got.Created.Equal(created) || got.Updated.Before(created) {
		t.Errorf("after Update, Created %v (was %v), Updated %v: Update must keep Created", got.Created, created, got.Updated)
	}
	// Update leaves the password alone (it is enabled again first).
	upd.Disabled, upd.TLSRequired = false, ""
	if err := s.Update(t.Context(), upd); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(t.Context(), users.LoginRequest{Name: "alice", Password: "pw"}); err != nil {
		t.Errorf("after Update, the password fails: %v", err)
	}
}

func testDelete(t *testing.T, s users.Store) {
	add(t, s, full("alice"), "pw")
	add(t, s, full("bob"), "pw")
	if err := s.Delete(t.Context(), "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(t.Context(), "alice"); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("Get after Delete = %v; want ErrNotFound", err)
	}
	if list, err := s.List(t.Context()); err != nil || len(list) != 1 || list[0].Name != "bob" {
		t.Errorf("List after Delete = %+v, %v", list, err)
	}
	// The name is free again.
	add(t, s, users.User{Name: "alice", Home: "/srv/new"}, "pw2")
	if u := get(t, s, "alice"); u.Home != "/srv/new" || u.CertLogin {
		t.Errorf("re-added user = %+v", u)
	}
}

func testExists(t *testing.T, s users.Store) {
	alice := users.User{Name: "alice", Home: "/srv/alice", QuotaFiles: 5}
	add(t, s, alice, "pw")
	err := s.Add(t.Context(), users.User{Name: "alice", Home: "/srv/other"}, "pw2")
	if !errors.Is(err, users.ErrExists) {
		t.Fatalf("Add of a taken name = %v; want ErrExists", err)
	}
	if u := get(t, s, "alice"); !same(u, alice) {
		t.Errorf("a refused Add changed the user: %+v", u)
	}
	u, err := login(t.Context(), s, "alice", "pw2")
	refused(t, "the password of a refused Add", u, err)
}

func testNotFound(t *testing.T, s users.Store) {
	ctx := t.Context()
	for op, err := range map[string]error{
		"Get":         func() error { _, err := s.Get(ctx, "nobody"); return err }(),
		"Update":      s.Update(ctx, users.User{Name: "nobody", Home: "/srv/nobody"}),
		"SetPassword": s.SetPassword(ctx, "nobody", "pw"),
		"Delete":      s.Delete(ctx, "nobody"),
	} {
		if !errors.Is(err, users.ErrNotFound) {
			t.Errorf("%s of a missing user = %v; want ErrNotFound", op, err)
		}
	}
}

// testInvalid: the store itself refuses what users.User.Validate and
// users.ValidatePassword refuse, whoever the caller, and stores nothing.
func testInvalid(t *testing.T, s users.Store) {
	ctx := t.Context()
	add(t, s, full("alice"), "pw")
	for _, tc := range []struct {
		name    string
		edit    func(u *users.User)
		renames bool // the edit changes the name, which Update cannot
	}{
		{"bad name", func(u *users.User) { u.Name = "-x" }, true},
		{"anonymous name", func(u *users.User) { u.Name = "ftp" }, true},
		{"relative home", func(u *users.User) { u.Home = "srv/x" }, false},
		{"bad tls_required", func(u *users.User) { u.TLSRequired = "always" }, false},
		{"perms without a path", func(u *users.User) { u.Perms = "read,write" }, false},
		{"perms with an unknown verb", func(u *users.User) { u.Perms = "/=read,fly" }, false},
		{"negative quota", func(u *users.User) { u.QuotaBytes = -1 }, false},
		{"negative sessions", func(u *users.User) { u.MaxSessions = -1 }, false},
	} {
		u := full("bob")
		tc.edit(&u)
		if err := s.Add(ctx, u, "pw"); !errors.Is(err, users.ErrInvalid) {
			t.Errorf("Add with %s = %v; want ErrInvalid", tc.name, err)
		}
		if _, err := s.Get(ctx, u.Name); !errors.Is(err, users.ErrNotFound) {
			t.Errorf("Add with %s stored the user (Get = %v)", tc.name, err)
		}
		if tc.renames {
			continue
		}
		u = full("alice")
		tc.edit(&u)
		if err := s.Update(ctx, u); !errors.Is(err, users.ErrInvalid) {
			t.Errorf("Update with %s = %v; want ErrInvalid", tc.name, err)
		}
	}
	if u := get(t, s, "alice"); !same(u, full("alice")) {
		t.Errorf("refused Updates changed the user: %+v", u)
	}
	for _, pw := range []string{"", string(make([]byte, users.MaxPasswordLen+1))} {
		if err := s.Add(ctx, users.User{Name: "carol", Home: "/srv/carol"}, pw); !errors.Is(err, users.ErrInvalid) {
			t.Errorf("Add with a %d-byte password = %v; want ErrInvalid", len(pw), err)
		}
		if err := s.SetPassword(ctx, "alice", pw); !errors.Is(err, users.ErrInvalid) {
			t.Errorf("SetPassword with a %d-byte password = %v; want ErrInvalid", len(pw), err)
		}
	}
}

// login tries name and password on a plaintext connection.
func login(ctx context.Context, s users.Store, name, password string) (*users.User, error) {
	return s.Authenticate(ctx, users.LoginRequest{Name: name, Password: password})
}

// refused checks that err is the one ErrAuth of a failed login: it must not
// tell a missing user apart (ErrNotFound).
func refused(t *testing.T, what string, u *users.User, err error) {
	t.Helper()
	if u != nil || !errors.Is(err, users.ErrAuth) || errors.Is(err, users.ErrNotFound) {
		t.Errorf("%s: Authenticate = %v, %v; want nil and ErrAuth only", what, u, err)
	}
}

func testAuthenticate(t *testing.T, s users.Store) {
	ctx := t.Context()
	add(t, s, users.User{Name: "alice", Home: "/srv/alice", QuotaFiles: 7}, "pw-alice")
	add(t, s, users.User{Name: "bob", Home: "/srv/bob", Disabled: true}, "pw-bob")

	u, err := login(ctx, s, "alice", "pw-alice")
	if err != nil || u.Name != "alice" || u.Home != "/srv/alice" || u.QuotaFiles != 7 {
		t.Fatalf("Authenticate(alice, right) = %+v, %v; want the user", u, err)
	}
	u, err = login(ctx, s, "alice", "wrong")
	refused(t, "wrong password", u, err)
	u, err = login(ctx, s, "alice", "")
	refused(t, "empty password", u, err)
	u, err = login(ctx, s, "Alice", "pw-alice")
	refused(t, "name in another case", u, err)
	u, err = login(ctx, s, "nobody", "pw-alice")
	refused(t, "unknown user", u, err)
	u, err = login(ctx, s, "bob", "pw-bob")
	refused(t, "disabled user, right password", u, err)
	u, err = login(ctx, s, "bob", "wrong")
	refused(t, "disabled user, wrong password", u, err)
}

func testSetPassword(t *testing.T, s users.Store) {
	ctx := t.Context()
	add(t, s, users.User{Name: "alice", Home: "/srv/alice"}, "old")
	if err := s.SetPassword(ctx, "alice", "new"); err != nil {
		t.Fatal(err)
	}
	u, err := login(ctx, s, "alice", "old")
	refused(t, "old password", u, err)
	if _, err := login(ctx, s, "alice", "new"); err != nil {
		t.Errorf("new password: %v", err)
	}
}

// testRequirements: TLSRequired and CertRequired are enforced by
// Authenticate, right password or not.
func testRequirements(t *testing.T, s users.Store) {
	ctx := t.Context()
	on := &tls.ConnectionState{Version: tls.VersionTLS13}
	add(t, s, users.User{Name: "ctl", Home: "/srv/ctl", TLSRequired: "control"}, "pw")
	add(t, s, users.User{Name: "all", Home: "/srv/all", TLSRequired: "all"}, "pw")
	add(t, s, users.User{Name: "data", Home: "/srv/data", TLSRequired: "data"}, "pw")
	add(t, s, users.User{Name: "cert", Home: "/srv/cert", CertRequired: true}, "pw")

	for _, name := range []string{"ctl", "all"} {
		for _, pw := range []string{"pw", "wrong"} {
			u, err := login(ctx, s, name, pw)
			refused(t, name+" over plaintext with password "+pw, u, err)
		}
		if u, err := s.Authenticate(ctx, users.LoginRequest{Name: name, Password: "pw", TLS: on}); err != nil || u.Name != name {
			t.Errorf("%s over TLS = %+v, %v; want the user", name, u, err)
		}
	}
	// "data" asks nothing of the control connection.
	if _, err := login(ctx, s, "data", "pw"); err != nil {
		t.Errorf("tls_required data over a plaintext control connection: %v", err)
	}

	cert := func(cn string) *x509.Certificate { return &x509.Certificate{Subject: pkix.Name{CommonName: cn}} }
	for what, req := range map[string]users.LoginRequest{
		"without a certificate":           {Name: "cert", Password: "pw", TLS: on},
		"with someone else's certificate": {Name: "cert", Password: "pw", TLS: on, Cert: cert("mallory")},
		"with its certificate, wrong pw":  {Name: "cert", Password: "wrong", TLS: on, Cert: cert("cert")},
	} {
		u, err := s.Authenticate(ctx, req)
		refused(t, "cert-required user "+what, u, err)
	}
	if u, err := s.Authenticate(ctx, users.LoginRequest{Name: "cert", Password: "pw", TLS: on, Cert: cert("cert")}); err != nil || !u.CertRequired {
		t.Errorf("cert-required user with its certificate = %+v, %v", u, err)
	}
}

// testCertLogin: the store's Lookup serves users.CertLogin.
func testCertLogin(t *testing.T, s users.Store) {
	ctx := t.Context()
	add(t, s, users.User{Name: "bob", Home: "/srv/bob", CertLogin: true}, "pw")
	add(t, s, users.User{Name: "carol", Home: "/srv/carol"}, "pw")
	add(t, s, users.User{Name: "dave", Home: "/srv/dave", CertLogin: true, Disabled: true}, "pw")
	on := &tls.ConnectionState{Version: tls.VersionTLS13}
	cert := func(cn string) *x509.Certificate { return &x509.Certificate{Subject: pkix.Name{CommonName: cn}} }
	if u, err := users.CertLogin(ctx, s, users.LoginRequest{Name: "bob", TLS: on, Cert: cert("bob")}); err != nil || u.Name != "bob" {
		t.Errorf("CertLogin(bob) = %+v, %v", u, err)
	}
	for _, name := range []string{"carol", "dave", "nobody"} {
		if u, err := users.CertLogin(ctx, s, users.LoginRequest{Name: name, TLS: on, Cert: cert(name)}); !errors.Is(err, users.ErrAuth) {
			t.Errorf("CertLogin(%s) = %+v, %v; want ErrAuth", name, u, err)
		}
	}
}

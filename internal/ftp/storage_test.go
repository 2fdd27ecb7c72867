package ftp

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/storage/local"
	"github.com/ferryftp/ferry/internal/storage/mem"
	"github.com/ferryftp/ferry/internal/storage/storagetest"
	"github.com/ferryftp/ferry/internal/users"
)

// addUser adds an account to the test server's authenticator.
func (ts *testServer) addUser(name, pass string, u users.User) {
	ts.auth.mu.Lock()
	defer ts.auth.mu.Unlock()
	u.Name = name
	ts.auth.users[name] = memUser{pass: pass, u: u}
}

// TestStorageDropBoxNoReplace: an anonymous upload that started before a
// name existed must not replace the file another user stored under that
// name while it ran (issue 9 item 7).
func TestStorageDropBoxNoReplace(t *testing.T) {
	eachBackend(t, testStorageDropBoxNoReplace)
}

func testStorageDropBoxNoReplace(t *testing.T, be backend) {
	ts := startOn(t, be, func(st *Site, _ *Server) { st.DropBox = mustPath("/incoming") })
	pub := ts.site.AnonymousRoot
	fsMkdirAll(t, ts.fsAt(t, pub), "incoming")
	ts.addUser("carol", "pw", users.User{Home: pub})

	anon := dial(t, ts.addr)
	anon.login("anonymous", "guest@example.com")
	anon.cmd("TYPE I", 200)
	d := anon.dataCmd("STOR incoming/report.txt")
	d.Write([]byte("ANONYMOUS, STARTED FIRST"))

	carol := loggedInAs(t, ts, "carol", "pw")
	carol.stor("STOR", "incoming/report.txt", []byte("carol's report"))

	d.Close()
	if code, text := anon.read(); code != 550 && code != 553 {
		t.Errorf("anonymous upload over a file stored meanwhile: %d %s, want 550 or 553", code, text)
	}
	if got := string(fsGet(t, ts.fsAt(t, pub), "incoming/report.txt")); got != "carol's report" {
		t.Errorf("incoming/report.txt = %q, want carol's upload kept", got)
	}
	if left := fsTempNames(t, ts.fsAt(t, pub), "."); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	// A new name still goes in.
	anon.stor("STOR", "incoming/other.txt", []byte("fresh"))
	if got := string(fsGet(t, ts.fsAt(t, pub), "incoming/other.txt")); got != "fresh" {
		t.Errorf("incoming/other.txt = %q", got)
	}
}

// TestStorageNoOverwriteNoReplace: the same for a named user whose rules
// allow uploads but not overwrites, racing a user who may overwrite.
func TestStorageNoOverwriteNoReplace(t *testing.T) {
	eachBackend(t, testStorageNoOverwriteNoReplace)
}

func testStorageNoOverwriteNoReplace(t *testing.T, be backend) {
	ts := startOn(t, be, nil)
	bobHome := filepath.Join(ts.data, "home", "bob")
	fsMkdirAll(t, ts.fsAt(t, bobHome), "incoming")
	ts.addUser("dave", "pw", users.User{Home: bobHome})

	bob := loggedInAs(t, ts, "bob", "hunter2")
	d := bob.dataCmd("STOR incoming/a.bin")
	d.Write([]byte("bob's, started first"))
	dave := loggedInAs(t, ts, "dave", "pw")
	dave.stor("STOR", "incoming/a.bin", []byte("dave's"))
	d.Close()
	if code, text := bob.read(); code != 550 && code != 553 {
		t.Errorf("upload without overwrite over a file stored meanwhile: %d %s, want 550 or 553", code, text)
	}
	if got := string(fsGet(t, ts.fsAt(t, bobHome), "incoming/a.bin")); got != "dave's" {
		t.Errorf("incoming/a.bin = %q, want dave's upload kept", got)
	}
	// alice may overwrite: her replacing upload still wins.
	alice := loggedIn(t, ts)
	alice.stor("STOR", "f", []byte("one"))
	d = alice.dataCmd("STOR f")
	d.Write([]byte("three"))
	alice2 := loggedIn(t, ts)
	alice2.stor("STOR", "f", []byte("two"))
	d.Close()
	alice.expect(226)
	if got := string(ts.get(t, "f")); got != "three" {
		t.Errorf("f = %q, want the later commit", got)
	}
}

// loggedInAs dials ts and logs in as name in binary mode.
func loggedInAs(t testing.TB, ts *testServer, name, pass string) *client {
	t.Helper()
	c := dial(t, ts.addr)
	c.login(name, pass)
	c.cmd("TYPE I", 200)
	return c
}

// TestStorageUploadDirRenamed: renaming the directory of a running upload
// must not leave its temporary file behind in the moved directory (issue 9
// item 6); the upload lands in the directory where it moved.
func TestStorageUploadDirRenamed(t *testing.T) {
	eachBackend(t, testStorageUploadDirRenamed)
}

func testStorageUploadDirRenamed(t *testing.T, be backend) {
	ts := startOn(t, be, nil)
	ts.mkdir(t, "d")
	c := loggedIn(t, ts)
	d := c.dataCmd("STOR d/f")
	d.Write([]byte("moving"))
	other := loggedIn(t, ts)
	other.cmd("RNFR d", 350)
	other.cmd("RNTO e", 250)
	d.Close()
	code, text := c.read()
	if left := fsTempNames(t, ts.fs(t), "."); len(left) != 0 {
		t.Errorf("temporary files left after the upload (%d %s): %v", code, text, left)
	}
	if code == 226 {
		if got := string(ts.get(t, "e/f")); got != "moving" {
			t.Errorf("e/f = %q", got)
		}
	}
	// An aborted upload in a moved directory leaves nothing either.
	d = c.dataCmd("STOR e/g")
	d.Write([]byte("aborted"))
	other.cmd("RNFR e", 350)
	other.cmd("RNTO h", 250)
	c.send("ABOR")
	c.cmdAnyCode(426, 226)
	if left := fsTempNames(t, ts.fs(t), "."); len(left) != 0 {
		t.Errorf("temporary files left after ABOR: %v", left)
	}
	if ts.has(t, "h/g") {
		t.Errorf("aborted upload h/g exists")
	}
}

// cmdAnyCode reads replies until one with code last, checking each is in
// codes (for ABOR's 426 then 226, which may come as 226 alone).
func (c *client) cmdAnyCode(codes ...int) {
	c.t.Helper()
	last := codes[len(codes)-1]
	for {
		got, text := c.read()
		ok := false
		for _, w := range codes {
			ok = ok || got == w
		}
		if !ok {
			c.t.Fatalf("want one of %v, got %d %s", codes, got, text)
		}
		if got == last {
			return
		}
	}
}

// TestStorageProtectedHome: a user whose home holds the server's data
// directory is refused at login with 530 and a log line (issue 9 item 12).
func TestStorageProtectedHome(t *testing.T) {
	// local only: the protection is of host paths (the data directory's files).
	var data string
	ts := startServer(t, func(st *Site, _ *Server) {
		data = filepath.Dir(st.AnonymousRoot)
		st.Storage = &local.Opener{Protected: []string{data, filepath.Join(data, "users.db")}}
	})
	ts.addUser("mallory", "pw", users.User{Home: ts.data})
	ts.addUser("up", "pw", users.User{Home: filepath.Dir(ts.data)})
	os.WriteFile(filepath.Join(ts.data, "users.db"), []byte("SECRET"), 0o600)
	for _, name := range []string{"mallory", "up"} {
		c := dial(t, ts.addr)
		c.cmd("USER "+name, 331)
		c.cmd("PASS pw", 530)
		c.cmd("PWD", 530) // not logged in
	}
	if !strings.Contains(ts.logs.String(), "login refused: the home exposes the server's own files") {
		t.Errorf("no log line for the refused home:\n%s", ts.logs.String())
	}
	loggedIn(t, ts).cmd("PWD", 257) // a home inside the data directory is fine
}

// memOpener keeps one in-memory FS per location, shared by the sessions
// that open it as a disk is; caps and maxBytes apply to each.
type memOpener struct {
	caps     storage.Capabilities
	maxBytes int64

	mu  sync.Mutex
	fss map[string]*mem.FS
}

func newMemOpener() *memOpener { return &memOpener{caps: storage.CapAll | storage.CapByteNames} }

func (o *memOpener) fs(location string) *mem.FS {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.fss == nil {
		o.fss = map[string]*mem.FS{}
	}
	m := o.fss[location]
	if m == nil {
		m = mem.New()
		m.Caps, m.MaxBytes = o.caps, o.maxBytes
		o.fss[location] = m
	}
	return m
}

func (o *memOpener) Open(_ context.Context, location string) (storage.FS, error) {
	return o.fs(location), nil
}

func (o *memOpener) MakeHome(_ context.Context, location string) error { o.fs(location); return nil }

func (o *memOpener) Capabilities() storage.Capabilities { return o.caps }

// TestStorageCapabilities: FEAT and the REST+STOR, APPE, MFMT and SITE
// CHMOD rules follow what the backend can do; SITE CHMOD, which clients
// send on their own after uploads, answers 550 with the reason.
func TestStorageCapabilities(t *testing.T) {
	// A mem backend without capabilities is the subject: no battery backend applies.
	op := newMemOpener()
	op.caps = 0
	ts := startServer(t, func(st *Site, _ *Server) { st.Storage = op })
	c := dial(t, ts.addr)
	feat := c.cmd("FEAT", 211)
	if strings.Contains(feat, "MFMT") || !strings.Contains(feat, "REST STREAM") {
		t.Errorf("FEAT before login without CapChtimes:\n%s", feat)
	}
	c.login("alice", "secret")
	c.cmd("TYPE I", 200)
	if feat := c.cmd("FEAT", 211); strings.Contains(feat, "MFMT") {
		t.Errorf("FEAT lists MFMT for a backend without CapChtimes:\n%s", feat)
	}
	c.stor("STOR", "f", []byte("0123456789"))
	if got := c.retr("f"); string(got) != "0123456789" {
		t.Fatalf("RETR f = %q", got)
	}
	c.cmd("REST 4", 350)
	d := c.dataCmd("RETR f")
	if got := readAll(t, d); string(got) != "456789" {
		t.Errorf("REST 4 + RETR = %q", got)
	}
	c.expect(226)
	c.pasv()
	c.cmd("APPE f", 502)
	c.cmd("REST 4", 350)
	c.pasv()
	c.cmd("STOR f", 502)
	c.cmd("MFMT 20200101000000 f", 502)
	c.cmd("MDTM 20200101000000 f", 502)
	if r := c.cmd("SITE CHMOD 600 f", 550); !strings.Contains(r, "keeps no permission bits") {
		t.Errorf("SITE CHMOD without CapChmod: %q, want a text that says why", r)
	}
	c.cmd("SITE CHMOD 600 no-such-file", 550) // the same before the path is looked at
	if help := c.cmd("SITE HELP", 214); strings.Contains(help, "CHMOD") {
		t.Errorf("SITE HELP lists CHMOD: %q", help)
	}
	d = c.dataCmd("STOU")
	d.Write([]byte("unique"))
	d.Close()
	c.expect(226)
	if got := string(c.retr("f")); got != "0123456789" {
		t.Errorf("f after the refusals = %q", got)
	}

	// With every capability the same commands work.
	full := startServer(t, func(st *Site, _ *Server) { st.Storage = newMemOpener() })
	c = loggedIn(t, full)
	if feat := c.cmd("FEAT", 211); !strings.Contains(feat, "MFMT") {
		t.Errorf("FEAT lacks MFMT:\n%s", feat)
	}
	c.stor("STOR", "f", []byte("0123"))
	c.stor("APPE", "f", []byte("45"))
	c.cmd("MFMT 20200101000000 f", 213)
	c.cmd("SITE CHMOD 600 f", 200)
	if got := string(c.retr("f")); got != "012345" {
		t.Errorf("f = %q", got)
	}
}

// TestStorageNoSpaceNewName: an upload of a new name refused for lack of
// space leaves nothing behind, whole or in place (issue 9 item 6).
func TestStorageNoSpaceNewName(t *testing.T) {
	// A full mem backend is the subject: no battery backend applies.
	op := newMemOpener()
	op.maxBytes = 8
	ts := startServer(t, func(st *Site, _ *Server) { st.Storage = op })
	c := loggedIn(t, ts)
	big := []byte(strings.Repeat("x", 64<<10))
	for _, verb := range []string{"STOR", "APPE"} {
		d := c.dataCmd(verb + " new.bin")
		d.Write(big)
		d.Close()
		if code, text := c.read(); code != 452 && code != 426 {
			t.Errorf("%s of a new name on a full disk: %d %s, want 452", verb, code, text)
		}
		c.cmd("SIZE new.bin", 550)
		if _, err := op.fs(ts.home).Stat(t.Context(), storagetest.P("new.bin")); err == nil {
			t.Errorf("%s of a new name on a full disk left a file", verb)
		}
	}
}

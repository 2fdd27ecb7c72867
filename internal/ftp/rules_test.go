package ftp

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ferryftp/ferry/internal/users"
)

// addUser gives the test server another account with its own home and
// rules; the home's location opens through the site's storage (ts.fsAt).
func addUser(t *testing.T, ts *testServer, name, perms string) string {
	t.Helper()
	home := filepath.Join(ts.data, "home", name)
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	ts.auth.mu.Lock()
	ts.auth.users[name] = memUser{pass: "pw", u: users.User{Name: name, Home: home, Perms: perms}}
	ts.auth.mu.Unlock()
	return home
}

// existenceProbes are the commands that name a path, each as a client sends
// it: a denied path must answer them the same whether it exists or not.
var existenceProbes = []struct {
	line string
	data bool
}{
	{"SIZE %s", false}, {"MDTM %s", false}, {"MDTM 20200101000000 %s", false},
	{"MFMT 20200101000000 %s", false}, {"SITE CHMOD 644 %s", false},
	{"MLST %s", false}, {"STAT %s", false}, {"CWD %s", false}, {"DELE %s", false},
	{"RNFR %s", false}, {"RMD %s", false}, {"MKD %s", false},
	{"RETR %s", true}, {"LIST %s", true}, {"NLST %s", true}, {"MLSD %s", true},
	{"STOR %s", true}, {"APPE %s", true},
}

// probeSame runs every probe on an existing and a missing name and reports
// any command whose replies tell them apart.
func probeSame(t *testing.T, c *client, existing, missing string) {
	t.Helper()
	for _, pr := range existenceProbes {
		var got [2]string
		for i, name := range []string{existing, missing} {
			if pr.data {
				c.cmd("EPSV", 229)
			}
			c.send(strings.Replace(pr.line, "%s", name, 1))
			code, text := c.read()
			if code < 400 {
				t.Errorf("%s: got %d %s, want a refusal", strings.Replace(pr.line, "%s", name, 1), code, text)
			}
			got[i] = strings.ReplaceAll(text, name, "NAME")
			got[i] = string(rune('0'+code/100)) + got[i]
			if pr.data {
				c.cmd("ABOR", 225)
			}
		}
		if got[0] != got[1] {
			t.Errorf("%s: existing %q, missing %q: the reply reveals existence", pr.line, got[0], got[1])
		}
	}
}

// TestPermissionBeforeExistence: every command decides permission before it
// looks at the file, so a path the rules hide answers the same whether it
// exists or not (the set-time MDTM form used to stat first).
func TestPermissionBeforeExistence(t *testing.T) {
	eachBackend(t, testPermissionBeforeExistence)
}

func testPermissionBeforeExistence(t *testing.T, be backend) {
	ts := startOn(t, be, nil)
	home := ts.fsAt(t, addUser(t, ts, "carol", "/=all;/priv=none"))
	fsPut(t, home, "priv/secret.txt", []byte("x"))
	c := dial(t, ts.addr)
	c.login("carol", "pw")
	probeSame(t, c, "priv/secret.txt", "priv/nothere.txt")
	if got := fsGet(t, home, "priv/secret.txt"); string(got) != "x" {
		t.Errorf("secret.txt changed: %q", got)
	}
}

// TestDropBoxNoExistenceOracle: in the anonymous drop box only uploads of
// new names succeed; nothing else tells an existing name from a missing one.
func TestDropBoxNoExistenceOracle(t *testing.T) {
	eachBackend(t, testDropBoxNoExistenceOracle)
}

func testDropBoxNoExistenceOracle(t *testing.T, be backend) {
	ts := startOn(t, be, func(c *Site, _ *Server) { c.DropBox = mustPath("/incoming") })
	fsPut(t, ts.fsAt(t, ts.site.AnonymousRoot), "incoming/secret.txt", []byte("x"))
	c := dial(t, ts.addr)
	c.login("anonymous", "me@example.com")
	saved := existenceProbes
	defer func() { existenceProbes = saved }()
	// An upload (STOR, APPE) onto an existing name is the one inherent
	// oracle of a drop box without overwrite (docs/security.md): a new name
	// is accepted, so every other command is probed.
	existenceProbes = nil
	for _, pr := range saved {
		if !strings.HasPrefix(pr.line, "STOR") && !strings.HasPrefix(pr.line, "APPE") {
			existenceProbes = append(existenceProbes, pr)
		}
	}
	probeSame(t, c, "incoming/secret.txt", "incoming/nothere.txt")
}

// storAt uploads data to name after REST offset and returns the final code
// (the 150 is skipped when the upload starts).
func storAt(t *testing.T, c *client, verb, name string, offset int, data string) int {
	t.Helper()
	if offset >= 0 {
		c.cmd("REST "+strconv.Itoa(offset), 350)
	}
	d := c.pasv()
	c.send(verb + " " + name)
	code, _ := c.read()
	if code != 150 {
		d.Close()
		return code
	}
	d.Write([]byte(data))
	d.Close()
	code, _ = c.read()
	return code
}

// TestRestStorNeedsOverwrite: writing at an offset inside an existing file
// replaces its tail, so it needs overwrite; appending exactly at its end
// needs append (a user with append but not overwrite rewrote files with
// REST 1 + STOR).
func TestRestStorNeedsOverwrite(t *testing.T) {
	eachBackend(t, testRestStorNeedsOverwrite)
}

func testRestStorNeedsOverwrite(t *testing.T, be backend) {
	ts := startOn(t, be, nil)
	home := ts.fsAt(t, addUser(t, ts, "dave", "/=read,upload,append"))
	fsPut(t, home, "f.txt", []byte("hello world"))
	c := dial(t, ts.addr)
	c.login("dave", "pw")
	c.cmd("TYPE I", 200)
	for _, off := range []int{1, 5, 10} {
		if code := storAt(t, c, "STOR", "f.txt", off, "XX"); code != 550 {
			t.Errorf("REST %d + STOR inside the file: got %d, want 550", off, code)
		}
	}
	if code := storAt(t, c, "STOR", "f.txt", -1, "XX"); code != 550 {
		t.Errorf("STOR over the file: got %d, want 550", code)
	}
	if got := string(fsGet(t, home, "f.txt")); got != "hello world" {
		t.Fatalf("file rewritten without overwrite: %q", got)
	}
	if code := storAt(t, c, "STOR", "f.txt", 11, "!"); code != 226 {
		t.Errorf("REST at the end + STOR: got %d, want 226 (append)", code)
	}
	if code := storAt(t, c, "APPE", "f.txt", -1, "?"); code != 226 {
		t.Errorf("APPE: got %d, want 226", code)
	}
	if got := string(fsGet(t, home, "f.txt")); got != "hello world!?" {
		t.Errorf("after appends: %q", got)
	}
}

// TestRestPastEnd: a REST offset beyond the end of the file is refused with
// 554 (as ProFTPD does), for uploads, new files and downloads: REST
// 100000000000 + STOR of a new name made a 100 GB sparse file.
func TestRestPastEnd(t *testing.T) {
	eachBackend(t, testRestPastEnd)
}

func testRestPastEnd(t *testing.T, be backend) {
	ts := startOn(t, be, nil)
	ts.put(t, "f.txt", []byte("hello"))
	c := loggedIn(t, ts)
	if code := storAt(t, c, "STOR", "new.bin", 100000000000, "data"); code != 554 {
		t.Errorf("REST 1e11 + STOR new: got %d, want 554", code)
	}
	if ts.has(t, "new.bin") {
		t.Error("a refused REST + STOR left a file behind")
	}
	if code := storAt(t, c, "STOR", "f.txt", 6, "x"); code != 554 {
		t.Errorf("REST past the end + STOR: got %d, want 554", code)
	}
	if got := string(ts.get(t, "f.txt")); got != "hello" {
		t.Errorf("file changed: %q", got)
	}
	c.cmd("REST 6", 350)
	d := c.pasv()
	c.cmd("RETR f.txt", 554)
	d.Close()
	c.cmd("REST 5", 350)
	if got := c.retr("f.txt"); len(got) != 0 {
		t.Errorf("REST at the end + RETR: got %q, want nothing", got)
	}
	c.cmd("NOOP", 200)
}

// TestRenameKeepsRules: a rename must not move a path out from under a
// stricter rule, nor under a looser one (renaming /pub took /pub/archive out
// of its read-only rule, and its file could then be deleted).
func TestRenameKeepsRules(t *testing.T) {
	eachBackend(t, testRenameKeepsRules)
}

func testRenameKeepsRules(t *testing.T, be backend) {
	ts := startOn(t, be, nil)
	home := ts.fsAt(t, addUser(t, ts, "erin", "/=all;/pub/archive=read,rename;/dst/open=all;/ro=read,rename"))
	fsPut(t, home, "pub/archive/keep.txt", []byte("k"))
	fsPut(t, home, "dst/d.txt", []byte("d"))
	fsPut(t, home, "ro/open/f.txt", []byte("f"))
	fsPut(t, home, "plain/p.txt", []byte("p"))
	c := dial(t, ts.addr)
	c.login("erin", "pw")
	steps := []struct {
		from, to string
		code     int
	}{
		{"pub", "pub2", 550},                                // /pub/archive would lose its read-only rule
		{"pub", "other/pub", 550},                           // the same, deeper
		{"pub/archive", "arch", 550},                        // the rule's own path moves out of it
		{"ro/open", "dst/open", 550},                        // (rename is granted in /ro) into a looser rule
		{"plain", "dst/plain", 250},                         // no rule below either path
		{"dst/plain", "plain2", 250},                        // and back out
		{"pub/archive/keep.txt", "x", 550},                  // a file out of its directory's rule
		{"pub/archive/keep.txt", "pub/archive/k2.txt", 250}, // within it
		{"pub/archive/k2.txt", "pub/archive/keep.txt", 250},
	}
	for _, st := range steps {
		c.send("RNFR " + st.from)
		code, text := c.read()
		if code == 350 {
			code, text = 0, ""
			c.send("RNTO " + st.to)
			code, text = c.read()
		}
		if code != st.code {
			t.Errorf("rename %s to %s: got %d %s, want %d", st.from, st.to, code, text, st.code)
		}
	}
	c.cmd("DELE pub/archive/keep.txt", 550)
	if !fsHas(t, home, "pub/archive/keep.txt") || !fsHas(t, home, "ro/open/f.txt") {
		t.Error("a refused rename moved files")
	}
}

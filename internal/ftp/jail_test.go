package ftp

import (
	"bytes"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/storage/storagetest"
)

// TestJail checks that no path, "..", absolute name or symlink reaches
// outside the user's home, for reading or for writing, and that symlinks
// within the home work.
func TestJail(t *testing.T) {
	// local only: symlinks and directories outside the root on the host disk.
	ts := startServer(t, nil)
	home := ts.home
	writeFile(t, filepath.Join(home, "inside.txt"), []byte("inside"))
	writeFile(t, filepath.Join(home, "real", "dir.txt"), []byte("in real"))

	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "secret.txt"), []byte("top secret"))
	if err := os.Mkdir(filepath.Join(outside, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	secretTime := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	os.Chtimes(filepath.Join(outside, "secret.txt"), secretTime, secretTime)

	for link, target := range map[string]string{
		"etc":   "/etc",
		"pw":    "/etc/passwd",
		"out":   outside,
		"sec":   filepath.Join(outside, "secret.txt"),
		"dotdo": "../../..",
		"in":    "inside.txt",
		"indir": "real",
	} {
		if err := os.Symlink(target, filepath.Join(home, link)); err != nil {
			t.Fatal(err)
		}
	}
	c := loggedIn(t, ts)

	t.Run("DotDot", func(t *testing.T) {
		c.t = t
		for _, line := range []string{"CWD ..", "CWD ../../..", "CDUP", "CWD /../..", "XCUP"} {
			c.cmdAny(line, 200, 250)
			if got := c.cmd("PWD", 257); !strings.HasPrefix(got, `"/" `) {
				t.Errorf("after %s: PWD %q", line, got)
			}
		}
		if got := c.cmd("MKD ../../../escape", 257); !strings.HasPrefix(got, `"/escape" `) {
			t.Errorf("MKD ../../../escape: %q", got)
		}
		if !exists(filepath.Join(home, "escape")) {
			t.Error("MKD ../../../escape was not created in the home")
		}
	})

	t.Run("Read", func(t *testing.T) {
		c.t = t
		for _, name := range []string{
			"../../etc/passwd", "/etc/passwd", "../../../../../../etc/passwd",
			"etc/passwd", "pw", "out/secret.txt", "sec", "/out/secret.txt",
			"dotdo/etc/passwd", "etc/../etc/passwd",
		} {
			d := c.pasv()
			c.cmd("RETR "+name, 550)
			d.SetReadDeadline(time.Now().Add(10 * time.Second))
			if b, _ := io.ReadAll(d); len(b) != 0 {
				t.Errorf("RETR %s leaked %q", name, b)
			}
			c.cmd("SIZE "+name, 550)
			c.cmd("MDTM "+name, 550)
			c.cmd("MLST "+name, 550)
		}
		for _, dir := range []string{"etc", "out", "dotdo", "/etc", "etc/"} {
			c.cmd("CWD "+dir, 550)
			for _, verb := range []string{"LIST", "NLST", "MLSD"} {
				c.pasv()
				c.cmd(verb+" "+dir, 550)
			}
			c.cmdAny("STAT "+dir, 450, 550)
		}
		// The home's own listing shows the links, never what is behind them.
		for _, verb := range []string{"LIST", "NLST", "MLSD"} {
			ls := c.listing(verb)
			for _, leak := range []string{"passwd", "secret.txt", "hosts"} {
				if strings.Contains(ls, leak) {
					t.Errorf("%s of the home shows %q: %q", verb, leak, ls)
				}
			}
		}
	})

	t.Run("Write", func(t *testing.T) {
		c.t = t
		for _, tt := range []struct {
			data bool
			line string
		}{
			{true, "STOR out/new.txt"},
			{true, "STOR sec"},
			{true, "APPE sec"},
			{true, "APPE out/secret.txt"},
			{true, "STOR /out/sub/x"},
			{false, "MKD out/newdir"},
			{false, "MKD out/sub/deeper"},
			{false, "RMD out/sub"},
			{false, "DELE out/secret.txt"},
			{false, "RNFR out/secret.txt"},
			{false, "SITE CHMOD 777 out/secret.txt"},
			{false, "SITE CHMOD 777 sec"},
			{false, "SITE CHMOD 777 out"},
			{false, "MFMT 20200101000000 out/secret.txt"},
			{false, "MFMT 20200101000000 sec"},
		} {
			if tt.data {
				d := c.pasv()
				c.send(tt.line)
				if code, text := c.read(); code != 550 && code != 553 {
					t.Errorf("%s: %d %s", tt.line, code, text)
					if code == 150 {
						d.Write([]byte("owned"))
						d.Close()
						c.read()
					}
				}
				continue
			}
			c.cmd(tt.line, 550)
		}
		c.cmd("REST 3", 350)
		c.pasv()
		c.cmd("STOR sec", 550)
		c.cmd("RNFR inside.txt", 350)
		c.cmd("RNTO out/stolen.txt", 550)
		c.cmd("RNFR inside.txt", 350)
		c.cmd("RNTO /out/sub/stolen.txt", 550)

		if got := dirNames(t, outside); !slices.Equal(got, []string{"secret.txt", "sub"}) {
			t.Errorf("the outside directory changed: %q", got)
		}
		if got := dirNames(t, filepath.Join(outside, "sub")); len(got) != 0 {
			t.Errorf("the outside subdirectory changed: %q", got)
		}
		fi, err := os.Stat(filepath.Join(outside, "secret.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if b := readFile(t, filepath.Join(outside, "secret.txt")); string(b) != "top secret" {
			t.Errorf("the outside file changed: %q", b)
		}
		if fi.Mode().Perm() != 0o644 || !fi.ModTime().Equal(secretTime) {
			t.Errorf("the outside file's mode or time changed: %v %v", fi.Mode(), fi.ModTime())
		}
		if fi, _ := os.Stat(outside); fi.Mode().Perm() == 0o777 {
			t.Errorf("the outside directory's mode changed: %v", fi.Mode())
		}
		if !exists(filepath.Join(home, "inside.txt")) {
			t.Error("inside.txt moved")
		}
	})

	t.Run("LinksInside", func(t *testing.T) {
		c.t = t
		if got := c.retr("in"); string(got) != "inside" {
			t.Errorf("RETR through a link inside the home: %q", got)
		}
		if got := c.cmd("SIZE in", 213); got != "6" {
			t.Errorf("SIZE in: %q", got)
		}
		c.cmd("CWD indir", 250)
		if got := lines(t, c.listing("NLST")); !slices.Equal(got, []string{"dir.txt"}) {
			t.Errorf("NLST in a linked directory: %q", got)
		}
		if got := c.retr("dir.txt"); string(got) != "in real" {
			t.Errorf("RETR in a linked directory: %q", got)
		}
		c.cmd("CWD /", 250)
		if got := c.retr("/indir/dir.txt"); string(got) != "in real" {
			t.Errorf("RETR /indir/dir.txt: %q", got)
		}
		f := parseMLSD(t, c.listing("MLSD"))
		if f["in"]["type"] != "file" || f["indir"]["type"] != "dir" {
			t.Errorf("MLSD types of inner links: in=%v indir=%v", f["in"], f["indir"])
		}
		if f["out"]["type"] == "dir" || f["etc"]["type"] == "dir" {
			t.Errorf("MLSD presents an escaping link as a directory: out=%v etc=%v", f["out"], f["etc"])
		}
	})
}

// TestAnonymous: anonymous and ftp log in with any password into
// DATA/public, read-only.
func TestAnonymous(t *testing.T) {
	eachBackend(t, testAnonymous)
}

func testAnonymous(t *testing.T, be backend) {
	ts := startOn(t, be, nil)
	pub := ts.fsAt(t, ts.site.AnonymousRoot)
	fsPut(t, pub, "pub.txt", []byte("public"))
	fsPut(t, pub, "sub/deep.txt", []byte("deep"))
	ts.put(t, "alice.txt", []byte("alice's"))
	snapshot := func() []string {
		var names []string
		var walk func(dir string)
		walk = func(dir string) {
			it, err := pub.ReadDir(t.Context(), storagetest.P(dir))
			if err != nil {
				t.Fatal(err)
			}
			defer it.Close()
			for {
				batch, err := it.Next(256)
				for _, fi := range batch {
					p := path.Join(dir, fi.Name())
					names = append(names, p+" "+fi.Mode().String()+" "+fi.ModTime().String())
					if fi.IsDir() {
						walk(p)
					}
				}
				if err != nil {
					return
				}
			}
		}
		walk(".")
		sort.Strings(names)
		return names
	}
	before := snapshot()

	for _, login := range [][2]string{
		{"anonymous", "guest@example.com"},
		{"ftp", "x"},
		{"FTP", ""},
		{"Anonymous", "not an address"},
	} {
		t.Run(login[0], func(t *testing.T) {
			c := dial(t, ts.addr)
			if got := c.cmd("USER "+login[0], 331); !strings.Contains(strings.ToLower(got), "mail") {
				t.Errorf("331 for %s does not ask for the e-mail address: %q", login[0], got)
			}
			c.cmd(strings.TrimSpace("PASS "+login[1]), 230)
			c.cmd("TYPE I", 200)
			if got := c.cmd("PWD", 257); !strings.HasPrefix(got, `"/" `) {
				t.Errorf("PWD %q", got)
			}
			if got := c.retr("pub.txt"); string(got) != "public" {
				t.Errorf("RETR pub.txt: %q", got)
			}
			if got := c.retr("sub/deep.txt"); string(got) != "deep" {
				t.Errorf("RETR sub/deep.txt: %q", got)
			}
			if ls := c.listing("NLST"); !strings.Contains(ls, "pub.txt") {
				t.Errorf("NLST: %q", ls)
			}
			m := parseMLSD(t, c.listing("MLSD"))
			if p := m["pub.txt"]["perm"]; p != "r" {
				t.Errorf("anonymous perm fact for a file: %q, want r", p)
			}
			if p := m["sub"]["perm"]; strings.ContainsAny(p, "cdfmpaw") {
				t.Errorf("anonymous perm fact for a directory: %q", p)
			}
			c.pasv()
			c.cmd("RETR /home/alice/alice.txt", 550)
			c.cmd("CWD sub", 250)
			c.cmd("CWD /", 250)
			for _, line := range []string{"STOR new.txt", "STOR pub.txt", "APPE pub.txt", "STOU", "STOU pub.txt"} {
				c.pasv()
				c.cmd(line, 550)
			}
			c.cmd("REST 2", 350)
			c.pasv()
			c.cmd("STOR pub.txt", 550)
			for _, line := range []string{
				"DELE pub.txt", "RNFR pub.txt", "RNFR sub", "MKD newdir", "XMKD newdir", "MKD sub/newdir",
				"RMD sub", "XRMD sub", "SITE CHMOD 777 pub.txt", "SITE CHMOD 700 sub",
				"MFMT 20000101000000 pub.txt", "MDTM 20000101000000 pub.txt",
			} {
				c.cmd(line, 550)
			}
			c.cmd("QUIT", 221)
		})
	}
	if after := snapshot(); !slices.Equal(before, after) {
		t.Errorf("anonymous sessions changed DATA/public:\n%q\n%q", before, after)
	}
}

// TestAnonymousDisabled: with Config.Anonymous false the anonymous names
// are refused like a wrong password.
func TestAnonymousDisabled(t *testing.T) {
	t.Parallel() // no file is opened: the default backend is enough
	ts := startServer(t, func(c *Site, _ *Server) { c.Anonymous = false })
	c := dial(t, ts.addr)
	c.cmdAny("USER anonymous", 331, 530)
	c.cmdAny("PASS guest@example.com", 530, 503)
	c.cmd("PWD", 530)
	c.login("alice", "secret")
}

// TestBobPermissions: "/=read;/incoming=read,upload" reads everywhere,
// uploads new files only in /incoming, and never deletes, renames or
// overwrites.
func TestBobPermissions(t *testing.T) {
	eachBackend(t, testBobPermissions)
}

func testBobPermissions(t *testing.T, be backend) {
	ts := startOn(t, be, nil)
	bob := ts.fsAt(t, filepath.Join(ts.data, "home", "bob"))
	fsPut(t, bob, "readme.txt", []byte("read me"))
	fsPut(t, bob, "incoming/there.txt", []byte("already"))
	c := dial(t, ts.addr)
	c.login("bob", "hunter2")
	c.cmd("TYPE I", 200)

	if got := c.retr("readme.txt"); string(got) != "read me" {
		t.Errorf("RETR readme.txt: %q", got)
	}
	if got := c.retr("incoming/there.txt"); string(got) != "already" {
		t.Errorf("RETR incoming/there.txt: %q", got)
	}
	c.stor("STOR", "incoming/up.txt", []byte("uploaded"))
	if got := fsGet(t, bob, "incoming/up.txt"); string(got) != "uploaded" {
		t.Errorf("upload in /incoming: %q", got)
	}
	c.cmd("CWD incoming", 250)
	d := c.pasv()
	text := c.cmd("STOU", 150)
	d.Write([]byte("unique"))
	d.Close()
	c.expect(226)
	if m := stouFile.FindStringSubmatch(text); m == nil || !fsHas(t, bob, "incoming/"+m[1]) {
		t.Errorf("STOU in /incoming: %q", text)
	}
	c.cmd("CWD /", 250)

	for _, line := range []string{
		"STOR up.txt", "STOR readme.txt", "STOR incoming/up.txt", "APPE incoming/up.txt",
		"APPE readme.txt", "STOU", "STOR incoming/../x.txt",
	} {
		c.pasv()
		c.cmd(line, 550)
	}
	c.cmd("REST 3", 350)
	c.pasv()
	c.cmd("STOR incoming/up.txt", 550)
	for _, line := range []string{
		"DELE incoming/up.txt", "DELE readme.txt", "MKD incoming/d", "MKD d", "RMD incoming",
		"RNFR readme.txt", "RNFR incoming/up.txt", "SITE CHMOD 600 readme.txt",
		"SITE CHMOD 600 incoming/up.txt", "MFMT 20000101000000 readme.txt",
	} {
		c.cmd(line, 550)
	}

	m := parseMLSD(t, c.listing("MLSD"))
	if p := m["readme.txt"]["perm"]; p != "r" {
		t.Errorf("perm of /readme.txt: %q, want r", p)
	}
	if p := m["incoming"]["perm"]; !strings.Contains(p, "c") || strings.ContainsAny(p, "dfmp") {
		t.Errorf("perm of /incoming: %q, want c (create) and no d, f, m, p", p)
	}
	m = parseMLSD(t, c.listing("MLSD incoming"))
	if p := m["up.txt"]["perm"]; strings.ContainsAny(p, "adfw") || !strings.Contains(p, "r") {
		t.Errorf("perm of /incoming/up.txt: %q, want r only", p)
	}
	if got := fsGet(t, bob, "incoming/up.txt"); !bytes.Equal(got, []byte("uploaded")) {
		t.Errorf("refused commands changed up.txt: %q", got)
	}
	if !fsHas(t, bob, "readme.txt") || fsHas(t, bob, "up.txt") || fsHas(t, bob, "x.txt") {
		t.Errorf("bob's home changed")
	}
}

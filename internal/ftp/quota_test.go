package ftp

import (
	"context"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/quota"
	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/storage/local"
	"github.com/ferryftp/ferry/internal/storage/storagetest"
	"github.com/ferryftp/ferry/internal/users"
)

// quotaUser adds a user with a quota and returns the home.
func quotaUser(ts *testServer, name string, qbytes, qfiles int64) string {
	home := filepath.Join(ts.data, "home", name)
	hardAddUser(ts, "pw", users.User{Name: name, Home: home, QuotaBytes: qbytes, QuotaFiles: qfiles})
	return home
}

// quotaExact fails unless the server's usage of the user equals a fresh
// scan of the home.
func quotaExact(t *testing.T, ts *testServer, name, home string) {
	t.Helper()
	b, f, err := quota.Scan(context.Background(), ts.fsAt(t, home))
	if err != nil {
		t.Fatal(err)
	}
	u := ts.srv.quotas.Get(name, home)
	if err := u.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if gb, gf, _ := u.Counts(context.Background()); gb != b || gf != f {
		t.Fatalf("usage of %s counts %d bytes, %d files; the home holds %d bytes, %d files", name, gb, gf, b, f)
	}
}

// homeBytes sums the regular files of a home through its storage,
// temporary files excluded.
func homeBytes(t *testing.T, ts *testServer, home string) (int64, int) {
	t.Helper()
	fsys := ts.fsAt(t, home)
	var n int64
	files := 0
	var walk func(dir string)
	walk = func(dir string) {
		it, err := fsys.ReadDir(t.Context(), storagetest.P(dir))
		if err != nil {
			t.Fatal(err)
		}
		defer it.Close()
		for {
			batch, err := it.Next(256)
			for _, fi := range batch {
				switch {
				case fi.IsDir():
					walk(path.Join(dir, fi.Name()))
				case fi.Mode().IsRegular() && !strings.HasPrefix(fi.Name(), storage.TempPrefix):
					n += fi.Size()
					files++
				}
			}
			if err != nil {
				return
			}
		}
	}
	walk(".")
	return n, files
}

// TestQuotaConcurrentNewFiles: eight sessions start STORs of new names under
// a three-file quota before any of them commits. Exactly three may upload;
// the rest are refused with 552 before any data is accepted.
func TestQuotaConcurrentNewFiles(t *testing.T) {
	eachBackend(t, testQuotaConcurrentNewFiles)
}

func testQuotaConcurrentNewFiles(t *testing.T, be backend) {
	ts := startOn(t, be, nil)
	for round := range 3 {
		name := fmt.Sprintf("eight%d", round)
		home := quotaUser(ts, name, 0, 3)
		type started struct {
			c *client
			d net.Conn
		}
		var (
			mu      sync.Mutex
			ok      []started
			refused int
			wg      sync.WaitGroup
		)
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := dial(t, ts.addr)
				c.login(name, "pw")
				d := c.pasv()
				c.send(fmt.Sprintf("STOR f%d", i))
				code, text := c.read()
				mu.Lock()
				defer mu.Unlock()
				switch {
				case code == 150:
					ok = append(ok, started{c, d})
				case code == 552 && text == "File quota exceeded.":
					refused++
				default:
					t.Errorf("STOR f%d: %d %s", i, code, text)
				}
			}()
		}
		wg.Wait()
		for _, s := range ok { // every STOR has its answer: now send the data
			s.d.Write([]byte("data"))
			s.d.Close()
			s.c.expect(226)
		}
		if len(ok) != 3 || refused != 5 {
			t.Fatalf("round %d: %d uploads started, %d refused under a 3-file quota", round, len(ok), refused)
		}
		if _, n := homeBytes(t, ts, home); n != 3 {
			t.Fatalf("round %d: %d files stored under a 3-file quota", round, n)
		}
		quotaExact(t, ts, name, home)
	}
}

// TestQuotaOverwriteWhileRemoved: a file removed (DELE) or moved away
// (RNFR/RNTO) while an upload replaces it must not let the upload use the
// old file's room twice: what is stored never passes the quota.
func TestQuotaOverwriteWhileRemoved(t *testing.T) {
	eachBackend(t, testQuotaOverwriteWhileRemoved)
}

func testQuotaOverwriteWhileRemoved(t *testing.T, be backend) {
	const limit = 100 << 10
	ts := startOn(t, be, nil)
	// Sizes that fit the old file's room counted twice but not the quota.
	for i, tc := range []struct {
		how  string
		size int
	}{{"DELE", 150000}, {"RNTO", 100000}} {
		how := tc.how
		for round := range 3 {
			name := fmt.Sprintf("over%d%d", i, round)
			home := quotaUser(ts, name, limit, 0)
			fsPut(t, ts.fsAt(t, home), "f", hardPattern(80000, 1))
			up := dial(t, ts.addr)
			up.login(name, "pw")
			up.cmd("TYPE I", 200)
			d := up.pasv()
			up.cmd("STOR f", 150)
			other := dial(t, ts.addr)
			other.login(name, "pw")
			if how == "DELE" {
				other.cmd("DELE f", 250)
			} else {
				other.cmd("RNFR f", 350)
				other.cmd("RNTO g", 250)
			}
			go func() { d.Write(hardPattern(tc.size, 2)); d.Close() }()
			if code, text := up.read(); code != 552 && code != 226 {
				t.Fatalf("%s: STOR: %d %s", how, code, text)
			}
			if stored, _ := homeBytes(t, ts, home); stored > limit {
				t.Fatalf("%s round %d: %d bytes stored under a %d-byte quota", how, round, stored, limit)
			}
			quotaExact(t, ts, name, home)
		}
	}
}

// TestQuotaDELESymlink: deleting a link removes the link only, so the
// quota still counts its target.
func TestQuotaDELESymlink(t *testing.T) {
	// local only: symlinks on the host disk.
	ts := startServer(t, nil)
	home := quotaUser(ts, "links", 1500, 1)
	hardWrite(t, filepath.Join(home, "target"), hardPattern(1000, 1))
	os.Symlink("target", filepath.Join(home, "link"))
	c := dial(t, ts.addr)
	c.login("links", "pw")
	c.cmd("DELE link", 250)
	quotaExact(t, ts, "links", home)
	c.pasv()
	c.cmd("STOR new", 552) // the target still takes the only file slot
	if _, err := os.Stat(filepath.Join(home, "target")); err != nil {
		t.Fatal(err)
	}
}

// TestQuotaRNTOOverFile: a rename over a file subtracts the replaced file.
func TestQuotaRNTOOverFile(t *testing.T) {
	eachBackend(t, testQuotaRNTOOverFile)
}

func testQuotaRNTOOverFile(t *testing.T, be backend) {
	ts := startOn(t, be, nil)
	home := quotaUser(ts, "renamer", 2500, 2)
	fsPut(t, ts.fsAt(t, home), "a", hardPattern(1000, 1))
	fsPut(t, ts.fsAt(t, home), "b", hardPattern(1000, 2))
	c := dial(t, ts.addr)
	c.login("renamer", "pw")
	c.cmd("TYPE I", 200)
	c.cmd("RNFR a", 350)
	c.cmd("RNTO b", 250)
	quotaExact(t, ts, "renamer", home)
	c.stor("STOR", "c", hardPattern(1400, 3)) // room for a file and 1400 bytes again
	quotaExact(t, ts, "renamer", home)
}

// TestQuotaRateChangeKeepsUsage: a user whose rates change between logins
// keeps one usage across the old and the new sessions.
func TestQuotaRateChangeKeepsUsage(t *testing.T) {
	eachBackend(t, testQuotaRateChangeKeepsUsage)
}

func testQuotaRateChangeKeepsUsage(t *testing.T, be backend) {
	ts := startOn(t, be, nil)
	home := quotaUser(ts, "rated", 0, 2)
	first := dial(t, ts.addr)
	first.login("rated", "pw")
	ts.auth.mu.Lock()
	m := ts.auth.users["rated"]
	m.u.UploadRate = 1 << 30
	ts.auth.users["rated"] = m
	ts.auth.mu.Unlock()
	second := dial(t, ts.addr)
	second.login("rated", "pw")
	first.stor("STOR", "a", []byte("a"))
	second.stor("STOR", "b", []byte("b"))
	first.pasv()
	first.cmd("STOR c", 552)
	second.pasv()
	second.cmd("STOR c", 552)
	if _, n := homeBytes(t, ts, home); n != 2 {
		t.Fatalf("%d files stored under a 2-file quota", n)
	}
	quotaExact(t, ts, "rated", home)
}

// scanGate is a local FS whose usage scan waits for release.
type scanGate struct {
	*local.FS
	started chan struct{}
	release chan struct{}
	once    *sync.Once
}

func (g scanGate) ScanUsage(ctx context.Context) (int64, int64, error) {
	g.once.Do(func() { close(g.started) })
	select {
	case <-g.release:
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
	return g.FS.ScanUsage(ctx)
}

// TestQuotaLoadInBackground: the first login of a user with a quota starts
// the usage scan through the storage layer and gets its 230 while the scan
// runs; the first upload waits for it, and the scan does not count a
// leftover temporary upload file.
func TestQuotaLoadInBackground(t *testing.T) {
	// local only: a leftover temporary file on the host disk, seen by local's own scan.
	gate := scanGate{started: make(chan struct{}), release: make(chan struct{}), once: &sync.Once{}}
	ts := startServer(t, func(st *Site, _ *Server) {
		st.Storage = storage.OpenerFunc(func(_ context.Context, root string) (storage.FS, error) {
			fsys, err := local.Open(root)
			if err != nil {
				return nil, err
			}
			g := gate
			g.FS = fsys
			return g, nil
		})
	})
	home := quotaUser(ts, "scanned", 6000, 0)
	hardWrite(t, filepath.Join(home, storage.TempPrefix+"0123456789abcdef-old"), hardPattern(5000, 1))
	hardWrite(t, filepath.Join(home, "kept"), hardPattern(1000, 2))
	c := dial(t, ts.addr)
	c.login("scanned", "pw") // 230 while the scan is held
	select {
	case <-gate.started:
	case <-time.After(hardWaitLimit):
		t.Fatal("the login did not start a usage scan through the storage layer")
	}
	c.cmd("NOOP", 200)
	c.cmd("TYPE I", 200)
	d := c.pasv()
	c.send("STOR new")
	close(gate.release)
	c.expect(150)
	d.Write(hardPattern(4000, 3))
	d.Close()
	c.expect(226) // 1000 + 4000 fit in 6000: the temporary file is not counted
	quotaExact(t, ts, "scanned", home)
}

// TestQuotaAPPEBusy: a file being appended to cannot be deleted, renamed
// onto or uploaded again by the user's other sessions (450), which keeps its
// size the upload's to count; renaming it is allowed, and the upload is
// counted where it went (on storage whose uploads keep their name, S3, at
// the name it started on, beside the renamed copy).
func TestQuotaAPPEBusy(t *testing.T) {
	eachBackend(t, testQuotaAPPEBusy)
}

func testQuotaAPPEBusy(t *testing.T, be backend) {
	ts := startOn(t, be, nil)
	home := quotaUser(ts, "appender", 1<<20, 0)
	fsPut(t, ts.fsAt(t, home), "log", hardPattern(100, 1))
	fsPut(t, ts.fsAt(t, home), "other", hardPattern(100, 2))
	c := dial(t, ts.addr)
	c.login("appender", "pw")
	d := hardStartUpload(t, c, "APPE", "log", hardPattern(500, 3))
	other := dial(t, ts.addr)
	other.login("appender", "pw")
	other.cmd("DELE log", 450)
	other.cmd("RNFR other", 350)
	other.cmd("RNTO log", 450)
	other.pasv()
	other.cmd("STOR log", 450)
	other.cmd("RNFR log", 350)
	other.cmd("RNTO moved", 250)
	d.Write(hardPattern(300, 4))
	d.Close()
	c.expect(226)
	quotaExact(t, ts, "appender", home)
	fsys := ts.fsAt(t, home)
	if storage.CapsOf(fsys).Has(storage.CapUploadKeepsName) {
		// S3: the rename copied the old 100 bytes to moved, and the
		// upload landed on log, the name it started on.
		if fi, err := fsys.Stat(t.Context(), storagetest.P("moved")); err != nil || fi.Size() != 100 {
			t.Fatalf("the renamed file: %v, %v", fi, err)
		}
		if fi, err := fsys.Stat(t.Context(), storagetest.P("log")); err != nil || fi.Size() != 900 {
			t.Fatalf("the appended file, back at its name: %v, %v", fi, err)
		}
		other.cmd("DELE log", 250)
		quotaExact(t, ts, "appender", home)
	} else if fi, err := fsys.Stat(t.Context(), storagetest.P("moved")); err != nil || fi.Size() != 900 {
		t.Fatalf("the appended file after its rename: %v, %v", fi, err)
	}
	other.cmd("DELE moved", 250)
	quotaExact(t, ts, "appender", home)
}

// TestQuotaRenameDirUnderUploads: a directory renamed while a whole upload
// and an in-place one write below it leaves the usage exact, whether the
// uploads follow the rename (disk) or land where they started (S3,
// storage.CapUploadKeepsName); where they land where they started, a rename
// that would bring back more than the quota leaves answers 552.
func TestQuotaRenameDirUnderUploads(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ts := startOn(t, be, nil)
		home := quotaUser(ts, "mover", 4000, 0)
		fsys := ts.fsAt(t, home)
		fsMkdirAll(t, fsys, "d")
		fsPut(t, fsys, "d/log", hardPattern(1000, 1))
		c := dial(t, ts.addr)
		c.login("mover", "pw")
		w := dial(t, ts.addr)
		w.login("mover", "pw")
		appe := hardStartUpload(t, c, "APPE", "d/log", hardPattern(100, 2))
		stor := hardStartUpload(t, w, "STOR", "d/new", hardPattern(200, 3))
		other := dial(t, ts.addr)
		other.login("mover", "pw")
		other.cmd("RNFR d", 350)
		other.cmd("RNTO e", 250)
		keep := storage.CapsOf(fsys).Has(storage.CapUploadKeepsName)
		appe.Close()
		stor.Close()
		if !keep {
			c.expect(226)
			w.expect(226)
			quotaExact(t, ts, "mover", home)
			if got := fsGet(t, fsys, "e/log"); len(got) != 1100 {
				t.Errorf("e/log: %d bytes, want 1100", len(got))
			}
			if got := fsGet(t, fsys, "e/new"); len(got) != 200 {
				t.Errorf("e/new: %d bytes, want 200", len(got))
			}
			return
		}
		// S3: both uploads land in d, which is gone: they fail as into a
		// removed directory, and the renamed copy is whole.
		c.expect(550)
		w.expect(550)
		quotaExact(t, ts, "mover", home)
		if got := fsGet(t, fsys, "e/log"); len(got) != 1000 {
			t.Errorf("e/log: %d bytes, want 1000", len(got))
		}
		if fsHas(t, fsys, "d/log") || fsHas(t, fsys, "d/new") || fsHas(t, fsys, "e/new") {
			t.Errorf("the failed uploads left files: %q", ts.names(t, "."))
		}
		// Renaming a file while it is appended to counts the file it
		// brings back at its name: with 2010 of 4000 bytes used, the
		// rename of a 1000-byte file being appended to fits; with 3520
		// used, another does not.
		c.stor("STOR", "log", hardPattern(1000, 4))
		appe = hardStartUpload(t, c, "APPE", "log", hardPattern(10, 5))
		other.cmd("RNFR log", 350)
		other.cmd("RNTO log2", 250)
		w.stor("STOR", "big", hardPattern(500, 6))
		w2 := hardStartUpload(t, w, "APPE", "log2", hardPattern(10, 7))
		other.cmd("RNFR log2", 350)
		other.cmd("RNTO log3", 552)
		appe.Close()
		c.expect(226)
		w2.Close()
		w.expect(226)
		quotaExact(t, ts, "mover", home)
	})
}

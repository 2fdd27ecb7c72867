package ftp

import (
	"context"
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/storage/local"
)

// TestAVBL: AVBL answers 213 and the free bytes from the storage's
// SpaceReporter, capped by a byte quota; 550 on a file, a missing path, or
// storage that does not know; 530 before login; FEAT lists it.
func TestAVBL(t *testing.T) {
	t.Run("local", func(t *testing.T) {
		ts := startServer(t, nil)
		fixture(t, ts)
		c := dial(t, ts.addr)
		c.cmd("AVBL", 530)
		c.send("FEAT")
		if raw := strings.Join(c.rawReply(), "\n"); !strings.Contains(raw, "\n AVBL\n") {
			t.Errorf("FEAT lacks AVBL: %q", raw)
		}
		c.login("alice", "secret")
		fsys, err := local.Open(ts.home)
		if err != nil {
			t.Fatal(err)
		}
		defer fsys.Close()
		free, err := fsys.Free(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range []string{"AVBL", "AVBL .", "AVBL /dir", "AVBL dir/"} {
			n, err := strconv.ParseInt(c.cmd(line, 213), 10, 64)
			// Other tests write to the same disk meanwhile: the figure
			// is the disk's, within a margin.
			if err != nil || n <= 0 || n > free+64<<20 || n < free-1<<30 {
				t.Errorf("%s = %d (%v), the disk has %d free", line, n, err, free)
			}
		}
		if got := c.cmd("AVBL file.txt", 550); got != "AVBL needs a directory." {
			t.Errorf("AVBL of a file: %q", got)
		}
		if got := c.cmd("AVBL missing", 550); got != "No such file or directory." {
			t.Errorf("AVBL of a missing path: %q", got)
		}
		c.cmd("AVBL a\x00b", 553)
	})
	t.Run("quota", func(t *testing.T) {
		ts := startServer(t, nil)
		quotaUser(ts, "carol", 10000, 0)
		c := dial(t, ts.addr)
		c.login("carol", "pw")
		if got := c.cmd("AVBL", 213); got != "10000" {
			t.Errorf("AVBL under a 10000-byte quota: %q", got)
		}
		c.stor("STOR", "f", make([]byte, 2500))
		if got := c.cmd("AVBL", 213); got != "7500" {
			t.Errorf("AVBL after 2500 bytes: %q", got)
		}
	})
	t.Run("mem", func(t *testing.T) {
		sized, unsized := newMemOpener(), newMemOpener()
		sized.maxBytes = 1 << 20
		for _, tc := range []struct {
			op   *memOpener
			code int
			want string
		}{
			{sized, 213, "1048566"},
			{unsized, 550, "Free space is not known for this storage."},
		} {
			ts := startServer(t, func(st *Site, _ *Server) { st.Storage = tc.op })
			ts.put(t, "ten", []byte("0123456789"))
			c := loggedIn(t, ts)
			if got := c.cmd("AVBL", tc.code); got != tc.want {
				t.Errorf("maxBytes %d: AVBL = %d %q, want %q", tc.op.maxBytes, tc.code, got, tc.want)
			}
		}
	})
	t.Run("unknown", func(t *testing.T) {
		// A backend without SpaceReporter at all.
		ts := startServer(t, func(st *Site, _ *Server) {
			st.Storage = wrapLocal(func(fsys storage.FS, _ string) storage.FS { return struct{ storage.FS }{fsys} })
		})
		c := loggedIn(t, ts)
		if got := c.cmd("AVBL", 550); got != "Free space is not known for this storage." {
			t.Errorf("AVBL without SpaceReporter: %q", got)
		}
	})
}

// TestCLNT: CLNT is accepted before and after login (200); the name goes
// to the log and the observers, and to the session's snapshot; a missing,
// overlong or control-holding name is 501.
func TestCLNT(t *testing.T) {
	ts := startServer(t, nil)
	var mu sync.Mutex
	var events []Event
	sub := ts.srv.Observe(ObserverFunc(func(e Event) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}), 0)
	c := dial(t, ts.addr)
	c.cmd("CLNT", 501)
	c.cmd("CLNT ", 501)
	c.cmd("CLNT "+strings.Repeat("x", 129), 501)
	c.cmd("CLNT evil\x1b[2J", 501)
	c.cmd("CLNT caf\xe9", 501)
	c.cmd("CLNT WinSCP-release-6.3.4", 200)
	if s := ts.srv.SessionSnapshots(); len(s) != 1 || s[0].Client != "WinSCP-release-6.3.4" {
		t.Errorf("snapshot after CLNT: %+v", s)
	}
	c.login("alice", "secret")
	c.cmd("CLNT SmartFTP 10", 200)
	c.cmd("NOOP", 200)
	if s := ts.srv.SessionSnapshots(); len(s) != 1 || s[0].Client != "SmartFTP 10" {
		t.Errorf("snapshot after the second CLNT: %+v", s)
	}
	c.cmd("QUIT", 221)
	log := ts.logText()
	sub.Sync(context.Background())
	ts.srv.StopObserving(sub)

	mu.Lock()
	defer mu.Unlock()
	var clients []string
	var loginClient string
	for _, e := range events {
		switch e.Kind {
		case KindClient:
			clients = append(clients, e.Client)
		case KindLogin:
			loginClient = e.Client
		}
	}
	if strings.Join(clients, "|") != "WinSCP-release-6.3.4|SmartFTP 10" {
		t.Errorf("KindClient events: %q", clients)
	}
	if loginClient != "WinSCP-release-6.3.4" {
		t.Errorf("the login event's Client = %q", loginClient)
	}
	for _, want := range []string{`msg=client`, `client=WinSCP-release-6.3.4`, `client="SmartFTP 10"`} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %s:\n%s", want, log)
		}
	}
}

// TestSiteUTIME: SITE UTIME sets the modification time like MFMT in the
// 2-argument forms (time first, as ProFTPD's mod_site_misc; path first, as
// some clients send) and the 5-argument "path atime mtime ctime UTC";
// paths may hold spaces; malformed forms are 501 and change nothing.
func TestSiteUTIME(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ts := startOn(t, be, nil)
		ts.put(t, "f.txt", []byte("x"))
		ts.put(t, "with space.txt", []byte("x"))
		c := loggedIn(t, ts)
		c.send("FEAT")
		if raw := strings.Join(c.rawReply(), "\n"); !strings.Contains(raw, "\n SITE UTIME\n") {
			t.Errorf("FEAT lacks SITE UTIME: %q", raw)
		}
		if got := c.cmd("SITE HELP", 214); !strings.Contains(got, "UTIME") {
			t.Errorf("SITE HELP: %q", got)
		}
		mtime := func(name string) string {
			fi, err := ts.stat(t, name)
			if err != nil {
				t.Fatal(err)
			}
			return fi.ModTime().UTC().Format("20060102150405")
		}
		for _, tc := range []struct{ line, name, want string }{
			{"SITE UTIME 20200102030405 f.txt", "f.txt", "20200102030405"},
			{"SITE UTIME 202101020304 f.txt", "f.txt", "20210102030400"},
			{"SITE UTIME f.txt 20220102030405", "f.txt", "20220102030405"},
			{"SITE UTIME f.txt 20230101000000 20230102030405 20230101000000 UTC", "f.txt", "20230102030405"},
			{"site utime with space.txt 20190101000000 20190203040506 20190101000000 utc", "with space.txt", "20190203040506"},
			{"SITE UTIME 20180102030405 with space.txt", "with space.txt", "20180102030405"},
		} {
			if got := c.cmd(tc.line, 200); !strings.HasPrefix(got, "SITE UTIME command successful") {
				t.Errorf("%s: %q", tc.line, got)
			}
			if got := mtime(tc.name); got != tc.want {
				t.Errorf("%s: mtime %s, want %s", tc.line, got, tc.want)
			}
		}
		before := mtime("f.txt")
		for _, tc := range []struct {
			line string
			code int
		}{
			{"SITE UTIME", 501},
			{"SITE UTIME f.txt", 501},
			{"SITE UTIME 20200102030405", 501},
			{"SITE UTIME f.txt 2020", 501},
			{"SITE UTIME 20201302030405 f.txt", 501}, // month 13
			{"SITE UTIME 20200230000000 f.txt", 501}, // 30 February
			{"SITE UTIME f.txt 20200102250000", 501}, // hour 25
			{"SITE UTIME f.txt 20200101000000 2020 20200101000000 UTC", 501},
			{"SITE UTIME f.txt 20200101000000 20201301000000 20200101000000 UTC", 501},
			{"SITE UTIME f.txt 20200101000000 20200101000000 UTC", 501},
			{"SITE UTIME missing.txt 20200102030405", 550},
			{"SITE UTIME 20200102030405 a\x00b", 553},
		} {
			c.cmd(tc.line, tc.code)
		}
		if got := mtime("f.txt"); got != before {
			t.Errorf("malformed SITE UTIME changed the time to %s", got)
		}
		// Anonymous users may not change times.
		a := dial(t, ts.addr)
		a.login("anonymous", "a@b")
		a.cmd("SITE UTIME 20200102030405 f.txt", 550)
	})
}

// TestSiteUTIMEWithoutChtimes: without storage.CapChtimes SITE UTIME is
// 502, and neither FEAT nor SITE HELP offers it.
func TestSiteUTIMEWithoutChtimes(t *testing.T) {
	op := newMemOpener()
	op.caps = storage.CapAll &^ storage.CapChtimes
	ts := startServer(t, func(st *Site, _ *Server) { st.Storage = op })
	ts.put(t, "f", []byte("x"))
	c := loggedIn(t, ts)
	c.cmd("SITE UTIME 20200102030405 f", 502)
	c.send("FEAT")
	if raw := strings.Join(c.rawReply(), "\n"); strings.Contains(raw, "UTIME") {
		t.Errorf("FEAT offers SITE UTIME: %q", raw)
	}
	if got := c.cmd("SITE HELP", 214); strings.Contains(got, "UTIME") {
		t.Errorf("SITE HELP offers UTIME: %q", got)
	}
}

// TestSTATDuringTransfer: STAT while a transfer runs reports the bytes
// moved, the size when known (a download's) and the rate.
func TestSTATDuringTransfer(t *testing.T) {
	ts := startServer(t, nil)
	c := loggedIn(t, ts)
	size := bigFile(t, filepath.Join(ts.home, "big"))
	c.cmd("REST 1000", 350)
	d := c.dataCmd("RETR big")
	// A plain download goes by sendfile, whose progress moves in steps of
	// up to 8 MiB: read past the first step, then ask until it shows.
	buf := make([]byte, 9<<20)
	d.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(d, buf); err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`Bytes transferred: (\d+) of (\d+) \((\d+)%\)`)
	var st string
	for i := 0; ; i++ {
		st = c.cmd("STAT", 211)
		m := re.FindStringSubmatch(st)
		if m == nil {
			t.Fatalf("STAT during RETR: %q", st)
		}
		if m[2] != strconv.FormatInt(size-1000, 10) {
			t.Fatalf("STAT during RETR: size %s, want %d", m[2], size-1000)
		}
		if n, _ := strconv.ParseInt(m[1], 10, 64); n >= 8<<20 {
			if n > int64(len(buf))+64<<20 {
				t.Errorf("STAT during RETR: %d bytes, the client read %d", n, len(buf))
			}
			break
		}
		if i == 1000 {
			t.Fatalf("STAT during RETR: %q", st)
		}
		time.Sleep(time.Millisecond)
	}
	if !regexp.MustCompile(`Rate: \d+ bytes/s over \S+`).MatchString(st) || !strings.Contains(st, "RETR /big") {
		t.Errorf("STAT during RETR lacks the rate or the transfer: %q", st)
	}
	c.cmd("ABOR", 426)
	c.expect(226)
	d.Close()

	// An upload: the size is not known.
	d = c.dataCmd("STOR up")
	if _, err := d.Write(make([]byte, 100000)); err != nil {
		t.Fatal(err)
	}
	// Nothing signals that the server has read the bytes: ask again until
	// it reports them (each STAT is one round trip).
	for i := 0; ; i++ {
		st = c.cmd("STAT", 211)
		if strings.Contains(st, "Bytes transferred: 100000\n") {
			break
		}
		if i == 1000 {
			t.Fatalf("STAT during STOR: %q", st)
		}
		time.Sleep(time.Millisecond)
	}
	if regexp.MustCompile(` of \d`).MatchString(st) || !strings.Contains(st, "STOR /up") || !strings.Contains(st, "Rate: ") {
		t.Errorf("STAT during STOR: %q", st)
	}
	d.Close()
	c.expect(226)
	if st := c.cmd("STAT", 211); !strings.Contains(st, "No data connection") || strings.Contains(st, "Bytes transferred") {
		t.Errorf("STAT after the transfer: %q", st)
	}
}

// TestMLSTOwnerGroup: UNIX.owner and UNIX.group (numeric IDs) come where
// the storage gives a Unix stat (local disk), after OPTS MLST selects
// them; FEAT and OPTS MLST offer them, and unique, only there.
func TestMLSTOwnerGroup(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ts := startOn(t, be, nil)
		ts.put(t, "f", []byte("x"))
		c := loggedIn(t, ts)
		unix := storage.CapsOf(ts.fs(t)).Has(storage.CapUnixStat)
		c.send("MLST f")
		if raw := strings.Join(c.rawReply(), "\n"); strings.Contains(raw, "UNIX.owner") {
			t.Errorf("UNIX.owner before OPTS MLST selects it: %q", raw)
		}
		got := c.cmd("OPTS MLST type;UNIX.owner;UNIX.group;unique;", 200)
		want := "MLST OPTS type;"
		if unix {
			want = "MLST OPTS type;unique;UNIX.owner;UNIX.group;"
		}
		if got != want {
			t.Errorf("OPTS MLST: %q, want %q", got, want)
		}
		c.send("MLST f")
		raw := c.rawReply()
		listing := c.listing("MLSD")
		if !unix {
			if strings.Contains(strings.Join(raw, "\n")+listing, "UNIX.") || strings.Contains(listing, "unique") {
				t.Errorf("facts the storage does not give: %q %q", raw, listing)
			}
			return
		}
		fi, err := ts.stat(t, "f")
		if err != nil {
			t.Fatal(err)
		}
		owner, group := ownerFacts(fi)
		if owner == "" {
			t.Fatal("local disk gave no owner")
		}
		fact := "UNIX.owner=" + owner + ";UNIX.group=" + group + "; "
		if len(raw) != 3 || !strings.Contains(raw[1], fact) || !strings.HasPrefix(raw[1], " type=file;unique=") {
			t.Errorf("MLST: %q, want %q", raw, fact)
		}
		if !strings.Contains(listing, fact+"f\r\n") {
			t.Errorf("MLSD: %q, want %q", listing, fact)
		}
	})
}

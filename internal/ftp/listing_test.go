package ftp

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/storage/storagetest"
)

// listLine is an ls -l line: mode, links, owner, group, size, date, name.
var listLine = regexp.MustCompile(`^([-dlpscb])([-r][-w][-xsS][-r][-w][-xsS][-r][-w][-xtT]) +(\d+) +(\S+) +(\S+) +(\d+) ([A-Z][a-z]{2} [ \d]\d (?:\d\d:\d\d| \d{4})) (.+)$`)

// parseLIST checks every line of a LIST reply and returns them by name.
func parseLIST(t testing.TB, listing string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, l := range lines(t, listing) {
		m := listLine.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("not an ls -l line: %q", l)
			continue
		}
		out[m[8]] = m
	}
	return out
}

// listFixture adds a dot file and a recently modified file to fixture.
func listFixture(t testing.TB, ts *testServer) time.Time {
	t.Helper()
	fixture(t, ts)
	ts.put(t, ".hidden", []byte("dot"))
	recent := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Minute)
	ts.put(t, "recent.txt", []byte("recent"))
	ts.chtimes(t, "recent.txt", recent)
	return recent
}

func TestLIST(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ts := startOn(t, be, nil)
		recent := listFixture(t, ts)
		c := loggedIn(t, ts)

		for _, line := range []string{"LIST", "list", "LIST -a", "LIST -la", "LIST -aL", "LIST -l", "LIST -la /", "LIST -- ."} {
			t.Run(line, func(t *testing.T) {
				c.t = t
				got := parseLIST(t, c.listing(line))
				want := []string{"file.txt", "dir", "empty", "recent.txt"}
				if strings.Contains(line, "a") {
					want = append(want, ".hidden")
				}
				for _, n := range want {
					if got[n] == nil {
						t.Errorf("%s lacks %q: %v", line, n, keys(got))
					}
				}
				if f := got["file.txt"]; f != nil {
					if f[1] != "-" || f[2] != "rw-r--r--" || f[6] != "6" {
						t.Errorf("file.txt line %q", f[0])
					}
					// Dates are UTC; a date older than six months shows the year.
					if f[7] != "Feb  3  2021" {
						t.Errorf("file.txt date %q, want %q", f[7], "Feb  3  2021")
					}
				}
				if r := got["recent.txt"]; r != nil {
					if want := recent.Format("Jan _2 15:04"); r[7] != want {
						t.Errorf("recent.txt date %q, want %q (UTC)", r[7], want)
					}
				}
				if d := got["dir"]; d != nil && d[1] != "d" {
					t.Errorf("dir line %q", d[0])
				}
			})
		}
		c.t = t
		for _, line := range []string{"LIST dir", "LIST -la dir", "LIST /dir/"} {
			got := parseLIST(t, c.listing(line))
			if len(got) != 1 || got["inner.txt"] == nil {
				t.Errorf("%s: %v", line, keys(got))
			}
		}
		if got := parseLIST(t, c.listing("LIST file.txt")); len(got) != 1 || got["file.txt"] == nil {
			t.Errorf("LIST file.txt: %v", keys(got))
		}
		if got := c.listing("LIST empty"); got != "" {
			t.Errorf("LIST of an empty directory: %q", got)
		}
		c.cmd("CWD dir", 250)
		if got := parseLIST(t, c.listing("LIST")); got["inner.txt"] == nil {
			t.Errorf("LIST in /dir: %v", keys(got))
		}
	})
}

func keys[V any](m map[string]V) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	sort.Strings(k)
	return k
}

func TestNLST(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ts := startOn(t, be, nil)
		listFixture(t, ts)
		c := loggedIn(t, ts)
		for _, line := range []string{"NLST", "NLST -la", "nlst", "NLST /"} {
			got := lines(t, c.listing(line))
			sort.Strings(got)
			for _, n := range []string{"dir", "empty", "file.txt", "recent.txt"} {
				if !slices.Contains(got, n) {
					t.Errorf("%s lacks %q: %q", line, n, got)
				}
			}
			for _, n := range got {
				if strings.ContainsAny(n, " \t") && n != "" {
					t.Errorf("%s: %q is not a bare name", line, n)
				}
			}
		}
		got := lines(t, c.listing("NLST dir"))
		if len(got) != 1 || (got[0] != "inner.txt" && got[0] != "dir/inner.txt" && got[0] != "/dir/inner.txt") {
			t.Errorf("NLST dir: %q", got)
		}
		got = lines(t, c.listing("NLST file.txt"))
		if len(got) != 1 || strings.TrimPrefix(got[0], "/") != "file.txt" {
			t.Errorf("NLST file.txt: %q", got)
		}
		if got := c.listing("NLST empty"); got != "" {
			t.Errorf("NLST of an empty directory: %q", got)
		}
	})
}

// mlsLine is an RFC 3659 §7.2 entry: facts, each "name=value;", a space, the name.
var mlsLine = regexp.MustCompile(`^((?:[A-Za-z.\-]+=[^;= ]*;)*) (.+)$`)

// parseFacts returns the facts of an MLSx line (names lower-cased) and its name.
func parseFacts(t testing.TB, l string) (map[string]string, string) {
	t.Helper()
	m := mlsLine.FindStringSubmatch(l)
	if m == nil {
		t.Errorf("not an MLSx entry: %q", l)
		return nil, ""
	}
	facts := map[string]string{}
	for _, f := range strings.Split(strings.TrimSuffix(m[1], ";"), ";") {
		if f == "" {
			continue
		}
		k, v, _ := strings.Cut(f, "=")
		facts[strings.ToLower(k)] = v
	}
	return facts, m[2]
}

func parseMLSD(t testing.TB, listing string) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	for _, l := range lines(t, listing) {
		f, name := parseFacts(t, l)
		if f != nil {
			out[name] = f
		}
	}
	return out
}

func TestMLSD(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ts := startOn(t, be, nil)
		listFixture(t, ts)
		c := loggedIn(t, ts)

		got := parseMLSD(t, c.listing("MLSD"))
		for _, n := range []string{"file.txt", "dir", "empty", "recent.txt", ".hidden"} {
			if got[n] == nil {
				t.Errorf("MLSD lacks %q: %v", n, keys(got))
			}
		}
		if d := got["."]; d == nil || d["type"] != "cdir" {
			t.Errorf("MLSD without the cdir entry: %v", got["."])
		}
		if got[".."] != nil && got[".."]["type"] != "pdir" {
			t.Errorf("MLSD .. entry: %v", got[".."])
		}
		f := got["file.txt"]
		want := map[string]string{"type": "file", "size": "6", "modify": "20210203040506", "unix.mode": "0644"}
		for k, v := range want {
			if f[k] != v {
				t.Errorf("file.txt fact %s=%q, want %q (all: %v)", k, f[k], v, f)
			}
		}
		if f["perm"] != "adfrw" {
			t.Errorf("file.txt perm=%q, want adfrw for a user with every right", f["perm"])
		}
		// mem and S3 have no inode numbers (no CapUnixStat), so no unique
		// fact: RFC 3659 §7.5.2 lets a server omit it; where it is given it
		// must differ.
		hasUnique := ts.hasCap(t, storage.CapUnixStat)
		if hasUnique && f["unique"] == "" || f["unique"] != "" && f["unique"] == got["dir"]["unique"] {
			t.Errorf("unique facts %q and %q", f["unique"], got["dir"]["unique"])
		}
		d := got["dir"]
		if d["type"] != "dir" {
			t.Errorf("dir facts %v", d)
		}
		for _, p := range "cdeflmp" {
			if !strings.ContainsRune(d["perm"], p) {
				t.Errorf("dir perm=%q lacks %c", d["perm"], p)
			}
		}
		if !regexp.MustCompile(`^\d{14}(\.\d+)?$`).MatchString(got["recent.txt"]["modify"]) {
			t.Errorf("modify fact %q is not a time-val", got["recent.txt"]["modify"])
		}
		mode := "0600"
		if ts.hasCap(t, storage.CapChmod) {
			c.cmd("SITE CHMOD 600 file.txt", 200)
		} else { // S3: the mode stays
			if got := c.cmd("SITE CHMOD 600 file.txt", 550); got != lackChmod {
				t.Errorf("SITE CHMOD without CapChmod: %q", got)
			}
			mode = "0644"
		}
		if m := parseMLSD(t, c.listing("MLSD"))["file.txt"]["unix.mode"]; m != mode {
			t.Errorf("UNIX.mode after SITE CHMOD 600: %q, want %s", m, mode)
		}
		if got := parseMLSD(t, c.listing("MLSD dir")); len(got) != 2 || got["inner.txt"]["size"] != "6" {
			t.Errorf("MLSD dir: %v", got)
		}

		// OPTS MLST selects the facts (RFC 3659 §7.9).
		c.cmd("OPTS MLST type;size;", 200)
		for _, l := range lines(t, c.listing("MLSD")) {
			switch {
			case strings.HasSuffix(l, " file.txt"):
				if l != "type=file;size=6; file.txt" {
					t.Errorf("after OPTS MLST type;size;: %q", l)
				}
			case strings.HasSuffix(l, " dir"):
				if l != "type=dir; dir" {
					t.Errorf("after OPTS MLST type;size;: %q", l)
				}
			}
		}
		c.cmd("OPTS MLST Modify;bogus;", 200)
		for _, l := range lines(t, c.listing("MLSD")) {
			if strings.HasSuffix(l, " file.txt") && l != "modify=20210203040506; file.txt" {
				t.Errorf("after OPTS MLST Modify;bogus;: %q", l)
			}
		}
		c.cmd("OPTS MLST", 200)
		if ls := lines(t, c.listing("MLSD")); !slices.Contains(ls, " file.txt") {
			t.Errorf("with no facts an entry is \" name\": %q", ls)
		}
		c.cmd("OPTS MLST type;size;modify;perm;unique;UNIX.mode;", 200)
		if f := parseMLSD(t, c.listing("MLSD"))["file.txt"]; len(f) != 5 && !hasUnique || len(f) != 6 && hasUnique {
			t.Errorf("all facts again: %v", f)
		}
	})
}

func TestMLST(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ts := startOn(t, be, nil)
		fixture(t, ts)
		c := loggedIn(t, ts)
		for _, tt := range []struct{ arg, typ, name string }{
			{"file.txt", "file", "file.txt"},
			{"/dir/inner.txt", "file", "inner.txt"},
			{"dir", "dir", "dir"},
			{"", "", ""},
		} {
			c.send(strings.TrimSpace("MLST " + tt.arg))
			raw := c.rawReply()
			if len(raw) != 3 || !strings.HasPrefix(raw[0], "250-") || !strings.HasPrefix(raw[2], "250 ") {
				t.Errorf("MLST %s: reply shape %q", tt.arg, raw)
				continue
			}
			// RFC 3659 §7.2: the entry line starts with exactly one space.
			entry := raw[1]
			if !strings.HasPrefix(entry, " ") || strings.HasPrefix(entry, "  ") {
				t.Errorf("MLST %s: entry line %q does not start with exactly one space", tt.arg, entry)
			}
			f, name := parseFacts(t, strings.TrimLeft(entry, " "))
			if tt.typ != "" && f["type"] != tt.typ {
				t.Errorf("MLST %s: type=%q", tt.arg, f["type"])
			}
			if tt.name != "" && !strings.HasSuffix(name, tt.name) {
				t.Errorf("MLST %s: name %q", tt.arg, name)
			}
			if tt.arg == "file.txt" && (f["size"] != "6" || f["modify"] != "20210203040506") {
				t.Errorf("MLST file.txt facts %v", f)
			}
		}
		c.cmd("MLST nope", 550)
	})
}

// TestSTATListing: STAT with a path lists it on the control connection
// (RFC 959 §4.1.3) in the LIST format.
func TestSTATListing(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ts := startOn(t, be, nil)
		listFixture(t, ts)
		c := loggedIn(t, ts)
		for _, tt := range []struct {
			arg  string
			want []string
		}{
			{"/", []string{"file.txt", "dir", "recent.txt"}},
			{"-la /", []string{"file.txt", ".hidden"}},
			{"dir", []string{"inner.txt"}},
			{"file.txt", []string{"file.txt"}},
		} {
			c.send("STAT " + tt.arg)
			raw := c.rawReply()
			code := raw[0][:3]
			if code != "211" && code != "212" && code != "213" || len(raw) < 2 {
				t.Errorf("STAT %s: %q", tt.arg, raw)
				continue
			}
			names := map[string]bool{}
			for _, l := range raw[1 : len(raw)-1] {
				m := listLine.FindStringSubmatch(strings.TrimPrefix(l, " "))
				if m == nil {
					t.Errorf("STAT %s: not an ls -l line: %q", tt.arg, l)
					continue
				}
				if strings.HasPrefix(l, code) {
					t.Errorf("STAT %s: a listing line starts with the code: %q", tt.arg, l)
				}
				names[m[8]] = true
			}
			for _, n := range tt.want {
				if !names[n] {
					t.Errorf("STAT %s lacks %q: %q", tt.arg, n, raw)
				}
			}
		}
	})
}

// TestSTATLongListing: a STAT listing many times the reply chunk comes as
// one well-formed 213 reply: every entry exactly once, each line indented,
// then the end line.
func TestSTATLongListing(t *testing.T) {
	eachBackend(t, testSTATLongListing)
}

func testSTATLongListing(t *testing.T, be backend) {
	ts := startOn(t, be, nil)
	ts.mkdir(t, "many")
	const n = 3000 // about 330 KB of listing, ten reply chunks (three S3 pages)
	want := map[string]bool{}
	fsys := ts.fs(t)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16) // S3: one request at a time would take most of a minute
	for i := range n {
		name := fmt.Sprintf("entry-%04d-%s", i, strings.Repeat("x", 40))
		want[name] = true
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			up, err := fsys.Create(t.Context(), storagetest.P("many/"+name), storage.CreateOptions{Perm: 0o644})
			if err == nil {
				err = up.Commit(t.Context())
			}
			if err != nil {
				t.Errorf("fixture %s: %v", name, err)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	c := loggedIn(t, ts)
	c.send("STAT many")
	raw := c.rawReply()
	if raw[0] != "213-Status of /many:" || raw[len(raw)-1] != "213 End of status" {
		t.Fatalf("STAT many: first %q, last %q", raw[0], raw[len(raw)-1])
	}
	for _, l := range raw[1 : len(raw)-1] {
		m := listLine.FindStringSubmatch(strings.TrimPrefix(l, " "))
		if !strings.HasPrefix(l, " ") || m == nil {
			t.Fatalf("STAT many: bad line %q", l)
		}
		if !want[m[8]] {
			t.Fatalf("STAT many: unexpected or repeated entry %q", m[8])
		}
		delete(want, m[8])
	}
	if len(want) > 0 {
		t.Errorf("STAT many: %d entries missing", len(want))
	}
	c.cmd("NOOP", 200) // the session goes on
}

// TestMLSDLargeDirectory lists a directory of 100,000 entries. The files
// are made on tmpfs when the host has one: on a slow disk, creating and
// removing them would take most of a minute.
// Local disk only: it builds the directory with raw system calls, on tmpfs
// when it can.
func TestMLSDLargeDirectory(t *testing.T) {
	data := t.TempDir()
	if shm, err := os.MkdirTemp("/dev/shm", "ferry-test-"); err == nil {
		data = shm
		t.Cleanup(func() { os.RemoveAll(shm) })
	}
	ts := startServerData(t, "127.0.0.1:0", data, nil)
	const n = 100000
	dir := filepath.Join(ts.home, "big")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	const workers = 8
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			var err error
			for i := w; i < n && err == nil; i += workers {
				// open+close: half the system calls of os.WriteFile.
				var fd int
				fd, err = syscall.Open(filepath.Join(dir, fmt.Sprintf("f%06d", i)),
					syscall.O_CREAT|syscall.O_EXCL|syscall.O_WRONLY|syscall.O_CLOEXEC, 0o644)
				if err == nil {
					err = syscall.Close(fd)
				}
			}
			errs <- err
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}

	t.Logf("created %d files in %v", n, time.Since(t0).Round(time.Millisecond))
	c := loggedIn(t, ts)
	d := c.dataCmd("MLSD big")
	d.SetReadDeadline(time.Now().Add(time.Minute))
	r := bufio.NewReaderSize(d, 64<<10)
	entries, cdir := 0, 0
	seen := make([]bool, n)
	distinct := 0
	for {
		l, err := r.ReadString('\n')
		if err == io.EOF && l == "" {
			break
		}
		if err != nil {
			t.Fatalf("after %d entries: %v (partial line %q)", entries, err, l)
		}
		if !strings.HasSuffix(l, "\r\n") {
			t.Fatalf("line without CRLF: %q", l)
		}
		l = strings.TrimSuffix(l, "\r\n")
		_, name, ok := strings.Cut(l, " ")
		switch {
		case !ok:
			t.Fatalf("bad line %q", l)
		case strings.HasPrefix(l, "type=cdir;"):
			cdir++
		case strings.HasPrefix(l, "type=file;size=0;"):
			entries++
			if i, err := strconv.Atoi(strings.TrimPrefix(name, "f")); err == nil && i >= 0 && i < n && !seen[i] {
				seen[i] = true
				distinct++
			}
		default:
			t.Fatalf("unexpected line %q", l)
		}
	}
	c.expect(226)
	if entries != n || distinct != n || cdir != 1 {
		t.Fatalf("MLSD of %d files: %d entries (%d distinct), %d cdir lines", n, entries, distinct, cdir)
	}
}

// TestMLSDCdirFacts: the cdir entry of MLSD describes the listed directory
// itself (RFC 3659 §7.5.1), so its facts equal what MLST says of it.
func TestMLSDCdirFacts(t *testing.T) {
	eachBackend(t, testMLSDCdirFacts)
}

func testMLSDCdirFacts(t *testing.T, be backend) {
	ts := startOn(t, be, nil)
	fixture(t, ts)
	bobHome := filepath.Join(ts.data, "home", "bob")
	fsPut(t, ts.fsAt(t, bobHome), "incoming/there.txt", []byte("already"))

	for _, tt := range []struct{ user, pass, dir string }{
		{"alice", "secret", "/dir"},
		{"alice", "secret", "/"},
		{"bob", "hunter2", "/incoming"},
		{"bob", "hunter2", "/"},
	} {
		c := dial(t, ts.addr)
		c.login(tt.user, tt.pass)
		c.send("MLST " + tt.dir)
		raw := c.rawReply()
		if len(raw) != 3 {
			t.Fatalf("MLST %s: %q", tt.dir, raw)
		}
		want, _ := parseFacts(t, strings.TrimLeft(raw[1], " "))
		cdir := parseMLSD(t, c.listing("MLSD "+tt.dir))["."]
		if cdir["type"] != "cdir" {
			t.Errorf("%s MLSD %s: no cdir entry", tt.user, tt.dir)
			continue
		}
		for _, k := range []string{"perm", "unique", "unix.mode", "modify"} {
			if cdir[k] != want[k] {
				t.Errorf("%s MLSD %s: cdir %s=%q, MLST says %q", tt.user, tt.dir, k, cdir[k], want[k])
			}
		}
		c.cmd("QUIT", 221)
	}
}

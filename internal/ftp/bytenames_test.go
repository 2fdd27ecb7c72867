package ftp

import (
	"context"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/vpath"
)

// byteNames are names that are not UTF-8: Latin-1, bytes that can never
// be UTF-8 (0xFF is IAC, doubled on the control connection) and a lone
// 0x80 (a C1 byte of no encoding in particular).
var byteNames = []string{"caf\xe9.txt", "\xff\xfe", "a\x80b"}

// iac doubles 0xFF for the control connection (RFC 854: IAC IAC is a data
// byte 0xFF); replies double it the same way.
func iac(s string) string { return strings.ReplaceAll(s, "\xff", "\xff\xff") }

// TestByteNames: on storage that keeps byte names (local disk on Linux,
// mem) names that are not UTF-8 are created, listed, renamed, downloaded
// and deleted as exactly those bytes, through every command that takes a
// path; listings write them byte-exact and logs escape them.
func TestByteNames(t *testing.T) {
	eachBackend(t, testByteNames)
}

func testByteNames(t *testing.T, be backend) {
	logs := &syncBuffer{}
	ts := startOn(t, be, jsonLogs(logs))
	c := loggedIn(t, ts)
	if !ts.hasCap(t, storage.CapByteNames) {
		// S3: keys are UTF-8. Every command refuses such a name.
		checkByteNamesRefused(t, ts, c)
		return
	}
	if got := c.cmd("MKD d\xe9", 257); got != `"/d`+"\xe9"+`" created.` {
		t.Errorf("MKD: %q", got)
	}
	c.cmd("CWD d\xe9", 250)
	if got := c.cmd("PWD", 257); !strings.HasPrefix(got, `"/d`+"\xe9"+`" `) {
		t.Errorf("PWD: %q", got)
	}
	for _, n := range byteNames {
		c.stor("STOR", iac(n), []byte(n))
	}
	if got, want := ts.names(t, "d\xe9"), slices.Sorted(slices.Values(byteNames)); !slices.Equal(got, want) {
		t.Fatalf("names in storage %q, want %q", got, want)
	}
	c.stor("APPE", iac(byteNames[0]), []byte("+"))
	c.cmd("REST 1", 350)
	c.stor("STOR", iac(byteNames[1]), []byte("X"))

	// Listings are byte-exact: no replacement character, no '?'.
	list := c.listing("LIST")
	nlst := lines(t, c.listing("NLST"))
	mlsd := lines(t, c.listing("MLSD"))
	if strings.Contains(list, "\ufffd") || strings.Contains(list, "?") {
		t.Errorf("LIST rewrote a name: %q", list)
	}
	slices.Sort(nlst)
	if want := slices.Sorted(slices.Values(byteNames)); !slices.Equal(nlst, want) {
		t.Errorf("NLST = %q, want %q", nlst, want)
	}
	for _, n := range byteNames {
		if !strings.Contains(list, " "+n+"\r\n") {
			t.Errorf("LIST lacks %q: %q", n, list)
		}
		if !slices.ContainsFunc(mlsd, func(l string) bool { return strings.HasPrefix(l, "type=file;") && strings.HasSuffix(l, "; "+n) }) {
			t.Errorf("MLSD lacks %q: %q", n, mlsd)
		}
		c.send("MLST " + iac(n))
		if raw := c.rawReply(); len(raw) != 3 || !strings.HasSuffix(raw[1], " /d\xe9/"+iac(n)) {
			t.Errorf("MLST %q: %q", n, raw)
		}
		size := strconv.Itoa(len(ts.get(t, "d\xe9/"+n)))
		if got := c.cmd("SIZE "+iac(n), 213); got != size {
			t.Errorf("SIZE %q = %s, want %s", n, got, size)
		}
		c.cmd("MDTM "+iac(n), 213)
		c.cmd("MFMT 20200102030405 "+iac(n), 213)
	}
	if got := string(c.retr(iac(byteNames[0]))); got != byteNames[0]+"+" {
		t.Errorf("RETR after APPE: %q", got)
	}
	if got := string(c.retr(iac(byteNames[1]))); got != byteNames[1][:1]+"X" {
		t.Errorf("RETR after REST+STOR: %q", got)
	}
	if got := string(c.retr(iac(byteNames[2]))); got != byteNames[2] {
		t.Errorf("RETR: %q", got)
	}
	c.send("STAT .")
	if raw := strings.Join(c.rawReply(), "\n"); !strings.Contains(raw, " "+iac(byteNames[1])) || !strings.Contains(raw, " "+byteNames[0]) {
		t.Errorf("STAT: %q", raw)
	}

	c.cmd("RNFR "+iac(byteNames[0]), 350)
	c.cmd("RNTO \xe9t\xe9", 250)
	c.cmd("RNFR "+iac(byteNames[1]), 350)
	c.cmd("RNTO /"+iac(byteNames[1]), 250)
	c.cmd("MKD sub\xfe", 257)
	c.cmd("CWD sub\xfe", 250)
	c.cmd("CDUP", 250)
	c.cmd("RMD sub\xfe", 250)
	if got, want := ts.names(t, "d\xe9"), []string{"a\x80b", "\xe9t\xe9"}; !slices.Equal(got, want) {
		t.Errorf("after renames: %q, want %q", got, want)
	}
	if got := ts.get(t, "\xff\xfe"); string(got) != "\xffX" {
		t.Errorf("renamed to the root: %q", got)
	}
	c.cmd("DELE \xe9t\xe9", 250)
	c.cmd("DELE "+iac(byteNames[2]), 250)
	c.cmd("DELE /"+iac(byteNames[1]), 250)
	c.cmd("CWD /", 250)
	c.cmd("RMD d\xe9", 250)
	if got := ts.names(t, "."); len(got) != 0 {
		t.Errorf("home not empty: %q", got)
	}
	c.cmd("QUIT", 221)

	// The log writes the bytes escaped: no U+FFFD, no raw byte.
	ts.logText()
	l := logs.String()
	if strings.Contains(l, "\ufffd") || !utf8.ValidString(l) {
		t.Errorf("the log replaced or kept raw bytes:\n%s", l)
	}
	checkLog(t, l, `/d\\xe9/caf\\xe9.txt`)
	checkLog(t, l, `\\xff\\xfe`)
}

// TestByteNamesMalformed: names that are not UTF-8 still may not hold
// control characters (C0, DEL, the UTF-8 form of U+0080–U+009F), and UTF-8
// names may not hold C1 controls (U+0085, U+009B).
func TestByteNamesMalformed(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ts := startOn(t, be, nil)
		ts.put(t, "ok", []byte("x"))
		c := loggedIn(t, ts)
		byteNames := ts.hasCap(t, storage.CapByteNames)
		for _, name := range []string{"caf\xe9\x1b[2J", "\xe9\xc2\x85", "\xfe\x7f", "\xe9\ttab", "nel\u0085", "csi\u009b2J", "\xe9\x07"} {
			// Without byte names (S3) a name that is not UTF-8 is refused
			// for that first.
			why := "control character"
			if !byteNames && !utf8.ValidString(name) {
				why = lackByteNames
			}
			for _, verb := range []string{"STOR", "APPE"} {
				c.pasv()
				if got := c.cmd(verb+" "+name, 553); !strings.Contains(got, why) {
					t.Errorf("%s %q: %q, want %q", verb, name, got, why)
				}
			}
			c.cmd("MKD "+name, 553)
			c.cmd("RNFR ok", 350)
			c.cmd("RNTO "+name, 553)
		}
		c.cmd("MKD a\x00\xe9", 553)
		if got := ts.names(t, "."); !slices.Equal(got, []string{"ok"}) {
			t.Errorf("refused names created %q", got)
		}
	})
}

// utf8OnlyFS plays a backend that keeps UTF-8 names only (an object store)
// under the engine: it declares caps (no storage.CapByteNames) and records
// in rec every call that reaches it with a name that is not UTF-8.
type utf8OnlyFS struct {
	storage.FS
	caps storage.Capabilities
	rec  *nameRecorder
}

// nameRecorder is shared by the utf8OnlyFS values of one test.
type nameRecorder struct {
	mu   sync.Mutex
	bad  []string // calls that reached the storage with a non-UTF-8 name
	fail error    // what Mkdir returns, when set: a backend's own refusal
}

func (r *nameRecorder) calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.bad)
}

func (r *nameRecorder) setFail(err error) {
	r.mu.Lock()
	r.fail = err
	r.mu.Unlock()
}

func (u *utf8OnlyFS) Capabilities() storage.Capabilities { return u.caps }

func (u *utf8OnlyFS) saw(op string, ps ...vpath.Path) {
	for _, p := range ps {
		if !p.IsUTF8() {
			u.rec.mu.Lock()
			u.rec.bad = append(u.rec.bad, fmt.Sprintf("%s %q", op, p.String()))
			u.rec.mu.Unlock()
		}
	}
}

func (u *utf8OnlyFS) Stat(ctx context.Context, p vpath.Path) (fs.FileInfo, error) {
	u.saw("Stat", p)
	return u.FS.Stat(ctx, p)
}

func (u *utf8OnlyFS) ReadDir(ctx context.Context, p vpath.Path) (storage.DirIter, error) {
	u.saw("ReadDir", p)
	return u.FS.ReadDir(ctx, p)
}

func (u *utf8OnlyFS) Open(ctx context.Context, p vpath.Path, off int64) (storage.File, error) {
	u.saw("Open", p)
	return u.FS.Open(ctx, p, off)
}

func (u *utf8OnlyFS) Create(ctx context.Context, p vpath.Path, o storage.CreateOptions) (storage.Upload, error) {
	u.saw("Create", p)
	return u.FS.Create(ctx, p, o)
}

func (u *utf8OnlyFS) Mkdir(ctx context.Context, p vpath.Path, perm fs.FileMode) error {
	u.saw("Mkdir", p)
	u.rec.mu.Lock()
	fail := u.rec.fail
	u.rec.mu.Unlock()
	if fail != nil {
		return fail
	}
	return u.FS.Mkdir(ctx, p, perm)
}

func (u *utf8OnlyFS) Remove(ctx context.Context, p vpath.Path) error {
	u.saw("Remove", p)
	return u.FS.Remove(ctx, p)
}

func (u *utf8OnlyFS) RemoveDir(ctx context.Context, p vpath.Path) error {
	u.saw("RemoveDir", p)
	return u.FS.RemoveDir(ctx, p)
}

func (u *utf8OnlyFS) Rename(ctx context.Context, from, to vpath.Path) error {
	u.saw("Rename", from, to)
	return u.FS.Rename(ctx, from, to)
}

func (u *utf8OnlyFS) Chmod(ctx context.Context, p vpath.Path, m fs.FileMode) error {
	u.saw("Chmod", p)
	return u.FS.Chmod(ctx, p, m)
}

func (u *utf8OnlyFS) Chtimes(ctx context.Context, p vpath.Path, t time.Time) error {
	u.saw("Chtimes", p)
	return u.FS.Chtimes(ctx, p, t)
}

// TestByteNamesRefusedWithoutCapability: on storage without
// storage.CapByteNames every command that takes a path answers a name
// that is not UTF-8 with 553 and a reason, before any storage call; UTF-8
// names work as ever.
func TestByteNamesRefusedWithoutCapability(t *testing.T) {
	rec := &nameRecorder{}
	ts := startServer(t, func(st *Site, _ *Server) {
		st.Storage = wrapLocal(func(fsys storage.FS, _ string) storage.FS {
			return &utf8OnlyFS{FS: fsys, caps: storage.CapAll, rec: rec}
		})
	})
	c := loggedIn(t, ts)
	checkByteNamesRefused(t, ts, c)
	if bad := rec.calls(); len(bad) != 0 {
		t.Errorf("names that are not UTF-8 reached the storage: %q", bad)
	}
}

// checkByteNamesRefused checks, on storage without CapByteNames, that every
// command that takes a path answers a name that is not UTF-8 with 553 and
// the reason, and that UTF-8 names work as ever.
func checkByteNamesRefused(t *testing.T, ts *testServer, c *client) {
	t.Helper()
	c.stor("STOR", "café.txt", []byte("x"))
	c.cmd("MKD dir", 257)
	const why = lackByteNames
	n := "caf\xe9.txt"
	lines := []string{
		"MKD " + n, "XMKD d\xe9", "RMD " + n, "CWD " + n, "DELE " + n, "SIZE " + n, "MDTM " + n,
		"MDTM 20200101000000 " + n, "MFMT 20200101000000 " + n, "MLST " + n, "RNFR " + n,
		"STAT " + n, "STAT -la " + n,
	}
	// Without CapChmod (S3) SITE CHMOD answers 550 before it reads a name.
	if ts.hasCap(t, storage.CapChmod) {
		lines = append(lines, "SITE CHMOD 644 "+n)
	}
	for _, line := range lines {
		if got := c.cmd(line, 553); got != why {
			t.Errorf("%q: %q", line, got)
		}
	}
	c.cmd("RNFR café.txt", 350)
	c.cmd("RNTO "+n, 553)
	for _, line := range []string{"STOR " + n, "APPE " + n, "RETR " + n, "LIST " + n, "NLST " + n, "MLSD d\xe9", "STOU " + n} {
		c.pasv()
		if got := c.cmd(line, 553); got != why {
			t.Errorf("%q: %q", line, got)
		}
	}
	c.cmd("CWD dir", 250)
	c.cmd("CDUP", 250)
	if got := ts.names(t, "."); !slices.Equal(got, []string{"café.txt", "dir"}) {
		t.Errorf("home: %q", got)
	}
}

// TestStorageBadNameReplies: a backend's own refusals of a name
// (storage.ErrNotUTF8 from a backend that declares byte names but gets a
// name it cannot keep, ErrNameTooLong, plain ErrBadName) answer 553 with
// the reason.
func TestStorageBadNameReplies(t *testing.T) {
	rec := &nameRecorder{}
	ts := startServer(t, func(st *Site, _ *Server) {
		st.Storage = wrapLocal(func(fsys storage.FS, _ string) storage.FS {
			return &utf8OnlyFS{FS: fsys, caps: storage.CapAll | storage.CapByteNames, rec: rec}
		})
	})
	c := loggedIn(t, ts)
	for _, tc := range []struct {
		err  error
		want string
	}{
		{storage.ErrNotUTF8, "File name not allowed: name is not valid UTF-8; this storage keeps UTF-8 names only."},
		{storage.ErrNameTooLong, "File name not allowed: too long for this storage."},
		{storage.ErrBadName, "File name not allowed by this storage."},
		{fmt.Errorf("s3: key %q: %w", "x", storage.ErrNotUTF8), "File name not allowed: name is not valid UTF-8; this storage keeps UTF-8 names only."},
	} {
		rec.setFail(tc.err)
		if got := c.cmd("MKD caf\xe9", 553); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.err, got, tc.want)
		}
	}
}

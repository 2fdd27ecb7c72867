package ftp

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/storage/local"
	"github.com/ferryftp/ferry/internal/users"
	"github.com/ferryftp/ferry/internal/vpath"
)

// goHashes are Go's own implementations, by IANA name and legacy verb.
var goHashes = []struct {
	name, verb string
	new        func() hash.Hash
}{
	{"SHA-256", "XSHA256", sha256.New},
	{"SHA-512", "XSHA512", sha512.New},
	{"SHA-1", "XSHA1", sha1.New},
	{"MD5", "XMD5", md5.New},
	{"CRC32", "XCRC", func() hash.Hash { return crc32.NewIEEE() }},
}

func goSum(newHash func() hash.Hash, b []byte) string {
	h := newHash()
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// hashData is deterministic content that is not all one byte.
func hashData(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

// wantHASH is the 213 text of HASH over data[from:last+1].
func wantHASH(algo string, newHash func() hash.Hash, data []byte, from, last int64, name string) string {
	return algo + " " + strconv.FormatInt(from, 10) + "-" + strconv.FormatInt(max(last, from), 10) + " " +
		goSum(newHash, data[from:last+1]) + " " + name
}

// TestHashAlgorithms compares every algorithm, through HASH and the legacy
// commands, with Go's own implementation: whole files (empty, small, larger
// than a read), RANG ranges and legacy ranges, with the end clipped to the
// file.
func TestHashAlgorithms(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ts := startOn(t, b, nil)
		files := map[string][]byte{"empty": {}, "small.txt": []byte("hello, world\n"), "big.bin": hashData(600 << 10)}
		for name, data := range files {
			ts.put(t, name, data)
		}
		c := dial(t, ts.addr)
		c.login("alice", "secret")
		c.cmd("TYPE I", 200)
		for _, h := range goHashes {
			c.cmd("OPTS HASH "+strings.ToLower(h.name), 200)
			for name, data := range files {
				n := int64(len(data))
				if got, want := c.cmd("HASH "+name, 213), wantHASH(h.name, h.new, data, 0, n-1, name); got != want {
					t.Errorf("HASH %s: %q, want %q", name, got, want)
				}
				if got, want := c.cmd(h.verb+" "+name, 250), strings.ToUpper(goSum(h.new, data)); got != want {
					t.Errorf("%s %s: %q, want %q", h.verb, name, got, want)
				}
				if n < 10 {
					continue
				}
				c.cmd("RANG 3 9", 350)
				if got, want := c.cmd("HASH "+name, 213), wantHASH(h.name, h.new, data, 3, 9, name); got != want {
					t.Errorf("RANG 3 9, HASH %s: %q, want %q", name, got, want)
				}
				// The end is clipped to the file.
				c.cmd("RANG 5 "+strconv.FormatInt(n+100, 10), 350)
				if got, want := c.cmd("HASH "+name, 213), wantHASH(h.name, h.new, data, 5, n-1, name); got != want {
					t.Errorf("RANG past the end, HASH %s: %q, want %q", name, got, want)
				}
				// Legacy ranges: end exclusive.
				if got, want := c.cmd(h.verb+" "+name+" 3 9", 250), strings.ToUpper(goSum(h.new, data[3:9])); got != want {
					t.Errorf("%s %s 3 9: %q, want %q", h.verb, name, got, want)
				}
				if got, want := c.cmd(h.verb+" \""+name+"\" 2 "+strconv.FormatInt(n+5, 10), 250), strings.ToUpper(goSum(h.new, data[2:])); got != want {
					t.Errorf("%s quoted, end past the file: %q, want %q", h.verb, got, want)
				}
			}
		}
		// XSHA is XSHA1.
		if got, want := c.cmd("XSHA small.txt", 250), strings.ToUpper(goSum(sha1.New, files["small.txt"])); got != want {
			t.Errorf("XSHA: %q, want %q", got, want)
		}
		// A RANG of the whole empty file.
		c.cmd("OPTS HASH SHA-256", 200)
		c.cmd("RANG 0 0", 350)
		if got, want := c.cmd("HASH empty", 213), "SHA-256 0-0 "+goSum(sha256.New, nil)+" empty"; got != want {
			t.Errorf("RANG 0 0, HASH empty: %q, want %q", got, want)
		}
	})
}

// TestHashFeatOpts checks the FEAT lines and OPTS HASH: the selected
// algorithm is starred, OPTS HASH queries and sets it per session, an
// unknown one is refused and changes nothing, REIN resets it.
func TestHashFeatOpts(t *testing.T) {
	ts := startServer(t, nil)
	c := dial(t, ts.addr)
	feat := c.cmd("FEAT", 211)
	for _, l := range []string{" HASH SHA-256*;SHA-512;SHA-1;MD5;CRC32", " XCRC", " XMD5", " XSHA1", " XSHA256", " XSHA512"} {
		if !strings.Contains(feat, "\n"+l+"\n") {
			t.Errorf("FEAT has no line %q:\n%s", l, feat)
		}
	}
	if strings.Contains(feat, "RANG") {
		t.Errorf("FEAT lists RANG, which Ferry applies to HASH only:\n%s", feat)
	}
	if got := c.cmd("OPTS HASH", 200); got != "SHA-256" {
		t.Errorf("OPTS HASH = %q, want SHA-256", got)
	}
	if got := c.cmd("OPTS HASH md5", 200); got != "MD5" {
		t.Errorf("OPTS HASH md5 = %q, want MD5", got)
	}
	if got := c.cmd("OPTS HASH CRC-37", 501); !strings.Contains(got, "Unknown algorithm") {
		t.Errorf("OPTS HASH CRC-37: %q", got)
	}
	c.cmd("OPTS HASH SHA-256 SHA-1", 501)
	if got := c.cmd("OPTS HASH", 200); got != "MD5" {
		t.Errorf("after refused changes OPTS HASH = %q, want MD5", got)
	}
	if feat := c.cmd("FEAT", 211); !strings.Contains(feat, "\n HASH SHA-256;SHA-512;SHA-1;MD5*;CRC32\n") {
		t.Errorf("FEAT after OPTS HASH MD5:\n%s", feat)
	}
	// Another session keeps its own selection.
	c2 := dial(t, ts.addr)
	if got := c2.cmd("OPTS HASH", 200); got != "SHA-256" {
		t.Errorf("second session: OPTS HASH = %q, want SHA-256", got)
	}
	c.cmd("REIN", 220)
	if got := c.cmd("OPTS HASH", 200); got != "SHA-256" {
		t.Errorf("after REIN OPTS HASH = %q, want SHA-256", got)
	}
}

// TestHashErrors gives every malformed or refused form its reply.
func TestHashErrors(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ts := startOn(t, b, func(st *Site, _ *Server) {
			st.Hidden = mustPatterns(false, "*.secret")
			st.HashMaxSize = 100
		})
		ts.put(t, "f", []byte("0123456789"))
		ts.put(t, "big", hashData(101))
		ts.put(t, "x.secret", []byte("hidden"))
		ts.mkdir(t, "dir")
		c := dial(t, ts.addr)
		c.cmd("HASH f", 530)
		c.cmd("XCRC f", 530)
		c.cmd("RANG 0 1", 530)
		c.login("alice", "secret")
		c.cmd("TYPE I", 200)
		for _, tt := range []struct {
			line string
			code int
			text string
		}{
			{"HASH", 501, "needs an argument"},
			{"HASH nope", 550, "No such file"},
			{"HASH dir", 553, "directory is not defined"},
			{"HASH x.secret", 550, "No such file"},
			{"HASH big", 556, "101 bytes is more than"},
			{"XCRC", 501, "needs an argument"},
			{"XCRC nope", 550, "No such file"},
			{"XCRC dir", 550, "Is a directory"},
			{"XSHA256 x.secret", 550, "No such file"},
			{"XMD5 f 5 2", 501, "start point must be below"},
			{"XMD5 f 5 5", 501, "start point must be below"},
			{`XMD5 "f" 0 x`, 501, "Syntax"},
			{`XMD5 "f`, 501, "Syntax"},
			{"XMD5 f 0 x", 550, "No such file"}, // unquoted: "f 0 x" is the name
			{"XSHA1 f 10 20", 554, "beyond the end"},
			{"XSHA1 f 99999999999999999999 100000000000000000000", 550, "No such file"},
			{"XSHA512 big", 556, "more than"},
			{"RANG", 501, "needs an argument"},
			{"RANG 1", 501, "Syntax"},
			{"RANG a b", 501, "Syntax"},
			{"RANG -1 5", 501, "Syntax"},
			{"RANG 1 2 3", 501, "Syntax"},
		} {
			if got := c.cmd(tt.line, tt.code); !strings.Contains(got, tt.text) {
				t.Errorf("%s: %d %q, want text with %q", tt.line, tt.code, got, tt.text)
			}
		}
		whole := "SHA-256 0-9 " + goSum(sha256.New, []byte("0123456789")) + " f"
		// A range over the limit is refused, a smaller one of the same file is not.
		c.cmd("RANG 0 50", 350)
		c.cmd("HASH big", 213)
		c.cmd("RANG 10 20", 350)
		c.cmd("HASH f", 554)
		// A start after the end is refused and resets the range.
		c.cmd("RANG 5 4", 501)
		if got := c.cmd("HASH f", 213); got != whole {
			t.Errorf("HASH after a refused RANG: %q, want %q", got, whole)
		}
		c.cmd("RANG 2 3", 350)
		c.cmd("RANG 1 0", 350)
		if got := c.cmd("HASH f", 213); got != whole {
			t.Errorf("HASH after RANG 1 0: %q, want %q", got, whole)
		}
		// A range is for the next command only.
		c.cmd("RANG 2 3", 350)
		c.cmd("NOOP", 200)
		if got := c.cmd("HASH f", 213); got != whole {
			t.Errorf("HASH after RANG, NOOP: %q, want %q", got, whole)
		}
		// A transfer right after RANG is refused, not served whole.
		c.cmd("RANG 2 3", 350)
		c.cmd("RETR f", 504)
		c.cmd("RANG 2 3", 350)
		c.cmd("STOR g", 504)
		if ts.has(t, "g") {
			t.Error("STOR after RANG created the file")
		}
		// HASH needs what RETR needs.
		hardAddUser(ts, "pw", users.User{Name: "lister", Perms: "/=list"})
		fsPut(t, ts.fsAt(t, filepath.Join(ts.data, "home", "lister")), "f", []byte("x"))
		l := dial(t, ts.addr)
		l.login("lister", "pw")
		l.cmd("SIZE f", 213)
		l.cmd("HASH f", 550)
		l.cmd("XCRC f", 550)
		l.cmd("HASH nope", 550) // the same reply for a file that does not exist
	})
}

// countFS counts the opens of each name, to tell a stored digest from a
// file read again.
type countFS struct {
	storage.FS
	mu    *sync.Mutex
	opens map[string]int
}

func (c countFS) Unwrap() storage.FS { return c.FS }

func (c countFS) Open(ctx context.Context, p vpath.Path, offset int64) (storage.File, error) {
	c.mu.Lock()
	c.opens[p.Rel()]++
	c.mu.Unlock()
	return c.FS.Open(ctx, p, offset)
}

// counting wraps the storage of backend b in countFS; opens reports and
// resets the count of a name.
func counting(t testing.TB, b backend) (storage.Opener, func(name string) int) {
	mu := &sync.Mutex{}
	opens := map[string]int{}
	var inner storage.Opener = &local.Opener{}
	if b.opener != nil {
		inner = b.opener(t)
	}
	o := storage.OpenerFunc(func(ctx context.Context, location string) (storage.FS, error) {
		if hm, ok := inner.(storage.HomeMaker); ok {
			hm.MakeHome(ctx, location)
		}
		fsys, err := inner.Open(ctx, location)
		if err != nil {
			return nil, err
		}
		return countFS{FS: fsys, mu: mu, opens: opens}, nil
	})
	return o, func(name string) int {
		mu.Lock()
		defer mu.Unlock()
		n := opens[name]
		delete(opens, name)
		return n
	}
}

// TestHashStoredAfterUpload: an upload's digests are computed while it is
// received and kept with the file, so HASH answers without opening it; any
// change of content drops them (APPE, REST+STOR, RNTO over it, a write from
// outside the server), while MFMT and SITE CHMOD keep them.
func TestHashStoredAfterUpload(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		opener, opens := counting(t, b)
		ts := startOn(t, b, func(st *Site, _ *Server) { st.Storage = opener })
		c := dial(t, ts.addr)
		c.login("alice", "secret")
		c.cmd("TYPE I", 200)
		hashOf := func(algo string, newHash func() hash.Hash, name string, data []byte) {
			t.Helper()
			want := wantHASH(algo, newHash, data, 0, int64(len(data))-1, name)
			if got := c.cmd("HASH "+name, 213); got != want {
				t.Errorf("HASH %s: %q, want %q", name, got, want)
			}
		}
		// A backend without storage.HashStore stores nothing: every
		// digest is read on demand there.
		keeps := storage.HashStoreOf(ts.fs(t)) != nil
		stored := func(name string) {
			t.Helper()
			if n := opens(name); keeps && n != 0 {
				t.Errorf("%s was opened %d times: its digest was not stored", name, n)
			} else if !keeps && n != 1 {
				t.Errorf("%s was opened %d times on a backend without stored digests, want 1", name, n)
			}
		}
		read := func(name string) {
			t.Helper()
			if n := opens(name); n != 1 {
				t.Errorf("%s was opened %d times, want 1: a stale digest was used", name, n)
			}
		}
		// More than the hash pipe's buffers hold together, so the hasher
		// runs behind the receive.
		data := hashData((hashPipeBufs+1)*hashPipeBufSize + 300<<10)
		c.stor("STOR", "f", data)
		hashOf("SHA-256", sha256.New, "f", data)
		stored("f")
		if got, want := c.cmd("XCRC f", 250), strings.ToUpper(goSum(goHashes[4].new, data)); got != want {
			t.Errorf("XCRC f: %q, want %q", got, want)
		}
		stored("f")
		// SHA-512 was not selected during the upload: read on demand.
		c.cmd("OPTS HASH SHA-512", 200)
		hashOf("SHA-512", sha512.New, "f", data)
		read("f")
		// The session's selected algorithm is computed too.
		c.cmd("OPTS HASH MD5", 200)
		c.stor("STOR", "m", data)
		hashOf("MD5", md5.New, "m", data)
		stored("m")
		c.cmd("OPTS HASH SHA-256", 200)

		// An ASCII upload's digest is that of the bytes stored.
		c.cmd("TYPE A", 200)
		c.stor("STOR", "text.txt", []byte("line one\r\nline two\r\n"))
		c.cmd("TYPE I", 200)
		hashOf("SHA-256", sha256.New, "text.txt", []byte("line one\nline two\n"))
		stored("text.txt")
		// The reply names the path as the client sent it.
		c.cmd("MKD sub dir", 257)
		c.stor("STOR", "sub dir/f2", []byte("x"))
		hashOf("SHA-256", sha256.New, "sub dir/f2", []byte("x"))
		stored("sub dir/f2")

		// MFMT and SITE CHMOD keep the digest.
		c.cmd("MFMT 20200102030405 f", 213)
		hashOf("SHA-256", sha256.New, "f", data)
		stored("f")
		if ts.hasCap(t, storage.CapChmod) {
			c.cmd("SITE CHMOD 600 f", 200)
		} else if got := c.cmd("SITE CHMOD 600 f", 550); got != lackChmod { // S3
			t.Errorf("SITE CHMOD without CapChmod: %q", got)
		}
		hashOf("SHA-256", sha256.New, "f", data)
		stored("f")
		c.cmd("SITE UTIME f 20210102030405", 200)
		hashOf("SHA-256", sha256.New, "f", data)
		stored("f")

		// APPE drops it.
		c.stor("APPE", "f", []byte("more"))
		data = append(data, "more"...)
		hashOf("SHA-256", sha256.New, "f", data)
		read("f")
		// A whole upload stores it again; REST+STOR drops it.
		c.stor("STOR", "f", data)
		hashOf("SHA-256", sha256.New, "f", data)
		stored("f")
		c.cmd("REST 10", 350)
		c.stor("STOR", "f", []byte("tail"))
		data = append(data[:10:10], "tail"...)
		hashOf("SHA-256", sha256.New, "f", data)
		read("f")

		// RNTO over a file: the moved file's digest comes along, or none.
		a, bb := []byte("content a"), []byte("content b")
		c.stor("STOR", "a", a)
		c.stor("STOR", "b", bb)
		c.cmd("RNFR a", 350)
		c.cmd("RNTO b", 250)
		hashOf("SHA-256", sha256.New, "b", a)
		stored("b")
		ts.put(t, "plain", []byte("plain")) // no digest
		c.cmd("RNFR plain", 350)
		c.cmd("RNTO b", 250)
		hashOf("SHA-256", sha256.New, "b", []byte("plain"))
		read("b")

		// A write from outside the server, on local disk.
		if b.name == "local" {
			c.stor("STOR", "ext", a)
			hashOf("SHA-256", sha256.New, "ext", a)
			stored("ext")
			fl, err := os.OpenFile(filepath.Join(ts.home, "ext"), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			fl.WriteString("\n")
			fl.Close()
			hashOf("SHA-256", sha256.New, "ext", append(a, '\n'))
			read("ext")
		}
	})
}

// blockFS serves files whose reads give one chunk and then block until
// release is closed or the file is closed, to hold a digest running.
type blockFS struct {
	storage.FS
	reading chan struct{} // a read is blocked
	release chan struct{}
}

func (b blockFS) Unwrap() storage.FS { return b.FS }

func (b blockFS) Open(ctx context.Context, p vpath.Path, offset int64) (storage.File, error) {
	f, err := b.FS.Open(ctx, p, offset)
	if err != nil {
		return nil, err
	}
	return &blockFile{File: f, fs: b, closed: make(chan struct{})}, nil
}

type blockFile struct {
	storage.File
	fs     blockFS
	n      int
	once   sync.Once
	closed chan struct{}
}

func (f *blockFile) Read(p []byte) (int, error) {
	if f.n++; f.n > 1 {
		select {
		case f.fs.reading <- struct{}{}:
		default:
		}
		select {
		case <-f.fs.release:
		case <-f.closed:
			return 0, os.ErrClosed
		}
	}
	return f.File.Read(p[:min(len(p), 1024)])
}

func (f *blockFile) Close() error {
	f.once.Do(func() { close(f.closed) })
	return f.File.Close()
}

// TestHashAbort: a digest read on demand runs in the transfer slot. ABOR
// ends it (426 for HASH, then 226), commands sent meanwhile are answered

// TestHashStoredWithoutPipe: while every hash pipe of the server is in use,
// a binary upload hashes inline and still stores its digests (the file is
// not read again for HASH). Not parallel: parallel tests run only after
// this one, so the slots it fills stay filled.
func TestHashStoredWithoutPipe(t *testing.T) {
	opener, opens := counting(t, backend{name: "local"})
	ts := startServer(t, func(st *Site, _ *Server) { st.Storage = opener })
	held := 0
	for len(hashPipeSlots) < cap(hashPipeSlots) {
		hashPipeSlots <- struct{}{}
		held++
	}
	t.Cleanup(func() {
		for range held {
			<-hashPipeSlots
		}
	})
	c := dial(t, ts.addr)
	c.login("alice", "secret")
	c.cmd("TYPE I", 200)
	data := hashData((hashPipeBufs+1)*hashPipeBufSize + 12345)
	c.stor("STOR", "f", data)
	if got, want := c.cmd("HASH f", 213), wantHASH("SHA-256", sha256.New, data, 0, int64(len(data))-1, "f"); got != want {
		t.Errorf("HASH f: %q, want %q", got, want)
	}
	if n := opens("f"); n != 0 {
		t.Errorf("f was opened %d times: its digest was not stored", n)
	}
	if len(hashPipeSlots) != cap(hashPipeSlots) {
		t.Errorf("%d of %d pipe slots held after the upload", len(hashPipeSlots), cap(hashPipeSlots))
	}
}

// after it, QUIT ends it too, and the per-user limit counts it until then.
func TestHashAbort(t *testing.T) {
	bfs := blockFS{reading: make(chan struct{}, 1), release: make(chan struct{})}
	ts := startServer(t, func(st *Site, _ *Server) {
		st.HashPerUser = 1
		st.Storage = wrapLocal(func(fsys storage.FS, _ string) storage.FS {
			return blockFS{FS: fsys, reading: bfs.reading, release: bfs.release}
		})
	})
	ts.put(t, "f", hashData(64<<10))
	c := dial(t, ts.addr)
	c.login("alice", "secret")
	c.cmd("TYPE I", 200)
	c.send("HASH f")
	<-bfs.reading
	c.send("NOOP")
	// Another session of the same user is over the limit.
	c2 := dial(t, ts.addr)
	c2.login("alice", "secret")
	if got := c2.cmd("XSHA1 f", 450); !strings.Contains(got, "try again later") {
		t.Errorf("second digest: %q", got)
	}
	c.send("ABOR")
	if got := c.expect(426); got != "HASH aborted." {
		t.Errorf("426 %q", got)
	}
	c.expect(226)
	c.expect(200) // the NOOP, after the digest's replies
	// The slot and the limit are free again.
	want := strings.ToUpper(goSum(sha1.New, hashData(64 << 10)[:10]))
	if got := c2.cmd("XSHA1 f 0 10", 250); got != want {
		t.Errorf("XSHA1 after ABOR: %q, want %q", got, want)
	}
	// QUIT ends a running digest: its command is answered first.
	c.send("XSHA256 f")
	<-bfs.reading
	c.send("QUIT")
	if got := c.expect(426); got != "XSHA256 aborted." {
		t.Errorf("426 %q", got)
	}
	c.expect(221)
	// A digest that finishes answers with its result.
	c2.send("HASH f")
	<-bfs.reading
	close(bfs.release)
	if got, want := c2.expect(213), wantHASH("SHA-256", sha256.New, hashData(64<<10), 0, 64<<10-1, "f"); got != want {
		t.Errorf("HASH: %q, want %q", got, want)
	}
	c2.cmd("NOOP", 200)
	if n := hashesRunning(ts.srv); n != 0 {
		t.Errorf("%d digests still counted", n)
	}
}

// TestHashStall: a digest whose reads make no progress for data_timeout
// ends with 451, as a stalled transfer does, and frees its slot.
func TestHashStall(t *testing.T) {
	bfs := blockFS{reading: make(chan struct{}, 1), release: make(chan struct{})}
	ts := startServer(t, func(st *Site, _ *Server) {
		st.DataTimeout = 200 * time.Millisecond
		st.Storage = wrapLocal(func(fsys storage.FS, _ string) storage.FS {
			return blockFS{FS: fsys, reading: bfs.reading, release: bfs.release}
		})
	})
	ts.put(t, "f", hashData(64<<10))
	c := dial(t, ts.addr)
	c.login("alice", "secret")
	c.send("HASH f")
	if got := c.expect(451); !strings.Contains(got, "did not answer in time") {
		t.Errorf("451 %q", got)
	}
	c.cmd("NOOP", 200)
	if n := hashesRunning(ts.srv); n != 0 {
		t.Errorf("%d digests still counted", n)
	}
}

func hashesRunning(srv *Server) int {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	n := 0
	for _, v := range srv.hashing {
		n += v
	}
	return n
}

// BenchmarkDigest measures the CPU cost of each algorithm, and of the set
// an upload computes (SHA-256 and CRC32, plus the session's selection), on
// 256 KiB writes: the figures in docs/commands.md.
func BenchmarkDigest(b *testing.B) {
	buf := hashData(256 << 10)
	run := func(name string, algos []int) {
		b.Run(name, func(b *testing.B) {
			hw := newHashWriter(io.Discard, algos)
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				hw.Write(buf)
			}
		})
	}
	for i, a := range hashAlgos {
		run(a.name, []int{i})
	}
	run("upload", []int{algoSHA256, algoCRC32})
	run("upload+MD5", []int{algoSHA256, algoCRC32, algoMD5})
	run("all", []int{algoSHA256, algoSHA512, algoSHA1, algoMD5, algoCRC32})
}

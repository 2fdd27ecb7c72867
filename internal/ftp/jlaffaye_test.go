package ftp

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"path"
	"slices"
	"sort"
	"testing"
	"time"

	jftp "github.com/jlaffaye/ftp"
)

// jlaffayeDial connects github.com/jlaffaye/ftp to ts and logs in as alice.
func jlaffayeDial(t *testing.T, ts *testServer, opts ...jftp.DialOption) *jftp.ServerConn {
	t.Helper()
	opts = append([]jftp.DialOption{jftp.DialWithTimeout(10 * time.Second)}, opts...)
	c, err := jftp.Dial(ts.addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Quit() })
	if err := c.Login("alice", "secret"); err != nil {
		t.Fatal(err)
	}
	return c
}

func jlaffayeRetr(t *testing.T, c *jftp.ServerConn, name string, offset uint64) []byte {
	t.Helper()
	r, err := c.RetrFrom(name, offset)
	if err != nil {
		t.Fatalf("RETR %s from %d: %v", name, offset, err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("RETR %s: %v", name, err)
	}
	return b
}

// TestJlaffaye drives the server with a real Go client library.
func TestJlaffaye(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ts := startOn(t, be, nil)
		c := jlaffayeDial(t, ts)
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}

		dir, err := c.CurrentDir()
		if err != nil || dir != "/" {
			t.Fatalf("CurrentDir %q %v", dir, err)
		}
		must(c.MakeDir("docs"))
		must(c.ChangeDir("docs"))
		if dir, _ := c.CurrentDir(); dir != "/docs" {
			t.Fatalf("CurrentDir after ChangeDir: %q", dir)
		}
		hello := []byte("hello from jlaffaye/ftp\n")
		must(c.Stor("hello.txt", bytes.NewReader(hello)))
		if got := ts.get(t, path.Join("docs", "hello.txt")); !bytes.Equal(got, hello) {
			t.Fatalf("Stor wrote %q", got)
		}
		if n, err := c.FileSize("hello.txt"); err != nil || n != int64(len(hello)) {
			t.Fatalf("FileSize %d %v", n, err)
		}
		if got := jlaffayeRetr(t, c, "hello.txt", 0); !bytes.Equal(got, hello) {
			t.Fatalf("Retr %q", got)
		}
		if got := jlaffayeRetr(t, c, "hello.txt", 6); !bytes.Equal(got, hello[6:]) {
			t.Fatalf("RetrFrom 6: %q", got)
		}
		must(c.Append("hello.txt", bytes.NewReader([]byte("more\n"))))
		hello = append(hello, "more\n"...)

		entries, err := c.List("")
		must(err)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name)
			if e.Name == "hello.txt" {
				if e.Type != jftp.EntryTypeFile || e.Size != uint64(len(hello)) {
					t.Errorf("List entry %+v", e)
				}
				fi, _ := ts.stat(t, path.Join("docs", "hello.txt"))
				if !e.Time.Equal(fi.ModTime().UTC().Truncate(time.Second)) {
					t.Errorf("List time %v, file time %v", e.Time, fi.ModTime().UTC())
				}
			}
		}
		if !slices.Contains(names, "hello.txt") {
			t.Errorf("List (MLSD) names %q", names)
		}
		nl, err := c.NameList("")
		must(err)
		if !slices.Equal(nl, []string{"hello.txt"}) {
			t.Errorf("NameList %q", nl)
		}
		e, err := c.GetEntry("hello.txt")
		must(err)
		if e.Type != jftp.EntryTypeFile || e.Size != uint64(len(hello)) {
			t.Errorf("GetEntry (MLST) %+v", e)
		}

		must(c.Rename("hello.txt", "renamed.txt"))
		if !c.IsGetTimeSupported() || !c.IsSetTimeSupported() {
			t.Fatalf("MDTM/MFMT not detected from FEAT")
		}
		when := time.Date(2019, 8, 7, 6, 5, 4, 0, time.UTC)
		must(c.SetTime("renamed.txt", when))
		if got, err := c.GetTime("renamed.txt"); err != nil || !got.Equal(when) {
			t.Errorf("GetTime %v %v, want %v", got, err, when)
		}
		if fi, _ := ts.stat(t, path.Join("docs", "renamed.txt")); !fi.ModTime().Equal(when) {
			t.Errorf("SetTime left %v on disk", fi.ModTime())
		}

		// A resumed upload through StorFrom (REST + STOR).
		part := allBytes(200000)
		must(c.Stor("part.bin", bytes.NewReader(part[:70000])))
		must(c.StorFrom("part.bin", bytes.NewReader(part[70000:]), 70000))
		if got := ts.get(t, path.Join("docs", "part.bin")); !bytes.Equal(got, part) {
			t.Errorf("StorFrom resume: %d bytes on disk", len(got))
		}

		// Round trips of a few MB, compared by SHA-256.
		rng := rand.NewChaCha8([32]byte{1, 2, 3})
		for _, size := range []int{1 << 20, 3<<20 + 1} {
			big := make([]byte, size)
			rng.Read(big)
			want := sha256.Sum256(big)
			must(c.Stor("big.bin", bytes.NewReader(big)))
			if got := sha256.Sum256(ts.get(t, path.Join("docs", "big.bin"))); got != want {
				t.Fatalf("%d bytes: stored file differs", size)
			}
			if got := sha256.Sum256(jlaffayeRetr(t, c, "big.bin", 0)); got != want {
				t.Fatalf("%d bytes: retrieved file differs", size)
			}
			tail := jlaffayeRetr(t, c, "big.bin", uint64(size-1000))
			if !bytes.Equal(tail, big[size-1000:]) {
				t.Fatalf("%d bytes: RetrFrom near the end differs", size)
			}
		}

		must(c.Delete("renamed.txt"))
		if ts.has(t, path.Join("docs", "renamed.txt")) {
			t.Error("Delete left the file")
		}
		if err := c.Delete("renamed.txt"); err == nil {
			t.Error("Delete of a missing file succeeded")
		}
		must(c.ChangeDirToParent())
		if err := c.RemoveDir("docs"); err == nil {
			t.Error("RemoveDir of a non-empty directory succeeded")
		}
		must(c.RemoveDirRecur("docs"))
		if ts.has(t, "docs") {
			t.Error("RemoveDirRecur left the directory")
		}
		must(c.NoOp())
	})
}

// TestJlaffayeLISTandPASV: the same client without MLSD and EPSV parses
// Ferry's LIST lines and uses PASV.
func TestJlaffayeLISTandPASV(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ts := startOn(t, be, nil)
		fixture(t, ts)
		c := jlaffayeDial(t, ts, jftp.DialWithDisabledMLSD(true), jftp.DialWithDisabledEPSV(true))
		entries, err := c.List("/")
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]*jftp.Entry{}
		var names []string
		for _, e := range entries {
			got[e.Name] = e
			names = append(names, e.Name)
		}
		sort.Strings(names)
		if !slices.Equal(names, []string{"dir", "empty", "file.txt"}) {
			t.Fatalf("LIST names %q", names)
		}
		if f := got["file.txt"]; f.Type != jftp.EntryTypeFile || f.Size != 6 || !f.Time.Equal(fixtureTime.Truncate(24*time.Hour)) {
			t.Errorf("file.txt parsed as %+v", f)
		}
		if d := got["dir"]; d.Type != jftp.EntryTypeFolder {
			t.Errorf("dir parsed as %+v", d)
		}
		if b := jlaffayeRetr(t, c, "dir/inner.txt", 0); string(b) != "inner\n" {
			t.Errorf("RETR over PASV: %q", b)
		}
		if err := c.Stor("up.txt", bytes.NewReader([]byte("pasv"))); err != nil {
			t.Fatal(err)
		}
		if b := ts.get(t, "up.txt"); string(b) != "pasv" {
			t.Errorf("STOR over PASV: %q", b)
		}
	})
}

package s3store_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferryftp/ferry/internal/storage"
	s3store "github.com/ferryftp/ferry/internal/storage/s3"
	"github.com/ferryftp/ferry/internal/storage/storagetest"
)

// TestListTimesWithoutHeads: a listing reads MFMT's times from the
// directory's times object (one GET), with no HEAD per object; an entry
// whose object changed since (another tool's upload) shows the object's
// LastModified; the times object is never listed; two servers setting
// times in one directory at once keep each other's entries (conditional
// PUTs).
func TestListTimesWithoutHeads(t *testing.T) {
	cnt := &counter{}
	b, srv, bucket := backend(t, func(c *s3store.Config) { c.Transport = cnt })
	fsys := openFS(t, b, "public")
	// A second server on the same bucket and prefix.
	b2, err := s3store.New(t.Context(), s3store.Config{Bucket: bucket, Endpoint: srv.Endpoint, Region: srv.Region,
		PathStyle: true, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Prefix: "ferry"})
	if err != nil {
		t.Fatal(err)
	}
	fsys2 := openFS(t, b2, "public")
	const n = 12
	for i := range n {
		write(t, fsys, fmt.Sprintf("f%02d", i), storage.CreateOptions{}, []byte(fmt.Sprint(i)))
	}
	base := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := fsys
			if i%2 == 1 {
				f = fsys2
			}
			if err := f.Chtimes(t.Context(), storagetest.P(fmt.Sprintf("f%02d", i)), base.Add(time.Duration(i)*time.Hour)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	list := func() map[string]time.Time {
		t.Helper()
		out := map[string]time.Time{}
		for _, fi := range storagetest.NewS(t, fsys, "").List(".", 5) {
			if strings.HasPrefix(fi.Name(), storage.TempPrefix) {
				t.Errorf("listed %q", fi.Name())
			}
			out[fi.Name()] = fi.ModTime()
		}
		return out
	}
	cnt.reset()
	got := list()
	for i := range n {
		name := fmt.Sprintf("f%02d", i)
		if want := base.Add(time.Duration(i) * time.Hour); !got[name].Equal(want) {
			t.Errorf("%s listed with %v, want %v", name, got[name], want)
		}
	}
	if len(got) != n {
		t.Errorf("listed %d entries, want %d", len(got), n)
	}
	if h, g := cnt.count("HeadObject"), cnt.count("GetObject"); h != 0 || g != 1 {
		t.Errorf("a listing of %d files made %d HEADs and %d GETs, want 0 and 1", n, h, g)
	}
	// Another tool replaces f00: its LastModified shows, while Stat reads
	// the new object's (absent) metadata too.
	if _, err := srv.Client().PutObject(t.Context(), &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("ferry/public/f00"),
		Body: strings.NewReader("new")}); err != nil {
		t.Fatal(err)
	}
	got = list()
	if got["f00"].Equal(base) || time.Since(got["f00"]) > time.Hour {
		t.Errorf("f00 replaced by another tool listed with %v, want its LastModified", got["f00"])
	}
	if fi, err := fsys.Stat(t.Context(), storagetest.P("f00")); err != nil || !fi.ModTime().Equal(got["f00"].Truncate(time.Second)) && !fi.ModTime().Equal(got["f00"]) {
		t.Errorf("Stat(f00) = %v, %v; the listing says %v", fi, err, got["f00"])
	}
	// ListLastModified: no times object is read.
	fast, err := s3store.New(t.Context(), s3store.Config{Bucket: bucket, Endpoint: srv.Endpoint, Region: srv.Region,
		PathStyle: true, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Prefix: "ferry",
		ListLastModified: true, Transport: cnt})
	if err != nil {
		t.Fatal(err)
	}
	cnt.reset()
	for _, fi := range storagetest.NewS(t, openFS(t, fast, "public"), "").List(".", 100) {
		if fi.Name() == "f01" && fi.ModTime().Equal(base.Add(time.Hour)) {
			t.Error("ListLastModified: f01 listed with MFMT's time")
		}
	}
	if h, g := cnt.count("HeadObject"), cnt.count("GetObject"); h != 0 || g != 0 {
		t.Errorf("ListLastModified: %d HEADs and %d GETs", h, g)
	}
	// A directory holding only its times object is empty: RMD removes it
	// with the times object, and a rename onto it replaces it.
	for _, d := range []string{"d", "e"} {
		if err := fsys.Mkdir(t.Context(), storagetest.P(d), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, fsys, d+"/x", storage.CreateOptions{}, []byte("x"))
		if err := fsys.Chtimes(t.Context(), storagetest.P(d+"/x"), base); err != nil {
			t.Fatal(err)
		}
		if err := fsys.Remove(t.Context(), storagetest.P(d+"/x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := fsys.RemoveDir(t.Context(), storagetest.P("d")); err != nil {
		t.Fatalf("RemoveDir of a directory with only its times object: %v", err)
	}
	if err := fsys.Mkdir(t.Context(), storagetest.P("f"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, fsys, "f/y", storage.CreateOptions{}, []byte("y"))
	if err := fsys.Rename(t.Context(), storagetest.P("f"), storagetest.P("e")); err != nil {
		t.Fatalf("Rename onto a directory with only its times object: %v", err)
	}
	out, err := srv.Client().ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: aws.String("ferry/public/d/")})
	if err != nil || len(out.Contents) != 0 {
		t.Errorf("after RemoveDir(d): %v, %d keys left", err, len(out.Contents))
	}
}

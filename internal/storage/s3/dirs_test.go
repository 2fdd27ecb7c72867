package s3store_test

import (
	"errors"
	"fmt"
	"io/fs"
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

// TestStatUploadBusyDir: in a directory that many new names are uploaded
// into, the look-up before an upload lists the directory's subdirectories
// once and then costs a HEAD of the name and one of its marker, no
// listing; directories are still found: those listed, those this server
// makes or moves afterwards, those with a marker whoever made them, and,
// once the list is older than SubdirsTTL, those without one that another
// writer made (until then the upload's look-up misses them; Stat does
// not).
func TestStatUploadBusyDir(t *testing.T) {
	cnt := &counter{}
	var (
		mu  sync.Mutex
		now = time.Unix(1e9, 0)
	)
	b, srv, bucket := backend(t, func(c *s3store.Config) {
		c.Transport = cnt
		c.Clock = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	})
	fsys := openFS(t, b, "public")
	c := srv.Client()
	raw := func(key string) {
		t.Helper()
		if _, err := c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("ferry/public/" + key), Body: strings.NewReader("x")}); err != nil {
			t.Fatal(err)
		}
	}
	us := fsys.(storage.UploadStater)
	isDir := func(name string, stat func(storage.FS, string) (fs.FileInfo, error)) {
		t.Helper()
		if fi, err := stat(fsys, name); err != nil || !fi.IsDir() {
			t.Errorf("%s: %v, %v; want a directory", name, fi, err)
		}
	}
	missing := func(name string) {
		t.Helper()
		if _, err := us.StatUpload(t.Context(), storagetest.P(name)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("StatUpload(%s): %v, want fs.ErrNotExist", name, err)
		}
	}
	upload := func(_ storage.FS, name string) (fs.FileInfo, error) {
		return us.StatUpload(t.Context(), storagetest.P(name))
	}
	stat := func(fsys storage.FS, name string) (fs.FileInfo, error) {
		return fsys.Stat(t.Context(), storagetest.P(name))
	}
	raw("bare/x") // a directory without a marker
	if err := fsys.Mkdir(t.Context(), storagetest.P("made"), 0o777); err != nil {
		t.Fatal(err)
	}
	for i := range s3store.SubdirsAfter - 1 {
		missing(fmt.Sprintf("new-%d", i))
	}
	cnt.reset()
	missing("new-last") // busy now: the subdirectories are listed
	if n := cnt.count("ListObjectsV2"); n != 1 {
		t.Fatalf("the look-up that made the directory busy: %d listings, want 1 (of its subdirectories)", n)
	}
	cnt.reset()
	missing("newer")
	if h, l := cnt.count("HeadObject"), cnt.count("ListObjectsV2"); h != 2 || l != 0 {
		t.Errorf("look-up of a new name in a busy directory: %d HEADs and %d listings, want 2 and 0", h, l)
	}
	isDir("bare", upload)
	isDir("made", upload)

	// Another writer's directory with a marker: its HEAD finds it.
	if _, err := c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("ferry/public/theirs/"), Body: strings.NewReader("")}); err != nil {
		t.Fatal(err)
	}
	isDir("theirs", upload)
	// This server's rename of a directory without a marker.
	if err := fsys.Rename(t.Context(), storagetest.P("bare"), storagetest.P("moved")); err != nil {
		t.Fatal(err)
	}
	isDir("moved", upload)

	// Another writer's directory without a marker, after the list: missed
	// by the upload's look-up for SubdirsTTL, never by Stat.
	for i := range s3store.SubdirsAfter {
		missing(fmt.Sprintf("again-%d", i)) // busy again after the rename
	}
	raw("late/y")
	missing("late")
	isDir("late", stat)
	mu.Lock()
	now = now.Add(s3store.SubdirsTTL)
	mu.Unlock()
	isDir("late", upload)
	// And the upload onto it is refused.
	if _, err := fsys.Create(t.Context(), storagetest.P("late"), storage.CreateOptions{Looked: true, Found: mustStat(t, fsys, "late")}); !errors.Is(err, storage.ErrIsDir) {
		t.Errorf("Create(late): %v, want storage.ErrIsDir", err)
	}
}

func mustStat(t *testing.T, fsys storage.FS, name string) fs.FileInfo {
	t.Helper()
	fi, err := fsys.(storage.UploadStater).StatUpload(t.Context(), storagetest.P(name))
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

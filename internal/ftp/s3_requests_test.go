package ftp

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"

	"github.com/ferryftp/ferry/internal/storage"
	s3store "github.com/ferryftp/ferry/internal/storage/s3"
)

// opLog is an HTTP transport that records the S3 operation of each
// request.
type opLog struct {
	mu  sync.Mutex
	ops []string
}

func (l *opLog) RoundTrip(r *http.Request) (*http.Response, error) {
	l.mu.Lock()
	l.ops = append(l.ops, awsmiddleware.GetOperationName(r.Context()))
	l.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

// take returns the operations recorded since the last take.
func (l *opLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	ops := l.ops
	l.ops = nil
	return ops
}

// TestS3SmallStorRequests: a small STOR on S3 makes only the requests its
// semantics need, so that small uploads stay fast. A new name: a HEAD (no
// file), one listing (no directory: a marker or keys below), the PUT; the
// engine's look-up stands for Create's. A replaced file: its HEAD, the
// PUT. In a directory, the directory's marker is checked at Create and
// again before the PUT (it must not come back if it was removed). It was
// 6, 5 and 8 requests before. A file replaced in a directory: its HEAD
// (a file there means the directory exists), the directory's before the
// PUT, the PUT (4 before). In a busy directory a new name costs two
// HEADs and the PUT, where it cost a HEAD, a listing and the PUT: on
// versitygw's posix backend each listing reads the whole directory.
func TestS3SmallStorRequests(t *testing.T) {
	log := &opLog{}
	// A clock that stands still: the busy directory's list stays fresh.
	at := time.Unix(1e9, 0)
	opener := func(t testing.TB) storage.Opener {
		return s3OpenerWith(t, func(c *s3store.Config) { c.Transport, c.Clock = log, func() time.Time { return at } })
	}
	ts := startOn(t, backend{name: "s3", opener: opener}, nil)
	ts.mkdir(t, "d")
	c := loggedIn(t, ts)
	data := []byte("a small file\n")
	for _, tc := range []struct {
		what, name string
		want       int
	}{
		{"new name", "new.txt", 3},
		{"replaced file", "new.txt", 2},
		{"new name in a directory", "d/new.txt", 5},
		{"replaced file in a directory", "d/new.txt", 3},
	} {
		log.take()
		c.stor("STOR", tc.name, data)
		ops := log.take()
		t.Logf("STOR of a %s: %s", tc.what, strings.Join(ops, " "))
		if len(ops) > tc.want {
			t.Errorf("STOR of a %s: %d S3 requests (%s), want at most %d", tc.what, len(ops), strings.Join(ops, " "), tc.want)
		}
		if got := ts.get(t, tc.name); string(got) != string(data) {
			t.Errorf("%s holds %q, want %q", tc.name, got, data)
		}
	}
	// A directory that many new names go into has its subdirectories
	// listed once (s3store's dirs.go); a new name there is then a HEAD of
	// it and of its marker, and the PUT: no listing.
	for i := range s3store.SubdirsAfter {
		c.stor("STOR", fmt.Sprintf("busy-%d", i), data)
	}
	log.take()
	c.stor("STOR", "busy-new", data)
	ops := log.take()
	t.Logf("STOR of a new name in a busy directory: %s", strings.Join(ops, " "))
	if got, want := strings.Join(ops, " "), "HeadObject HeadObject PutObject"; got != want {
		t.Errorf("STOR of a new name in a busy directory: %s, want %s", got, want)
	}
	// What the look-ups skipped is still refused.
	d := c.pasv()
	defer d.Close()
	c.cmd("STOR d", 550)
}

package ftp

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"

	"github.com/ferryftp/ferry/internal/storage"
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
// 6, 5 and 8 requests before.
func TestS3SmallStorRequests(t *testing.T) {
	log := &opLog{}
	ts := startOn(t, backend{name: "s3", opener: func(t testing.TB) storage.Opener { return s3OpenerVia(t, log) }}, nil)
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
	// What the look-up skipped is still refused.
	d := c.pasv()
	defer d.Close()
	c.cmd("STOR d", 550)
}

package dbjournal_test

import (
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferryftp/ferry/internal/db"
	"github.com/ferryftp/ferry/internal/storage"
	s3store "github.com/ferryftp/ferry/internal/storage/s3"
	"github.com/ferryftp/ferry/internal/storage/s3/dbjournal"
	"github.com/ferryftp/ferry/internal/storage/storagetest"
	"github.com/ferryftp/ferry/internal/testenv/pgenv"
	"github.com/ferryftp/ferry/internal/testenv/s3env"
)

func TestMain(m *testing.M) { pgenv.Main(m) }

var engines = []struct {
	name string
	url  func(t *testing.T) string
}{
	{"sqlite", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "ferry.db") }},
	{"postgres", func(t *testing.T) string { return pgenv.DB(t) }},
}

// wait bounds a wait that must end; the bound only stops a hung test.
const wait = 30 * time.Second

// nodeTimeout is short, so that a node stopped by a test is soon gone.
const nodeTimeout = time.Second

// node is one process on the database: its handle, node and journal.
type node struct {
	d *db.DB
	n *db.Node
	j *dbjournal.Journal
}

func newNode(t *testing.T, url string) *node {
	t.Helper()
	d, err := db.Open(t.Context(), url, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	n, err := d.StartNode(t.Context(), db.NodeOptions{Heartbeat: nodeTimeout / 4, Timeout: nodeTimeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	return &node{d: d, n: n, j: dbjournal.New(d, n)}
}

// kill stops the node as SIGKILL would: no heartbeat, nothing released.
func (n *node) kill() { n.d.Close() }

// until polls f until it holds, failing the test after wait.
func until(t *testing.T, what string, f func() bool) {
	t.Helper()
	for deadline := time.Now().Add(wait); !f(); {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(nodeTimeout / 10)
	}
}

// TestJournal: uploads and renames are recorded per node; a live node's
// upload is abandoned only once it is older than the sweep's cutoff, a
// gone node's at once; a rename continued by another node becomes its.
func TestJournal(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			url := e.url(t)
			a, b := newNode(t, url), newNode(t, url)
			ctx := t.Context()
			old := time.Now().Add(-time.Hour)
			if err := a.j.UploadStarted(ctx, "home/a/f", "id-a"); err != nil {
				t.Fatal(err)
			}
			if err := b.j.UploadStarted(ctx, "home/b/f", "id-b"); err != nil {
				t.Fatal(err)
			}
			if err := b.j.UploadStarted(ctx, "home/b/f", "id-b"); err != nil {
				t.Fatalf("recording an upload twice: %v", err)
			}
			if ups, err := b.j.Uploads(ctx, old); err != nil || len(ups) != 0 {
				t.Fatalf("abandoned uploads while both nodes live: %v, %v", ups, err)
			}
			if ups, _ := b.j.Uploads(ctx, time.Now().Add(time.Minute)); len(ups) != 2 {
				t.Fatalf("uploads older than a future cutoff: %v, want both", ups)
			}
			if err := a.j.RenameStarted(ctx, "home/a/d/", "home/a/e/"); err != nil {
				t.Fatal(err)
			}
			if rs, err := b.j.Renames(ctx); err != nil || len(rs) != 1 || rs[0].Node != a.n.ID() || rs[0].Gone {
				t.Fatalf("renames: %+v, %v", rs, err)
			}

			a.kill()
			until(t, "the killed node's upload is abandoned", func() bool {
				ups, err := b.j.Uploads(ctx, old)
				if err != nil {
					t.Fatal(err)
				}
				return len(ups) == 1 && ups[0].Key == "home/a/f" && ups[0].UploadID == "id-a" && !ups[0].Started.IsZero()
			})
			if rs, _ := b.j.Renames(ctx); len(rs) != 1 || !rs[0].Gone {
				t.Fatalf("the gone node's rename: %+v", rs)
			}
			if err := b.j.UploadEnded(ctx, "home/a/f", "id-a"); err != nil {
				t.Fatal(err)
			}
			if ups, _ := b.j.Uploads(ctx, old); len(ups) != 0 {
				t.Fatalf("after its end: %v", ups)
			}
			// b continues a's rename (a repeated RNFR/RNTO): it is b's.
			if err := b.j.RenameStarted(ctx, "home/a/d/", "home/a/e/"); err != nil {
				t.Fatal(err)
			}
			if rs, _ := b.j.Renames(ctx); len(rs) != 1 || rs[0].Node != b.n.ID() || rs[0].Gone {
				t.Fatalf("the continued rename: %+v", rs)
			}
			if err := b.j.RenameEnded(ctx, "home/a/d/", "home/a/e/"); err != nil {
				t.Fatal(err)
			}
			if rs, _ := b.j.Renames(ctx); len(rs) != 0 {
				t.Fatalf("after its end: %+v", rs)
			}
		})
	}
}

// TestUnbound: a journal not bound yet fails every call.
func TestUnbound(t *testing.T) {
	var j dbjournal.Journal
	ctx := t.Context()
	for _, err := range []error{
		j.UploadStarted(ctx, "k", "i"), j.UploadEnded(ctx, "k", "i"),
		j.RenameStarted(ctx, "a/", "b/"), j.RenameEnded(ctx, "a/", "b/"),
	} {
		if !errors.Is(err, dbjournal.ErrUnbound) {
			t.Errorf("unbound: %v", err)
		}
	}
	if _, err := j.Uploads(ctx, time.Now()); !errors.Is(err, dbjournal.ErrUnbound) {
		t.Errorf("unbound Uploads: %v", err)
	}
}

// TestSweepAbortsGoneNodesUpload: two S3 backends on one bucket (versitygw)
// and one database. A multipart upload of the first is left running when
// its node dies; the second node's sweep leaves it while the first lives
// and aborts it once the first is gone, though it is far younger than
// the orphan age.
func TestSweepAbortsGoneNodesUpload(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			url := e.url(t)
			srv := s3env.Start(t)
			bucket := srv.NewBucket(t)
			backend := func(j s3store.Journal) *s3store.Backend {
				b, err := s3store.New(t.Context(), s3store.Config{
					Bucket: bucket, Endpoint: srv.Endpoint, Region: srv.Region, PathStyle: true,
					AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Prefix: "ferry",
					PartSize: s3store.MinPartSize, Journal: j,
				})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { b.Close() })
				return b
			}
			na, nb := newNode(t, url), newNode(t, url)
			ba, bb := backend(na.j), backend(nb.j)
			fsys, err := ba.Open(t.Context(), "public")
			if err != nil {
				t.Fatal(err)
			}
			up, err := fsys.Create(t.Context(), storagetest.P("big"), storage.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			data := make([]byte, 6<<20)
			rand.Read(data)
			up.Write(data) // starts a multipart upload and sends its first part
			until(t, "the first part is sent", func() bool { out, _, _ := ba.Pool().Stats(); return out == 1 })
			listed := func() int {
				out, err := srv.Client().ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: &bucket})
				if err != nil {
					t.Fatal(err)
				}
				return len(out.Uploads)
			}
			if n := listed(); n != 1 {
				t.Fatalf("%d multipart uploads in the bucket, want 1", n)
			}
			if n, err := bb.Sweep(t.Context(), time.Now()); err != nil || n != 0 {
				t.Fatalf("sweep while the node lives = %d, %v; want 0", n, err)
			}
			na.kill()
			until(t, "the other node's sweep aborts the upload", func() bool {
				n, err := bb.Sweep(t.Context(), time.Now())
				if err != nil {
					t.Fatal(err)
				}
				return n == 1
			})
			if n := listed(); n != 0 {
				t.Fatalf("%d multipart uploads left after the sweep", n)
			}
			if ups, _ := nb.j.Uploads(t.Context(), time.Now().Add(time.Hour)); len(ups) != 0 {
				t.Fatalf("the journal still holds %v", ups)
			}
			if err := up.Commit(t.Context()); err == nil {
				t.Fatal("the swept upload committed")
			}
		})
	}
}

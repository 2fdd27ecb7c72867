package s3store_test

import (
	"strings"
	"testing"

	"github.com/ferryftp/ferry/internal/storage"
	s3store "github.com/ferryftp/ferry/internal/storage/s3"
	"github.com/ferryftp/ferry/internal/storage/storagetest"
	"github.com/ferryftp/ferry/internal/testenv/s3env"
)

func TestMain(m *testing.M) { s3env.Main(m) }

// backend makes a Backend on a fresh bucket of the shared engine.
func backend(t testing.TB, mod ...func(*s3store.Config)) (*s3store.Backend, *s3env.Server, string) {
	t.Helper()
	srv := s3env.Shared(t)
	bucket := srv.NewBucket(t)
	c := s3store.Config{
		Bucket: bucket, Endpoint: srv.Endpoint, Region: srv.Region, PathStyle: true,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Prefix: "ferry",
	}
	for _, m := range mod {
		m(&c)
	}
	b, err := s3store.New(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, srv, bucket
}

func openFS(t testing.TB, b *s3store.Backend, loc string) storage.FS {
	t.Helper()
	fsys, err := b.Open(t.Context(), loc)
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}

func TestConformance(t *testing.T) {
	b, _, _ := backend(t)
	storagetest.RunOpts(t, func(t *testing.T) (storage.FS, string) {
		return openFS(t, b, "home/"+strings.ReplaceAll(t.Name(), "/", "-")), ""
	}, storagetest.Options{MaxNameBytes: 220})
}

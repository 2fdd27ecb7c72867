package ftp

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/storage/local"
	s3store "github.com/ferryftp/ferry/internal/storage/s3"
	"github.com/ferryftp/ferry/internal/storage/storagetest"
	"github.com/ferryftp/ferry/internal/testenv/s3env"
	"github.com/ferryftp/ferry/internal/vpath"
)

// The protocol battery reaches files through storage.FS, so it runs on
// every backend: the tests below start their servers with startOn and make
// and check fixtures with the testServer's FS helpers (put, get, has,
// names, stat, mkdir, chtimes), never through host paths. Tests that are
// about local disk itself (os.Root jail and symlink races, sendfile,
// sparse 256 MiB files, FIFOs) stay on local and say so.

// backend is a storage backend for the protocol battery.
type backend struct {
	name string
	// opener returns the site's storage for one test; nil keeps the
	// default, local disk.
	opener func(t testing.TB) storage.Opener
}

// backends are the storage backends every battery test runs on. s3 is the
// S3 backend on the test binary's shared versitygw (s3env; TestMain stops
// it), a fresh bucket per server; where versitygw is missing its subtests
// skip, and fail under CI.
var backends = []backend{
	{name: "local"},
	{name: "mem", opener: func(testing.TB) storage.Opener { return newMemOpener() }},
	{name: "s3", opener: s3Opener},
}

// s3Opener is the S3 backend on a new bucket of the shared versitygw.
func s3Opener(t testing.TB) storage.Opener {
	t.Helper()
	return s3OpenerVia(t, nil)
}

// s3OpenerVia is s3Opener sending its requests through tr (nil: the
// default transport).
func s3OpenerVia(t testing.TB, tr http.RoundTripper) storage.Opener {
	t.Helper()
	return s3OpenerWith(t, func(c *s3store.Config) { c.Transport = tr })
}

// s3OpenerWith is s3Opener with its config changed by mod.
func s3OpenerWith(t testing.TB, mod func(*s3store.Config)) storage.Opener {
	t.Helper()
	s := s3env.Shared(t)
	c := s3store.Config{
		Bucket: s.NewBucket(t), Endpoint: s.Endpoint, Region: s.Region, PathStyle: true,
		AccessKey: s.AccessKey, SecretKey: s.SecretKey,
	}
	mod(&c)
	b, err := s3store.New(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// isS3 reports whether the test runs on the S3 backend: for the few
// properties of an object store that no capability bit names (say which
// at each use).
func (b backend) isS3() bool { return b.name == "s3" }

func TestMain(m *testing.M) { s3env.Main(m) }

// The replies of storage that lacks a capability, which battery tests
// assert in place of what the capability allows.
const (
	// lackChmod answers SITE CHMOD without storage.CapChmod.
	lackChmod = "SITE CHMOD: this storage keeps no permission bits (object storage); nothing changed."
	// lackByteNames answers a name that is not UTF-8 without
	// storage.CapByteNames.
	lackByteNames = "File name not allowed: name is not valid UTF-8; this storage keeps UTF-8 names only."
)

// hasCap reports whether alice's storage on ts has every capability in c.
func (ts *testServer) hasCap(t testing.TB, c storage.Capabilities) bool {
	t.Helper()
	return storage.CapsOf(ts.fs(t)).Has(c)
}

// eachBackend runs fn as one subtest per backend.
func eachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { fn(t, b) })
	}
}

// startOn starts a server on backend b; mod may change the site further.
func startOn(t testing.TB, b backend, mod func(*Site, *Server)) *testServer {
	t.Helper()
	return startServer(t, func(st *Site, srv *Server) {
		if b.opener != nil {
			st.Storage = b.opener(t)
		}
		if mod != nil {
			mod(st, srv)
		}
	})
}

// fs opens alice's storage through the site's opener, as a login does.
func (ts *testServer) fs(t testing.TB) storage.FS {
	t.Helper()
	return ts.fsAt(t, ts.home)
}

// openFS caches the file systems the helpers open, per server and location,
// so a fixture of many files costs one root.
var openFS struct {
	sync.Mutex
	m map[fsKey]storage.FS
}

type fsKey struct {
	ts  *testServer
	loc string
}

// fsAt opens the storage at location through the site's opener.
func (ts *testServer) fsAt(t testing.TB, location string) storage.FS {
	t.Helper()
	openFS.Lock()
	defer openFS.Unlock()
	k := fsKey{ts, location}
	if fsys := openFS.m[k]; fsys != nil {
		return fsys
	}
	if hm, ok := ts.site.Storage.(storage.HomeMaker); ok {
		if err := hm.MakeHome(t.Context(), location); err != nil {
			t.Fatal(err)
		}
	}
	fsys, err := ts.site.Storage.Open(t.Context(), location)
	if err != nil {
		t.Fatal(err)
	}
	if openFS.m == nil {
		openFS.m = map[fsKey]storage.FS{}
	}
	openFS.m[k] = fsys
	t.Cleanup(func() {
		openFS.Lock()
		delete(openFS.m, k)
		openFS.Unlock()
		if c, ok := fsys.(io.Closer); ok {
			c.Close()
		}
	})
	return fsys
}

// fsName checks a slash-separated name relative to the root, as vpath
// would have produced it.
func fsName(t testing.TB, name string) string {
	t.Helper()
	p, err := vpath.Resolve(vpath.Root(), name)
	if err != nil {
		t.Fatalf("fixture name %q: %v", name, err)
	}
	return p.Rel()
}

// put stores data under name in alice's storage, creating the parent
// directories.
func (ts *testServer) put(t testing.TB, name string, data []byte) {
	t.Helper()
	fsPut(t, ts.fs(t), name, data)
}

// fsPut stores data under name in fsys, creating the parent directories.
func fsPut(t testing.TB, fsys storage.FS, name string, data []byte) {
	t.Helper()
	name = fsName(t, name)
	if dir := path.Dir(name); dir != "." {
		fsMkdirAll(t, fsys, dir)
	}
	up, err := fsys.Create(t.Context(), storagetest.P(name), storage.CreateOptions{Perm: 0o644})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	if _, err := up.Write(data); err != nil {
		up.Abort(t.Context())
		t.Fatalf("write %s: %v", name, err)
	}
	if err := up.Commit(t.Context()); err != nil {
		t.Fatalf("commit %s: %v", name, err)
	}
}

// fsMkdirAll makes dir and its parents in fsys.
func fsMkdirAll(t testing.TB, fsys storage.FS, dir string) {
	t.Helper()
	var p string
	for _, e := range strings.Split(fsName(t, dir), "/") {
		p = path.Join(p, e)
		if err := fsys.Mkdir(t.Context(), storagetest.P(p), 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			t.Fatalf("mkdir %s: %v", p, err)
		}
	}
}

// mkdir makes a directory (and its parents) in alice's storage.
func (ts *testServer) mkdir(t testing.TB, dir string) {
	t.Helper()
	fsMkdirAll(t, ts.fs(t), dir)
}

// get returns the content of name in alice's storage.
func (ts *testServer) get(t testing.TB, name string) []byte {
	t.Helper()
	return fsGet(t, ts.fs(t), name)
}

// fsGet returns the content of name in fsys.
func fsGet(t testing.TB, fsys storage.FS, name string) []byte {
	t.Helper()
	f, err := fsys.Open(t.Context(), storagetest.P(fsName(t, name)), 0)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return b
}

// stat describes name in alice's storage.
func (ts *testServer) stat(t testing.TB, name string) (fs.FileInfo, error) {
	t.Helper()
	return ts.fs(t).Stat(t.Context(), storagetest.P(fsName(t, name)))
}

// has reports whether name exists in alice's storage.
func (ts *testServer) has(t testing.TB, name string) bool {
	t.Helper()
	_, err := ts.stat(t, name)
	return err == nil
}

// fsHas reports whether name exists in fsys.
func fsHas(t testing.TB, fsys storage.FS, name string) bool {
	t.Helper()
	_, err := fsys.Stat(t.Context(), storagetest.P(fsName(t, name)))
	return err == nil
}

// chtimes sets the modification time of name in alice's storage.
func (ts *testServer) chtimes(t testing.TB, name string, mtime time.Time) {
	t.Helper()
	if err := ts.fs(t).Chtimes(t.Context(), storagetest.P(fsName(t, name)), mtime); err != nil {
		t.Fatal(err)
	}
}

// names lists dir in alice's storage, temporary names included, sorted.
func (ts *testServer) names(t testing.TB, dir string) []string {
	t.Helper()
	it, err := ts.fs(t).ReadDir(t.Context(), storagetest.P(fsName(t, dir)))
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out []string
	for {
		batch, err := it.Next(256)
		for _, fi := range batch {
			out = append(out, fi.Name())
		}
		if err != nil {
			break
		}
	}
	slices.Sort(out)
	return out
}

// fsRead returns the content of name in fsys, or the error that kept it.
func fsRead(t testing.TB, fsys storage.FS, name string) ([]byte, error) {
	t.Helper()
	f, err := fsys.Open(t.Context(), storagetest.P(fsName(t, name)), 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// fsStat describes name in fsys.
func fsStat(t testing.TB, fsys storage.FS, name string) (fs.FileInfo, error) {
	t.Helper()
	return fsys.Stat(t.Context(), storagetest.P(fsName(t, name)))
}

// fsTempNames lists the names below dir in fsys that are temporary upload
// files (storage.TempPrefix): none may be left once an upload has ended.
func fsTempNames(t testing.TB, fsys storage.FS, dir string) []string {
	t.Helper()
	it, err := fsys.ReadDir(t.Context(), storagetest.P(fsName(t, dir)))
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out []string
	for {
		batch, err := it.Next(256)
		for _, fi := range batch {
			p := path.Join(dir, fi.Name())
			switch {
			case strings.HasPrefix(fi.Name(), storage.TempPrefix):
				out = append(out, p)
			case fi.IsDir():
				out = append(out, fsTempNames(t, fsys, p)...)
			}
		}
		if err != nil {
			return out
		}
	}
}

// wrapLocal is a local-disk opener whose file systems come wrapped, for
// tests that put a misbehaving or racing backend under the engine.
func wrapLocal(wrap func(fsys storage.FS, location string) storage.FS) storage.Opener {
	return storage.OpenerFunc(func(ctx context.Context, location string) (storage.FS, error) {
		fsys, err := (&local.Opener{}).Open(ctx, location)
		if err != nil {
			return nil, err
		}
		return wrap(fsys, location), nil
	})
}

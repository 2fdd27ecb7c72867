package s3store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferryftp/ferry/internal/storage"
	s3store "github.com/ferryftp/ferry/internal/storage/s3"
	"github.com/ferryftp/ferry/internal/storage/storagetest"
	"github.com/ferryftp/ferry/internal/testenv/s3env"
)

const mib = 1 << 20

// counter is an HTTP transport that counts S3 operations by name and can
// fail chosen requests.
type counter struct {
	mu     sync.Mutex
	counts map[string]int
	fail   func(op string, n int) bool // n: the op's count, this one included
}

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	op := awsmiddleware.GetOperationName(r.Context())
	c.mu.Lock()
	if c.counts == nil {
		c.counts = map[string]int{}
	}
	c.counts[op]++
	n := c.counts[op]
	fail := c.fail
	c.mu.Unlock()
	if fail != nil && fail(op, n) {
		return nil, fmt.Errorf("injected failure of %s #%d", op, n)
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (c *counter) count(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[op]
}

func (c *counter) reset() {
	c.mu.Lock()
	c.counts = nil
	c.mu.Unlock()
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// write uploads data to name with o in 64 KiB writes and commits.
func write(t *testing.T, fsys storage.FS, name string, o storage.CreateOptions, data []byte) {
	t.Helper()
	up, err := fsys.Create(t.Context(), storagetest.P(name), o)
	if err != nil {
		t.Fatalf("Create(%s, %+v): %v", name, o, err)
	}
	for p := data; len(p) > 0; {
		n := min(len(p), 64<<10)
		if _, err := up.Write(p[:n]); err != nil {
			up.Abort(t.Context())
			t.Fatalf("Write: %v", err)
		}
		p = p[n:]
	}
	if err := up.Commit(t.Context()); err != nil {
		t.Fatalf("Commit(%s): %v", name, err)
	}
}

func read(t *testing.T, fsys storage.FS, name string) []byte {
	t.Helper()
	f, err := fsys.Open(t.Context(), storagetest.P(name), 0)
	if err != nil {
		t.Fatalf("Open(%s): %v", name, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return b
}

func same(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s: %d bytes, want %d (equal prefix %d)", what, len(got), len(want), commonPrefix(got, want))
	}
}

func commonPrefix(a, b []byte) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}

// noUploads checks that no multipart upload is left in the bucket.
func noUploads(t *testing.T, c *s3.Client, bucket string) {
	t.Helper()
	out, err := c.ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range out.Uploads {
		t.Errorf("multipart upload left: %s %s", aws.ToString(u.Key), aws.ToString(u.UploadId))
	}
}

func TestMultipartBoundaries(t *testing.T) {
	cnt := &counter{}
	b, srv, bucket := backend(t, func(c *s3store.Config) { c.PartSize = s3store.MinPartSize; c.Transport = cnt })
	fsys := openFS(t, b, "public")
	part := int(s3store.MinPartSize)
	for _, n := range []int{0, 1, part - 1, part, part + 1, 2*part + 3} {
		data := randBytes(n)
		name := fmt.Sprintf("f%d", n)
		cnt.reset()
		write(t, fsys, name, storage.CreateOptions{Perm: 0o644}, data)
		multi := cnt.count("CreateMultipartUpload") > 0
		if multi != (n >= part) {
			t.Errorf("%d bytes: multipart %v, want %v", n, multi, n >= part)
		}
		same(t, name, read(t, fsys, name), data)
		fi, err := fsys.Stat(t.Context(), storagetest.P(name))
		if err != nil || fi.Size() != int64(n) {
			t.Errorf("Stat(%s) = %v, %v", name, fi, err)
		}
	}
	noUploads(t, srv.Client(), bucket)
}

// TestResumeServerSide: REST+STOR and APPE of an object of 5 MiB or more
// copy its bytes server-side; nothing of it is downloaded.
func TestResumeServerSide(t *testing.T) {
	cnt := &counter{}
	b, srv, bucket := backend(t, func(c *s3store.Config) { c.PartSize = s3store.MinPartSize; c.Transport = cnt })
	fsys := openFS(t, b, "public")
	old := randBytes(6*mib + 7)
	tail := randBytes(3*mib + 1)
	for _, tc := range []struct {
		name string
		o    storage.CreateOptions
		want []byte
	}{
		{"rest", storage.CreateOptions{Offset: 5*mib + 11}, append(slices.Clone(old[:5*mib+11]), tail...)},
		{"appe", storage.CreateOptions{Append: true}, append(slices.Clone(old), tail...)},
		{"rest-nothing", storage.CreateOptions{Offset: 5*mib + 1}, old[:5*mib+1]},
	} {
		write(t, fsys, tc.name, storage.CreateOptions{}, old)
		cnt.reset()
		data := tail
		if tc.name == "rest-nothing" {
			data = nil
		}
		write(t, fsys, tc.name, tc.o, data)
		if n := cnt.count("GetObject"); n != 0 {
			t.Errorf("%s: %d GetObject calls during the resume, want 0", tc.name, n)
		}
		if n := cnt.count("UploadPartCopy"); n == 0 {
			t.Errorf("%s: no UploadPartCopy", tc.name)
		}
		same(t, tc.name, read(t, fsys, tc.name), tc.want)
	}
	// A small object is read and sent again.
	small := randBytes(1000)
	write(t, fsys, "small", storage.CreateOptions{}, small)
	write(t, fsys, "small", storage.CreateOptions{Offset: 500}, []byte("tail"))
	same(t, "small REST", read(t, fsys, "small"), append(slices.Clone(small[:500]), "tail"...))
	write(t, fsys, "small", storage.CreateOptions{Append: true}, []byte("more"))
	same(t, "small APPE", read(t, fsys, "small"), append(slices.Clone(small[:500]), "tailmore"...))
	noUploads(t, srv.Client(), bucket)
}

// TestAbortKeepsOld: an aborted upload, whole or in place, leaves the old
// object byte-identical and no multipart upload behind.
func TestAbortKeepsOld(t *testing.T) {
	b, srv, bucket := backend(t, func(c *s3store.Config) { c.PartSize = s3store.MinPartSize })
	fsys := openFS(t, b, "public")
	old := randBytes(6 * mib)
	write(t, fsys, "f", storage.CreateOptions{}, old)
	for _, o := range []storage.CreateOptions{{}, {Offset: 5*mib + 3}, {Append: true}} {
		up, err := fsys.Create(t.Context(), storagetest.P("f"), o)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 { // 12 MiB: parts are sent before the Abort
			if _, err := up.Write(randBytes(4 * mib)); err != nil {
				t.Fatal(err)
			}
		}
		if err := up.Abort(t.Context()); err != nil {
			t.Fatal(err)
		}
		same(t, fmt.Sprintf("after Abort of %+v", o), read(t, fsys, "f"), old)
		noUploads(t, srv.Client(), bucket)
	}
	_, high, _ := b.Pool().Stats()
	if high == 0 {
		t.Error("the pool lent no buffer")
	}
}

// TestExclusiveRace: two exclusive uploads of one name, in one backend
// and in two (two servers on one bucket): exactly one wins.
func TestExclusiveRace(t *testing.T) {
	b, srv, bucket := backend(t)
	c := s3store.Config{Bucket: bucket, Endpoint: srv.Endpoint, Region: srv.Region, PathStyle: true,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Prefix: "ferry"}
	b2, err := s3store.New(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	for round, pair := range [][2]*s3store.Backend{{b, b}, {b, b2}} {
		name := fmt.Sprintf("u%d", round)
		var wins, refusals atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, bk := range pair {
			wg.Add(1)
			go func() {
				defer wg.Done()
				fsys := openFS(t, bk, "public")
				<-start
				up, err := fsys.Create(t.Context(), storagetest.P(name), storage.CreateOptions{Exclusive: true})
				if errors.Is(err, fs.ErrExist) {
					refusals.Add(1)
					return
				} else if err != nil {
					t.Error(err)
					return
				}
				up.Write([]byte(fmt.Sprintf("writer %d", i)))
				switch err := up.Commit(t.Context()); {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, fs.ErrExist):
					refusals.Add(1)
				default:
					t.Error(err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if wins.Load() != 1 || refusals.Load() != 1 {
			t.Errorf("round %d: %d wins, %d refusals; want 1 and 1", round, wins.Load(), refusals.Load())
		}
	}
}

// TestRenameDir renames a directory of 300 objects in nested directories.
func TestRenameDir(t *testing.T) {
	b, _, _ := backend(t)
	fsys := openFS(t, b, "public")
	want := fill(t, fsys, "d", 300)
	if err := fsys.Rename(t.Context(), storagetest.P("d"), storagetest.P("e")); err != nil {
		t.Fatal(err)
	}
	check(t, fsys, "e", want)
	if _, err := fsys.Stat(t.Context(), storagetest.P("d")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat(d) after the rename: %v", err)
	}
}

// fill makes dir with n files in three subdirectories; it returns the
// content by relative name.
func fill(t *testing.T, fsys storage.FS, dir string, n int) map[string]string {
	t.Helper()
	ctx := t.Context()
	if err := fsys.Mkdir(ctx, storagetest.P(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"a", "b", "b/c"} {
		if err := fsys.Mkdir(ctx, storagetest.P(dir+"/"+s), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range n {
		rel := fmt.Sprintf("%s/f%03d", []string{"a", "b", "b/c", "."}[i%4], i)
		rel = strings.TrimPrefix(rel, "./")
		data := fmt.Sprintf("content %d %s", i, rel)
		mu.Lock()
		want[rel] = data
		mu.Unlock()
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			up, err := fsys.Create(ctx, storagetest.P(dir+"/"+rel), storage.CreateOptions{})
			if err == nil {
				up.Write([]byte(data))
				err = up.Commit(ctx)
			}
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	return want
}

// check reads every file of want under dir and checks that dir holds no
// other file.
func check(t *testing.T, fsys storage.FS, dir string, want map[string]string) {
	t.Helper()
	for rel, data := range want {
		if got := string(read(t, fsys, dir+"/"+rel)); got != data {
			t.Errorf("%s/%s = %q, want %q", dir, rel, got, data)
		}
	}
	n := 0
	var walk func(d string)
	walk = func(d string) {
		s := storagetest.NewS(t, fsys, "")
		for _, fi := range s.List(d, 100) {
			if fi.IsDir() {
				walk(d + "/" + fi.Name())
			} else {
				n++
			}
		}
	}
	walk(dir)
	if n != len(want) {
		t.Errorf("%s holds %d files, want %d", dir, n, len(want))
	}
}

// TestRenameInterrupted: a directory rename cut midway says so
// (storage.ErrPartial); repeating it finishes the job with nothing lost.
func TestRenameInterrupted(t *testing.T) {
	for _, op := range []string{"CopyObject", "DeleteObjects"} {
		t.Run(op, func(t *testing.T) {
			cnt := &counter{}
			b, srv, bucket := backend(t, func(c *s3store.Config) { c.Transport = cnt; c.MaxAttempts = 1 })
			fsys := openFS(t, b, "public")
			want := fill(t, fsys, "d", 40)
			var cut atomic.Bool
			cnt.mu.Lock()
			cnt.counts = nil
			cnt.fail = func(o string, n int) bool {
				if o == op && (n >= 2 || op == "DeleteObjects") && !cut.Load() {
					cut.Store(true)
				}
				return o == op && cut.Load()
			}
			cnt.mu.Unlock()
			err := fsys.Rename(t.Context(), storagetest.P("d"), storagetest.P("e"))
			if !errors.Is(err, storage.ErrPartial) {
				t.Fatalf("cut rename: %v, want storage.ErrPartial", err)
			}
			cnt.mu.Lock()
			cnt.fail = nil
			cnt.mu.Unlock()
			// Nothing is lost meanwhile: every file is in one place or both.
			for rel, data := range want {
				var got []string
				for _, d := range []string{"d", "e"} {
					if f, err := fsys.Open(t.Context(), storagetest.P(d+"/"+rel), 0); err == nil {
						b, _ := io.ReadAll(f)
						f.Close()
						got = append(got, string(b))
					}
				}
				if len(got) == 0 || slices.ContainsFunc(got, func(s string) bool { return s != data }) {
					t.Errorf("after the cut, %s is %q", rel, got)
				}
			}
			if err := fsys.Rename(t.Context(), storagetest.P("d"), storagetest.P("e")); err != nil {
				t.Fatalf("repeated rename: %v", err)
			}
			check(t, fsys, "e", want)
			if _, err := fsys.Stat(t.Context(), storagetest.P("d")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Stat(d) after the repeated rename: %v", err)
			}
			// The state object is gone; a plain rename onto a full
			// directory is still refused.
			out, _ := srv.Client().ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: aws.String("ferry/public/e/" + storage.TempPrefix)})
			if len(out.Contents) != 0 {
				t.Errorf("rename state left: %s", aws.ToString(out.Contents[0].Key))
			}
			fill(t, fsys, "x", 1)
			if err := fsys.Rename(t.Context(), storagetest.P("x"), storagetest.P("e")); !errors.Is(err, storage.ErrNotEmpty) {
				t.Errorf("rename onto a full directory: %v, want storage.ErrNotEmpty", err)
			}
		})
	}
}

// TestChtimes: MFMT's time shows in Stat and ReadDir and survives a
// rename; metadata entries Ferry does not know and the content type stay.
func TestChtimes(t *testing.T) {
	b, srv, bucket := backend(t)
	fsys := openFS(t, b, "public")
	c := srv.Client()
	_, err := c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("ferry/public/f"),
		Body: strings.NewReader("data"), ContentType: aws.String("text/plain"), Metadata: map[string]string{"sha256": "abc"}})
	if err != nil {
		t.Fatal(err)
	}
	when := time.Date(2001, 2, 3, 4, 5, 6, 789, time.UTC)
	if err := fsys.Chtimes(t.Context(), storagetest.P("f"), when); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"f", "g"} {
		fi, err := fsys.Stat(t.Context(), storagetest.P(name))
		if err != nil || !fi.ModTime().Equal(when) {
			t.Errorf("Stat(%s) = %v, %v; want mtime %v", name, fi, err, when)
		}
		s := storagetest.NewS(t, fsys, "")
		for _, fi := range s.List(".", 10) {
			if fi.Name() == name && !fi.ModTime().Equal(when) {
				t.Errorf("ReadDir: %s mtime %v, want %v", name, fi.ModTime(), when)
			}
		}
		h, err := c.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("ferry/public/" + name)})
		if err != nil {
			t.Fatal(err)
		}
		if h.Metadata["sha256"] != "abc" || aws.ToString(h.ContentType) != "text/plain" {
			t.Errorf("%s: metadata %v, content type %q", name, h.Metadata, aws.ToString(h.ContentType))
		}
		if name == "f" {
			if err := fsys.Rename(t.Context(), storagetest.P("f"), storagetest.P("g")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if string(read(t, fsys, "g")) != "data" {
		t.Error("content changed")
	}
	// ListLastModified lists the LastModified instead, and saves the HEADs.
	cnt := &counter{}
	fast, err := s3store.New(t.Context(), s3store.Config{Bucket: bucket, Endpoint: srv.Endpoint, Region: srv.Region,
		PathStyle: true, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Prefix: "ferry",
		ListLastModified: true, Transport: cnt})
	if err != nil {
		t.Fatal(err)
	}
	s := storagetest.NewS(t, openFS(t, fast, "public"), "")
	for _, fi := range s.List(".", 10) {
		if fi.Name() == "g" && fi.ModTime().Equal(when) {
			t.Errorf("ListLastModified: g listed with the metadata time")
		}
	}
	if n := cnt.count("HeadObject"); n != 0 {
		t.Errorf("ListLastModified: %d HEADs", n)
	}
}

// TestSweep aborts old multipart uploads under the prefix and leaves the
// others alone; with a journal, those it recorded.
func TestSweep(t *testing.T) {
	b, srv, bucket := backend(t, func(c *s3store.Config) { c.OrphanAge = -1 })
	c := srv.Client()
	mk := func(key string) string {
		out, err := c.CreateMultipartUpload(t.Context(), &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.UploadId)
	}
	mk("ferry/public/orphan")
	mk("ferry/home/alice/orphan")
	mk("other-tool/upload")
	n, err := b.Sweep(t.Context(), time.Now().Add(time.Hour))
	if err != nil || n != 2 {
		t.Errorf("Sweep = %d, %v; want 2", n, err)
	}
	out, err := c.ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Uploads) != 1 || aws.ToString(out.Uploads[0].Key) != "other-tool/upload" {
		t.Errorf("left after the sweep: %v", out.Uploads)
	}
	// Uploads newer than the cutoff stay, and with the default OrphanAge
	// (a day) those younger than it, whatever the cutoff.
	mk("ferry/public/new")
	if n, err := b.Sweep(t.Context(), time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Errorf("Sweep of an old cutoff = %d, %v; want 0", n, err)
	}
	bd, _ := s3store.New(t.Context(), s3store.Config{Bucket: bucket, Endpoint: srv.Endpoint, Region: srv.Region,
		PathStyle: true, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Prefix: "ferry"})
	if n, err := bd.Sweep(t.Context(), time.Now().Add(time.Hour)); err != nil || n != 0 {
		t.Errorf("Sweep with the default OrphanAge = %d, %v; want 0", n, err)
	}

	j := &s3store.MemJournal{}
	bj, _, _ := backend(t, func(c *s3store.Config) { c.Journal = j; c.PartSize = s3store.MinPartSize; c.OrphanAge = -1 })
	fsys := openFS(t, bj, "public")
	up, err := fsys.Create(t.Context(), storagetest.P("big"), storage.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	up.Write(randBytes(6 * mib)) // starts a multipart upload
	// Its first part is sent in the background: let it arrive (an engine
	// may take a part that arrives after the abort back in).
	for deadline := time.Now().Add(30 * time.Second); ; {
		if out, _, _ := bj.Pool().Stats(); out == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first part was not sent in 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if ups, _ := j.Uploads(t.Context(), time.Now().Add(time.Hour)); len(ups) != 1 {
		t.Fatalf("journal holds %v, want the running upload", ups)
	}
	// A crash: the upload is never ended. The sweep aborts it.
	if n, err := bj.Sweep(t.Context(), time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Errorf("journal Sweep = %d, %v; want 1", n, err)
	}
	if ups, _ := j.Uploads(t.Context(), time.Now().Add(time.Hour)); len(ups) != 0 {
		t.Errorf("journal holds %v after the sweep", ups)
	}
	if err := up.Commit(t.Context()); err == nil {
		t.Error("Commit of a swept upload succeeded")
	}
}

// TestBufferBudget: many uploads at once never hold more part buffers
// than the budget; they wait instead, and all complete.
func TestBufferBudget(t *testing.T) {
	b, srv, bucket := backend(t, func(c *s3store.Config) {
		c.PartSize = s3store.MinPartSize
		c.BufferBudget = 3 * s3store.MinPartSize
	})
	fsys := openFS(t, b, "public")
	const uploads = 8
	datas := make([][]byte, uploads)
	var wg sync.WaitGroup
	for i := range uploads {
		datas[i] = randBytes(11*mib + i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			write(t, fsys, fmt.Sprintf("f%d", i), storage.CreateOptions{}, datas[i])
		}()
	}
	wg.Wait()
	out, high, limit := b.Pool().Stats()
	if limit != 3 || high > limit || out != 0 {
		t.Errorf("pool: %d out, high-water %d, limit %d; want 0, at most 3, 3", out, high, limit)
	}
	if high < 2 {
		t.Errorf("high-water %d: the uploads did not overlap", high)
	}
	for i := range uploads {
		same(t, fmt.Sprintf("f%d", i), read(t, fsys, fmt.Sprintf("f%d", i)), datas[i])
	}
	noUploads(t, srv.Client(), bucket)
}

// partGate is an HTTP transport that holds each UploadPart until want
// of them are in flight (or a while has passed) and records the most in
// flight at once.
type partGate struct {
	want    int
	mu      sync.Mutex
	cond    *sync.Cond
	now     int
	highest int
}

func (g *partGate) RoundTrip(r *http.Request) (*http.Response, error) {
	if awsmiddleware.GetOperationName(r.Context()) != "UploadPart" {
		return http.DefaultTransport.RoundTrip(r)
	}
	g.mu.Lock()
	g.now++
	g.highest = max(g.highest, g.now)
	g.cond.Broadcast()
	timer := time.AfterFunc(10*time.Second, func() { g.mu.Lock(); g.want = 0; g.cond.Broadcast(); g.mu.Unlock() })
	for g.now < g.want {
		g.cond.Wait()
	}
	timer.Stop()
	g.mu.Unlock()
	resp, err := http.DefaultTransport.RoundTrip(r)
	g.mu.Lock()
	g.now--
	g.mu.Unlock()
	return resp, err
}

// TestUploadConcurrency: one upload sends UploadConcurrency parts at
// once, never more, and never more than the budget's buffers.
func TestUploadConcurrency(t *testing.T) {
	for _, tc := range []struct {
		name         string
		conc, budget int // budget in parts
		want         int // most parts in flight
	}{
		{"default", 0, 64, s3store.DefaultUploadConcurrency},
		{"six", 6, 64, 6},
		{"budget", 8, 3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &partGate{want: tc.want}
			g.cond = sync.NewCond(&g.mu)
			b, srv, bucket := backend(t, func(c *s3store.Config) {
				c.PartSize = s3store.MinPartSize
				c.BufferBudget = int64(tc.budget) * s3store.MinPartSize
				c.UploadConcurrency = tc.conc
				c.Transport = g
			})
			fsys := openFS(t, b, "public")
			data := randBytes(12*s3store.MinPartSize + 1)
			write(t, fsys, "f", storage.CreateOptions{}, data)
			g.mu.Lock()
			highest := g.highest
			g.mu.Unlock()
			if highest != tc.want {
				t.Errorf("%d parts in flight at most, want %d", highest, tc.want)
			}
			out, high, limit := b.Pool().Stats()
			if out != 0 || high > limit || high > tc.want+1 {
				t.Errorf("pool: %d out, high-water %d, limit %d; want 0 out, at most min(limit, %d)", out, high, limit, tc.want+1)
			}
			same(t, "f", read(t, fsys, "f"), data)
			noUploads(t, srv.Client(), bucket)
		})
	}
}

// TestLookupSiblings: Stat of a name tells a directory, a file and
// nothing apart when more names than one listing holds sort between "k"
// and "k/" ("k.0" …), and it answers a missing name with a HEAD and one
// listing.
func TestLookupSiblings(t *testing.T) {
	cnt := &counter{}
	b, srv, bucket := backend(t, func(c *s3store.Config) { c.Transport = cnt })
	fsys := openFS(t, b, "public")
	c := srv.Client()
	put := func(key string) {
		t.Helper()
		if _, err := c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("ferry/public/" + key), Body: strings.NewReader("x")}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 12 {
		put(fmt.Sprintf("k.%d", i))
		put(fmt.Sprintf("m.%d", i))
	}
	put("k/x") // a directory without a marker, past the siblings
	put("m0")  // after "m/": not below it
	put("few.1")
	if fi, err := fsys.Stat(t.Context(), storagetest.P("k")); err != nil || !fi.IsDir() {
		t.Errorf("Stat(k) = %v, %v; want a directory", fi, err)
	}
	if _, err := fsys.Stat(t.Context(), storagetest.P("m")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat(m): %v, want fs.ErrNotExist", err)
	}
	if fi, err := fsys.Stat(t.Context(), storagetest.P("k.3")); err != nil || fi.IsDir() || fi.Size() != 1 {
		t.Errorf("Stat(k.3) = %v, %v; want a file of 1 byte", fi, err)
	}
	cnt.reset()
	if _, err := fsys.Stat(t.Context(), storagetest.P("few")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat(few): %v, want fs.ErrNotExist", err)
	}
	if h, l := cnt.count("HeadObject"), cnt.count("ListObjectsV2"); h != 1 || l != 1 {
		t.Errorf("Stat of a missing name: %d HEADs and %d listings, want 1 and 1", h, l)
	}
}

// TestOddKeys lists keys that other tools may put: none escapes the
// directory or yields a bad name.
func TestOddKeys(t *testing.T) {
	b, srv, bucket := backend(t)
	c := srv.Client()
	var stored []string
	for _, k := range []string{"a//b", "x/../y", "./z", "dot/.", "data-dir/", "f", "f/g", ".ferry-upload-tmp", "..", "ok"} {
		body := "x"
		if strings.HasSuffix(k, "/") {
			body = "" // some engines refuse data in a marker
		}
		_, err := c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("ferry/public/odd/" + k), Body: strings.NewReader(body)})
		if err == nil {
			stored = append(stored, k)
		}
	}
	t.Logf("the engine stored %q", stored)
	fsys := openFS(t, b, "public")
	s := storagetest.NewS(t, fsys, "")
	var walk func(d string, depth int)
	walk = func(d string, depth int) {
		seen := map[string]bool{}
		for _, fi := range s.List(d, 3) {
			n := fi.Name()
			if n == "" || n == "." || n == ".." || strings.Contains(n, "/") || strings.HasPrefix(n, storage.TempPrefix) {
				t.Errorf("ReadDir(%s) yields %q", d, n)
				continue
			}
			if seen[n] {
				t.Errorf("ReadDir(%s) yields %q twice", d, n)
			}
			seen[n] = true
			if fi.IsDir() && depth < 5 {
				walk(d+"/"+n, depth+1)
			}
		}
	}
	walk("odd", 0)
	if names := s.Names("odd"); !slices.Contains(names, "ok") {
		t.Errorf("ReadDir(odd) = %q, misses ok", names)
	}
}

func TestCheck(t *testing.T) {
	b, srv, bucket := backend(t)
	if err := b.Check(t.Context()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	for _, tc := range []struct {
		mod  func(*s3store.Config)
		want string
	}{
		{func(c *s3store.Config) { c.Bucket = "no-such-bucket-here" }, "no such bucket"},
		{func(c *s3store.Config) { c.SecretKey = "wrong" }, "SignatureDoesNotMatch"},
		{func(c *s3store.Config) { c.AccessKey = "nobody" }, "bad credentials"},
		{func(c *s3store.Config) { c.Region = "eu-west-1" }, "wrong region"},
		{func(c *s3store.Config) { c.Endpoint = "http://127.0.0.1:1"; c.MaxAttempts = 1 }, "endpoint unreachable"},
	} {
		c := s3store.Config{Bucket: bucket, Endpoint: srv.Endpoint, Region: srv.Region, PathStyle: true,
			AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Prefix: "ferry"}
		tc.mod(&c)
		bb, err := s3store.New(t.Context(), c)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		err = bb.Check(ctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Check = %v, want an error saying %q", err, tc.want)
		}
	}
}

// TestNameLimits: keys over 1,024 bytes are refused as bad names.
func TestNameLimits(t *testing.T) {
	b, _, _ := backend(t)
	fsys := openFS(t, b, "public")
	long := strings.Repeat("d/", 520) + "f"
	_, err := fsys.Create(t.Context(), storagetest.P(long), storage.CreateOptions{})
	if !errors.Is(err, storage.ErrNameTooLong) || !errors.Is(err, storage.ErrBadName) {
		t.Errorf("Create of a %d-byte key: %v, want storage.ErrNameTooLong", len(long), err)
	}
	if err := fsys.Mkdir(t.Context(), storagetest.P(long), 0o755); !errors.Is(err, storage.ErrNameTooLong) {
		t.Errorf("Mkdir of a long key: %v", err)
	}
	if err := fsys.Chmod(t.Context(), storagetest.P("x"), 0o600); !errors.Is(err, storage.ErrNotSupported) {
		t.Errorf("Chmod: %v, want storage.ErrNotSupported", err)
	}
	if caps := storage.CapsOf(fsys); caps.Has(storage.CapChmod) || !caps.Has(storage.CapWriteAt|storage.CapChtimes) {
		t.Errorf("capabilities %b", caps)
	}
}

// TestEngineStopped: with the S3 engine down, calls fail (none hangs), an
// upload's failure leaves the old object, and the same backend works
// again once the engine is back.
func TestEngineStopped(t *testing.T) {
	srv := s3env.Start(t)
	bucket := srv.NewBucket(t)
	b, err := s3store.New(t.Context(), s3store.Config{Bucket: bucket, Endpoint: srv.Endpoint, Region: srv.Region,
		PathStyle: true, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, PartSize: s3store.MinPartSize,
		CallTimeout: 5 * time.Second, MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	fsys := openFS(t, b, "public")
	old := randBytes(6 * mib)
	write(t, fsys, "f", storage.CreateOptions{}, old)
	r, err := fsys.Open(t.Context(), storagetest.P("f"), 0)
	if err != nil {
		t.Fatal(err)
	}
	up, err := fsys.Create(t.Context(), storagetest.P("f"), storage.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write(randBytes(mib)); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if _, err := io.ReadAll(r); err == nil {
		t.Log("the download had been read whole before the engine stopped")
	}
	r.Close()
	if _, err := up.Write(randBytes(5 * mib)); err == nil {
		err = up.Commit(t.Context())
		if err == nil {
			t.Fatal("an upload committed while the engine was down")
		}
	} else {
		up.Abort(t.Context())
	}
	if _, err := fsys.Stat(t.Context(), storagetest.P("f")); err == nil {
		t.Error("Stat succeeded while the engine was down")
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	same(t, "after the outage", read(t, fsys, "f"), old)
	write(t, fsys, "g", storage.CreateOptions{}, []byte("back"))
	if string(read(t, fsys, "g")) != "back" {
		t.Error("upload after the outage failed")
	}
}

// stallTransport serves GetObject bodies that stop after 10 bytes until
// their request is cancelled.
type stallTransport struct{}

func (stallTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && awsmiddleware.GetOperationName(r.Context()) == "GetObject" {
		resp.Body = &stallBody{rc: resp.Body, ctx: r.Context()}
	}
	return resp, err
}

type stallBody struct {
	rc  io.ReadCloser
	ctx context.Context
	n   int
}

func (b *stallBody) Read(p []byte) (int, error) {
	if b.n >= 10 {
		<-b.ctx.Done()
		return 0, b.ctx.Err()
	}
	n, err := b.rc.Read(p[:min(len(p), 10-b.n)])
	b.n += n
	return n, err
}

func (b *stallBody) Close() error { return b.rc.Close() }

// TestDownloadStall: a download whose body stops for longer than the call
// timeout fails with context.DeadlineExceeded, though the context given
// to Open has ended long before (as the engine's does when RETR returns).
func TestDownloadStall(t *testing.T) {
	b, _, _ := backend(t, func(c *s3store.Config) { c.Transport = stallTransport{}; c.CallTimeout = time.Second })
	fsys := openFS(t, b, "public")
	write(t, fsys, "f", storage.CreateOptions{}, randBytes(100))
	ctx, cancel := context.WithCancel(t.Context())
	f, err := fsys.Open(ctx, storagetest.P("f"), 0)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := io.ReadAll(f)
	if len(got) != 10 || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("read %d bytes, %v; want 10 and context.DeadlineExceeded", len(got), err)
	}
}

// TestCreateContextEnds: an upload goes on after the context given to
// Create ended (the engine's ends when STOR returns, before the data).
func TestCreateContextEnds(t *testing.T) {
	b, _, _ := backend(t, func(c *s3store.Config) { c.PartSize = s3store.MinPartSize })
	fsys := openFS(t, b, "public")
	for _, o := range []storage.CreateOptions{{}, {Append: true}} {
		ctx, cancel := context.WithCancel(t.Context())
		up, err := fsys.Create(ctx, storagetest.P("f"), o)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		data := randBytes(6 * mib)
		if _, err := up.Write(data); err != nil {
			t.Fatalf("Write after the Create's context ended: %v", err)
		}
		if err := up.Commit(t.Context()); err != nil {
			t.Fatalf("Commit: %v", err)
		}
	}
	if fi, err := fsys.Stat(t.Context(), storagetest.P("f")); err != nil || fi.Size() != 12*mib {
		t.Errorf("Stat = %v, %v; want 12 MiB", fi, err)
	}
}

// TestChecksumWhenRequired: the mode for older S3 clones (signed payloads,
// no CRC32 trailers) stores the same bytes.
func TestChecksumWhenRequired(t *testing.T) {
	b, _, _ := backend(t, func(c *s3store.Config) { c.ChecksumWhenRequired = true; c.PartSize = s3store.MinPartSize })
	fsys := openFS(t, b, "public")
	for _, n := range []int{10, 6 * mib} {
		data := randBytes(n)
		write(t, fsys, "f", storage.CreateOptions{}, data)
		same(t, fmt.Sprintf("%d bytes", n), read(t, fsys, "f"), data)
	}
}

package s3store

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/vpath"
)

// Pool hands out part buffers from a fixed budget: Get waits while all
// are out, so uploads slow their clients down instead of allocating.
type Pool struct {
	size int64
	sem  chan struct{}
	mu   sync.Mutex
	free [][]byte // guarded by mu
	out  int      // buffers handed out, guarded by mu
	high int      // most buffers out at once, guarded by mu
}

// NewPool makes a pool of budget/size buffers of size bytes.
func NewPool(size, budget int64) *Pool {
	return &Pool{size: size, sem: make(chan struct{}, max(1, budget/size))}
}

// Get returns a buffer of the pool's size, waiting for one while all are
// out; it fails when ctx ends first.
func (p *Pool) Get(ctx context.Context) ([]byte, error) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.out++
	p.high = max(p.high, p.out)
	if n := len(p.free); n > 0 {
		b := p.free[n-1]
		p.free = p.free[:n-1]
		return b[:0], nil
	}
	return make([]byte, 0, p.size), nil
}

// Put gives a buffer back.
func (p *Pool) Put(b []byte) {
	p.mu.Lock()
	p.out--
	p.free = append(p.free, b[:0])
	p.mu.Unlock()
	<-p.sem
}

// Stats returns the buffers out now, the most out at once, and the most
// there may be.
func (p *Pool) Stats() (out, high, limit int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out, p.high, cap(p.sem)
}

// BufferSize is the size of each buffer.
func (p *Pool) BufferSize() int64 { return p.size }

// upload is a Create in progress. Nothing is visible before Commit: a
// small upload is one PutObject at Commit; a larger one a multipart upload
// whose parts are sent as they fill, completed at Commit.
type upload struct {
	f         *FS
	b         *Backend
	p         vpath.Path
	key       string
	ctx       context.Context // the I/O's: not the Create's, which ends first
	cancel    context.CancelFunc
	exclusive bool // registered in b.exclusive
	cond      bool // Commit only if the key is free (If-None-Match: *)

	// in place: the bytes [0, keep) of the old object (etag) come first
	inPlace bool
	keep    int64
	zeros   int64 // then this many zero bytes (an offset past the end)
	etag    *string
	begun   bool // keep and zeros are in place

	buf   []byte // the part being filled, from the pool
	crc   uint32 // CRC32 of buf so far, while Backend.crc
	id    string // multipart upload ID, once started
	parts []types.CompletedPart
	num   int32 // the last part number used
	sem   chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	err   error // the first failure of a part, guarded by mu
	mtime time.Time
	done  bool

	sums map[string][]byte // digests of a whole upload's data (SetHashes)
	size int64             // bytes written by the client
}

func (f *FS) Create(ctx context.Context, p vpath.Path, o storage.CreateOptions) (storage.Upload, error) {
	if p.IsRoot() {
		return nil, storage.ErrIsDir
	}
	key, err := f.key(p)
	if err != nil {
		return nil, err
	}
	inPlace := o.Append || o.Offset > 0
	var (
		e          entry
		lerr, perr error
		parent     bool
	)
	if o.Looked && !inPlace {
		// The caller's look-up stands for ours: a whole upload needs
		// only to know that the name is not a directory.
		switch {
		case o.Found != nil && o.Found.IsDir():
			return nil, storage.ErrIsDir
		case o.Found != nil:
			// A key below the directory's prefix: it exists.
			e.head, parent = &s3.HeadObjectOutput{}, true
		default:
			parent, perr = f.dirExists(ctx, f.parentDir(p))
		}
	} else {
		both(func() { e, lerr = f.lookup(ctx, key, false) }, func() { parent, perr = f.dirExists(ctx, f.parentDir(p)) })
	}
	switch {
	case lerr != nil:
		return nil, lerr
	case e.dir:
		return nil, storage.ErrIsDir
	case perr != nil:
		return nil, perr
	case !parent:
		return nil, fs.ErrNotExist
	case o.Exclusive && e.head != nil:
		return nil, fs.ErrExist
	}
	u := &upload{f: f, b: f.b, p: p, key: key, sem: make(chan struct{}, f.b.conc),
		cond: o.Exclusive || o.NoReplace, inPlace: inPlace}
	if o.Exclusive {
		f.b.mu.Lock()
		taken := f.b.exclusive[key]
		f.b.exclusive[key] = true
		f.b.mu.Unlock()
		if taken {
			return nil, fs.ErrExist
		}
		u.exclusive = true
	}
	if inPlace {
		size := int64(0)
		if e.head != nil {
			size = aws.ToInt64(e.head.ContentLength)
			u.etag = e.head.ETag
			u.cond = false // it replaces the object it extends
		} else {
			u.cond = true // it creates the name: never over a newcomer
		}
		off := o.Offset
		if o.Append {
			off = size
		}
		u.keep = min(off, size)
		u.zeros = off - u.keep
	}
	u.ctx, u.cancel = context.WithCancel(context.WithoutCancel(ctx))
	return u, nil
}

// failed returns the first failure of a part.
func (u *upload) failed() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err
}

func (u *upload) fail(err error) {
	u.mu.Lock()
	if u.err == nil {
		u.err = err
	}
	u.mu.Unlock()
}

// begin puts an in-place upload's old bytes first: a server-side copy
// when they can be a part of their own (5 MiB or more), else read into
// the first part; then the zeros of an offset past the end.
func (u *upload) begin() error {
	if u.begun {
		return nil
	}
	u.begun = true
	if u.keep >= MinPartSize {
		if err := u.start(); err != nil {
			return err
		}
		parts, err := u.b.copyParts(u.ctx, u.key, u.key, u.id, 1, u.keep, u.etag)
		if err != nil {
			return err
		}
		u.parts = parts
		u.num = int32(len(parts))
	} else if u.keep > 0 {
		r, err := u.b.get(u.ctx, u.key, 0, u.keep, u.etag)
		if err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("s3: %s changed since the upload started: %w", u.key, errChanged)
			}
			return err
		}
		_, err = io.Copy(writerOnly{u}, r)
		r.Close()
		if err != nil {
			return err
		}
	}
	for u.zeros > 0 {
		n := min(u.zeros, 64<<10)
		if _, err := u.write(make([]byte, n)); err != nil {
			return err
		}
		u.zeros -= n
	}
	return nil
}

type writerOnly struct{ u *upload }

func (w writerOnly) Write(p []byte) (int, error) { return w.u.write(p) }

func (u *upload) Write(p []byte) (int, error) {
	if u.done {
		return 0, errors.New("s3: write after the upload ended")
	}
	if err := u.begin(); err != nil {
		u.fail(err)
		return 0, err
	}
	n, err := u.write(p)
	u.size += int64(n)
	return n, err
}

func (u *upload) write(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		if err := u.failed(); err != nil {
			return total, err
		}
		if u.buf == nil {
			b, err := u.b.pool.Get(u.ctx)
			if err != nil {
				return total, err
			}
			u.buf = b
		}
		n := copy(u.buf[len(u.buf):cap(u.buf)], p)
		if u.b.crc {
			// Taken from the bytes just received, still in the cache:
			// the SDK would read the whole part again for it.
			u.crc = crc32.Update(u.crc, crc32.IEEETable, p[:n])
		}
		u.buf = u.buf[:len(u.buf)+n]
		p = p[n:]
		total += n
		if int64(len(u.buf)) == u.b.part {
			if err := u.send(); err != nil {
				return total, err
			}
		}
	}
	return total, nil
}

// start creates the multipart upload.
func (u *upload) start() error {
	if u.id != "" {
		return nil
	}
	u.mtime = time.Now()
	cctx, cancel := u.b.call(u.ctx)
	defer cancel()
	out, err := u.b.client.CreateMultipartUpload(cctx, &s3.CreateMultipartUploadInput{
		Bucket: &u.b.bucket, Key: &u.key,
		Metadata: map[string]string{metaMtime: formatMtime(u.mtime)},
	})
	if err != nil {
		return u.b.wrap("CreateMultipartUpload", u.key, err)
	}
	u.id = aws.ToString(out.UploadId)
	u.b.started(u.ctx, u.key, u.id)
	return nil
}

// send uploads the filled buffer as the next part, in the background (at
// most Config.UploadConcurrency at once), and gives the buffer back when
// it is sent.
func (u *upload) send() error {
	if err := u.start(); err != nil {
		u.fail(err)
		return err
	}
	buf := u.buf
	u.buf = nil
	var sum *string
	if u.b.crc {
		sum = aws.String(crcHeader(u.crc))
		u.crc = 0
	}
	u.num++
	num := u.num
	// The parts in flight fill in their entries under mu meanwhile.
	u.mu.Lock()
	u.parts = append(u.parts, types.CompletedPart{PartNumber: aws.Int32(num)})
	idx := len(u.parts) - 1
	u.mu.Unlock()
	select {
	case u.sem <- struct{}{}:
	case <-u.ctx.Done():
		u.b.pool.Put(buf)
		return u.ctx.Err()
	}
	u.wg.Add(1)
	go func() {
		defer func() { u.b.pool.Put(buf); <-u.sem; u.wg.Done() }()
		cctx, cancel := u.b.call(u.ctx)
		defer cancel()
		out, err := u.b.client.UploadPart(cctx, &s3.UploadPartInput{
			Bucket: &u.b.bucket, Key: &u.key, UploadId: &u.id, PartNumber: aws.Int32(num),
			Body: bytes.NewReader(buf), ContentLength: aws.Int64(int64(len(buf))),
			ChecksumCRC32: sum,
		})
		if err != nil {
			u.fail(u.b.wrap("UploadPart", u.key, err))
			return
		}
		// Only the ETag: the upload was created without a checksum
		// algorithm, and S3 then refuses part checksums in the
		// completion (InvalidPart); the part's CRC32 was checked when
		// it arrived.
		u.mu.Lock()
		u.parts[idx].ETag = out.ETag
		u.mu.Unlock()
	}()
	return nil
}

// crcHeader is a CRC32 as x-amz-checksum-crc32 carries it: the
// big-endian bytes in base64.
func crcHeader(c uint32) string {
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, c))
}

// end releases what the upload holds.
func (u *upload) end() {
	u.done = true
	u.wg.Wait()
	if u.buf != nil {
		u.b.pool.Put(u.buf)
		u.buf = nil
	}
	u.cancel()
	if u.exclusive {
		u.b.mu.Lock()
		delete(u.b.exclusive, u.key)
		u.b.mu.Unlock()
	}
}

// Commit makes the object visible and returns once S3 confirmed it.
func (u *upload) Commit(ctx context.Context) error {
	if u.done {
		return nil
	}
	err := u.commit(ctx)
	if err != nil && u.id != "" {
		u.cancel()
		u.wg.Wait()
		u.b.abort(ctx, u.key, u.id)
	}
	u.end()
	return err
}

func (u *upload) commit(ctx context.Context) error {
	if err := u.begin(); err != nil {
		return err
	}
	// The directory may have gone (removed, renamed) since Create: a
	// Commit must not bring it back.
	if ok, err := u.f.dirExists(ctx, u.f.parentDir(u.p)); err != nil {
		return err
	} else if !ok {
		return fs.ErrNotExist
	}
	if u.id == "" {
		return u.put(ctx)
	}
	if len(u.buf) > 0 || len(u.parts) == 0 {
		if u.buf == nil {
			b, err := u.b.pool.Get(u.ctx)
			if err != nil {
				return err
			}
			u.buf = b
		}
		if err := u.send(); err != nil {
			return err
		}
	}
	u.wg.Wait()
	if err := u.failed(); err != nil {
		return err
	}
	etag, err := u.b.complete(ctx, u.key, u.id, u.parts, u.cond)
	if err != nil {
		return err
	}
	u.b.ended(ctx, u.key, u.id)
	u.storeHashes(ctx, etag)
	return nil
}

// put stores a small upload in one call.
func (u *upload) put(ctx context.Context) error {
	in := &s3.PutObjectInput{
		Bucket: &u.b.bucket, Key: &u.key, Body: bytes.NewReader(u.buf),
		ContentLength: aws.Int64(int64(len(u.buf))),
		Metadata:      map[string]string{metaMtime: formatMtime(time.Now())},
	}
	u.hashEntries(in.Metadata, int64(len(u.buf)))
	if u.cond {
		in.IfNoneMatch = aws.String("*")
	}
	cctx, cancel := u.b.call(ctx)
	defer cancel()
	_, err := u.b.client.PutObject(cctx, in)
	return u.b.wrap("PutObject", u.key, err)
}

// Abort discards the upload: the multipart upload is aborted at once and
// the old object, in place or not, stays as it was.
func (u *upload) Abort(ctx context.Context) error {
	if u.done {
		return nil
	}
	// The parts in flight finish (each under its call deadline) before the
	// abort: a part cancelled on the client may still be written by the
	// service after the abort and bring the upload back (versitygw does;
	// AWS warns that an abort may have to be repeated).
	u.wg.Wait()
	if u.id != "" {
		u.b.abort(ctx, u.key, u.id)
	}
	u.end()
	return nil
}

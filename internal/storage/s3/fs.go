package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/vpath"
)

// FS is one location of a Backend: the keys under root.
type FS struct {
	b    *Backend
	root string // "P/home/alice/", or "" for a bucket-wide FS
}

var (
	_ storage.FS               = (*FS)(nil)
	_ storage.NoReplaceRenamer = (*FS)(nil)
	_ storage.Capable          = (*FS)(nil)
)

// Capabilities: in-place uploads (server-side copies), times, an Abort
// that leaves an in-place upload's object as it was, and uploads that land
// on the key they started on; no chmod, no byte names.
func (f *FS) Capabilities() storage.Capabilities {
	return caps
}

const caps = storage.CapWriteAt | storage.CapChtimes | storage.CapAbortRestores | storage.CapUploadKeepsName

// key returns the object key of p, refusing what S3 cannot store.
func (f *FS) key(p vpath.Path) (string, error) {
	name := p.Rel()
	if name == "." {
		return strings.TrimSuffix(f.root, "/"), nil
	}
	if !utf8.ValidString(name) {
		return "", storage.ErrNotUTF8
	}
	k := f.root + name
	if len(k) > MaxKeyBytes {
		return "", storage.ErrNameTooLong
	}
	return k, nil
}

// parentDir returns the directory prefix ("…/d/") that must exist for key,
// or "" when key's parent is the root.
func (f *FS) parentDir(p vpath.Path) string {
	dir := path.Dir(p.Rel())
	if dir == "." {
		return ""
	}
	return f.root + dir + "/"
}

// head returns an object's metadata; fs.ErrNotExist when missing.
func (f *FS) head(ctx context.Context, key string) (*s3.HeadObjectOutput, error) {
	cctx, cancel := f.b.call(ctx)
	defer cancel()
	out, err := f.b.client.HeadObject(cctx, &s3.HeadObjectInput{Bucket: &f.b.bucket, Key: &key})
	return out, f.b.wrap("HeadObject", key, err)
}

// probe lists up to max keys under prefix (no delimiter).
func (f *FS) probe(ctx context.Context, prefix string, max int32) ([]types.Object, error) {
	objs, _, err := f.probeMore(ctx, prefix, max)
	return objs, err
}

// probeMore is probe that also says whether more keys follow.
func (f *FS) probeMore(ctx context.Context, prefix string, max int32) ([]types.Object, bool, error) {
	cctx, cancel := f.b.call(ctx)
	defer cancel()
	out, err := f.b.client.ListObjectsV2(cctx, &s3.ListObjectsV2Input{
		Bucket: &f.b.bucket, Prefix: &prefix, MaxKeys: aws.Int32(max),
	})
	if err != nil {
		return nil, false, f.b.wrap("ListObjectsV2", prefix, err)
	}
	return out.Contents, aws.ToBool(out.IsTruncated), nil
}

// dirExists reports whether prefix ("…/d/") is a directory: its marker
// (one HEAD, the common case) or else any key below it.
func (f *FS) dirExists(ctx context.Context, prefix string) (bool, error) {
	if prefix == "" || prefix == f.root {
		return true, nil
	}
	if _, err := f.head(ctx, prefix); err == nil {
		return true, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	objs, err := f.probe(ctx, prefix, 1)
	return len(objs) > 0, err
}

// both runs a and b at once and returns when both are done.
func both(a, b func()) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); a() }()
	b()
	wg.Wait()
}

// entry is what a name is: a file (head set), a directory, or nothing.
type entry struct {
	head *s3.HeadObjectOutput
	dir  bool
	// hasMarker: the directory has a marker object; marker is its HEAD
	// when the look-up made one (Stat and Chtimes fetch it: markerOf).
	hasMarker bool
	marker    *s3.HeadObjectOutput
}

// lookupKeys is how many keys a deep look-up lists: enough to pass the
// names that sort between "k" and "k/" ("k.bak", "k-2") in one request.
const lookupKeys = 8

// lookup finds what key is. A name that is an object is a file, even when
// a marker or keys below share its name (only directory listings show such
// a name as the directory). Shallow: a HEAD of the object and of its
// directory marker at once. Deep: a HEAD of the object, then, when there
// is none, one listing of the keys that begin with key, which finds a
// marker, a directory without one, or nothing (a second listing when
// other names fill the first): a missing name costs two requests.
func (f *FS) lookup(ctx context.Context, key string, deep bool) (entry, error) {
	prefix := key + "/"
	if !deep {
		var (
			e          entry
			herr, merr error
			m          *s3.HeadObjectOutput
		)
		both(func() { e.head, herr = f.head(ctx, key) }, func() { m, merr = f.head(ctx, prefix) })
		switch {
		case herr == nil:
			return e, nil
		case !errors.Is(herr, fs.ErrNotExist):
			return entry{}, herr
		case merr == nil:
			return entry{dir: true, hasMarker: true, marker: m}, nil
		case !errors.Is(merr, fs.ErrNotExist):
			return entry{}, merr
		}
		return entry{}, nil
	}
	h, err := f.head(ctx, key)
	switch {
	case err == nil:
		return entry{head: h}, nil
	case !errors.Is(err, fs.ErrNotExist):
		return entry{}, err
	}
	return f.probeName(ctx, key)
}

// probeName is the listing of a deep look-up of a name that is no object.
func (f *FS) probeName(ctx context.Context, key string) (entry, error) {
	prefix := key + "/"
	objs, more, err := f.probeMore(ctx, key, lookupKeys)
	if err != nil {
		return entry{}, err
	}
	// Keys come in order: the first at or after prefix says it all.
	for _, o := range objs {
		if k := aws.ToString(o.Key); k >= prefix {
			return entry{dir: strings.HasPrefix(k, prefix), hasMarker: k == prefix}, nil
		}
	}
	if !more {
		return entry{}, nil
	}
	objs, err = f.probe(ctx, prefix, 1)
	if err != nil || len(objs) == 0 {
		return entry{}, err
	}
	return entry{dir: true, hasMarker: aws.ToString(objs[0].Key) == prefix}, nil
}

// lookupUpload is the deep look-up of a name that a whole upload is about
// to write (dirs.go): in a directory whose subdirectories are listed, a
// HEAD of the name and of its marker at once; elsewhere a HEAD, then, for
// a new name, the listing of the name, or of the directory's
// subdirectories when it has become busy.
func (f *FS) lookupUpload(ctx context.Context, key string) (entry, error) {
	i := strings.LastIndexByte(key, '/')
	dir, name := key[:i+1], key[i+1:]
	if isDir, ok := f.b.dirs.known(dir, name); ok && !isDir {
		return f.lookup(ctx, key, false)
	}
	h, err := f.head(ctx, key)
	switch {
	case err == nil:
		return entry{head: h}, nil
	case !errors.Is(err, fs.ErrNotExist):
		return entry{}, err
	}
	if list, gen := f.b.dirs.miss(dir); list {
		subdirs, ok, err := f.listSubdirs(ctx, dir)
		f.b.dirs.done(dir, gen, subdirs, ok)
		if err == nil && ok && !subdirs[name] {
			return entry{}, nil
		}
	}
	return f.probeName(ctx, key)
}

// markerOf returns the HEAD of e's directory marker (nil when it has
// none, or it went meanwhile).
func (f *FS) markerOf(ctx context.Context, key string, e entry) (*s3.HeadObjectOutput, error) {
	if e.marker != nil || !e.hasMarker {
		return e.marker, nil
	}
	m, err := f.head(ctx, key+"/")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return m, err
}

func (f *FS) Stat(ctx context.Context, p vpath.Path) (fs.FileInfo, error) {
	return f.stat(ctx, p, false)
}

// StatUpload is the look-up before a whole upload (storage.UploadStater):
// a directory without a marker that another writer made in the last few
// seconds may be missed (dirs.go).
func (f *FS) StatUpload(ctx context.Context, p vpath.Path) (fs.FileInfo, error) {
	return f.stat(ctx, p, true)
}

func (f *FS) stat(ctx context.Context, p vpath.Path, upload bool) (fs.FileInfo, error) {
	if p.IsRoot() {
		return &info{name: ".", dir: true, mtime: dirTime}, nil
	}
	key, err := f.key(p)
	if err != nil {
		return nil, err
	}
	var e entry
	if upload {
		e, err = f.lookupUpload(ctx, key)
	} else {
		e, err = f.lookup(ctx, key, true)
	}
	switch {
	case err != nil:
		return nil, err
	case e.dir:
		m, err := f.markerOf(ctx, key, e)
		if err != nil {
			return nil, err
		}
		mt := dirTime
		if m != nil {
			mt = mtimeOf(m.Metadata, m.LastModified)
		}
		return &info{name: p.Base(), dir: true, mtime: mt}, nil
	case e.head != nil:
		return &info{name: p.Base(), size: aws.ToInt64(e.head.ContentLength), mtime: mtimeOf(e.head.Metadata, e.head.LastModified)}, nil
	}
	return nil, fs.ErrNotExist
}

func (f *FS) Open(ctx context.Context, p vpath.Path, offset int64) (storage.File, error) {
	if p.IsRoot() {
		return nil, storage.ErrIsDir
	}
	key, err := f.key(p)
	if err != nil {
		return nil, err
	}
	r, err := f.b.get(ctx, key, offset, -1, nil)
	if errors.Is(err, fs.ErrNotExist) {
		if ok, derr := f.dirExists(ctx, key+"/"); derr == nil && ok {
			return nil, storage.ErrIsDir
		}
	}
	return r, err
}

// reader is a download: its I/O runs under its own context (the one
// passed to Open ends when the command returns, before the transfer), and
// a body read that stalls longer than the call timeout fails.
type reader struct {
	body    io.ReadCloser
	key     string
	cancel  context.CancelFunc
	timer   *time.Timer
	timeout time.Duration
	stalled atomic.Bool
}

// get starts a GetObject of key from offset (length < 0: to the end),
// with ifMatch when set. An offset at or past the end reads nothing.
func (b *Backend) get(ctx context.Context, key string, offset, length int64, ifMatch *string) (*reader, error) {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r := &reader{key: key, cancel: cancel, timeout: b.timeout}
	r.timer = time.AfterFunc(b.timeout, func() { r.stalled.Store(true); cancel() })
	in := &s3.GetObjectInput{Bucket: &b.bucket, Key: &key, IfMatch: ifMatch}
	switch {
	case length >= 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", offset, offset+length-1))
	case offset > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", offset))
	}
	out, err := b.client.GetObject(rctx, in)
	if err != nil {
		r.timer.Stop()
		cancel()
		err = b.wrap("GetObject", key, err)
		if isStatus(err, 416) {
			r.body = io.NopCloser(strings.NewReader(""))
			return r, nil
		}
		if r.stalled.Load() {
			err = fmt.Errorf("%w (no answer in %v)", context.DeadlineExceeded, b.timeout)
		}
		return nil, err
	}
	r.body = out.Body
	r.timer.Reset(b.timeout)
	return r, nil
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.body.Read(p)
	if r.timer != nil {
		r.timer.Reset(r.timeout)
	}
	if err != nil && err != io.EOF && r.stalled.Load() {
		err = fmt.Errorf("s3 GetObject %s: the body stalled for %v: %w", r.key, r.timeout, context.DeadlineExceeded)
	}
	return n, err
}

func (r *reader) Close() error {
	if r.timer != nil {
		r.timer.Stop()
	}
	if r.cancel != nil {
		r.cancel()
	}
	return r.body.Close()
}

func (f *FS) Mkdir(ctx context.Context, p vpath.Path, _ fs.FileMode) error {
	if p.IsRoot() {
		return fs.ErrExist
	}
	key, err := f.key(p)
	if err != nil {
		return err
	}
	marker := key + "/"
	if len(marker) > MaxKeyBytes {
		return storage.ErrNameTooLong
	}
	var (
		e          entry
		perr, lerr error
		parent     bool
	)
	both(func() { parent, perr = f.dirExists(ctx, f.parentDir(p)) }, func() { e, lerr = f.lookup(ctx, key, true) })
	switch {
	case lerr != nil:
		return lerr
	case e.dir || e.head != nil:
		return fs.ErrExist
	case perr != nil:
		return perr
	case !parent:
		return fs.ErrNotExist
	}
	cctx, cancel := f.b.call(ctx)
	defer cancel()
	defer f.b.dirs.reset() // after the PUT: a listing that began before it is void
	_, err = f.b.client.PutObject(cctx, &s3.PutObjectInput{
		Bucket: &f.b.bucket, Key: &marker, Body: strings.NewReader(""),
		ContentType: aws.String("application/x-directory"),
		IfNoneMatch: aws.String("*"),
		Metadata:    map[string]string{metaMtime: formatMtime(time.Now())},
	})
	return f.b.wrap("PutObject", marker, err)
}

func (f *FS) Remove(ctx context.Context, p vpath.Path) error {
	if p.IsRoot() {
		return storage.ErrIsDir
	}
	key, err := f.key(p)
	if err != nil {
		return err
	}
	e, err := f.lookup(ctx, key, true)
	switch {
	case err != nil:
		return err
	case e.dir:
		return storage.ErrIsDir
	case e.head == nil:
		return fs.ErrNotExist
	}
	return f.b.deleteObject(ctx, key)
}

func (f *FS) RemoveDir(ctx context.Context, p vpath.Path) error {
	if p.IsRoot() {
		return fs.ErrPermission
	}
	key, err := f.key(p)
	if err != nil {
		return err
	}
	prefix := key + "/"
	// An empty directory holds at most its marker and its times object.
	objs, err := f.probe(ctx, prefix, 3)
	if err != nil {
		return err
	}
	marker, times := false, false
	for _, o := range objs {
		switch aws.ToString(o.Key) {
		case prefix:
			marker = true
		case prefix + timesName:
			times = true
		default:
			return storage.ErrNotEmpty
		}
	}
	if !marker && !times {
		if _, err := f.head(ctx, key); err == nil {
			return storage.ErrNotDir
		}
		return fs.ErrNotExist
	}
	if times {
		if err := f.b.deleteObject(ctx, prefix+timesName); err != nil {
			return err
		}
	}
	if !marker {
		return nil
	}
	return f.b.deleteObject(ctx, prefix)
}

// Chmod is not supported: objects have no permission bits.
func (f *FS) Chmod(context.Context, vpath.Path, fs.FileMode) error {
	return storage.ErrNotSupported
}

// Chtimes stores mtime in the object's metadata: a copy onto itself that
// keeps every other metadata entry and the content headers. A directory's
// time goes on its marker (made when it had none).
func (f *FS) Chtimes(ctx context.Context, p vpath.Path, mtime time.Time) error {
	if p.IsRoot() {
		return fs.ErrPermission
	}
	key, err := f.key(p)
	if err != nil {
		return err
	}
	e, err := f.lookup(ctx, key, true)
	switch {
	case err != nil:
		return err
	case e.dir:
		marker := key + "/"
		m, err := f.markerOf(ctx, key, e)
		if err != nil {
			return err
		}
		meta := map[string]string{}
		if m != nil {
			meta = cloneMeta(m.Metadata)
		}
		meta[metaMtime] = formatMtime(mtime)
		cctx, cancel := f.b.call(ctx)
		defer cancel()
		_, err = f.b.client.PutObject(cctx, &s3.PutObjectInput{
			Bucket: &f.b.bucket, Key: &marker, Body: strings.NewReader(""),
			ContentType: aws.String("application/x-directory"), Metadata: meta,
		})
		return f.b.wrap("PutObject", marker, err)
	case e.head == nil:
		return fs.ErrNotExist
	}
	meta := cloneMeta(e.head.Metadata)
	meta[metaMtime] = formatMtime(mtime)
	if err := f.b.copyObject(ctx, key, key, e.head, meta, false); err != nil {
		return err
	}
	return f.b.recordVersion(ctx, key, meta[metaMtime])
}

// recordVersion records in key's directory times object the time the
// object's metadata holds, for its current version, if that version holds
// mtime (another writer may have replaced it since the copy): one HEAD, a
// read and a conditional write of the times object.
func (b *Backend) recordVersion(ctx context.Context, key, mtime string) error {
	cctx, cancel := b.call(ctx)
	h, err := b.client.HeadObject(cctx, &s3.HeadObjectInput{Bucket: &b.bucket, Key: &key})
	cancel()
	if err = b.wrap("HeadObject", key, err); err != nil {
		return err
	}
	if h.Metadata[metaMtime] != mtime {
		return nil // replaced meanwhile: its LastModified is its time
	}
	return b.recordHead(ctx, key, h)
}

func cloneMeta(m map[string]string) map[string]string {
	c := make(map[string]string, len(m)+1)
	for k, v := range m {
		c[k] = v
	}
	return c
}

// copySource is the x-amz-copy-source of key: bucket/key, escaped.
func (b *Backend) copySource(key string) *string {
	var sb strings.Builder
	sb.WriteString(url.PathEscape(b.bucket))
	sb.WriteByte('/')
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == '~', c == '/':
			sb.WriteByte(c)
		default:
			fmt.Fprintf(&sb, "%%%02X", c)
		}
	}
	return aws.String(sb.String())
}

// copyObject copies src (described by h) to dst server-side with meta as
// its metadata and src's content headers. With noReplace it fails with
// fs.ErrExist when dst exists (a multipart copy completed with
// If-None-Match, which S3 engines honour where CopyObject's may not);
// objects over 5 GiB are copied in parts too.
func (b *Backend) copyObject(ctx context.Context, src, dst string, h *s3.HeadObjectOutput, meta map[string]string, noReplace bool) error {
	size := aws.ToInt64(h.ContentLength)
	if noReplace && size == 0 {
		cctx, cancel := b.call(ctx)
		defer cancel()
		_, err := b.client.PutObject(cctx, &s3.PutObjectInput{
			Bucket: &b.bucket, Key: &dst, Body: strings.NewReader(""), Metadata: meta,
			ContentType: h.ContentType, CacheControl: h.CacheControl, ContentDisposition: h.ContentDisposition,
			ContentEncoding: h.ContentEncoding, ContentLanguage: h.ContentLanguage,
			IfNoneMatch: aws.String("*"),
		})
		return b.wrap("PutObject", dst, err)
	}
	if !noReplace && size <= maxCopyObject {
		cctx, cancel := context.WithTimeout(ctx, b.copyTimeout(size))
		defer cancel()
		_, err := b.client.CopyObject(cctx, &s3.CopyObjectInput{
			Bucket: &b.bucket, Key: &dst, CopySource: b.copySource(src),
			MetadataDirective: types.MetadataDirectiveReplace, Metadata: meta,
			ContentType: h.ContentType, CacheControl: h.CacheControl, ContentDisposition: h.ContentDisposition,
			ContentEncoding: h.ContentEncoding, ContentLanguage: h.ContentLanguage,
			CopySourceIfMatch: h.ETag,
		})
		return b.wrapCopy("CopyObject", dst, err)
	}
	cctx, cancel := b.call(ctx)
	defer cancel()
	cm, err := b.client.CreateMultipartUpload(cctx, &s3.CreateMultipartUploadInput{
		Bucket: &b.bucket, Key: &dst, Metadata: meta,
		ContentType: h.ContentType, CacheControl: h.CacheControl, ContentDisposition: h.ContentDisposition,
		ContentEncoding: h.ContentEncoding, ContentLanguage: h.ContentLanguage,
	})
	if err != nil {
		return b.wrap("CreateMultipartUpload", dst, err)
	}
	id := aws.ToString(cm.UploadId)
	b.started(ctx, dst, id)
	parts, err := b.copyParts(ctx, src, dst, id, 1, size, h.ETag)
	if err == nil {
		_, err = b.complete(ctx, dst, id, parts, noReplace)
	}
	if err != nil {
		b.abort(ctx, dst, id)
		return err
	}
	b.ended(ctx, dst, id)
	return nil
}

// wrapCopy maps a copy's error: a failed source precondition means the
// source changed meanwhile, not that the target exists.
func (b *Backend) wrapCopy(op, key string, err error) error {
	err = b.wrap(op, key, err)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("s3 %s %s: the source changed during the copy: %w", op, key, errChanged)
	}
	return err
}

var errChanged = errors.New("object changed")

// copyTimeout is the deadline of copying size bytes server-side.
func (b *Backend) copyTimeout(size int64) time.Duration {
	return b.timeout + time.Duration(size/(64<<20))*time.Second
}

// copyParts copies [0, size) of src into upload id as parts from number
// first on, each at most 5 GiB and all of one size (so none is below the
// 5 MiB minimum unless it is the only one).
func (b *Backend) copyParts(ctx context.Context, src, dst, id string, first int32, size int64, etag *string) ([]types.CompletedPart, error) {
	n := (size + maxCopyObject - 1) / maxCopyObject
	per := (size + n - 1) / n
	var parts []types.CompletedPart
	for off, num := int64(0), first; off < size; off, num = off+per, num+1 {
		end := min(off+per, size)
		cctx, cancel := context.WithTimeout(ctx, b.copyTimeout(end-off))
		out, err := b.client.UploadPartCopy(cctx, &s3.UploadPartCopyInput{
			Bucket: &b.bucket, Key: &dst, UploadId: &id, PartNumber: aws.Int32(num),
			CopySource: b.copySource(src), CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", off, end-1)),
			CopySourceIfMatch: etag,
		})
		cancel()
		if err != nil {
			return nil, b.wrapCopy("UploadPartCopy", dst, err)
		}
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(num), ETag: out.CopyPartResult.ETag})
	}
	return parts, nil
}

// complete finishes a multipart upload and returns the object's ETag;
// noReplace: only if key is free.
func (b *Backend) complete(ctx context.Context, key, id string, parts []types.CompletedPart, noReplace bool) (*string, error) {
	cctx, cancel := context.WithTimeout(ctx, 2*b.timeout)
	defer cancel()
	in := &s3.CompleteMultipartUploadInput{
		Bucket: &b.bucket, Key: &key, UploadId: &id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	}
	if noReplace {
		in.IfNoneMatch = aws.String("*")
	}
	out, err := b.client.CompleteMultipartUpload(cctx, in)
	if err != nil {
		return nil, b.wrap("CompleteMultipartUpload", key, err)
	}
	return out.ETag, nil
}

// abort aborts a multipart upload, even when ctx is done, and logs a
// failure (Sweep finds what is left).
func (b *Backend) abort(ctx context.Context, key, id string) {
	cctx, cancel := b.call(context.WithoutCancel(ctx))
	defer cancel()
	_, err := b.client.AbortMultipartUpload(cctx, &s3.AbortMultipartUploadInput{Bucket: &b.bucket, Key: &key, UploadId: &id})
	if err = b.wrap("AbortMultipartUpload", key, err); err != nil && !errors.Is(err, fs.ErrNotExist) {
		b.log.Warn("s3: abort of a multipart upload failed; the sweep will retry", "path", key, "upload", id, "err", err)
		return
	}
	b.ended(ctx, key, id)
}

// started and ended tell the journal, when there is one.
func (b *Backend) started(ctx context.Context, key, id string) {
	if b.journal == nil {
		return
	}
	if err := b.journal.UploadStarted(context.WithoutCancel(ctx), key, id); err != nil {
		b.log.Warn("s3: journal: recording an upload failed", "path", key, "upload", id, "err", err)
	}
}

func (b *Backend) ended(ctx context.Context, key, id string) {
	if b.journal == nil {
		return
	}
	if err := b.journal.UploadEnded(context.WithoutCancel(ctx), key, id); err != nil {
		b.log.Warn("s3: journal: recording the end of an upload failed", "path", key, "upload", id, "err", err)
	}
}

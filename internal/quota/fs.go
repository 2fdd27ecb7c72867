package quota

import (
	"context"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/vpath"
)

// FS is a storage.FS that keeps a Usage exact and enforces Limits.
type FS struct {
	fsys storage.FS
	u    *Usage
	l    Limits
}

var _ storage.FS = (*FS)(nil)

// Wrap returns fsys accounted in u under the limits l. The caller starts
// u's load (Usage.Load); the operations that count wait for it.
func Wrap(fsys storage.FS, u *Usage, l Limits) *FS {
	return &FS{fsys: fsys, u: u, l: l}
}

// Unwrap returns the wrapped file system, for read-only capabilities.
func (q *FS) Unwrap() storage.FS { return q.fsys }

// Free reports the bytes the user may still store (storage.SpaceReporter):
// what the byte quota leaves, or the wrapped file system's free space when
// that is less or there is no byte quota; storage.ErrNotSupported when
// neither is known.
func (q *FS) Free(ctx context.Context) (int64, error) {
	sr, known := q.fsys.(storage.SpaceReporter)
	if q.l.Bytes <= 0 {
		if !known {
			return 0, storage.ErrNotSupported
		}
		return sr.Free(ctx)
	}
	if err := q.u.Wait(ctx); err != nil {
		return 0, err
	}
	used, _ := q.u.Counts()
	left := max(q.l.Bytes-used, 0)
	if !known {
		return left, nil
	}
	free, err := sr.Free(ctx)
	if err != nil {
		return 0, err
	}
	return min(free, left), nil
}

// Close closes the wrapped file system if it is an io.Closer.
func (q *FS) Close() error {
	if c, ok := q.fsys.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

func (q *FS) Stat(ctx context.Context, p vpath.Path) (fs.FileInfo, error) {
	return q.fsys.Stat(ctx, p)
}

func (q *FS) ReadDir(ctx context.Context, p vpath.Path) (storage.DirIter, error) {
	return q.fsys.ReadDir(ctx, p)
}

func (q *FS) Open(ctx context.Context, p vpath.Path, offset int64) (storage.File, error) {
	return q.fsys.Open(ctx, p, offset)
}

func (q *FS) Mkdir(ctx context.Context, p vpath.Path, perm fs.FileMode) error {
	return q.fsys.Mkdir(ctx, p, perm)
}

// RemoveDir removes an empty directory, which holds nothing counted.
func (q *FS) RemoveDir(ctx context.Context, p vpath.Path) error {
	return q.fsys.RemoveDir(ctx, p)
}

// Chmod changes a mode. A directory keeps its owner's read and search bits
// (u+rx): the usage scan skips directories it cannot read, so SITE CHMOD 000
// would hide a directory's bytes from the count taken at the next start.
// The lock keeps a rename from putting a directory under p meanwhile.
func (q *FS) Chmod(ctx context.Context, p vpath.Path, mode fs.FileMode) error {
	q.u.mu.Lock()
	defer q.u.mu.Unlock()
	if fi, err := q.fsys.Stat(ctx, p); err == nil && fi.IsDir() {
		mode |= 0o500
	}
	return q.fsys.Chmod(ctx, p, mode)
}

func (q *FS) Chtimes(ctx context.Context, p vpath.Path, mtime time.Time) error {
	return q.fsys.Chtimes(ctx, p, mtime)
}

// regular returns the size of name when its own entry is a regular file.
func (q *FS) regular(ctx context.Context, name string) (size int64, ok bool) {
	fi, err := lstat(ctx, q.fsys, name)
	if err != nil || !fi.Mode().IsRegular() {
		return 0, false
	}
	return fi.Size(), true
}

// Remove deletes a file and subtracts what it was: a symbolic link removes
// nothing counted.
func (q *FS) Remove(ctx context.Context, p vpath.Path) error {
	name := p.Rel()
	if err := q.u.Wait(ctx); err != nil {
		return err
	}
	q.u.mu.Lock()
	defer q.u.mu.Unlock()
	if q.u.busy(name, false) {
		return ErrBusy // its upload would write an unlinked file
	}
	size, counted := q.regular(ctx, name)
	if err := q.fsys.Remove(ctx, p); err != nil {
		return err
	}
	if counted {
		q.u.bytes -= size
		q.u.files--
	}
	return nil
}

// Rename moves from to to and subtracts the regular file it replaced. The
// uploads it carries along are counted under their new names.
func (q *FS) Rename(ctx context.Context, fromP, toP vpath.Path) error {
	return q.rename(ctx, fromP, toP, false)
}

// RenameNoReplace renames without replacing a taken name, when the backend
// below can (storage.ErrNotSupported otherwise); it replaces nothing, so it
// only carries the uploads along.
func (q *FS) RenameNoReplace(ctx context.Context, fromP, toP vpath.Path) error {
	if _, ok := q.fsys.(storage.NoReplaceRenamer); !ok {
		return storage.ErrNotSupported
	}
	return q.rename(ctx, fromP, toP, true)
}

func (q *FS) rename(ctx context.Context, fromP, toP vpath.Path, noReplace bool) error {
	from, to := fromP.Rel(), toP.Rel()
	if err := q.u.Wait(ctx); err != nil {
		return err
	}
	q.u.mu.Lock()
	defer q.u.mu.Unlock()
	if q.u.busy(to, false) {
		return ErrBusy // its upload would write an unlinked file
	}
	var size int64
	counted := false
	if from != to {
		fiTo, errTo := lstat(ctx, q.fsys, to)
		fiFrom, errFrom := lstat(ctx, q.fsys, from)
		// Renaming a name onto another link of the same file removes
		// nothing (POSIX rename(2)).
		counted = errTo == nil && fiTo.Mode().IsRegular() && !(errFrom == nil && os.SameFile(fiFrom, fiTo))
		if counted {
			size = fiTo.Size()
		}
	}
	rename := q.fsys.Rename
	if noReplace {
		rename = q.fsys.(storage.NoReplaceRenamer).RenameNoReplace
	}
	if err := rename(ctx, fromP, toP); err != nil {
		return err
	}
	if counted {
		q.u.bytes -= size
		q.u.files--
	}
	if from != to {
		q.u.moved(from, to)
	}
	return nil
}

// Create starts an upload. A whole upload (a temporary file that replaces
// name on Commit) takes a file slot now if name holds no regular file; an
// in-place upload (offset, append, exclusive) takes it and any growth from
// the offset before the backend touches the file. Every write then reserves
// its bytes before they are accepted.
func (q *FS) Create(ctx context.Context, p vpath.Path, o storage.CreateOptions) (storage.Upload, error) {
	name := p.Rel()
	if err := q.u.Wait(ctx); err != nil {
		return nil, err
	}
	if o.Append || o.Offset > 0 || o.Exclusive {
		return q.createInPlace(ctx, name, o)
	}
	// Under the lock until the upload is tracked: a rename must not
	// move its directory in between.
	q.u.mu.Lock()
	defer q.u.mu.Unlock()
	if q.u.busy(name, false) {
		return nil, ErrBusy
	}
	_, exists := q.regular(ctx, name)
	if err := q.u.reserve(q.l, 0, !exists); err != nil {
		return nil, err
	}
	up, err := q.fsys.Create(ctx, p, o)
	if err != nil {
		if !exists {
			q.u.files--
		}
		return nil, err
	}
	a := &atomicUpload{upload: upload{up: up, q: q, name: name, ctx: context.WithoutCancel(ctx)}, slot: !exists}
	q.u.track(&a.upload)
	return a, nil
}

// createInPlace starts an upload that writes the visible file. Until
// Commit or Abort no other upload of the name starts and nothing removes or
// replaces it (ErrBusy), so the file's size is this upload's to measure.
func (q *FS) createInPlace(ctx context.Context, name string, o storage.CreateOptions) (storage.Upload, error) {
	q.u.mu.Lock()
	defer q.u.mu.Unlock()
	if q.u.busy(name, true) {
		if _, err := lstat(ctx, q.fsys, name); err == nil && o.Exclusive {
			return nil, fs.ErrExist
		}
		return nil, ErrBusy
	}
	// Stat, not Lstat: an in-place upload writes through a link.
	before, existed := q.size(ctx, name)
	growth := int64(0)
	if !o.Append {
		growth = o.Offset - before // REST truncates, or extends with a hole
	}
	if err := q.u.reserve(q.l, growth, !existed); err != nil {
		return nil, err
	}
	up, err := q.fsys.Create(ctx, rel(name), o)
	// Measure what the backend did, failed or not: a failed create may
	// still have left a file behind.
	after, exists := q.size(ctx, name)
	q.u.bytes += after - before - growth
	if existed != exists {
		if exists {
			q.u.files++
		} else {
			q.u.files--
		}
	}
	if !existed {
		q.u.files-- // the slot taken above, now replaced by the measure
	}
	if err != nil {
		return nil, err
	}
	p := &inPlaceUpload{upload: upload{up: up, q: q, name: name, inPlace: true, ctx: context.WithoutCancel(ctx)}, expect: after, file: exists}
	q.u.track(&p.upload)
	return p, nil
}

// size returns the size of the regular file that name resolves to (Stat
// semantics) and whether there is one.
func (q *FS) size(ctx context.Context, name string) (int64, bool) {
	fi, err := q.fsys.Stat(ctx, rel(name))
	if err != nil || !fi.Mode().IsRegular() {
		return 0, false
	}
	return fi.Size(), true
}

// upload reserves the bytes of each write before passing them on. It has no
// ReadFrom on purpose: bytes must not reach the backend unreserved.
type upload struct {
	up      storage.Upload
	q       *FS
	name    string // where the upload lands, guarded by q.u.mu
	inPlace bool
	ctx     context.Context // the Create's values, never cancelled: accounting finishes
	n       int64           // bytes reserved and written
}

func (w *upload) Write(p []byte) (int, error) {
	u := w.q.u
	u.mu.Lock()
	err := u.reserve(w.q.l, int64(len(p)), false)
	u.mu.Unlock()
	if err != nil {
		return 0, err
	}
	n, err := w.up.Write(p)
	if n < len(p) {
		u.mu.Lock()
		u.bytes -= int64(len(p) - n)
		u.mu.Unlock()
	}
	w.n += int64(n)
	return n, err
}

// SetHashes passes the upload's digests to the backend's upload, when it
// keeps them (storage.HashSetter): they describe data, not usage.
func (w *upload) SetHashes(sums map[string][]byte) {
	if hs, ok := w.up.(storage.HashSetter); ok {
		hs.SetHashes(sums)
	}
}

// atomicUpload writes a temporary file that replaces name on Commit.
type atomicUpload struct {
	upload
	slot bool // took a file slot at Create
}

// Commit measures what the upload replaces now, under the lock: the name
// may have been removed, renamed or replaced since Create.
func (a *atomicUpload) Commit(ctx context.Context) error {
	q, u := a.q, a.q.u
	u.mu.Lock()
	defer u.mu.Unlock()
	u.untrack(&a.upload)
	old, exists := q.regular(a.ctx, a.name)
	switch {
	case exists && a.slot:
		u.files-- // the slot is not needed: the name holds a file again
	case !exists && !a.slot:
		if err := u.reserve(q.l, 0, true); err != nil {
			a.release()
			a.up.Abort(context.WithoutCancel(ctx))
			return err
		}
	}
	if err := a.up.Commit(ctx); err != nil {
		// The target is untouched; the temporary file is gone.
		u.bytes -= a.n
		if !exists {
			u.files--
		}
		return err
	}
	if exists {
		u.bytes -= old
	}
	return nil
}

func (a *atomicUpload) Abort(ctx context.Context) error {
	a.q.u.mu.Lock()
	defer a.q.u.mu.Unlock()
	a.q.u.untrack(&a.upload)
	a.release()
	return a.up.Abort(ctx)
}

// release gives back what the upload holds; call with mu held.
func (a *atomicUpload) release() {
	a.q.u.bytes -= a.n
	if a.slot {
		a.q.u.files--
	}
}

// inPlaceUpload writes the visible file; Commit and Abort measure it.
type inPlaceUpload struct {
	upload
	expect int64 // the size counted before the first write
	file   bool  // the file is counted
}

func (p *inPlaceUpload) Commit(ctx context.Context) error { return p.end(ctx, p.up.Commit) }
func (p *inPlaceUpload) Abort(ctx context.Context) error  { return p.end(ctx, p.up.Abort) }

// end runs the backend's Commit or Abort and counts the file as it is then:
// an abort cuts it back or removes it.
func (p *inPlaceUpload) end(ctx context.Context, f func(context.Context) error) error {
	u := p.q.u
	u.mu.Lock()
	defer u.mu.Unlock()
	u.untrack(&p.upload)
	err := f(ctx)
	size, exists := p.q.size(p.ctx, p.name)
	counted := p.expect + p.n
	u.bytes += size - counted
	switch {
	case exists && !p.file:
		u.files++
	case !exists && p.file:
		u.files--
	}
	return err
}

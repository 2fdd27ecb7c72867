package quota

import (
	"context"
	"errors"
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
	used, _, err := q.u.Counts(ctx)
	if err != nil {
		return 0, err
	}
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
		q.u.adjust(context.WithoutCancel(ctx), Change{Bytes: -size, Files: -1})
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
	// Where uploads keep their names (object stores), the in-place
	// uploads under from bring their files back at their old names on
	// Commit, beside the copies the rename makes: count those files again
	// now, within the limits.
	keep := storage.CapsOf(q.fsys).Has(storage.CapUploadKeepsName)
	var back []*upload
	if keep && from != to {
		for w := range q.u.open {
			if w.inPlace && within(w.name, from) {
				if err := q.u.reserve(ctx, q.l, Change{Bytes: w.expect, Files: 1}); err != nil {
					q.unreserve(ctx, back)
					return err
				}
				back = append(back, w)
			}
		}
	}
	rename := q.fsys.Rename
	if noReplace {
		rename = q.fsys.(storage.NoReplaceRenamer).RenameNoReplace
	}
	if err := rename(ctx, fromP, toP); err != nil {
		q.unreserve(ctx, back)
		return err
	}
	if counted {
		q.u.adjust(context.WithoutCancel(ctx), Change{Bytes: -size, Files: -1})
	}
	for _, w := range back {
		w.file = true // the slot reserved above is now the upload's
	}
	if from != to && !keep {
		q.u.moved(from, to)
	}
	return nil
}

// unreserve gives back what rename reserved for the uploads in ws; call
// with mu held.
func (q *FS) unreserve(ctx context.Context, ws []*upload) {
	for _, w := range ws {
		q.u.adjust(context.WithoutCancel(ctx), Change{Bytes: -w.expect, Files: -1})
	}
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
	var slot int64
	if !exists {
		slot = 1
	}
	if err := q.u.reserve(ctx, q.l, Change{Files: slot, HeldFiles: slot}); err != nil {
		return nil, err
	}
	up, err := q.fsys.Create(ctx, p, o)
	if err != nil {
		q.u.adjust(context.WithoutCancel(ctx), Change{Files: -slot, HeldFiles: -slot})
		return nil, err
	}
	a := &atomicUpload{upload: upload{up: up, q: q, name: name, held: true, ctx: context.WithoutCancel(ctx)}, slots: slot}
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
	c := Change{Bytes: growth}
	if !existed {
		c.Files = 1
	}
	if err := q.u.reserve(ctx, q.l, c); err != nil {
		return nil, err
	}
	up, err := q.fsys.Create(ctx, rel(name), o)
	// Measure what the backend did, failed or not: a failed create may
	// still have left a file behind.
	after, exists := q.size(ctx, name)
	fix := Change{Bytes: after - before - growth}
	if existed != exists {
		if exists {
			fix.Files++
		} else {
			fix.Files--
		}
	}
	if !existed {
		fix.Files-- // the slot taken above, now replaced by the measure
	}
	q.u.adjust(context.WithoutCancel(ctx), fix)
	if err != nil {
		return nil, err
	}
	p := &inPlaceUpload{upload: upload{up: up, q: q, name: name, inPlace: true, ctx: context.WithoutCancel(ctx), expect: after, file: exists}}
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
	// held: the reservations are the process's until Commit (a whole
	// upload's bytes are nowhere until then); an in-place upload's bytes
	// are in the file as they are written, and are counted as stored.
	held     bool
	ctx      context.Context // the Create's values, never cancelled: accounting finishes
	n        int64           // bytes written
	reserved int64           // bytes reserved, n or more (a chunk ahead)
	// expect and file, of an in-place upload: the size counted before the
	// first write and whether the file is counted; guarded by q.u.mu.
	expect int64
	file   bool
}

func (w *upload) Write(p []byte) (int, error) {
	if need := int64(len(p)) - (w.reserved - w.n); need > 0 {
		w.q.u.mu.Lock()
		err := w.take(need)
		w.q.u.mu.Unlock()
		if err != nil {
			return 0, err
		}
	}
	n, err := w.up.Write(p)
	w.n += int64(n)
	return n, err
}

// take reserves need bytes or more: a chunk when the usage reserves in
// chunks and the chunk fits, else need alone. Call with q.u.mu held.
func (w *upload) take(need int64) error {
	u := w.q.u
	tries := []int64{need}
	if u.chunk > need {
		tries = []int64{u.chunk, need}
	}
	for i, n := range tries {
		c := Change{Bytes: n}
		if w.held {
			c.HeldBytes = n
		}
		err := u.reserve(w.ctx, w.q.l, c)
		if err == nil {
			w.reserved += n
			return nil
		}
		if i == len(tries)-1 || !errors.Is(err, storage.ErrQuota) {
			return err
		}
	}
	return nil
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
	slots int64 // file slots held: 1 when Create or Commit took one
}

// Commit measures what the upload replaces now, under the lock: the name
// may have been removed, renamed or replaced since Create.
func (a *atomicUpload) Commit(ctx context.Context) error {
	q, u := a.q, a.q.u
	u.mu.Lock()
	defer u.mu.Unlock()
	u.untrack(&a.upload)
	old, exists := q.regular(a.ctx, a.name)
	if !exists && a.slots == 0 {
		// The file it replaced is gone: the upload is a new file now.
		if err := u.reserve(a.ctx, q.l, Change{Files: 1, HeldFiles: 1}); err != nil {
			a.release()
			a.up.Abort(context.WithoutCancel(ctx))
			return err
		}
		a.slots = 1
	}
	if err := a.up.Commit(ctx); err != nil {
		// The target is untouched; the temporary file is gone.
		a.release()
		return err
	}
	// The reservations become what is stored: the unused chunk goes, and
	// so does the file replaced. A slot held while the name holds a file
	// again is not needed: the new file takes the old one's count.
	done := Change{Bytes: -(a.reserved - a.n), HeldBytes: -a.reserved, HeldFiles: -a.slots}
	if exists {
		done.Bytes -= old
		done.Files = -a.slots
	}
	u.adjust(a.ctx, done)
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
	a.q.u.adjust(a.ctx, Change{Bytes: -a.reserved, Files: -a.slots, HeldBytes: -a.reserved, HeldFiles: -a.slots})
	a.reserved, a.n, a.slots = 0, 0, 0
}

// inPlaceUpload writes the visible file; Commit and Abort measure it.
type inPlaceUpload struct {
	upload
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
	fix := Change{Bytes: size - (p.expect + p.reserved)}
	switch {
	case exists && !p.file:
		fix.Files = 1
	case !exists && p.file:
		fix.Files = -1
	}
	u.adjust(p.ctx, fix)
	return err
}

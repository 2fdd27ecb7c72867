// Package storage defines the file-system seam under the protocol engine.
// Names are vpath.Path values, validated once at the edge; a backend takes
// their Rel form (slash-separated, relative to the user's root, "." for the
// root) and accepts nothing else.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/ferryftp/ferry/internal/vpath"
)

// Sentinel errors besides fs.ErrNotExist, fs.ErrExist and fs.ErrPermission.
var (
	ErrQuota   = errors.New("storage: quota exceeded")
	ErrNoSpace = errors.New("storage: no space left")
	// ErrBadName refuses a name the backend cannot keep; the errors
	// below that wrap it say why.
	ErrBadName      = errors.New("storage: invalid name")
	ErrNotSupported = errors.New("storage: not supported")
	ErrNotEmpty     = errors.New("storage: directory not empty")
	ErrIsDir        = errors.New("storage: is a directory")
	ErrNotDir       = errors.New("storage: not a directory")
	// ErrNotUTF8 is an ErrBadName: the backend keeps UTF-8 names only
	// and the name is not UTF-8 (see CapByteNames).
	ErrNotUTF8 = fmt.Errorf("%w: name is not valid UTF-8", ErrBadName)
	// ErrNameTooLong is an ErrBadName: a name or path too long for the
	// backend.
	ErrNameTooLong = fmt.Errorf("%w: name too long", ErrBadName)
	// ErrPartial is an operation that stopped partway and is finished by
	// repeating it (a directory rename on an object store).
	ErrPartial = errors.New("storage: operation stopped partway")
	// ErrProtected refuses to open a root that holds one of the server's
	// own files (its data directory, TLS key or user database).
	ErrProtected = errors.New("storage: root contains a protected server path")
)

// FS is one user's view of a storage backend, rooted at the user's home.
type FS interface {
	Stat(ctx context.Context, name vpath.Path) (fs.FileInfo, error)
	// ReadDir streams the entries of a directory; the caller must Close it.
	ReadDir(ctx context.Context, name vpath.Path) (DirIter, error)
	// Open opens a regular file for reading at offset.
	Open(ctx context.Context, name vpath.Path, offset int64) (File, error)
	// Create starts an upload. With offset 0 and !appendMode it writes a new
	// hidden temporary file that replaces name only on Commit; with an offset
	// (REST) or appendMode (APPE) it writes in place.
	Create(ctx context.Context, name vpath.Path, opts CreateOptions) (Upload, error)
	Mkdir(ctx context.Context, name vpath.Path, perm fs.FileMode) error
	// Remove deletes a file (not a directory).
	Remove(ctx context.Context, name vpath.Path) error
	// RemoveDir deletes an empty directory.
	RemoveDir(ctx context.Context, name vpath.Path) error
	Rename(ctx context.Context, from, to vpath.Path) error
	Chmod(ctx context.Context, name vpath.Path, mode fs.FileMode) error
	Chtimes(ctx context.Context, name vpath.Path, mtime time.Time) error
}

// CreateOptions says how an upload is written.
type CreateOptions struct {
	Offset int64       // REST offset: write in place from here (truncating after it)
	Append bool        // APPE: write in place at the end
	Perm   fs.FileMode // permission bits of a new file (after umask)
	// Exclusive fails with fs.ErrExist when the name exists (STOU).
	Exclusive bool
	// NoReplace makes a whole upload's Commit fail with fs.ErrExist when
	// the name exists by then, even if it appeared during the upload: for
	// users who may not overwrite (the anonymous drop box).
	NoReplace bool
	// Looked says the caller has just looked the name up (Stat), and Found
	// is what it found: a regular file, or nil for nothing. A backend
	// whose look-ups cost requests (S3) may then skip its own for a whole
	// upload (neither Append nor Offset). A name that changes meanwhile is
	// handled as without: the upload replaces the file, or Exclusive and
	// NoReplace refuse it at Commit.
	Looked bool
	Found  fs.FileInfo
}

// File is an open file being read.
type File interface {
	io.ReadCloser
}

// Upload is a file being written. Exactly one of Commit or Abort must be
// called; after a failed Commit nothing of the upload is left to abort.
type Upload interface {
	io.Writer
	// Commit makes the data visible under the target name; for an in-place
	// upload it keeps what arrived, so a cut upload can be resumed.
	Commit(ctx context.Context) error
	// Abort discards what was written: a replaced file keeps its old
	// content, an in-place upload is cut back to where it started and a
	// file the upload created is removed. It cleans up even when ctx is
	// done.
	Abort(ctx context.Context) error
}

// DirIter yields directory entries in batches, so listings stream.
type DirIter interface {
	// Next returns up to n entries; io.EOF (with no entries) at the end.
	Next(n int) ([]fs.FileInfo, error)
	Close() error
}

// OSFiler is an optional capability: a File backed by an *os.File, which lets
// the engine use sendfile for plain downloads.
type OSFiler interface {
	OSFile() *os.File
}

// SpaceReporter is an optional FS capability reporting free bytes.
type SpaceReporter interface {
	Free(ctx context.Context) (int64, error)
}

// UploadStater is an optional FS capability: StatUpload is Stat of a name
// that a whole upload (STOR) is about to write, for a backend whose cheaper
// look-up may miss a directory that another writer made a few seconds ago
// (the upload then puts a file beside it, as when the directory comes while
// the upload's data arrives). Every other command's look-up is Stat.
type UploadStater interface {
	StatUpload(ctx context.Context, name vpath.Path) (fs.FileInfo, error)
}

// StatUpload looks name up before a whole upload: with the UploadStater of
// fsys or of the FS under its wrappers (Unwrap() FS, whose Stat passes
// through), or else with fsys.Stat.
func StatUpload(ctx context.Context, fsys FS, name vpath.Path) (fs.FileInfo, error) {
	if us, ok := capabilityOf[UploadStater](fsys); ok {
		return us.StatUpload(ctx, name)
	}
	return fsys.Stat(ctx, name)
}

// capabilityOf returns v as a T, or the first FS under v's wrappers
// (Unwrap() FS) that is one.
func capabilityOf[T any](v any) (T, bool) {
	for v != nil {
		if c, ok := v.(T); ok {
			return c, true
		}
		w, ok := v.(interface{ Unwrap() FS })
		if !ok {
			break
		}
		v = w.Unwrap()
	}
	var zero T
	return zero, false
}

// NoReplaceRenamer is an optional FS capability: RenameNoReplace renames
// like Rename, but fails with fs.ErrExist, atomically, when to exists. The
// engine renames with it for users who may not overwrite.
type NoReplaceRenamer interface {
	RenameNoReplace(ctx context.Context, from, to vpath.Path) error
}

// RenameNoReplace renames from to to in fsys without replacing an existing
// to, or fails with ErrNotSupported when fsys cannot do that atomically.
func RenameNoReplace(ctx context.Context, fsys FS, from, to vpath.Path) error {
	if r, ok := fsys.(NoReplaceRenamer); ok {
		return r.RenameNoReplace(ctx, from, to)
	}
	return ErrNotSupported
}

// Capabilities says which optional parts of the FS contract a backend
// implements; the engine's FEAT and command rules follow it.
type Capabilities uint32

const (
	// CapWriteAt: uploads in place at an offset or at the end (REST+STOR,
	// APPE). Without it Create refuses Offset and Append with
	// ErrNotSupported; Exclusive still works.
	CapWriteAt Capabilities = 1 << iota
	// CapChtimes: Chtimes sets modification times (MFMT).
	CapChtimes
	// CapChmod: Chmod sets permission bits (SITE CHMOD).
	CapChmod
	// CapByteNames: names may be any byte string but NUL and '/', not only
	// UTF-8 (local disk on Linux). Without it the engine refuses a name
	// that is not valid UTF-8 with 553 before any storage call, and a
	// backend that gets one anyway fails with ErrNotUTF8. It is opt-in:
	// CapAll leaves it out, so a backend must declare it.
	CapByteNames
	// CapUnixStat: the FileInfo.Sys() of Stat and ReadDir entries is a
	// *syscall.Stat_t, whose device, inode, owner and group the engine
	// offers as the MLST facts unique, UNIX.owner and UNIX.group. Without
	// it FEAT and OPTS MLST leave those facts out. Opt-in, like
	// CapByteNames.
	CapUnixStat

	// CapAbortRestores: Abort of an in-place upload leaves the file exactly
	// as it was before the upload, instead of cut back to where the upload
	// started (an object store writes nothing in place before Commit). Not
	// in CapAll.
	CapAbortRestores

	// CapUploadKeepsName: a running upload lands on the name it started
	// on when it commits, whatever renames of that file or of a directory
	// above it happen meanwhile (an object store's upload is a request to
	// one key; on a disk the open file follows the rename). A rename of a
	// file an in-place upload writes leaves a copy of the old content
	// under the new name and the upload brings the file back at the old
	// one. Not in CapAll.
	CapUploadKeepsName

	// CapAll is what a backend without a Capabilities method offers.
	CapAll = CapWriteAt | CapChtimes | CapChmod
)

// Has reports whether every capability in want is present.
func (c Capabilities) Has(want Capabilities) bool { return c&want == want }

// Capable is an optional capability of an FS or an Opener.
type Capable interface {
	Capabilities() Capabilities
}

// CapsOf reports the capabilities of an FS or Opener: CapAll unless it
// says otherwise, none for nil. A wrapper without a Capabilities method of
// its own is seen through its Unwrap() FS method.
func CapsOf(v any) Capabilities {
	for v != nil {
		switch w := v.(type) {
		case Capable:
			return w.Capabilities()
		case interface{ Unwrap() FS }:
			v = w.Unwrap()
			continue
		}
		return CapAll
	}
	return 0
}

// Opener opens the storage of a location: what a user's account names as
// its home. The location means what the backend says (a host directory for
// local disk, a key prefix for an object store); the engine never
// interprets it.
type Opener interface {
	Open(ctx context.Context, location string) (FS, error)
}

// OpenerFunc adapts a function to an Opener.
type OpenerFunc func(ctx context.Context, location string) (FS, error)

// Open calls f.
func (f OpenerFunc) Open(ctx context.Context, location string) (FS, error) { return f(ctx, location) }

// HomeMaker is an optional Opener capability: it creates a location's root
// when missing, before the first Open. Without it a location must exist.
type HomeMaker interface {
	MakeHome(ctx context.Context, location string) error
}

// Sweeper is an optional Opener capability: it removes the leftovers of
// uploads cut by a crash (names starting with TempPrefix) last written
// before cutoff, so that it may run while new uploads go on.
type Sweeper interface {
	Sweep(ctx context.Context, cutoff time.Time) (removed int, err error)
}

// TempPrefix starts the names of in-progress uploads. The engine never lists
// such names nor lets a client reach them, and start-up sweeps leftovers.
const TempPrefix = ".ferry-upload-"

// Package storage defines the file-system seam under the protocol engine.
// Names are slash-separated, relative to the user's root, and already
// validated by package vpath ("." is the root); backends accept nothing else.
package storage

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"time"
)

// Sentinel errors besides fs.ErrNotExist, fs.ErrExist and fs.ErrPermission.
var (
	ErrQuota        = errors.New("storage: quota exceeded")
	ErrNoSpace      = errors.New("storage: no space left")
	ErrBadName      = errors.New("storage: invalid name")
	ErrNotSupported = errors.New("storage: not supported")
	ErrNotEmpty     = errors.New("storage: directory not empty")
	ErrIsDir        = errors.New("storage: is a directory")
	ErrNotDir       = errors.New("storage: not a directory")
)

// FS is one user's view of a storage backend, rooted at the user's home.
type FS interface {
	Stat(ctx context.Context, name string) (fs.FileInfo, error)
	// ReadDir streams the entries of a directory; the caller must Close it.
	ReadDir(ctx context.Context, name string) (DirIter, error)
	// Open opens a regular file for reading at offset.
	Open(ctx context.Context, name string, offset int64) (File, error)
	// Create starts an upload. With offset 0 and !appendMode it writes a new
	// hidden temporary file that replaces name only on Commit; with an offset
	// (REST) or appendMode (APPE) it writes in place.
	Create(ctx context.Context, name string, opts CreateOptions) (Upload, error)
	Mkdir(ctx context.Context, name string, perm fs.FileMode) error
	// Remove deletes a file (not a directory).
	Remove(ctx context.Context, name string) error
	// RemoveDir deletes an empty directory.
	RemoveDir(ctx context.Context, name string) error
	Rename(ctx context.Context, from, to string) error
	Chmod(ctx context.Context, name string, mode fs.FileMode) error
	Chtimes(ctx context.Context, name string, mtime time.Time) error
}

// CreateOptions says how an upload is written.
type CreateOptions struct {
	Offset int64       // REST offset: write in place from here (truncating after it)
	Append bool        // APPE: write in place at the end
	Perm   fs.FileMode // permission bits of a new file (after umask)
	// Exclusive fails with fs.ErrExist when the name exists (STOU).
	Exclusive bool
}

// File is an open file being read.
type File interface {
	io.ReadCloser
}

// Upload is a file being written. Exactly one of Commit or Abort must be called.
type Upload interface {
	io.Writer
	// Commit makes the data visible under the target name; for an in-place
	// upload it keeps what arrived, so a cut upload can be resumed.
	Commit() error
	// Abort discards what was written: a replaced file keeps its old
	// content, an in-place upload is cut back to where it started.
	Abort() error
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

// TempPrefix starts the names of in-progress uploads. The engine never lists
// such names nor lets a client reach them, and start-up sweeps leftovers.
const TempPrefix = ".ferry-upload-"

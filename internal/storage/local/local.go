// Package local is the local-disk storage backend. Every operation goes
// through an os.Root, so no name or symlink can reach outside the user's home.
package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
	"time"

	"github.com/ferryftp/ferry/internal/storage"
)

// FS is a storage.FS rooted at a host directory.
type FS struct {
	root *os.Root
}

var _ storage.FS = (*FS)(nil)

// Open roots a file system at dir, which must exist.
func Open(dir string) (*FS, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &FS{root: r}, nil
}

// Close releases the root directory handle.
func (f *FS) Close() error { return f.root.Close() }

func (f *FS) Stat(_ context.Context, name string) (fs.FileInfo, error) {
	fi, err := f.root.Stat(name)
	return fi, mapErr(err)
}

// Lstat is Stat of a symbolic link itself, not of its target.
func (f *FS) Lstat(_ context.Context, name string) (fs.FileInfo, error) {
	fi, err := f.root.Lstat(name)
	return fi, mapErr(err)
}

func (f *FS) ReadDir(_ context.Context, name string) (storage.DirIter, error) {
	// O_DIRECTORY: a FIFO fails at once instead of blocking the open.
	d, err := f.root.OpenFile(name, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return nil, mapErr(err)
	}
	fi, err := d.Stat()
	if err != nil {
		d.Close()
		return nil, mapErr(err)
	}
	if !fi.IsDir() {
		d.Close()
		return nil, storage.ErrNotDir
	}
	return &dirIter{f: d, dir: name, fsys: f}, nil
}

type dirIter struct {
	f    *os.File
	dir  string
	fsys *FS
}

// Next reads entries with Lstat semantics, then resolves symlinks that stay
// inside the root so that listings show what the client can actually open.
func (it *dirIter) Next(n int) ([]fs.FileInfo, error) {
	infos, err := it.f.Readdir(n)
	if err != nil && !errors.Is(err, io.EOF) {
		return infos, mapErr(err)
	}
	if len(infos) == 0 {
		return nil, io.EOF
	}
	for i, fi := range infos {
		if fi.Mode()&fs.ModeSymlink != 0 {
			if t, err := it.fsys.root.Stat(path.Join(it.dir, fi.Name())); err == nil {
				infos[i] = renamed{t, fi.Name()}
			}
		}
	}
	return infos, nil
}

func (it *dirIter) Close() error { return it.f.Close() }

// renamed is a FileInfo of a link's target under the link's own name.
type renamed struct {
	fs.FileInfo
	name string
}

func (r renamed) Name() string { return r.name }

func (f *FS) Open(_ context.Context, name string, offset int64) (storage.File, error) {
	// O_NONBLOCK: opening a FIFO must not wait for a writer; the type
	// check below refuses it. Regular files ignore the flag.
	fl, err := f.root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, mapErr(err)
	}
	fi, err := fl.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = storage.ErrIsDir
		if !fi.IsDir() {
			err = fs.ErrPermission // devices, pipes and sockets are never served
		}
	}
	if err == nil && offset > 0 {
		_, err = fl.Seek(offset, io.SeekStart)
	}
	if err != nil {
		fl.Close()
		return nil, mapErr(err)
	}
	return file{fl}, nil
}

type file struct{ *os.File }

// Read maps errors like every other method: *os.File's carry the host path.
func (f file) Read(p []byte) (int, error) {
	n, err := f.File.Read(p)
	if err != nil && err != io.EOF {
		err = mapErr(err)
	}
	return n, err
}

func (f file) OSFile() *os.File { return f.File }

func (f *FS) Create(_ context.Context, name string, o storage.CreateOptions) (storage.Upload, error) {
	if o.Perm == 0 {
		o.Perm = 0o644
	}
	inPlaceMode := o.Append || o.Offset > 0 || o.Exclusive
	// Stat, not Lstat: a link to a directory is a directory to the client.
	if fi, err := f.root.Stat(name); err == nil && fi.IsDir() {
		return nil, storage.ErrIsDir
	} else if err == nil && !fi.Mode().IsRegular() && inPlaceMode {
		return nil, fs.ErrPermission // never write into devices or FIFOs
	}
	if inPlaceMode {
		// REST+STOR and APPE write in place: resuming needs the partial
		// data. STOU too, and it never touches an existing file.
		flag := os.O_WRONLY | os.O_CREATE | syscall.O_NONBLOCK
		if o.Exclusive {
			flag |= os.O_EXCL
		}
		fl, err := f.root.OpenFile(name, flag, o.Perm)
		if errors.Is(err, syscall.ENXIO) {
			err = fs.ErrPermission // a FIFO swapped in after the Stat
		}
		if err != nil {
			return nil, mapErr(err)
		}
		if fi, err := fl.Stat(); err != nil || !fi.Mode().IsRegular() {
			fl.Close()
			if err == nil {
				err = fs.ErrPermission
			}
			return nil, mapErr(err)
		}
		var pos int64
		if o.Append {
			pos, err = fl.Seek(0, io.SeekEnd)
		} else if err = fl.Truncate(o.Offset); err == nil {
			pos, err = fl.Seek(o.Offset, io.SeekStart)
		}
		if err != nil {
			fl.Close()
			return nil, mapErr(err)
		}
		u := &inPlace{f: fl, start: pos}
		if o.Exclusive {
			u.removeOnAbort = func() { f.root.Remove(name) }
		}
		return u, nil
	}
	dir, base := path.Split(name)
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := dir + storage.TempPrefix + hex.EncodeToString(rnd[:]) + "-" + base
	if len(tmp)-len(dir) > 255 {
		tmp = dir + storage.TempPrefix + hex.EncodeToString(rnd[:])
	}
	fl, err := f.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, o.Perm)
	if err != nil {
		return nil, mapErr(err)
	}
	return &atomic{f: fl, root: f.root, tmp: tmp, name: name}, nil
}

// atomic writes a temporary file beside the target and renames it over the
// target on Commit, so a failed upload never harms the previous file.
type atomic struct {
	f         *os.File
	root      *os.Root
	tmp, name string
}

func (u *atomic) Write(p []byte) (int, error) {
	n, err := u.f.Write(p)
	return n, mapErr(err)
}

// ReadFrom lets io.Copy from a TCP connection use splice.
func (u *atomic) ReadFrom(r io.Reader) (int64, error) {
	n, err := u.f.ReadFrom(r)
	return n, mapErr(err)
}

func (u *atomic) Commit() error {
	if err := u.f.Close(); err != nil {
		u.root.Remove(u.tmp)
		return mapErr(err)
	}
	if err := u.root.Rename(u.tmp, u.name); err != nil {
		u.root.Remove(u.tmp)
		return mapErr(err)
	}
	return nil
}

func (u *atomic) Abort() error {
	u.f.Close()
	return mapErr(u.root.Remove(u.tmp))
}

// inPlace writes straight into the target (REST, APPE, STOU). Abort cuts
// the file back to where this upload started.
type inPlace struct {
	f             *os.File
	start         int64
	removeOnAbort func()
}

func (u *inPlace) Write(p []byte) (int, error) {
	n, err := u.f.Write(p)
	return n, mapErr(err)
}

func (u *inPlace) ReadFrom(r io.Reader) (int64, error) {
	n, err := u.f.ReadFrom(r)
	return n, mapErr(err)
}

func (u *inPlace) Commit() error { return mapErr(u.f.Close()) }

func (u *inPlace) Abort() error {
	u.f.Truncate(u.start)
	err := u.f.Close()
	if u.removeOnAbort != nil {
		u.removeOnAbort()
	}
	return mapErr(err)
}

func (f *FS) Mkdir(_ context.Context, name string, perm fs.FileMode) error {
	return mapErr(f.root.Mkdir(name, perm))
}

func (f *FS) Remove(_ context.Context, name string) error {
	fi, err := f.root.Lstat(name)
	if err != nil {
		return mapErr(err)
	}
	if fi.IsDir() {
		return storage.ErrIsDir
	}
	return mapErr(f.root.Remove(name))
}

func (f *FS) RemoveDir(_ context.Context, name string) error {
	fi, err := f.root.Lstat(name)
	if err != nil {
		return mapErr(err)
	}
	if !fi.IsDir() {
		return storage.ErrNotDir
	}
	return mapErr(f.root.Remove(name))
}

func (f *FS) Rename(_ context.Context, from, to string) error {
	return mapErr(f.root.Rename(from, to))
}

func (f *FS) Chmod(_ context.Context, name string, mode fs.FileMode) error {
	return mapErr(f.root.Chmod(name, mode&fs.ModePerm))
}

func (f *FS) Chtimes(_ context.Context, name string, mtime time.Time) error {
	return mapErr(f.root.Chtimes(name, time.Time{}, mtime))
}

// Free reports the bytes available to unprivileged users on the file system.
func (f *FS) Free(_ context.Context) (int64, error) {
	d, err := f.root.Open(".")
	if err != nil {
		return 0, mapErr(err)
	}
	defer d.Close()
	var st syscall.Statfs_t
	if err := syscall.Fstatfs(int(d.Fd()), &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * st.Bsize, nil
}

// ScanUsage counts the regular files under the root and their bytes, by
// their own entries (a symbolic link counts as nothing) and without the
// temporary files of uploads in progress; unreadable directories are
// skipped.
func (f *FS) ScanUsage(ctx context.Context) (bytes, files int64, err error) {
	bytes, files, err = usageDir(ctx, f.root, ".")
	return bytes, files, mapErr(err)
}

func usageDir(ctx context.Context, root *os.Root, dir string) (bytes, files int64, err error) {
	d, err := root.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		if dir == "." {
			return 0, 0, err
		}
		return 0, 0, nil
	}
	defer d.Close()
	for {
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		entries, rerr := d.ReadDir(256)
		for _, e := range entries {
			switch {
			case strings.HasPrefix(e.Name(), storage.TempPrefix):
			case e.IsDir():
				b, n, err := usageDir(ctx, root, path.Join(dir, e.Name()))
				if err != nil {
					return 0, 0, err
				}
				bytes, files = bytes+b, files+n
			case e.Type().IsRegular():
				if fi, err := e.Info(); err == nil {
					bytes += fi.Size()
					files++
				}
			}
		}
		if rerr != nil {
			return bytes, files, nil
		}
	}
}

// Sweep removes leftovers of uploads interrupted by a crash, below dir.
func Sweep(dir string) (removed int, err error) { return SweepBefore(dir, time.Now()) }

// SweepBefore is Sweep for temporary files last written before cutoff, so
// that a server can sweep while it serves without touching new uploads.
func SweepBefore(dir string, cutoff time.Time) (removed int, err error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return 0, err
	}
	defer root.Close()
	return sweepDir(root, ".", cutoff), nil
}

// sweepDir walks one directory in batches, so a directory of a million
// entries costs the memory of one batch (fs.WalkDir would read it whole).
func sweepDir(root *os.Root, dir string, cutoff time.Time) (removed int) {
	d, err := root.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return 0 // unreadable parts are skipped, not fatal
	}
	defer d.Close()
	for {
		entries, err := d.ReadDir(256)
		for _, e := range entries {
			p := path.Join(dir, e.Name())
			switch {
			case e.IsDir():
				removed += sweepDir(root, p, cutoff)
			case strings.HasPrefix(e.Name(), storage.TempPrefix):
				if fi, err := e.Info(); err == nil && fi.ModTime().Before(cutoff) && root.Remove(p) == nil {
					removed++
				}
			}
		}
		if err != nil {
			return removed
		}
	}
}

// mapErr turns OS errors into storage's vocabulary; the path inside
// *PathError is dropped so no host path can reach a client.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fs.ErrNotExist
	case errors.Is(err, syscall.ENOTEMPTY): // before ErrExist, which matches it
		return storage.ErrNotEmpty
	case errors.Is(err, fs.ErrExist):
		return fs.ErrExist
	case errors.Is(err, fs.ErrPermission):
		return fs.ErrPermission
	case errors.Is(err, syscall.ENOSPC):
		return storage.ErrNoSpace
	case errors.Is(err, syscall.EFBIG): // a REST offset past the file system's limit
		return storage.ErrNoSpace
	case errors.Is(err, syscall.EDQUOT):
		return storage.ErrQuota
	case errors.Is(err, syscall.EISDIR):
		return storage.ErrIsDir
	case errors.Is(err, syscall.ENOTDIR):
		return storage.ErrNotDir
	case errors.Is(err, syscall.ENAMETOOLONG), errors.Is(err, syscall.EINVAL):
		return storage.ErrBadName
	case strings.Contains(err.Error(), "path escapes from parent"):
		return fs.ErrPermission
	}
	// Anything else keeps its errno for the log, but not the path.
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return fmt.Errorf("%s: %w", le.Op, le.Err)
	}
	return err
}

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
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/vpath"
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

// caps is what local disk offers: everything, the Unix stat of every entry,
// and byte names on Linux, whose file systems take any byte string but NUL
// and '/' as a name (one that does not, vfat or a ZFS dataset with
// utf8only, refuses such a name with EILSEQ or EINVAL: ErrNotUTF8,
// ErrBadName).
var caps = func() storage.Capabilities {
	c := storage.CapAll | storage.CapUnixStat
	if runtime.GOOS == "linux" {
		c |= storage.CapByteNames
	}
	return c
}()

// Capabilities reports everything, storage.CapUnixStat, and
// storage.CapByteNames on Linux.
func (f *FS) Capabilities() storage.Capabilities { return caps }

func (f *FS) Stat(_ context.Context, p vpath.Path) (fs.FileInfo, error) {
	name := p.Rel()
	fi, err := f.root.Stat(name)
	return fi, mapErr(err)
}

// Lstat is Stat of a symbolic link itself, not of its target.
func (f *FS) Lstat(_ context.Context, p vpath.Path) (fs.FileInfo, error) {
	name := p.Rel()
	fi, err := f.root.Lstat(name)
	return fi, mapErr(err)
}

func (f *FS) ReadDir(_ context.Context, p vpath.Path) (storage.DirIter, error) {
	name := p.Rel()
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
	return newDirIter(d, name, f), nil
}

// dirIter lists with (*os.File).Readdir, where dirent_linux.go's
// getdents64 iterator is not built.
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

func (f *FS) Open(_ context.Context, p vpath.Path, offset int64) (storage.File, error) {
	name := p.Rel()
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

func (f *FS) Create(_ context.Context, p vpath.Path, o storage.CreateOptions) (storage.Upload, error) {
	name := p.Rel()
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
	// The upload holds its directory open: commit and abort act on the
	// directory wherever a rename moves it, so no temporary file is left
	// behind in a moved directory.
	dirName, base := path.Split(name)
	if dirName == "" {
		dirName = "."
	}
	dir, err := f.root.OpenFile(dirName, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return nil, mapErr(err)
	}
	if inPlaceMode {
		u, err := f.createInPlace(name, o)
		if err != nil {
			dir.Close()
			return nil, err
		}
		u.dir, u.base = dir, base
		return u, nil
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := storage.TempPrefix + hex.EncodeToString(rnd[:]) + "-" + base
	if len(tmp) > 255 {
		tmp = storage.TempPrefix + hex.EncodeToString(rnd[:])
	}
	// O_CREAT|O_EXCL never follows a symlink; tmp is one path element.
	fd, err := unix.Openat(int(dir.Fd()), tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, uint32(o.Perm))
	if err != nil {
		dir.Close()
		return nil, mapErr(err)
	}
	return &atomic{f: os.NewFile(uintptr(fd), tmp), dir: dir, tmp: tmp, base: base, noReplace: o.NoReplace}, nil
}

// createInPlace opens name for writing where it is (REST, APPE, STOU),
// creating it when missing; it remembers whether it did, so that Abort
// removes a file nobody had before.
func (f *FS) createInPlace(name string, o storage.CreateOptions) (*inPlace, error) {
	var fl *os.File
	var err error
	created := false
	for try := 0; try < 2 && fl == nil; try++ {
		if !o.Exclusive {
			fl, err = f.root.OpenFile(name, os.O_WRONLY|syscall.O_NONBLOCK, 0)
			if err == nil || !errors.Is(err, fs.ErrNotExist) {
				break
			}
		}
		fl, err = f.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NONBLOCK, o.Perm)
		if err == nil {
			created = true
		} else if o.Exclusive || !errors.Is(err, fs.ErrExist) {
			break // an existing name (or a name appearing now) is retried once
		}
	}
	if errors.Is(err, syscall.ENXIO) {
		err = fs.ErrPermission // a FIFO swapped in after the Stat
	}
	if err != nil {
		return nil, mapErr(err)
	}
	u := &inPlace{f: fl, created: created}
	fi, err := fl.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fs.ErrPermission
	}
	if err == nil {
		dropHashes(int(fl.Fd())) // the content changes from here on
	}
	if err == nil && o.Append {
		u.start, err = fl.Seek(0, io.SeekEnd)
	} else if err == nil {
		if err = fl.Truncate(o.Offset); err == nil {
			u.start, err = fl.Seek(o.Offset, io.SeekStart)
		}
	}
	if err != nil {
		fl.Close()
		if created {
			f.root.Remove(name)
		}
		return nil, mapErr(err)
	}
	return u, nil
}

// atomic writes a temporary file beside the target and renames it over the
// target on Commit, so a failed upload never harms the previous file.
type atomic struct {
	f         *os.File
	dir       *os.File // the directory of tmp and the target, held open
	tmp, base string   // names inside dir
	noReplace bool
	done      bool
	hashes    map[string][]byte // digests of the data, stored at Commit (SetHashes)
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

func (u *atomic) Commit(context.Context) error {
	if u.done {
		return nil
	}
	u.done = true
	defer u.dir.Close()
	dfd := int(u.dir.Fd())
	// Before the rename, so the file never shows under its name without
	// the digests of its data.
	setHashes(int(u.f.Fd()), u.hashes)
	err := u.f.Close()
	if err == nil && u.noReplace {
		err = renameNoReplace(dfd, u.tmp, u.base)
	} else if err == nil {
		err = unix.Renameat(dfd, u.tmp, dfd, u.base)
	}
	if err != nil {
		unix.Unlinkat(dfd, u.tmp, 0)
		return mapErr(err)
	}
	return nil
}

// renameNoReplace renames from over to only when to does not exist, with
// renameat2(RENAME_NOREPLACE), or with link and unlink on file systems
// without it.
func renameNoReplace(dfd int, from, to string) error {
	err := unix.Renameat2(dfd, from, dfd, to, unix.RENAME_NOREPLACE)
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) {
		return err
	}
	if err := unix.Linkat(dfd, from, dfd, to, 0); err != nil {
		return err
	}
	return unix.Unlinkat(dfd, from, 0)
}

func (u *atomic) Abort(context.Context) error {
	if u.done {
		return nil
	}
	u.done = true
	u.f.Close()
	err := unix.Unlinkat(int(u.dir.Fd()), u.tmp, 0)
	u.dir.Close()
	return mapErr(err)
}

// inPlace writes straight into the target (REST, APPE, STOU). Abort cuts
// the file back to where this upload started, or removes it when the
// upload created it.
type inPlace struct {
	f       *os.File
	start   int64
	created bool
	dir     *os.File // the target's directory, held open
	base    string
	done    bool
}

func (u *inPlace) Write(p []byte) (int, error) {
	n, err := u.f.Write(p)
	return n, mapErr(err)
}

func (u *inPlace) ReadFrom(r io.Reader) (int64, error) {
	n, err := u.f.ReadFrom(r)
	return n, mapErr(err)
}

func (u *inPlace) Commit(context.Context) error {
	if u.done {
		return nil
	}
	u.done = true
	u.dir.Close()
	return mapErr(u.f.Close())
}

func (u *inPlace) Abort(context.Context) error {
	if u.done {
		return nil
	}
	u.done = true
	defer u.dir.Close()
	if u.created {
		// Only the file this upload made, wherever its directory moved:
		// not one that replaced it under the same name since.
		var mine, there unix.Stat_t
		if unix.Fstat(int(u.f.Fd()), &mine) == nil &&
			unix.Fstatat(int(u.dir.Fd()), u.base, &there, unix.AT_SYMLINK_NOFOLLOW) == nil &&
			mine.Dev == there.Dev && mine.Ino == there.Ino {
			u.f.Close()
			return mapErr(unix.Unlinkat(int(u.dir.Fd()), u.base, 0))
		}
	}
	u.f.Truncate(u.start)
	return mapErr(u.f.Close())
}

func (f *FS) Mkdir(_ context.Context, p vpath.Path, perm fs.FileMode) error {
	name := p.Rel()
	return mapErr(f.root.Mkdir(name, perm))
}

func (f *FS) Remove(_ context.Context, p vpath.Path) error {
	name := p.Rel()
	fi, err := f.root.Lstat(name)
	if err != nil {
		return mapErr(err)
	}
	if fi.IsDir() {
		return storage.ErrIsDir
	}
	return mapErr(f.root.Remove(name))
}

func (f *FS) RemoveDir(_ context.Context, p vpath.Path) error {
	name := p.Rel()
	fi, err := f.root.Lstat(name)
	if err != nil {
		return mapErr(err)
	}
	if !fi.IsDir() {
		return storage.ErrNotDir
	}
	return mapErr(f.root.Remove(name))
}

func (f *FS) Rename(_ context.Context, fromP, toP vpath.Path) error {
	from, to := fromP.Rel(), toP.Rel()
	return mapErr(f.root.Rename(from, to))
}

// RenameNoReplace renames like Rename but refuses a taken name with
// fs.ErrExist, atomically: renameat2(RENAME_NOREPLACE) between the two
// parent directories, opened through the root; on a file system without it,
// a file is linked and unlinked and a directory is not supported.
func (f *FS) RenameNoReplace(_ context.Context, fromP, toP vpath.Path) error {
	if fromP.IsRoot() || toP.IsRoot() {
		return fs.ErrPermission
	}
	fd, err := f.root.OpenFile(fromP.Dir().Rel(), os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return mapErr(err)
	}
	defer fd.Close()
	td, err := f.root.OpenFile(toP.Dir().Rel(), os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return mapErr(err)
	}
	defer td.Close()
	ffd, tfd := int(fd.Fd()), int(td.Fd())
	err = unix.Renameat2(ffd, fromP.Base(), tfd, toP.Base(), unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		var st unix.Stat_t
		if serr := unix.Fstatat(ffd, fromP.Base(), &st, unix.AT_SYMLINK_NOFOLLOW); serr != nil {
			return mapErr(serr)
		} else if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return storage.ErrNotSupported
		}
		if err = unix.Linkat(ffd, fromP.Base(), tfd, toP.Base(), 0); err == nil {
			err = unix.Unlinkat(ffd, fromP.Base(), 0)
		}
	}
	return mapErr(err)
}

func (f *FS) Chmod(_ context.Context, p vpath.Path, mode fs.FileMode) error {
	name := p.Rel()
	return mapErr(f.root.Chmod(name, mode&fs.ModePerm))
}

// Chtimes sets the modification time; digests stored with a file that were
// valid before stay valid (MFMT changes no content).
func (f *FS) Chtimes(_ context.Context, p vpath.Path, mtime time.Time) error {
	name := p.Rel()
	fl, ferr := f.root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	var valid map[string][]byte
	var size int64
	if ferr == nil {
		defer fl.Close()
		if valid = validHashes(int(fl.Fd())); valid != nil {
			fi, err := fl.Stat()
			if err != nil {
				valid = nil
			} else {
				size = fi.Size()
			}
		}
	}
	if err := f.root.Chtimes(name, time.Time{}, mtime); err != nil {
		return mapErr(err)
	}
	if valid != nil {
		refreshHashes(int(fl.Fd()), valid, size)
	}
	return nil
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
	walk(context.Background(), root, ".", func(p string, e fs.DirEntry) {
		if !e.IsDir() && strings.HasPrefix(e.Name(), storage.TempPrefix) {
			if fi, err := e.Info(); err == nil && fi.ModTime().Before(cutoff) && root.Remove(p) == nil {
				removed++
			}
		}
	})
	return removed, nil
}

// walk calls fn for every entry below dir, depth first, reading each
// directory in batches, so a directory of a million entries costs the
// memory of one batch (fs.WalkDir would read it whole). Symlinks are not
// followed; unreadable parts are skipped. It stops when ctx ends.
func walk(ctx context.Context, root *os.Root, dir string, fn func(p string, e fs.DirEntry)) error {
	d, err := root.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil
	}
	defer d.Close()
	for {
		entries, err := d.ReadDir(256)
		for _, e := range entries {
			p := path.Join(dir, e.Name())
			if e.IsDir() {
				if err := walk(ctx, root, p, fn); err != nil {
					return err
				}
				continue
			}
			fn(p, e)
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if err != nil {
			return nil
		}
	}
}

// Opener opens local-disk storage: a location is an absolute host
// directory.
type Opener struct {
	// Protected lists host paths that no root may equal or contain: the
	// data directory, the TLS key's directory, the user database. Open
	// and MakeHome refuse such a root with storage.ErrProtected.
	Protected []string
	// SweepDirs are the directories Sweep cleans of crash leftovers.
	SweepDirs []string
}

var (
	_ storage.Opener    = (*Opener)(nil)
	_ storage.HomeMaker = (*Opener)(nil)
	_ storage.Sweeper   = (*Opener)(nil)
)

// Open roots a file system at the directory location.
func (o *Opener) Open(_ context.Context, location string) (storage.FS, error) {
	if err := CheckRoot(location, o.Protected); err != nil {
		return nil, err
	}
	return Open(location)
}

// Capabilities reports what the file systems it opens offer.
func (o *Opener) Capabilities() storage.Capabilities { return caps }

// MakeHome creates the directory location (and its parents) when missing.
func (o *Opener) MakeHome(_ context.Context, location string) error {
	if err := CheckRoot(location, o.Protected); err != nil {
		return err
	}
	return os.MkdirAll(location, 0o755)
}

// Sweep removes, below every SweepDirs entry, the temporary files of
// uploads last written before cutoff.
func (o *Opener) Sweep(_ context.Context, cutoff time.Time) (removed int, err error) {
	for _, d := range o.SweepDirs {
		n, serr := SweepBefore(d, cutoff)
		removed += n
		if serr != nil && !errors.Is(serr, fs.ErrNotExist) {
			err = errors.Join(err, serr)
		}
	}
	return removed, err
}

// CheckRoot refuses, with storage.ErrProtected, a root directory that is
// or contains one of the protected host paths, so that no user can
// download the server's key or database. Symlinks and bind mounts are seen
// through: every ancestor of each protected path is compared with the root
// by device and inode, and the paths are compared after resolving links.
func CheckRoot(dir string, protected []string) error {
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("%w: %q is not an absolute path", storage.ErrBadName, dir)
	}
	clean := filepath.Clean(dir)
	real, err := filepath.EvalSymlinks(clean)
	if err != nil {
		real = clean
	}
	rootInfo, statErr := os.Stat(real)
	for _, p := range protected {
		if p == "" {
			continue
		}
		pp := filepath.Clean(p)
		rp, err := filepath.EvalSymlinks(pp)
		if err != nil {
			rp = pp
		}
		for _, cand := range [][2]string{{clean, pp}, {real, rp}} {
			if within(cand[1], cand[0]) {
				return fmt.Errorf("%w: %s contains %s", storage.ErrProtected, dir, p)
			}
		}
		if statErr != nil {
			continue
		}
		for a := rp; ; a = filepath.Dir(a) {
			if fi, err := os.Stat(a); err == nil && os.SameFile(fi, rootInfo) {
				return fmt.Errorf("%w: %s contains %s", storage.ErrProtected, dir, p)
			}
			if a == filepath.Dir(a) {
				break
			}
		}
	}
	return nil
}

// within reports whether p is dir or below it.
func within(p, dir string) bool {
	if dir == "/" {
		return true
	}
	return p == dir || strings.HasPrefix(p, dir+string(filepath.Separator))
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
	case errors.Is(err, syscall.ENAMETOOLONG):
		return storage.ErrNameTooLong
	case errors.Is(err, syscall.EILSEQ):
		return storage.ErrNotUTF8
	case errors.Is(err, syscall.EINVAL):
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

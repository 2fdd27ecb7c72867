//go:build linux && (amd64 || arm64)

package local

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ferryftp/ferry/internal/storage"
)

// direntBufSize is the getdents64 buffer: about 1,300 entries of short
// names per call, where (*os.File).Readdir reads 8 KiB at a time.
const direntBufSize = 32 << 10

// parallelMin is the batch size from which the stats of a batch are split
// over two goroutines: below it the hand-off costs more than it saves.
const parallelMin = 64

var direntBufs = sync.Pool{New: func() any { b := make([]byte, direntBufSize); return &b }}

// newDirIter lists d with getdents64 into a large buffer and one
// fstatat(AT_SYMLINK_NOFOLLOW) per entry, relative to the directory's
// descriptor, straight into the syscall.Stat_t that the entry's FileInfo
// carries: no path is built and nothing but the batch is allocated.
func newDirIter(d *os.File, dir string, fsys *FS) storage.DirIter {
	return &getdentsIter{f: d, fd: int(d.Fd()), dir: dir, fsys: fsys, buf: direntBufs.Get().(*[]byte)}
}

type getdentsIter struct {
	f        *os.File
	fd       int
	dir      string
	fsys     *FS
	buf      *[]byte // from direntBufs; nil once closed
	pos, end int     // the unparsed records in *buf
	eof      bool
}

// statInfo is an entry's fs.FileInfo: its name and its lstat.
type statInfo struct {
	name string
	st   syscall.Stat_t
	err  syscall.Errno // of the fstatat; the entry is dropped when set
}

func (s *statInfo) Name() string       { return s.name }
func (s *statInfo) Size() int64        { return s.st.Size }
func (s *statInfo) Mode() fs.FileMode  { return fileMode(s.st.Mode) }
func (s *statInfo) ModTime() time.Time { return time.Unix(s.st.Mtim.Unix()) }
func (s *statInfo) IsDir() bool        { return s.st.Mode&syscall.S_IFMT == syscall.S_IFDIR }
func (s *statInfo) Sys() any           { return &s.st }

// fileMode converts a Unix mode as os.Lstat does.
func fileMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & syscall.S_IFMT {
	case syscall.S_IFBLK:
		mode |= fs.ModeDevice
	case syscall.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case syscall.S_IFDIR:
		mode |= fs.ModeDir
	case syscall.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case syscall.S_IFLNK:
		mode |= fs.ModeSymlink
	case syscall.S_IFSOCK:
		mode |= fs.ModeSocket
	}
	if m&syscall.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&syscall.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&syscall.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

// Next reads up to n names, stats them, and resolves symlinks that stay
// inside the root. An entry removed since getdents64 saw it is left out,
// as (*os.File).Readdir does.
func (it *getdentsIter) Next(n int) ([]fs.FileInfo, error) {
	if it.buf == nil {
		return nil, fs.ErrClosed
	}
	if n <= 0 {
		n = 256
	}
	for {
		out, err := it.next(n)
		if len(out) > 0 || err != nil {
			return out, err
		}
		// Every name of the batch was removed meanwhile: read on.
	}
}

func (it *getdentsIter) next(n int) ([]fs.FileInfo, error) {
	// names holds the batch's names, each ending in NUL for fstatat.
	var names []byte
	var offs []int
	var err error
	for len(offs) < n && err == nil {
		if it.pos >= it.end {
			if it.eof {
				break
			}
			err = it.fill()
			continue
		}
		name, reclen, ok := parseDirent((*it.buf)[it.pos:it.end])
		if !ok {
			err = errBadDirent
			break
		}
		it.pos += reclen
		if name == nil || string(name) == "." || string(name) == ".." {
			continue
		}
		if names == nil {
			names = make([]byte, 0, min(n, 1024)*24)
		}
		offs = append(offs, len(names))
		names = append(names, name...)
		names = append(names, 0)
	}
	if len(offs) == 0 {
		if err != nil {
			return nil, err
		}
		return nil, io.EOF
	}
	all := string(names) // one allocation for the batch's names
	infos := make([]statInfo, len(offs))
	for i, o := range offs {
		infos[i].name = all[o : o+strings.IndexByte(all[o:], 0)]
	}
	it.statAll(names, offs, infos)
	out := make([]fs.FileInfo, 0, len(infos))
	for i := range infos {
		si := &infos[i]
		switch {
		case si.err == syscall.ENOENT:
			continue
		case si.err != 0:
			if err == nil {
				err = mapErr(si.err)
			}
			continue
		case si.st.Mode&syscall.S_IFMT == syscall.S_IFLNK:
			if t, serr := it.fsys.root.Stat(path.Join(it.dir, si.name)); serr == nil {
				out = append(out, renamed{t, si.name})
				continue
			}
		}
		out = append(out, si)
	}
	if err != nil && len(out) == 0 {
		return nil, err
	}
	return out, err
}

var errBadDirent = errors.New("getdents64: malformed record")

// fill reads the next records into the buffer.
func (it *getdentsIter) fill() error {
	for {
		n, err := unix.Getdents(it.fd, *it.buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return mapErr(err)
		}
		it.pos, it.end = 0, n
		it.eof = n == 0
		return nil
	}
}

// statAll fills infos[i].st by fstatat of names[offs[i]:], splitting a
// large batch over two goroutines when there are CPUs for it: the stats
// are nearly all of a listing's time, and each is independent.
func (it *getdentsIter) statAll(names []byte, offs []int, infos []statInfo) {
	if len(offs) < parallelMin || runtime.GOMAXPROCS(0) < 2 {
		statRange(it.fd, names, offs, infos)
		return
	}
	h := len(offs) / 2
	done := make(chan struct{})
	go func() {
		statRange(it.fd, names, offs[h:], infos[h:])
		close(done)
	}()
	statRange(it.fd, names, offs[:h], infos[:h])
	<-done
}

func statRange(fd int, names []byte, offs []int, infos []statInfo) {
	for i, o := range offs {
		infos[i].err = fstatat(fd, &names[o], &infos[i].st)
	}
}

// fstatat is fstatat(fd, name, st, AT_SYMLINK_NOFOLLOW) with name already
// NUL-terminated, so no copy of it is made per call.
func fstatat(fd int, name *byte, st *syscall.Stat_t) syscall.Errno {
	for {
		_, _, e := syscall.Syscall6(sysFstatat, uintptr(fd), uintptr(unsafe.Pointer(name)),
			uintptr(unsafe.Pointer(st)), unix.AT_SYMLINK_NOFOLLOW, 0, 0)
		if e != syscall.EINTR {
			return e
		}
	}
}

// parseDirent parses the linux_dirent64 record at the start of b: d_ino
// (8 bytes), d_off (8), d_reclen (2), d_type (1), then the NUL-terminated
// name, padded to d_reclen. It returns the name (nil for a record whose
// inode is 0, which getdents64 may report for a deleted entry) and the
// record's length; ok is false when b does not hold a whole record.
func parseDirent(b []byte) (name []byte, reclen int, ok bool) {
	const nameOff = 19
	if len(b) < nameOff {
		return nil, 0, false
	}
	reclen = int(binary.NativeEndian.Uint16(b[16:]))
	if reclen <= nameOff || reclen > len(b) {
		return nil, 0, false
	}
	name = b[nameOff:reclen]
	n := bytes.IndexByte(name, 0)
	if n <= 0 {
		return nil, 0, false // no NUL within the record, or an empty name
	}
	if binary.NativeEndian.Uint64(b) == 0 {
		return nil, reclen, true
	}
	return name[:n], reclen, true
}

func (it *getdentsIter) Close() error {
	if it.buf != nil {
		direntBufs.Put(it.buf)
		it.buf = nil
	}
	return it.f.Close()
}

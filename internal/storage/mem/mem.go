// Package mem is an in-memory storage backend: the reference
// implementation of the storage contract without a host directory (as an
// object store will not have one), used by the engine's tests.
package mem

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferryftp/ferry/internal/storage"
)

// FS is a tree of nodes under one lock. Its zero value is not usable: call New.
type FS struct {
	mu   sync.Mutex
	root *node
}

var _ storage.FS = (*FS)(nil)

// New returns an empty file system.
func New() *FS {
	return &FS{root: &node{name: ".", mode: fs.ModeDir | 0o755, mtime: time.Now(), kids: map[string]*node{}}}
}

type node struct {
	name  string
	mode  fs.FileMode
	data  []byte
	mtime time.Time
	kids  map[string]*node // directories only
}

func (n *node) info() fs.FileInfo {
	return info{name: n.name, size: int64(len(n.data)), mode: n.mode, mtime: n.mtime}
}

type info struct {
	name  string
	size  int64
	mode  fs.FileMode
	mtime time.Time
}

func (i info) Name() string       { return i.name }
func (i info) Size() int64        { return i.size }
func (i info) Mode() fs.FileMode  { return i.mode }
func (i info) ModTime() time.Time { return i.mtime }
func (i info) IsDir() bool        { return i.mode.IsDir() }
func (i info) Sys() any           { return nil }

// split returns the parent directory of name and its last element; the
// root has no parent.
func (m *FS) split(name string) (*node, string, error) {
	if name == "." {
		return nil, ".", nil
	}
	elems := strings.Split(name, "/")
	dir := m.root
	for _, e := range elems[:len(elems)-1] {
		next := dir.kids[e]
		switch {
		case next == nil:
			return nil, "", fs.ErrNotExist
		case !next.mode.IsDir():
			return nil, "", storage.ErrNotDir
		}
		dir = next
	}
	return dir, elems[len(elems)-1], nil
}

func (m *FS) lookup(name string) (*node, error) {
	dir, base, err := m.split(name)
	if err != nil {
		return nil, err
	}
	if dir == nil {
		return m.root, nil
	}
	if n := dir.kids[base]; n != nil {
		return n, nil
	}
	return nil, fs.ErrNotExist
}

func (m *FS) Stat(_ context.Context, name string) (fs.FileInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookup(name)
	if err != nil {
		return nil, err
	}
	return n.info(), nil
}

func (m *FS) ReadDir(_ context.Context, name string) (storage.DirIter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookup(name)
	if err != nil {
		return nil, err
	}
	if !n.mode.IsDir() {
		return nil, storage.ErrNotDir
	}
	it := &dirIter{}
	for _, k := range n.kids {
		it.infos = append(it.infos, k.info())
	}
	slices.SortFunc(it.infos, func(a, b fs.FileInfo) int { return strings.Compare(a.Name(), b.Name()) })
	return it, nil
}

type dirIter struct{ infos []fs.FileInfo }

func (it *dirIter) Next(n int) ([]fs.FileInfo, error) {
	if len(it.infos) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(it.infos))
	b := it.infos[:n]
	it.infos = it.infos[n:]
	return b, nil
}

func (it *dirIter) Close() error { return nil }

func (m *FS) Open(_ context.Context, name string, offset int64) (storage.File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookup(name)
	if err != nil {
		return nil, err
	}
	if n.mode.IsDir() {
		return nil, storage.ErrIsDir
	}
	r := bytes.NewReader(bytes.Clone(n.data))
	r.Seek(offset, io.SeekStart)
	return io.NopCloser(r), nil
}

func (m *FS) Create(_ context.Context, name string, o storage.CreateOptions) (storage.Upload, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir, base, err := m.split(name)
	if err != nil {
		return nil, err
	}
	if dir == nil {
		return nil, storage.ErrIsDir
	}
	old := dir.kids[base]
	switch {
	case old != nil && old.mode.IsDir():
		return nil, storage.ErrIsDir
	case old != nil && o.Exclusive:
		return nil, fs.ErrExist
	}
	newNode := func() *node {
		return &node{name: base, mode: o.Perm & fs.ModePerm, mtime: time.Now()}
	}
	if !o.Append && o.Offset == 0 && !o.Exclusive {
		return &memUpload{m: m, dir: dir, base: base, n: newNode(), atomic: true}, nil
	}
	n := old
	if n == nil {
		n = newNode()
		dir.kids[base] = n
	}
	start := int64(len(n.data))
	if !o.Append {
		start = o.Offset
		n.data = append(n.data, make([]byte, max(0, o.Offset-int64(len(n.data))))...)[:o.Offset]
	}
	return &memUpload{m: m, dir: dir, base: base, n: n, start: start, fresh: old == nil && o.Exclusive}, nil
}

// memUpload writes a detached node (atomic: linked on Commit) or the
// target itself (in place: cut back to start on Abort).
type memUpload struct {
	m      *FS
	dir    *node
	base   string
	n      *node
	start  int64
	atomic bool
	fresh  bool // created by an exclusive upload: Abort removes it
}

func (u *memUpload) Write(p []byte) (int, error) {
	u.m.mu.Lock()
	defer u.m.mu.Unlock()
	u.n.data = append(u.n.data, p...)
	u.n.mtime = time.Now()
	return len(p), nil
}

func (u *memUpload) Commit() error {
	u.m.mu.Lock()
	defer u.m.mu.Unlock()
	if u.atomic {
		if old := u.dir.kids[u.base]; old != nil && old.mode.IsDir() {
			return storage.ErrIsDir
		}
		u.dir.kids[u.base] = u.n
	}
	return nil
}

func (u *memUpload) Abort() error {
	u.m.mu.Lock()
	defer u.m.mu.Unlock()
	switch {
	case u.atomic:
	case u.fresh:
		if u.dir.kids[u.base] == u.n {
			delete(u.dir.kids, u.base)
		}
	default:
		u.n.data = u.n.data[:min(u.start, int64(len(u.n.data)))]
	}
	return nil
}

func (m *FS) Mkdir(_ context.Context, name string, perm fs.FileMode) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir, base, err := m.split(name)
	switch {
	case err != nil:
		return err
	case dir == nil || dir.kids[base] != nil:
		return fs.ErrExist
	}
	dir.kids[base] = &node{name: base, mode: fs.ModeDir | perm&fs.ModePerm, mtime: time.Now(), kids: map[string]*node{}}
	return nil
}

func (m *FS) remove(name string, wantDir bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir, base, err := m.split(name)
	if err != nil {
		return err
	}
	if dir == nil {
		return fs.ErrPermission
	}
	n := dir.kids[base]
	switch {
	case n == nil:
		return fs.ErrNotExist
	case wantDir && !n.mode.IsDir():
		return storage.ErrNotDir
	case !wantDir && n.mode.IsDir():
		return storage.ErrIsDir
	case wantDir && len(n.kids) > 0:
		return storage.ErrNotEmpty
	}
	delete(dir.kids, base)
	return nil
}

func (m *FS) Remove(_ context.Context, name string) error    { return m.remove(name, false) }
func (m *FS) RemoveDir(_ context.Context, name string) error { return m.remove(name, true) }

func (m *FS) Rename(_ context.Context, from, to string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	fdir, fbase, err := m.split(from)
	if err != nil {
		return err
	}
	tdir, tbase, err := m.split(to)
	if err != nil {
		return err
	}
	if fdir == nil || tdir == nil {
		return fs.ErrPermission
	}
	n := fdir.kids[fbase]
	if n == nil {
		return fs.ErrNotExist
	}
	if to == from || strings.HasPrefix(to, from+"/") {
		return storage.ErrBadName
	}
	if old := tdir.kids[tbase]; old != nil && old.mode.IsDir() {
		return storage.ErrIsDir
	}
	delete(fdir.kids, fbase)
	n.name = tbase
	tdir.kids[tbase] = n
	return nil
}

func (m *FS) Chmod(_ context.Context, name string, mode fs.FileMode) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookup(name)
	if err != nil {
		return err
	}
	n.mode = n.mode&fs.ModeType | mode&fs.ModePerm
	return nil
}

func (m *FS) Chtimes(_ context.Context, name string, mtime time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookup(name)
	if err != nil {
		return err
	}
	n.mtime = mtime
	return nil
}

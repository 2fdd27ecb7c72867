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
	"unicode/utf8"

	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/vpath"
)

// FS is a tree of nodes under one lock. Its zero value is not usable: call
// New. Set the exported fields before the first use.
type FS struct {
	// Caps are the capabilities the FS reports and enforces (New: all,
	// storage.CapByteNames included), so tests can play a backend that
	// lacks some.
	Caps storage.Capabilities
	// MaxBytes, when positive, is the space of the FS: writes beyond it
	// (counting uploads in progress) fail with storage.ErrNoSpace.
	MaxBytes int64

	mu   sync.Mutex
	root *node
	used int64 // bytes of every file and upload in progress, guarded by mu
}

var _ storage.FS = (*FS)(nil)

// New returns an empty file system.
func New() *FS {
	return &FS{Caps: storage.CapAll | storage.CapByteNames, root: &node{name: ".", mode: fs.ModeDir | 0o755, mtime: time.Now(), kids: map[string]*node{}}}
}

// Free reports the bytes left of MaxBytes (storage.SpaceReporter), or
// storage.ErrNotSupported when the FS has no size.
func (m *FS) Free(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.MaxBytes <= 0 {
		return 0, storage.ErrNotSupported
	}
	return max(m.MaxBytes-m.used, 0), nil
}

// Capabilities reports Caps.
func (m *FS) Capabilities() storage.Capabilities { return m.Caps }

type node struct {
	name  string
	mode  fs.FileMode
	data  []byte
	mtime time.Time
	kids  map[string]*node // directories only
	gone  bool             // removed from the tree
	// hashes are the digests of data stored by a whole upload
	// (storage.HashSetter); any change of data drops them.
	hashes map[string][]byte
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
// Without storage.CapByteNames a name that is not UTF-8 is refused with
// storage.ErrNotUTF8, as an object store that keeps UTF-8 keys does.
func (m *FS) split(name string) (*node, string, error) {
	if name == "." {
		return nil, ".", nil
	}
	if !m.Caps.Has(storage.CapByteNames) && !utf8.ValidString(name) {
		return nil, "", storage.ErrNotUTF8
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

func (m *FS) Stat(_ context.Context, p vpath.Path) (fs.FileInfo, error) {
	name := p.Rel()
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookup(name)
	if err != nil {
		return nil, err
	}
	return n.info(), nil
}

func (m *FS) ReadDir(_ context.Context, p vpath.Path) (storage.DirIter, error) {
	name := p.Rel()
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

func (m *FS) Open(_ context.Context, p vpath.Path, offset int64) (storage.File, error) {
	name := p.Rel()
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

func (m *FS) Create(_ context.Context, p vpath.Path, o storage.CreateOptions) (storage.Upload, error) {
	name := p.Rel()
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
	case (o.Append || o.Offset > 0) && !m.Caps.Has(storage.CapWriteAt):
		return nil, storage.ErrNotSupported
	}
	newNode := func() *node {
		return &node{name: base, mode: o.Perm & fs.ModePerm, mtime: time.Now()}
	}
	if !o.Append && o.Offset == 0 && (!o.Exclusive || !m.Caps.Has(storage.CapWriteAt)) {
		// Without in-place writes a unique upload is a whole one that
		// must not replace anything.
		return &upload{m: m, dir: dir, base: base, n: newNode(), atomic: true, noReplace: o.NoReplace || o.Exclusive}, nil
	}
	n := old
	if n == nil {
		n = newNode()
		dir.kids[base] = n
	}
	start := int64(len(n.data))
	n.hashes = nil // written in place from here on
	if !o.Append {
		start = o.Offset
		if grow := o.Offset - int64(len(n.data)); grow > 0 && m.MaxBytes > 0 && m.used+grow > m.MaxBytes {
			if old == nil {
				delete(dir.kids, base)
			}
			return nil, storage.ErrNoSpace
		}
		m.used += o.Offset - int64(len(n.data))
		n.data = append(n.data, make([]byte, max(0, o.Offset-int64(len(n.data))))...)[:o.Offset]
	}
	return &upload{m: m, dir: dir, base: base, n: n, start: start, created: old == nil}, nil
}

// upload writes a detached node (atomic: linked on Commit) or the target
// itself (in place: cut back to start on Abort). It holds its directory's
// node, so it follows the directory through renames.
type upload struct {
	m         *FS
	dir       *node
	base      string
	n         *node
	start     int64
	atomic    bool
	noReplace bool // atomic only: Commit fails if base exists by then
	created   bool // in place: the upload made the file, Abort removes it
	done      bool
	hashes    map[string][]byte // atomic only: given to the node at Commit
}

// SetHashes keeps the digests of a whole upload for Commit; an in-place
// upload ignores them.
func (u *upload) SetHashes(sums map[string][]byte) {
	u.m.mu.Lock()
	defer u.m.mu.Unlock()
	if u.atomic {
		u.hashes = sums
	}
}

func (u *upload) Write(p []byte) (int, error) {
	u.m.mu.Lock()
	defer u.m.mu.Unlock()
	if !u.n.gone { // a removed file's bytes are no longer counted
		if u.m.MaxBytes > 0 && u.m.used+int64(len(p)) > u.m.MaxBytes {
			return 0, storage.ErrNoSpace
		}
		u.m.used += int64(len(p))
	}
	u.n.data = append(u.n.data, p...)
	u.n.mtime = time.Now()
	u.n.hashes = nil
	return len(p), nil
}

func (u *upload) Commit(context.Context) error {
	u.m.mu.Lock()
	defer u.m.mu.Unlock()
	if u.done {
		return nil
	}
	u.done = true
	if !u.atomic {
		return nil
	}
	old := u.dir.kids[u.base]
	var err error
	switch {
	case u.dir.gone:
		err = fs.ErrNotExist
	case old != nil && old.mode.IsDir():
		err = storage.ErrIsDir
	case old != nil && u.noReplace:
		err = fs.ErrExist
	}
	if err != nil {
		u.m.used -= int64(len(u.n.data))
		return err
	}
	if old != nil {
		u.m.used -= int64(len(old.data))
		old.gone = true
	}
	u.n.hashes = u.hashes
	u.dir.kids[u.base] = u.n
	return nil
}

func (u *upload) Abort(context.Context) error {
	u.m.mu.Lock()
	defer u.m.mu.Unlock()
	if u.done {
		return nil
	}
	u.done = true
	switch {
	case u.n.gone:
	case u.atomic:
		u.m.used -= int64(len(u.n.data))
	case u.created:
		u.m.used -= int64(len(u.n.data))
		if u.dir.kids[u.base] == u.n {
			delete(u.dir.kids, u.base)
		}
		u.n.gone = true
	default:
		cut := min(u.start, int64(len(u.n.data)))
		u.m.used -= int64(len(u.n.data)) - cut
		u.n.data = u.n.data[:cut]
		u.n.hashes = nil
	}
	return nil
}

func (m *FS) Mkdir(_ context.Context, p vpath.Path, perm fs.FileMode) error {
	name := p.Rel()
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
	n.gone = true
	m.used -= int64(len(n.data))
	return nil
}

func (m *FS) Remove(_ context.Context, p vpath.Path) error    { return m.remove(p.Rel(), false) }
func (m *FS) RemoveDir(_ context.Context, p vpath.Path) error { return m.remove(p.Rel(), true) }

func (m *FS) Rename(_ context.Context, fromP, toP vpath.Path) error {
	return m.rename(fromP, toP, false)
}

// RenameNoReplace renames like Rename but refuses a taken name (fs.ErrExist).
func (m *FS) RenameNoReplace(_ context.Context, fromP, toP vpath.Path) error {
	return m.rename(fromP, toP, true)
}

func (m *FS) rename(fromP, toP vpath.Path, noReplace bool) error {
	from, to := fromP.Rel(), toP.Rel()
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
	old := tdir.kids[tbase]
	if old != nil && noReplace {
		return fs.ErrExist
	}
	if old != nil && old.mode.IsDir() {
		return storage.ErrIsDir
	}
	if old != nil && old != n {
		old.gone = true
		m.used -= int64(len(old.data))
	}
	delete(fdir.kids, fbase)
	n.name = tbase
	tdir.kids[tbase] = n
	return nil
}

func (m *FS) Chmod(_ context.Context, p vpath.Path, mode fs.FileMode) error {
	return m.set(p, storage.CapChmod, func(n *node) { n.mode = n.mode&fs.ModeType | mode&fs.ModePerm })
}

func (m *FS) Chtimes(_ context.Context, p vpath.Path, mtime time.Time) error {
	return m.set(p, storage.CapChtimes, func(n *node) { n.mtime = mtime })
}

// set changes an entry's metadata under the lock, when the FS offers the
// capability that does it.
func (m *FS) set(p vpath.Path, c storage.Capabilities, f func(*node)) error {
	if !m.Caps.Has(c) {
		return storage.ErrNotSupported
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookup(p.Rel())
	if err != nil {
		return err
	}
	f(n)
	return nil
}

var _ storage.HashStore = (*FS)(nil)

// StoredHash returns the digest a whole upload stored with name, if no
// write changed the file since.
func (m *FS) StoredHash(_ context.Context, p vpath.Path, algo string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookup(p.Rel())
	if err != nil {
		return nil, false, err
	}
	sum, ok := n.hashes[algo]
	if !ok || !n.mode.IsRegular() {
		return nil, false, nil
	}
	return bytes.Clone(sum), true, nil
}

// Package quota counts what a user stores and enforces byte and file limits
// below the protocol, as a storage.FS wrapper (Wrap). Every session of a
// user shares one Usage; rate limits live elsewhere, so a rate change never
// splits it.
//
// What is counted: regular files, by their own directory entry (Lstat
// semantics). A symbolic link counts as nothing, whatever it points to; its
// target is counted where it lives. Directories, devices and FIFOs count as
// nothing. Temporary upload files (storage.TempPrefix) are never scanned:
// an upload in progress is counted by its reservation instead.
//
// The counters hold the committed files plus the reservations of uploads in
// progress, so they never pass a limit because of a race: a new name takes
// its file slot when its upload is created, and every write takes its bytes
// before they are accepted. What an upload replaces, a delete removes or a
// rename overwrites is measured when the operation happens, under the
// Usage's lock, never remembered from an earlier look.
package quota

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/ferryftp/ferry/internal/storage"
)

// ErrBusy refuses, while an in-place upload (REST, APPE, STOU) of the same
// user writes a name, to remove it, rename onto it or start another upload
// of it, and refuses an in-place upload of a name that any upload is
// writing: RFC 959's 450 "file busy". Renaming the file or a directory
// above it is allowed; the upload follows.
var ErrBusy = errors.New("quota: file busy")

// ErrFiles is the storage.ErrQuota of a full file quota: a new name finds
// no free slot.
var ErrFiles = fmt.Errorf("%w (files)", storage.ErrQuota)

// Limits are the limits of one session; 0 is unlimited.
type Limits struct {
	Bytes int64 // bytes stored
	Files int64 // regular files stored
}

// Usage is what one user stores under one home, shared by all of the user's
// sessions. Its zero value is ready to use and not yet loaded.
type Usage struct {
	mu sync.Mutex // guards the fields below; held across namespace changes
	// bytes and files are the committed regular files plus the
	// reservations of open uploads.
	bytes, files int64
	// open holds the open uploads; their names follow renames of the
	// directories above them (and of the file an in-place one writes).
	open map[*upload]struct{}

	load    sync.Mutex    // guards ready, loadErr, loading
	ready   chan struct{} // closed when the current load attempt ends
	loaded  bool
	loading bool
	loadErr error
}

// Load starts counting the home in the background, once: open gives the
// scan its own view of the storage (closed after the scan if it is an
// io.Closer), so the scan outlives the session that triggered it. A failed
// scan is retried by the next Load. Operations of wrapped file systems wait
// for the load (Wait) before they count anything.
func (u *Usage) Load(ctx context.Context, open func() (storage.FS, error)) {
	u.load.Lock()
	defer u.load.Unlock()
	if u.loaded || u.loading {
		return
	}
	u.loading = true
	u.ready = make(chan struct{})
	ready := u.ready
	go func() {
		b, f, err := scanWith(ctx, open)
		u.mu.Lock()
		if err == nil {
			u.bytes, u.files = b, f
		}
		u.mu.Unlock()
		u.load.Lock()
		u.loading, u.loaded, u.loadErr = false, err == nil, err
		u.load.Unlock()
		close(ready)
	}()
}

func scanWith(ctx context.Context, open func() (storage.FS, error)) (int64, int64, error) {
	fsys, err := open()
	if err != nil {
		return 0, 0, err
	}
	if c, ok := fsys.(io.Closer); ok {
		defer c.Close()
	}
	return Scan(ctx, fsys)
}

// errNotLoaded is Wait's answer when Load was never called.
var errNotLoaded = errors.New("quota: usage not loaded")

// Wait returns once the usage is loaded, or with the load's error, or with
// ctx's.
func (u *Usage) Wait(ctx context.Context) error {
	u.load.Lock()
	loaded, ready := u.loaded, u.ready
	u.load.Unlock()
	switch {
	case loaded:
		return nil
	case ready == nil:
		return errNotLoaded
	}
	select {
	case <-ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	u.load.Lock()
	loaded, err := u.loaded, u.loadErr
	u.load.Unlock()
	if !loaded && err == nil {
		err = errNotLoaded
	}
	return err
}

// Counts returns the bytes and files counted, reservations of open uploads
// included.
func (u *Usage) Counts() (bytes, files int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.bytes, u.files
}

// reserve takes n bytes (n may be negative) and, when file is set, one file
// slot; it fails with storage.ErrQuota when a limit would be passed. A
// negative n or a released slot is never refused. Call with mu held.
func (u *Usage) reserve(l Limits, n int64, file bool) error {
	if n > 0 && l.Bytes > 0 && u.bytes+n > l.Bytes {
		return storage.ErrQuota
	}
	if file && l.Files > 0 && u.files >= l.Files {
		return ErrFiles
	}
	u.bytes += n
	if file {
		u.files++
	}
	return nil
}

// track and untrack add and remove an open upload; call with mu held.
func (u *Usage) track(w *upload) {
	if u.open == nil {
		u.open = map[*upload]struct{}{}
	}
	u.open[w] = struct{}{}
}

func (u *Usage) untrack(w *upload) { delete(u.open, w) }

// busy reports whether an open upload of name conflicts with a new use of
// it: any upload when inPlace, else an in-place one. Call with mu held.
func (u *Usage) busy(name string, inPlace bool) bool {
	for w := range u.open {
		if w.name == name && (inPlace || w.inPlace) {
			return true
		}
	}
	return false
}

// moved renames the open uploads that a rename of from to to carries
// along: those below from, and an in-place one writing from itself (a
// whole upload of from still commits under its own name). Call with mu
// held.
func (u *Usage) moved(from, to string) {
	for w := range u.open {
		switch {
		case w.name == from && w.inPlace:
			w.name = to
		case len(w.name) > len(from) && within(w.name, from):
			w.name = to + w.name[len(from):]
		}
	}
}

// within reports whether name is dir or below it.
func within(name, dir string) bool {
	return dir == "." || name == dir || len(name) > len(dir) && name[len(dir)] == '/' && name[:len(dir)] == dir
}

// Table holds the Usage of each user of a server, keyed by whatever names a
// user's storage (for example user name and home).
type Table struct {
	mu sync.Mutex
	m  map[string]*Usage
}

// Get returns the Usage under key, creating it (not loaded) on first use.
func (t *Table) Get(key string) *Usage {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[string]*Usage{}
	}
	u := t.m[key]
	if u == nil {
		u = &Usage{}
		t.m[key] = u
	}
	return u
}

// Forget drops the Usage under key, so the next Get counts afresh. Sessions
// that hold it keep using it.
func (t *Table) Forget(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, key)
}

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
// (or a chunk of them, Store.Chunk) before they are accepted. The counters
// live behind a Counter: in memory by default, or in the database shared by
// every process (package sqlquota), whose reservations are single atomic
// statements. What an upload replaces, a delete removes or a
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

// Change is a change of a Usage's counts.
type Change struct {
	Bytes, Files int64 // added to the counts (negative: taken off)
	// HeldBytes and HeldFiles are added to what this process's uploads in
	// progress hold of the counts (bytes written or reserved, not
	// committed; new names' file slots): a counter shared by processes
	// gives it back when the process is gone. Held amounts are part of
	// Bytes and Files, never on top of them.
	HeldBytes, HeldFiles int64
}

func (c Change) zero() bool { return c == Change{} }

// Counter keeps the counts of one Usage: in memory (the zero Usage, this
// process only) or in a database that processes share (package sqlquota).
// A Usage calls it with its lock held, so the calls of one process for one
// usage never overlap.
type Counter interface {
	// Load sets the counts up before first use: scan counts the storage,
	// and is called when the counter keeps no counts yet.
	Load(ctx context.Context, scan func(context.Context) (bytes, files int64, err error)) error
	// Reserve applies c in one atomic step, or fails with
	// storage.ErrQuota (bytes) or ErrFiles and changes nothing when a
	// positive Bytes or Files would take its count past l. Negative
	// amounts are never refused.
	Reserve(ctx context.Context, l Limits, c Change) error
	// Adjust applies c unconditionally: corrections measured after an
	// operation on the storage, releases. A counter that fails to adjust
	// reports the error itself (the storage has changed already).
	Adjust(ctx context.Context, c Change)
	// Counts returns the counts, reservations of uploads in progress
	// included (of every process, for a shared counter).
	Counts(ctx context.Context) (bytes, files int64, err error)
}

// Store gives the Counter of each user's usage (Table.Store).
type Store interface {
	Counter(name, home string) Counter
	// Chunk is the bytes an upload reserves at once when a write needs
	// more, so that a counter far away is not asked for every write; 0
	// reserves each write's own bytes. A write that needs more than a
	// chunk reserves what it needs, and one that a chunk would take past
	// the limit tries its own bytes alone.
	Chunk() int64
}

// memCounter is the Counter of a Usage without a Store: this process's
// memory.
type memCounter struct {
	mu           sync.Mutex
	bytes, files int64 // guarded by mu
}

func (m *memCounter) Load(ctx context.Context, scan func(context.Context) (int64, int64, error)) error {
	b, f, err := scan(ctx)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.bytes, m.files = b, f
	m.mu.Unlock()
	return nil
}

func (m *memCounter) Reserve(_ context.Context, l Limits, c Change) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c.Bytes > 0 && l.Bytes > 0 && m.bytes+c.Bytes > l.Bytes {
		return storage.ErrQuota
	}
	if c.Files > 0 && l.Files > 0 && m.files+c.Files > l.Files {
		return ErrFiles
	}
	m.bytes += c.Bytes
	m.files += c.Files
	return nil
}

func (m *memCounter) Adjust(_ context.Context, c Change) {
	m.mu.Lock()
	m.bytes += c.Bytes
	m.files += c.Files
	m.mu.Unlock()
}

func (m *memCounter) Counts(context.Context) (int64, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bytes, m.files, nil
}

// Usage is what one user stores under one home, shared by all of the user's
// sessions of a process; its Counter may share it with other processes.
// Its zero value counts in memory, ready to use and not yet loaded.
type Usage struct {
	mu sync.Mutex // held across namespace changes and every counter call
	c  Counter    // nil: mem
	// mem is the counter of a Usage without one: the committed regular
	// files plus the reservations of open uploads.
	mem   memCounter
	chunk int64 // bytes an upload reserves at once (Store.Chunk)
	// open holds the open uploads; their names follow renames of the
	// directories above them (and of the file an in-place one writes).
	open map[*upload]struct{}

	load    sync.Mutex    // guards ready, loadErr, loading
	ready   chan struct{} // closed when the current load attempt ends
	loaded  bool
	loading bool
	loadErr error
}

// NewUsage returns a Usage kept by c, reserving chunk bytes at once (see
// Store.Chunk).
func NewUsage(c Counter, chunk int64) *Usage { return &Usage{c: c, chunk: chunk} }

func (u *Usage) counter() Counter {
	if u.c == nil {
		return &u.mem
	}
	return u.c
}

// Load starts loading the counts in the background, once: from the
// counter when it keeps them, else by counting the home, for which open
// gives the scan its own view of the storage (closed after the scan if it
// is an io.Closer), so the scan outlives the session that triggered it. A
// failed load is retried by the next Load. Operations of wrapped file
// systems wait for the load (Wait) before they count anything.
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
		err := u.counter().Load(ctx, func(ctx context.Context) (int64, int64, error) { return scanWith(ctx, open) })
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
// included: of every process when the counter is shared.
func (u *Usage) Counts(ctx context.Context) (bytes, files int64, err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.counter().Counts(ctx)
}

// reserve applies c, or fails with storage.ErrQuota or ErrFiles when a
// positive amount would pass a limit. Call with mu held.
func (u *Usage) reserve(ctx context.Context, l Limits, c Change) error {
	if c.zero() {
		return nil
	}
	return u.counter().Reserve(ctx, l, c)
}

// adjust applies c unconditionally. Call with mu held.
func (u *Usage) adjust(ctx context.Context, c Change) {
	if !c.zero() {
		u.counter().Adjust(ctx, c)
	}
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

// Table holds the Usage of each user of a server, by user name and home
// (the same user with another home stores elsewhere).
type Table struct {
	// Store, when set, keeps the counts (shared by processes); nil counts
	// in memory. Set it before the first Get.
	Store Store

	mu sync.Mutex
	m  map[[2]string]*Usage
}

// Get returns the Usage of name under home, creating it (not loaded) on
// first use.
func (t *Table) Get(name, home string) *Usage {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[[2]string]*Usage{}
	}
	k := [2]string{name, home}
	u := t.m[k]
	if u == nil {
		u = &Usage{}
		if t.Store != nil {
			u = NewUsage(t.Store.Counter(name, home), t.Store.Chunk())
		}
		t.m[k] = u
	}
	return u
}

// Forget drops the Usage of name under home, so the next Get loads
// afresh. Sessions that hold it keep using it.
func (t *Table) Forget(name, home string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, [2]string{name, home})
}

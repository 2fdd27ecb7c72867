package ftp

import (
	"context"
	"io/fs"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/vpath"
)

// outageFS is a storage whose service can go away, as an object store
// does: while down is set, every call fails with the network error a
// refused connection gives, and so do the reads and writes of files
// already open.
type outageFS struct {
	storage.FS
	down *atomic.Bool
}

func (o outageFS) Unwrap() storage.FS { return o.FS }

// errUnreachable is what a client of a stopped service gets.
var errUnreachable = &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}

func (o outageFS) Stat(ctx context.Context, name vpath.Path) (fs.FileInfo, error) {
	if o.down.Load() {
		return nil, errUnreachable
	}
	return o.FS.Stat(ctx, name)
}

func (o outageFS) Open(ctx context.Context, name vpath.Path, offset int64) (storage.File, error) {
	f, err := o.FS.Open(ctx, name, offset)
	if err != nil {
		return nil, err
	}
	return outageFile{f, o.down}, nil
}

func (o outageFS) Create(ctx context.Context, name vpath.Path, opts storage.CreateOptions) (storage.Upload, error) {
	up, err := o.FS.Create(ctx, name, opts)
	if err != nil {
		return nil, err
	}
	return outageUpload{up, o.down}, nil
}

type outageFile struct {
	storage.File
	down *atomic.Bool
}

func (f outageFile) Read(p []byte) (int, error) {
	if f.down.Load() {
		return 0, errUnreachable
	}
	return f.File.Read(p[:min(len(p), 1024)]) // slowly, so the outage comes mid-transfer
}

type outageUpload struct {
	storage.Upload
	down *atomic.Bool
}

func (u outageUpload) Write(p []byte) (int, error) {
	if u.down.Load() {
		return 0, errUnreachable
	}
	return u.Upload.Write(p)
}

func (u outageUpload) Commit(ctx context.Context) error {
	if u.down.Load() {
		u.Upload.Abort(ctx)
		return errUnreachable
	}
	return u.Upload.Commit(ctx)
}

// TestStorageOutage: a network error from the storage (an object store
// that stopped) is not a failed data connection: an upload, a download
// and a command that meets it answer 451 "Storage unavailable" (not 426,
// which blames the client's connection, nor the generic 451), and the
// session goes on once the storage is back.
func TestStorageOutage(t *testing.T) {
	// A failing wrapper of mem is the subject: no battery backend applies.
	op := newMemOpener()
	var down atomic.Bool
	ts := startServer(t, func(st *Site, _ *Server) {
		st.Storage = storage.OpenerFunc(func(ctx context.Context, loc string) (storage.FS, error) {
			fsys, err := op.Open(ctx, loc)
			if err != nil {
				return nil, err
			}
			return outageFS{fsys, &down}, nil
		})
	})
	ts.put(t, "big.bin", make([]byte, 4<<20))
	c := loggedIn(t, ts)
	wantOutage := func(what string, code int, text string) {
		t.Helper()
		if code != 451 || !strings.HasPrefix(text, "Storage unavailable; try again later (ref ") {
			t.Errorf("%s during the outage: %d %s, want 451 Storage unavailable", what, code, text)
		}
	}

	// An upload whose storage goes away mid-way.
	d := c.dataCmd("STOR up.bin")
	d.Write(make([]byte, 64<<10))
	down.Store(true)
	for range 64 {
		if _, err := d.Write(make([]byte, 64<<10)); err != nil {
			break
		}
	}
	d.Close()
	code, text := c.read()
	wantOutage("STOR", code, text)

	// An upload whose commit meets the outage.
	down.Store(false)
	d = c.dataCmd("STOR up2.bin")
	d.Write([]byte("data"))
	down.Store(true)
	d.Close()
	code, text = c.read()
	wantOutage("STOR's commit", code, text)

	// A download whose storage goes away mid-way.
	down.Store(false)
	d = c.dataCmd("RETR big.bin")
	buf := make([]byte, 4096)
	if _, err := d.Read(buf); err != nil {
		t.Fatal(err)
	}
	down.Store(true)
	readAll(t, d)
	code, text = c.read()
	wantOutage("RETR", code, text)

	// A command.
	c.send("SIZE big.bin")
	code, text = c.read()
	wantOutage("SIZE", code, text)

	down.Store(false)
	c.cmd("SIZE big.bin", 213)
	c.stor("STOR", "after.txt", []byte("back"))
	if got := string(c.retr("after.txt")); got != "back" {
		t.Errorf("RETR after the outage: %q", got)
	}
	if ts.has(t, "up.bin") || ts.has(t, "up2.bin") {
		t.Error("an upload cut by the outage was stored")
	}
}

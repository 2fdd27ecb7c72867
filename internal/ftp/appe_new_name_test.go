package ftp

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/vpath"
)

// appearOnCreateFS stores a file under an upload's name just before the
// upload opens it, as another user's STOR landing between the dispatcher's
// look-up (the name was free) and the open would.
type appearOnCreateFS struct {
	storage.FS
	home string
}

func (a appearOnCreateFS) Create(ctx context.Context, name vpath.Path, o storage.CreateOptions) (storage.Upload, error) {
	os.WriteFile(filepath.Join(a.home, name.Rel()), []byte("theirs"), 0o644)
	return a.FS.Create(ctx, name, o)
}

// TestAuditAPPENewNameNoAppend: APPE of a name that was free at the
// look-up was checked as an upload of a new file only; a user who may not
// append (bob in /incoming: read, upload; the anonymous drop box alike) must
// not append to a file that appeared under the name before the open. The
// in-place create of a name looked up as free must be exclusive then.
func TestAuditAPPENewNameNoAppend(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(st *Site, _ *Server) {
		st.Storage = wrapLocal(func(fsys storage.FS, location string) storage.FS {
			return appearOnCreateFS{FS: fsys, home: location}
		})
	})
	home := filepath.Join(ts.data, "home", "bob")
	os.MkdirAll(filepath.Join(home, "incoming"), 0o755)
	c := dial(t, ts.addr)
	c.login("bob", "hunter2")
	c.cmd("TYPE I", 200)
	d := c.pasv()
	c.send("APPE /incoming/new")
	if code, _ := c.read(); code == 150 {
		d.Write([]byte("+mine"))
		d.Close()
		c.read()
	}
	got, err := os.ReadFile(filepath.Join(home, "incoming", "new"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "theirs" {
		t.Fatalf("new holds %q: a user who may not append appended to a file that appeared", got)
	}
}

package ftp

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/users"
	"github.com/ferryftp/ferry/internal/vpath"
)

// appearFS stores a file under the target of a rename just before the
// rename runs, as another user's STOR landing between RNTO's look-up and
// the rename would.
type appearFS struct {
	storage.FS
	home string
}

func (a appearFS) Rename(ctx context.Context, from, to vpath.Path) error {
	os.WriteFile(filepath.Join(a.home, to.Rel()), []byte("someone else's"), 0o644)
	return a.FS.Rename(ctx, from, to)
}

func (a appearFS) RenameNoReplace(ctx context.Context, from, to vpath.Path) error {
	os.WriteFile(filepath.Join(a.home, to.Rel()), []byte("someone else's"), 0o644)
	return storage.RenameNoReplace(ctx, a.FS, from, to)
}

// TestAuditRNTONoReplace: RNTO by a user who may rename but not
// overwrite must not replace a file that appeared under the new name after
// the look-up (the item 7 rule, for renames): the rename is create-exclusive
// then, like the commit of such a user's upload.
func TestAuditRNTONoReplace(t *testing.T) {
	t.Parallel()
	var home string
	ts := startServer(t, func(st *Site, _ *Server) {
		st.Storage = wrapLocal(func(fsys storage.FS, location string) storage.FS {
			return appearFS{FS: fsys, home: location}
		})
	})
	home = filepath.Join(ts.data, "home", "mover")
	hardAddUser(ts, "pw", users.User{Name: "mover", Home: home, Perms: "/=read,upload,rename"})
	hardWrite(t, filepath.Join(home, "mine"), []byte("mine"))
	c := dial(t, ts.addr)
	c.login("mover", "pw")
	c.cmd("RNFR mine", 350)
	c.send("RNTO theirs")
	if code, text := c.read(); code != 550 {
		t.Errorf("RNTO onto a name taken meanwhile: got %d %s, want 550", code, text)
	}
	if got, err := os.ReadFile(filepath.Join(home, "mine")); err != nil || string(got) != "mine" {
		t.Errorf("the refused rename lost its source: %q, %v", got, err)
	}
	got, err := os.ReadFile(filepath.Join(home, "theirs"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "someone else's" {
		t.Fatalf("theirs holds %q: a user without overwrite replaced a file by RNTO", got)
	}
}

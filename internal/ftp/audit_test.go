package ftp

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/users"
	"github.com/ferryftp/ferry/internal/vpath"
)

// Regression tests for holes found by the second audit of issue 9 ("the
// class, not the example").

// TestAuditAUTHAfterLoginNewLoginDeadline: AUTH TLS after a plaintext login
// resets the login (RFC 2228 §3), like REIN, so it starts a new login
// deadline. It kept the one counted from connect, long past: the first
// command after the handshake met an expired deadline and the session
// ended with "421 Login timeout" (or its reply could not be written), and a
// session that sent nothing more kept the idle timeout instead.
func TestAuditAUTHAfterLoginNewLoginDeadline(t *testing.T) {
	t.Parallel()
	f := newFTPSFixture(t)
	ts := startFTPS(t, f, func(c *Site, _ *Server) { c.LoginTimeout = 2 * time.Second })
	quiet, again := dial(t, ts.addr), dial(t, ts.addr)
	quiet.login("alice", "secret")
	again.login("alice", "secret")
	// A connection opened after both is the clock: when it gets its 421,
	// the login deadlines counted from their connects have passed.
	dial(t, ts.addr).expect(421)
	for _, c := range []*client{quiet, again} {
		c.cmd("AUTH TLS", 234)
		if err := c.startTLSFTPS(f.client(0, nil)); err != nil {
			t.Fatal(err)
		}
	}
	// Logging in again works within the new deadline...
	again.cmd("USER alice", 331)
	again.cmd("PASS secret", 230)
	again.cmd("PWD", 257)
	// ...and a session that does not log in again ends at it.
	if text := quiet.expect(421); !strings.Contains(text, "Login timeout") {
		t.Fatalf("421 %s", text)
	}
}

// growFS appends grow to a file just before an upload of it starts, as
// another user's APPE landing between the dispatcher's look-up and the
// upload would.
type growFS struct {
	storage.FS
	home, grow string
}

func (g growFS) Create(ctx context.Context, name vpath.Path, o storage.CreateOptions) (storage.Upload, error) {
	if f, err := os.OpenFile(filepath.Join(g.home, name.Rel()), os.O_WRONLY|os.O_APPEND, 0); err == nil {
		f.WriteString(g.grow)
		f.Close()
	}
	return g.FS.Create(ctx, name, o)
}

// TestAuditRestAtEndNeverTruncates: REST at a file's size then STOR is an
// append, allowed to a user who may append but not overwrite. It must not
// cut the file back to that offset when the file grew after the look-up
// (another user appended to it meanwhile): what others appended stays, and
// the upload lands after it, as an APPE would.
func TestAuditRestAtEndNeverTruncates(t *testing.T) {
	t.Parallel()
	var home string
	ts := startServer(t, func(st *Site, _ *Server) {
		st.Storage = wrapLocal(func(fsys storage.FS, location string) storage.FS {
			return growFS{FS: fsys, home: location, grow: "+others"}
		})
	})
	home = filepath.Join(ts.data, "home", "logger")
	hardAddUser(ts, "pw", users.User{Name: "logger", Home: home, Perms: "/=read,upload,append"})
	hardWrite(t, filepath.Join(home, "log"), []byte("0123456789"))
	c := dial(t, ts.addr)
	c.login("logger", "pw")
	c.cmd("TYPE I", 200)
	c.cmd("REST 10", 350)
	c.stor("STOR", "log", []byte("mine"))
	got, err := os.ReadFile(filepath.Join(home, "log"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "0123456789+othersmine" {
		t.Fatalf("log holds %q: an append-only user's REST+STOR cut what others appended", got)
	}
}

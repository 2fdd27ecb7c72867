package ftp

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ferryftp/ferry/internal/storage/local"
)

// homeCounter is a memOpener that counts MakeHome calls per location.
type homeCounter struct {
	*memOpener
	mu    sync.Mutex
	homes map[string]int
}

func (o *homeCounter) MakeHome(ctx context.Context, location string) error {
	o.mu.Lock()
	o.homes[location]++
	o.mu.Unlock()
	return o.memOpener.MakeHome(ctx, location)
}

func (o *homeCounter) count(location string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.homes[location]
}

// TestAnonymousRootMadeOnce: the shared anonymous tree is made (and, on
// local storage, checked against the protected paths) when it is first
// opened, not at every anonymous login; a named user's home still is, at
// each of theirs.
func TestAnonymousRootMadeOnce(t *testing.T) {
	op := &homeCounter{memOpener: newMemOpener(), homes: map[string]int{}}
	ts := startServer(t, func(st *Site, _ *Server) { st.Storage = op })
	for range 3 {
		c := dial(t, ts.addr)
		c.login("anonymous", "guest@")
		c.cmd("PWD", 257)
		c.cmd("QUIT", 221)
		loggedIn(t, ts).cmd("QUIT", 221)
	}
	if n := op.count(ts.site.AnonymousRoot); n != 1 {
		t.Errorf("MakeHome of the anonymous root: %d calls for 3 logins, want 1", n)
	}
	if n := op.count(ts.home); n != 3 {
		t.Errorf("MakeHome of alice's home: %d calls for 3 logins, want 3", n)
	}
}

// TestAnonymousProtectedRoot: an anonymous root that holds the server's own
// files is refused at every anonymous login, not only the first: a refused
// root is never kept as the shared tree.
func TestAnonymousProtectedRoot(t *testing.T) {
	ts := startServer(t, func(st *Site, _ *Server) {
		data := filepath.Dir(st.AnonymousRoot)
		st.AnonymousRoot = data
		st.Storage = &local.Opener{Protected: []string{filepath.Join(data, "users.db")}}
	})
	for range 2 {
		c := dial(t, ts.addr)
		c.cmd("USER anonymous", 331)
		c.cmd("PASS guest@", 530)
		c.cmd("PWD", 530)
	}
}

package ftp

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
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

// keepAlive reads SO_KEEPALIVE of the socket under c.
func keepAlive(t testing.TB, c net.Conn) int {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	v := -1
	rc.Control(func(fd uintptr) { v, err = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE) })
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestDataConnNoKeepalive: passive and active data connections have no TCP
// keepalive (the data timeout bounds them); the control connection keeps
// Go's.
func TestDataConnNoKeepalive(t *testing.T) {
	var mu sync.Mutex
	got := map[ConnKind][]int{}
	ts := startServer(t, func(_ *Site, srv *Server) {
		srv.WrapConn = func(kind ConnKind, c net.Conn) net.Conn {
			v := keepAlive(t, c)
			mu.Lock()
			got[kind] = append(got[kind], v)
			mu.Unlock()
			return c
		}
	})
	os.WriteFile(filepath.Join(ts.home, "f"), []byte("data"), 0o644)
	c := loggedIn(t, ts)
	if b := c.retr("f"); string(b) != "data" {
		t.Fatalf("EPSV RETR: %q", b)
	}
	ln := c.activeListener()
	c.cmd("EPRT |1|127.0.0.1|"+strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)+"|", 200)
	c.cmd("RETR f", 150)
	if b := readAll(t, accept(t, ln)); string(b) != "data" {
		t.Fatalf("EPRT RETR: %q", b)
	}
	c.expect(226)
	mu.Lock()
	defer mu.Unlock()
	for kind, want := range map[ConnKind]int{ControlConn: 1, PassiveConn: 0, ActiveConn: 0} {
		if len(got[kind]) == 0 {
			t.Errorf("kind %v: no connection seen", kind)
		}
		for _, v := range got[kind] {
			if v != want {
				t.Errorf("kind %v: SO_KEEPALIVE %d, want %d", kind, v, want)
			}
		}
	}
}

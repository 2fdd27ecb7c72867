package ftp

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/rate"
)

// fakeClock stands still until a limiter sleeps on it, so rates are checked
// by arithmetic, never by the wall clock.
type fakeClock struct {
	mu    sync.Mutex
	t     time.Time
	slept time.Duration
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) sleep(_ context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	c.slept += d
	return nil
}

func (c *fakeClock) total() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.slept
}

func fakeLimiter(bytesPerSec int64) (*rate.Limiter, *fakeClock) {
	c := &fakeClock{t: time.Unix(1e9, 0)}
	return rate.New(bytesPerSec).WithClock(c.now, c.sleep), c
}

// TestRateLimitsApplyToTransfers checks that downloads and uploads pass
// through the server-wide limiters, whose fake clocks then account for the
// bytes at the configured rate.
func TestRateLimitsApplyToTransfers(t *testing.T) {
	eachBackend(t, testRateLimitsApplyToTransfers)
}

func testRateLimitsApplyToTransfers(t *testing.T, be backend) {
	var up, down *fakeClock
	ts := startOn(t, be, func(cfg *Site, srv *Server) {
		cfg.UploadRate, cfg.DownloadRate = 1<<20, 2<<20
		cfg.up, up = fakeLimiter(cfg.UploadRate)
		cfg.down, down = fakeLimiter(cfg.DownloadRate)
	})
	data := bytes.Repeat([]byte("0123456789abcdef"), 4<<20/16) // 4 MiB
	ts.put(t, "big.bin", data)
	c := dial(t, ts.addr)
	c.login("alice", "secret")
	c.cmd("TYPE I", 200)
	if got := c.retr("big.bin"); !bytes.Equal(got, data) {
		t.Fatalf("download of %d bytes came back as %d", len(data), len(got))
	}
	// 4 MiB at 2 MiB/s: about 2 s of waiting, less the quarter-second burst.
	if got := down.total(); got < 1700*time.Millisecond || got > 2100*time.Millisecond {
		t.Errorf("download slept %v on the limiter, want about 2 s", got)
	}
	c.stor("STOR", "up.bin", data)
	// 4 MiB at 1 MiB/s: about 4 s.
	if got := up.total(); got < 3700*time.Millisecond || got > 4100*time.Millisecond {
		t.Errorf("upload slept %v on the limiter, want about 4 s", got)
	}
	if got := ts.get(t, "up.bin"); !bytes.Equal(got, data) {
		t.Fatalf("upload stored %d bytes, want %d", len(got), len(data))
	}
}

// TestUserRateLimits checks the per-user limiters, shared by the user's
// sessions.
func TestUserRateLimits(t *testing.T) {
	eachBackend(t, testUserRateLimits)
}

func testUserRateLimits(t *testing.T, be backend) {
	var down *fakeClock
	ts := startOn(t, be, func(cfg *Site, srv *Server) {
		srv.init()
		var l *rate.Limiter
		l, down = fakeLimiter(1 << 20)
		srv.rates = map[string]*userRates{"alice": {down: l}}
	})
	ts.auth.mu.Lock()
	m := ts.auth.users["alice"]
	m.u.DownloadRate = 1 << 20
	ts.auth.users["alice"] = m
	ts.auth.mu.Unlock()
	data := bytes.Repeat([]byte{7}, 3<<20)
	ts.put(t, "f.bin", data)
	for range 2 { // two sessions share one bucket
		c := dial(t, ts.addr)
		c.login("alice", "secret")
		c.cmd("TYPE I", 200)
		c.retr("f.bin")
	}
	// 6 MiB at 1 MiB/s.
	if got := down.total(); got < 5700*time.Millisecond || got > 6100*time.Millisecond {
		t.Errorf("two downloads slept %v on the user's limiter, want about 6 s", got)
	}
}

// TestFileQuota refuses a new file past the user's file count, while
// replacing an existing file stays allowed.
func TestFileQuota(t *testing.T) {
	eachBackend(t, testFileQuota)
}

func testFileQuota(t *testing.T, be backend) {
	ts := startOn(t, be, nil)
	ts.auth.mu.Lock()
	m := ts.auth.users["alice"]
	m.u.QuotaFiles = 2
	ts.auth.users["alice"] = m
	ts.auth.mu.Unlock()
	ts.put(t, "old.txt", []byte("x"))
	c := dial(t, ts.addr)
	c.login("alice", "secret")
	c.stor("STOR", "a.txt", []byte("a"))
	c.pasv()
	c.cmd("STOR b.txt", 552)
	c.stor("STOR", "a.txt", []byte("replaced")) // not a new file
	c.cmd("DELE a.txt", 250)
	c.stor("STOR", "b.txt", []byte("b")) // room again after the delete
	if got := ts.get(t, "b.txt"); string(got) != "b" {
		t.Fatalf("b.txt holds %q", got)
	}
}

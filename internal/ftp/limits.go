package ftp

import (
	"context"
	"io"
	"io/fs"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/users"
)

// rateLimiter is a token bucket shared by every transfer it limits.
type rateLimiter struct {
	rate  float64 // bytes per second
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error

	mu     sync.Mutex
	tokens float64 // may go negative: the debt is slept off
	last   time.Time
}

func newRateLimiter(bytesPerSec int64) *rateLimiter {
	if bytesPerSec <= 0 {
		return nil
	}
	return &rateLimiter{rate: float64(bytesPerSec), now: time.Now, sleep: sleepCtx, last: time.Now()}
}

// sleepCtx sleeps for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// wait takes n bytes from the bucket, sleeping as long as the debt needs.
func (l *rateLimiter) wait(ctx context.Context, n int) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	now := l.now()
	l.tokens += now.Sub(l.last).Seconds() * l.rate
	if burst := l.rate / 4; l.tokens > burst {
		l.tokens = burst // a quarter second of burst at most
	}
	l.last = now
	l.tokens -= float64(n)
	debt := -l.tokens
	l.mu.Unlock()
	if debt <= 0 {
		return nil
	}
	return l.sleep(ctx, time.Duration(debt/l.rate*float64(time.Second)))
}

// limits are the rate limiters a transfer must respect.
type limits []*rateLimiter

func (ls limits) wait(ctx context.Context, n int) error {
	for _, l := range ls {
		if err := l.wait(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

// userState is what sessions of one user share: rate limiters and quota use.
type userState struct {
	up, down *rateLimiter

	once  sync.Once
	bytes atomic.Int64 // bytes stored under the home
	files atomic.Int64 // files stored under the home
}

// userState returns the shared state of a user, creating it on first login.
func (srv *Server) userState(u *users.User) *userState {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.users == nil {
		srv.users = map[string]*userState{}
	}
	st := srv.users[u.Name]
	if st == nil || st.up.rateOf() != u.UploadRate || st.down.rateOf() != u.DownloadRate {
		old := st
		st = &userState{up: newRateLimiter(u.UploadRate), down: newRateLimiter(u.DownloadRate)}
		if old != nil {
			st.once, st.bytes, st.files = sync.Once{}, atomic.Int64{}, atomic.Int64{}
		}
		srv.users[u.Name] = st
	}
	return st
}

func (l *rateLimiter) rateOf() int64 {
	if l == nil {
		return 0
	}
	return int64(l.rate)
}

// loadUsage counts what the user's home holds, once per server run; the
// counters then follow uploads and deletes.
func (st *userState) loadUsage(home string) {
	st.once.Do(func() {
		var b, f int64
		filepath.WalkDir(home, func(_ string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				if fi, err := d.Info(); err == nil {
					b += fi.Size()
					f++
				}
			}
			return nil
		})
		st.bytes.Store(b)
		st.files.Store(f)
	})
}

// quotaWriter enforces a byte quota while an upload streams: each write
// reserves its bytes first, so concurrent sessions of a user share it.
type quotaWriter struct {
	w       io.Writer
	st      *userState
	max     int64
	written int64
}

func (q *quotaWriter) Write(p []byte) (int, error) {
	if q.st.bytes.Add(int64(len(p))) > q.max {
		q.st.bytes.Add(-int64(len(p)))
		return 0, storage.ErrQuota
	}
	n, err := q.w.Write(p)
	q.written += int64(n)
	if n < len(p) {
		q.st.bytes.Add(-int64(len(p) - n))
	}
	return n, err
}

// throttledWriter waits on rate limiters before each write.
type throttledWriter struct {
	ctx context.Context
	w   io.Writer
	lim limits
}

func (t *throttledWriter) Write(p []byte) (int, error) {
	if err := t.lim.wait(t.ctx, len(p)); err != nil {
		return 0, err
	}
	return t.w.Write(p)
}

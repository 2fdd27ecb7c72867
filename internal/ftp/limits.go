package ftp

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/ferryftp/ferry/internal/quota"
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

// userRates are the rate limiters that the sessions of one user share.
// Quota usage is kept apart (Server.quotas), so a rate change never splits it.
type userRates struct {
	up, down *rateLimiter
}

// userRates returns the shared limiters of a user; a login with other rates
// than the user's last one gets new limiters.
func (srv *Server) userRates(u *users.User) *userRates {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.rates == nil {
		srv.rates = map[string]*userRates{}
	}
	r := srv.rates[u.Name]
	if r == nil || r.up.rateOf() != u.UploadRate || r.down.rateOf() != u.DownloadRate {
		r = &userRates{up: newRateLimiter(u.UploadRate), down: newRateLimiter(u.DownloadRate)}
		srv.rates[u.Name] = r
	}
	return r
}

func (l *rateLimiter) rateOf() int64 {
	if l == nil {
		return 0
	}
	return int64(l.rate)
}

// usageKey names a user's quota usage: the same user with another home
// stores elsewhere.
func usageKey(name, home string) string { return name + "\x00" + home }

// withQuota wraps a named user's storage in the user's quota accounting
// (package quota). The usage is shared by the user's sessions and counted
// once, in the background, from the first login with a quota; the session's
// first counting operation waits for that count. A login without a quota
// forgets the usage, so a quota set later counts afresh.
func (srv *Server) withQuota(st *Site, fsys storage.FS, u *users.User) storage.FS {
	key := usageKey(u.Name, u.Home)
	if u.QuotaBytes <= 0 && u.QuotaFiles <= 0 {
		srv.quotas.Forget(key)
		return fsys
	}
	usage := srv.quotas.Get(key)
	home := u.Home
	usage.Load(srv.background, func() (storage.FS, error) { return st.OpenFS(home) })
	return quota.Wrap(fsys, usage, quota.Limits{Bytes: u.QuotaBytes, Files: u.QuotaFiles})
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

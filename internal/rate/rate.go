// Package rate limits transfer speeds: token buckets that every transfer
// they govern shares (server-wide, per user), waited on before each write.
package rate

import (
	"context"
	"io"
	"sync"
	"time"
)

// Limiter is a token bucket of bytes. A nil *Limiter limits nothing.
type Limiter struct {
	rate  float64 // bytes per second
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error

	mu     sync.Mutex
	tokens float64   // guarded by mu; may go negative: the debt is slept off
	last   time.Time // guarded by mu
}

// New returns a limiter of bytesPerSec, or nil (no limit) when it is not positive.
func New(bytesPerSec int64) *Limiter {
	if bytesPerSec <= 0 {
		return nil
	}
	return &Limiter{rate: float64(bytesPerSec), now: time.Now, sleep: sleepCtx, last: time.Now()}
}

// WithClock replaces the limiter's clock, for tests that check rates by
// arithmetic instead of the wall clock; it returns l.
func (l *Limiter) WithClock(now func() time.Time, sleep func(ctx context.Context, d time.Duration) error) *Limiter {
	l.now, l.sleep, l.last = now, sleep, now()
	return l
}

// Rate reports the limit in bytes per second; 0 for a nil limiter.
func (l *Limiter) Rate() int64 {
	if l == nil {
		return 0
	}
	return int64(l.rate)
}

// Wait takes n bytes from the bucket, sleeping as long as the debt needs or
// until ctx ends.
func (l *Limiter) Wait(ctx context.Context, n int) error {
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

// Limits are the limiters one transfer must respect, all of them.
type Limits []*Limiter

// Of collects the limiters that are set.
func Of(ls ...*Limiter) Limits {
	var out Limits
	for _, l := range ls {
		if l != nil {
			out = append(out, l)
		}
	}
	return out
}

// Wait takes n bytes from every limiter.
func (ls Limits) Wait(ctx context.Context, n int) error {
	for _, l := range ls {
		if err := l.Wait(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

// Writer returns w throttled by ls: each write waits for its bytes first.
func (ls Limits) Writer(ctx context.Context, w io.Writer) io.Writer {
	if len(ls) == 0 {
		return w
	}
	return &writer{ctx: ctx, w: w, ls: ls}
}

type writer struct {
	ctx context.Context
	w   io.Writer
	ls  Limits
}

func (t *writer) Write(p []byte) (int, error) {
	if err := t.ls.Wait(t.ctx, len(p)); err != nil {
		return 0, err
	}
	return t.w.Write(p)
}

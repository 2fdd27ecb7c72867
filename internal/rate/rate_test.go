package rate

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeClock stands still until a limiter sleeps on it.
type fakeClock struct {
	mu    sync.Mutex
	t     time.Time
	slept time.Duration
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *fakeClock) sleep(_ context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	c.slept += d
	return nil
}

func TestLimiterArithmetic(t *testing.T) {
	c := &fakeClock{t: time.Unix(1e9, 0)}
	l := New(1<<20).WithClock(c.now, c.sleep)
	for range 10 {
		l.Wait(context.Background(), 1<<20)
	}
	if c.slept < 9*time.Second || c.slept > 10*time.Second {
		t.Fatalf("10 MiB at 1 MiB/s slept %v, want 9-10 s", c.slept)
	}
	if New(0) != nil || New(-1) != nil {
		t.Fatal("a rate of 0 or less must mean no limiter")
	}
	var none *Limiter
	if err := none.Wait(context.Background(), 1<<30); err != nil || none.Rate() != 0 {
		t.Fatal("a nil limiter must limit nothing")
	}
	if l.Rate() != 1<<20 {
		t.Fatalf("Rate = %d", l.Rate())
	}
}

func TestLimitsWriter(t *testing.T) {
	a, b := &fakeClock{t: time.Unix(1e9, 0)}, &fakeClock{t: time.Unix(1e9, 0)}
	ls := Of(nil, New(1<<20).WithClock(a.now, a.sleep), New(2<<20).WithClock(b.now, b.sleep))
	if len(ls) != 2 {
		t.Fatalf("Of kept %d limiters, want the 2 set", len(ls))
	}
	var out bytes.Buffer
	w := ls.Writer(context.Background(), &out)
	for range 4 {
		w.Write(make([]byte, 1<<20))
	}
	if out.Len() != 4<<20 || a.slept < 3*time.Second || b.slept < time.Second {
		t.Fatalf("wrote %d, slept %v and %v", out.Len(), a.slept, b.slept)
	}
	if got := Of().Writer(context.Background(), &out); got != &out {
		t.Fatal("no limits must mean the writer itself")
	}
}

func TestWaitEndsWithContext(t *testing.T) {
	l := New(1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Wait(ctx, 1<<20); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait on a cancelled context: %v", err)
	}
}

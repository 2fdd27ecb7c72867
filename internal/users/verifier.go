package users

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
)

// maxDefaultHashMemory caps the default budget of a Verifier: 256 MiB,
// thirteen checks of a new hash (19 MiB each) at once.
const maxDefaultHashMemory = 256 << 20

// DefaultHashMemory returns the default budget of a Verifier (the
// auth_hash_memory setting when it is 0): one check of a new hash per
// processor Go runs on (GOMAXPROCS), at most 256 MiB.
func DefaultHashMemory() int64 { return hashMemoryFor(runtime.GOMAXPROCS(0)) }

// DefaultHashMemoryBeside is DefaultHashMemory for a server whose uploads
// hold large buffers of their own (S3 parts, up to s3_buffer_budget): at
// most two checks at once, whatever the number of processors, so that the
// memory of a burst of logins on top of the buffers stays within the
// budget's margin (issue 10: budget + 128 MiB) on any machine.
func DefaultHashMemoryBeside() int64 { return hashMemoryFor(min(runtime.GOMAXPROCS(0), 2)) }

// hashMemoryFor is DefaultHashMemory for procs processors. A check is
// computation alone (one lane), so more checks at once than processors
// make no login faster, only hold their memory longer: each extra one
// waits for a processor while holding its 19 MiB, on top of the S3 part
// buffers of the uploads in progress (issue 10).
func hashMemoryFor(procs int) int64 {
	return min(int64(max(procs, 1))*(int64(hashParams.memory)<<10), maxDefaultHashMemory)
}

// ErrBusy is returned (wrapped, with the context's error) by a Verifier when
// the context ended while the check waited for its share of the memory
// budget. It is not ErrAuth: nothing was decided about the password.
var ErrBusy = errors.New("users: too many password checks in progress")

// bcryptMemory is what a bcrypt check is charged, in bytes: its state is
// about 4 KiB.
const bcryptMemory = 16 << 10

// Verifier checks passwords against stored hashes while bounding the memory
// of the checks that run at once: an argon2id check allocates its memory cost
// (19 MiB for new hashes) for its whole duration, so that unbounded, every
// client that sends PASS grows the server before anyone is logged in. Each
// check takes its hash's memory cost from the budget, and waits, first come
// first served, until enough is free or its context ends (ErrBusy). A hash
// that costs more than the whole budget runs alone. One Verifier serves the
// whole server; it is safe for concurrent use.
type Verifier struct {
	budget int64 // bytes

	mu   sync.Mutex
	used int64     // bytes taken by running checks; guarded by mu
	wait list.List // *waiter, oldest first; guarded by mu
}

type waiter struct {
	n     int64
	ready chan struct{} // closed when the waiter holds n bytes
}

// NewVerifier returns a Verifier whose checks together hold at most budget
// bytes; budget <= 0 means DefaultHashMemory().
func NewVerifier(budget int64) *Verifier {
	if budget <= 0 {
		budget = DefaultHashMemory()
	}
	return &Verifier{budget: budget}
}

// defaultVerifier serves stores opened without a Verifier of their own.
var defaultVerifier = sync.OnceValue(func() *Verifier { return NewVerifier(0) })

// DefaultVerifier returns the process's Verifier with the default budget,
// shared by every store that is not given one.
func DefaultVerifier() *Verifier { return defaultVerifier() }

// Budget returns the Verifier's memory budget in bytes.
func (v *Verifier) Budget() int64 { return v.budget }

// Verify is VerifyPassword within the memory budget. It returns an error
// wrapping ErrBusy when ctx ends before the check could start.
func (v *Verifier) Verify(ctx context.Context, hash, password string) (bool, error) {
	n := hashMemory(hash)
	if err := v.acquire(ctx, n); err != nil {
		return false, err
	}
	defer v.release(n)
	return VerifyPassword(hash, password)
}

// VerifyDummy is the package's VerifyDummy within the memory budget: it
// waits and costs like the check of a new hash, so that a store can refuse a login without
// checking its password, in the time a check takes.
func (v *Verifier) VerifyDummy(ctx context.Context, password string) error {
	_, err := v.Verify(ctx, dummyHash, password)
	return err
}

// hashMemory returns the memory in bytes that checking hash allocates: the
// m parameter of argon2id, a constant for bcrypt, 0 for a hash that
// VerifyPassword refuses without work.
func hashMemory(hash string) int64 {
	switch {
	case strings.HasPrefix(hash, "$argon2id$"):
		p, _, _, err := decodeArgon2(hash)
		if err != nil {
			return 0
		}
		return int64(p.memory) << 10
	case strings.HasPrefix(hash, "$2"):
		return bcryptMemory
	}
	return 0
}

func (v *Verifier) acquire(ctx context.Context, n int64) error {
	if n <= 0 {
		return nil
	}
	n = min(n, v.budget)
	v.mu.Lock()
	if v.wait.Len() == 0 && v.used+n <= v.budget {
		v.used += n
		v.mu.Unlock()
		return nil
	}
	w := &waiter{n: n, ready: make(chan struct{})}
	e := v.wait.PushBack(w)
	v.mu.Unlock()

	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	select {
	case <-w.ready:
		// Granted while the context ended: give it back.
		v.used -= w.n
	default:
		v.wait.Remove(e)
	}
	// Leaving may let the next waiters in.
	v.grant()
	return fmt.Errorf("%w: %w", ErrBusy, ctx.Err())
}

func (v *Verifier) release(n int64) {
	if n <= 0 {
		return
	}
	n = min(n, v.budget)
	v.mu.Lock()
	v.used -= n
	v.grant()
	v.mu.Unlock()
}

// grant hands the free budget to waiters in order; v.mu is held.
func (v *Verifier) grant() {
	for e := v.wait.Front(); e != nil; e = v.wait.Front() {
		w := e.Value.(*waiter)
		if v.used+w.n > v.budget {
			return
		}
		v.used += w.n
		v.wait.Remove(e)
		close(w.ready)
	}
}

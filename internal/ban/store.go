package ban

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Ban is one banned address.
type Ban struct {
	// IP is the banned key as returned by Key: an IPv4 address, or the first
	// address of an IPv6 /64 (see Network).
	IP netip.Addr
	// Until is when the ban ends.
	Until time.Time
	// Count is how many times the address has been banned, this ban
	// included; it drives escalation.
	Count int
	// Reason is a human-readable cause, shown by `ferry ban list`.
	Reason string
}

// Active reports whether the ban is still in force at now.
func (b Ban) Active(now time.Time) bool { return now.Before(b.Until) }

// Store persists bans. Keys are passed as the Defender computed them (see
// Key); a store does not normalise them. Implementations must be safe for
// concurrent use, and may be shared by several Ferry nodes.
type Store interface {
	// Get returns the IP's ban if it is still active.
	Get(ctx context.Context, ip netip.Addr) (Ban, bool, error)
	// Put records b, replacing any earlier ban of b.IP.
	Put(ctx context.Context, b Ban) error
	// Delete forgets everything about ip, its ban history included.
	// Deleting an unknown address is not an error.
	Delete(ctx context.Context, ip netip.Addr) error
	// List returns the active bans, ordered by IP.
	List(ctx context.Context) ([]Ban, error)
}

// History is an optional Store capability: a store that keeps bans after
// they end can report a returning offender's previous ban, so its next ban is
// longer, across restarts and across nodes sharing the store. Without it
// every ban is a first ban. Both stores in this package implement it; they
// remember an ended ban for forgetAfter.
type History interface {
	// Last returns the IP's most recent ban, whether active or ended.
	Last(ctx context.Context, ip netip.Addr) (Ban, bool, error)
}

// Scorer is an optional Store capability: a store that keeps the scores
// itself, so that every process sharing it adds to the same score (10
// failures on one node and 10 on another are 20). A Defender on a Scorer
// keeps no scores in memory. SQLStore implements it.
type Scorer interface {
	// AddScore adds points to ip's score at now and returns the score: the
	// points added within window before now (a store may keep the window
	// coarser, counting an event for a little longer than window).
	AddScore(ctx context.Context, ip netip.Addr, points int, now time.Time, window time.Duration) (int, error)
}

// forgetAfter is how long an ended ban still counts towards escalation. A
// client that behaves for this long starts again from the first ban length.
const forgetAfter = 30 * 24 * time.Hour

// MemoryStore is a Store for a single node that keeps bans in memory; they
// are lost on restart.
type MemoryStore struct {
	now func() time.Time

	mu   sync.Mutex
	bans map[netip.Addr]Ban // guarded by mu; includes ended bans until forgotten
	puts int                // guarded by mu; counts Puts between sweeps
}

var (
	_ Store   = (*MemoryStore)(nil)
	_ History = (*MemoryStore)(nil)
)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{now: time.Now, bans: make(map[netip.Addr]Ban)}
}

// Get implements Store.
func (s *MemoryStore) Get(_ context.Context, ip netip.Addr) (Ban, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.bans[ip]
	if !ok || !b.Active(s.now()) {
		return Ban{}, false, nil
	}
	return b, true, nil
}

// Last implements History.
func (s *MemoryStore) Last(_ context.Context, ip netip.Addr) (Ban, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.bans[ip]
	if !ok || s.forgotten(b, s.now()) {
		return Ban{}, false, nil
	}
	return b, true, nil
}

// sweepEvery is how many Puts pass between sweeps of forgotten bans: often
// enough to bound memory, rarely enough that a Put stays cheap on average.
const sweepEvery = 256

// Put implements Store.
func (s *MemoryStore) Put(_ context.Context, b Ban) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bans[b.IP] = b
	if s.puts++; s.puts >= sweepEvery {
		s.puts = 0
		now := s.now()
		for ip, b := range s.bans {
			if s.forgotten(b, now) {
				delete(s.bans, ip)
			}
		}
	}
	return nil
}

func (s *MemoryStore) forgotten(b Ban, now time.Time) bool {
	return now.After(b.Until.Add(forgetAfter))
}

// Delete implements Store.
func (s *MemoryStore) Delete(_ context.Context, ip netip.Addr) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.bans, ip)
	return nil
}

// List implements Store.
func (s *MemoryStore) List(context.Context) ([]Ban, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var out []Ban
	for _, b := range s.bans {
		if b.Active(now) {
			out = append(out, b)
		}
	}
	slices.SortFunc(out, func(a, b Ban) int { return a.IP.Compare(b.IP) })
	return out, nil
}

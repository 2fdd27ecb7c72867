// Package ban defends against brute-force logins. A Defender scores bad
// behaviour per client address over a sliding window and, at a threshold,
// bans the address for a time that doubles with each repeat. Bans live in a
// Store, so they survive restarts (SQLStore), can be managed with
// `ferry ban`, and can later be shared by several nodes.
//
// Addresses are normalised by Key: IPv4-mapped IPv6 addresses count as IPv4,
// and IPv6 clients are scored and banned per /64, because a single host
// usually holds a whole /64 and can rotate through it freely; banning one
// address of it would stop nobody.
package ban

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"
)

// Event is a kind of client misbehaviour the Defender scores.
type Event int

// The events the Defender scores. A failed login is one event whatever the
// reason (unknown name, wrong password, disabled account): were names that
// do not exist scored apart, the moment of a ban would tell an attacker
// which names do.
const (
	FailedLogin   Event = iota // a login refused for any reason: 1
	ProtocolError              // garbage or abuse on the control connection: 1
)

// Weight returns how many points e adds to an address's score: one for
// every event.
func (e Event) Weight() int { return 1 }

// String returns the event's name as it appears in ban reasons.
func (e Event) String() string {
	switch e {
	case FailedLogin:
		return "failed login"
	case ProtocolError:
		return "protocol error"
	}
	return fmt.Sprintf("event %d", int(e))
}

// Options configures a Defender. Zero durations take the defaults below.
type Options struct {
	// Threshold is the score within Window that bans an address; 0 disables
	// the Defender entirely: nothing is scored and no ban, not even one added
	// with `ferry ban add`, is enforced.
	Threshold int
	// Window is how far back events count. Default 10 minutes.
	Window time.Duration
	// Duration is the length of a first ban; each later ban of the same
	// address doubles it. Default 15 minutes.
	Duration time.Duration
	// MaxDuration caps the doubling. Default 24 hours.
	MaxDuration time.Duration
	// Allow lists networks that are never scored nor banned.
	Allow []netip.Prefix
	// MaxTracked bounds how many addresses are scored (and how many ban
	// lookups are cached) at once, so that a spray from many addresses
	// cannot exhaust memory; beyond it the least recently seen address is
	// forgotten. Default 100000.
	MaxTracked int
	// CacheTTL is how long Banned trusts its memory of a store lookup, and
	// so how long a ban added or deleted by another process takes to apply
	// here when no notification tells (see Follow). Default 1 second; a
	// Defender that follows the store's changes can keep answers longer
	// (FollowCacheTTL), since a change then reaches it at once.
	CacheTTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives bans and store failures; nil discards them.
	Logger *slog.Logger
}

// DefaultCacheTTL is Options.CacheTTL's default. The cache keeps a flood of
// connections from querying the store for each one; its TTL bounds how long
// a ban added or deleted elsewhere (`ferry ban`, another node) takes to
// apply here when the Defender does not follow the store's changes.
const DefaultCacheTTL = time.Second

// FollowCacheTTL is the CacheTTL for a Defender that follows the store's
// change notifications (Follow): a safety net only, since a notification
// invalidates the entry at once and a lost one is followed by "" (forget
// everything).
const FollowCacheTTL = time.Minute

// failedLookupTTL is how long a failed store lookup lets an address in
// before asking again, so that a client reconnecting in a loop to a server
// whose database hangs does not cost a full timeout each time.
const failedLookupTTL = time.Second

// Defender scores events and enforces bans. It is safe for concurrent use.
type Defender struct {
	store Store
	o     Options // defaults applied
	log   *slog.Logger

	mu sync.Mutex
	// scores maps a key to its element in lru; guarded by mu.
	scores map[netip.Addr]*list.Element
	// lru holds *score, least recently scored first, so the front is both
	// the first to expire and the first to evict; guarded by mu.
	lru *list.List
	// cache remembers recent ban lookups per key; guarded by mu.
	cache map[netip.Addr]lookup
	// gen counts invalidations (Invalidate); a lookup that started before
	// one is not cached, since the change it announced may have come after
	// the lookup read the store. Guarded by mu.
	gen uint64
}

// score is one address's events inside the window, oldest first.
type score struct {
	key    netip.Addr
	events []event
	total  int // sum of the events' weights
}

type event struct {
	at     int64 // Unix nanoseconds; half the size of a time.Time
	weight int
}

// lookup is a cached answer of the store.
type lookup struct {
	until   time.Time // zero when not banned
	expires time.Time // when to ask the store again
	// local marks a ban this Defender decided but could not store: kept
	// until it ends, whatever Invalidate says, since the store does not
	// know it.
	local bool
}

// NewDefender returns a Defender that keeps its bans in store.
func NewDefender(store Store, o Options) *Defender {
	if o.Window <= 0 {
		o.Window = 10 * time.Minute
	}
	if o.Duration <= 0 {
		o.Duration = 15 * time.Minute
	}
	if o.MaxDuration <= 0 {
		o.MaxDuration = 24 * time.Hour
	}
	if o.MaxTracked <= 0 {
		o.MaxTracked = 100_000
	}
	if o.CacheTTL <= 0 {
		o.CacheTTL = DefaultCacheTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	allow := make([]netip.Prefix, 0, len(o.Allow))
	for _, p := range o.Allow {
		// Unmap so that ::ffff:10.0.0.0/104 matches the unmapped addresses
		// the Defender compares against.
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		allow = append(allow, p.Masked())
	}
	o.Allow = allow
	return &Defender{
		store:  store,
		o:      o,
		log:    log,
		scores: make(map[netip.Addr]*list.Element),
		lru:    list.New(),
		cache:  make(map[netip.Addr]lookup),
	}
}

// Key returns the address under which ip is scored and banned: ip itself
// for IPv4 (IPv4-mapped IPv6 addresses are unmapped first), and the first
// address of its /64 for IPv6. Zones are dropped.
func Key(ip netip.Addr) netip.Addr {
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		return netip.PrefixFrom(ip, 64).Masked().Addr()
	}
	return ip
}

// Network returns the addresses a ban on key covers: key/32 for IPv4 and
// key/64 for IPv6.
func Network(key netip.Addr) netip.Prefix {
	if key.Is4() {
		return netip.PrefixFrom(key, 32)
	}
	return netip.PrefixFrom(key, 64).Masked()
}

// subject returns ip's key, or false when ip is not to be scored or banned.
func (d *Defender) subject(ip netip.Addr) (netip.Addr, bool) {
	if d.o.Threshold <= 0 || !ip.IsValid() {
		return netip.Addr{}, false
	}
	ip = ip.Unmap().WithZone("")
	for _, p := range d.o.Allow {
		if p.Contains(ip) {
			return netip.Addr{}, false
		}
	}
	return Key(ip), true
}

// Record scores e against ip and reports whether ip is banned as a result
// (or already was). The caller should then close the connection. On a
// Scorer store the score is the store's, shared with every process on it;
// otherwise it is kept in memory.
//
// A non-nil error means the store failed while scoring or banning: the
// event may not have counted everywhere, and the caller should refuse the
// client as for any store failure (Ferry answers 421). When banned is true
// with an error, the ban is enforced by this Defender even though the store
// may not have it.
func (d *Defender) Record(ctx context.Context, ip netip.Addr, e Event) (banned bool, err error) {
	key, ok := d.subject(ip)
	if !ok {
		return false, nil
	}
	now := d.o.Now()

	d.mu.Lock()
	if d.bannedLocked(key, now) {
		d.mu.Unlock()
		return true, nil // a session opened before the ban keeps failing
	}
	var total int
	if sc, ok := d.store.(Scorer); ok {
		d.mu.Unlock()
		total, err = sc.AddScore(ctx, key, e.Weight(), now, d.o.Window)
		if err != nil {
			return false, err
		}
		if total < d.o.Threshold {
			return false, nil
		}
		d.mu.Lock()
		if d.bannedLocked(key, now) {
			d.mu.Unlock()
			return true, nil // a concurrent event of this process banned it
		}
	} else {
		s := d.add(key, e, now)
		if s.total < d.o.Threshold {
			d.mu.Unlock()
			return false, nil
		}
		total = s.total
		d.forget(d.scores[key]) // start over
	}
	// Mark the key banned for at least a first ban's length in the same
	// critical section, so concurrent events neither build a second score
	// nor ban twice while the store is consulted.
	d.rememberLocked(key, now.Add(d.o.Duration), now, false)
	d.mu.Unlock()

	return d.ban(ctx, key, now, fmt.Sprintf("score %d in %v, last: %s", total, d.o.Window, e))
}

// bannedLocked reports whether the cache holds a fresh ban of key. d.mu
// must be held.
func (d *Defender) bannedLocked(key netip.Addr, now time.Time) bool {
	c, ok := d.cache[key]
	return ok && now.Before(c.expires) && now.Before(c.until)
}

// add records e for key, dropping expired events and addresses and
// evicting the least recently seen address when full. d.mu must be held.
func (d *Defender) add(key netip.Addr, e Event, now time.Time) *score {
	horizon := now.Add(-d.o.Window).UnixNano()
	// Addresses whose newest event has left the window sit at the front.
	for f := d.lru.Front(); f != nil; f = d.lru.Front() {
		s := f.Value.(*score)
		if s.events[len(s.events)-1].at > horizon {
			break
		}
		d.forget(f)
	}

	el, ok := d.scores[key]
	if ok {
		d.lru.MoveToBack(el)
	} else {
		if d.lru.Len() >= d.o.MaxTracked {
			d.forget(d.lru.Front())
		}
		el = d.lru.PushBack(&score{key: key})
		d.scores[key] = el
	}
	s := el.Value.(*score)
	drop := 0
	for drop < len(s.events) && s.events[drop].at <= horizon {
		s.total -= s.events[drop].weight
		drop++
	}
	s.events = append(s.events[drop:], event{at: now.UnixNano(), weight: e.Weight()})
	s.total += e.Weight()
	return s
}

// forget stops scoring the address held by el. d.mu must be held.
func (d *Defender) forget(el *list.Element) {
	d.lru.Remove(el)
	delete(d.scores, el.Value.(*score).key)
}

// ban stores a ban of key, escalated from its previous one. Key is banned
// afterwards in any case; the error is the store's, if it failed.
func (d *Defender) ban(ctx context.Context, key netip.Addr, now time.Time, reason string) (bool, error) {
	b, ok, getErr := d.store.Get(ctx, key)
	if getErr == nil && ok && b.Active(now) {
		d.remember(key, b.Until, now, false)
		return true, nil // banned meanwhile, by another node or an operator
	}
	count := 0
	var histErr error
	if h, ok := d.store.(History); ok {
		prev, ok, err := h.Last(ctx, key)
		if err != nil {
			histErr = err
			d.log.Warn("ban history unavailable; treating as a first ban", "remote", key, "err", err)
		} else if ok {
			count = prev.Count
		}
	}
	b = Ban{IP: key, Until: now.Add(d.length(count)), Count: count + 1, Reason: reason}
	// Enforce locally even if storing fails: this node knows the client
	// misbehaves, whatever the store's trouble.
	putErr := d.store.Put(ctx, b)
	d.remember(key, b.Until, now, putErr != nil)
	if putErr != nil {
		d.log.Error("storing ban failed; enforced on this node only", "remote", key, "err", putErr)
	}
	d.log.Warn("banned", "remote", Network(key), "until", b.Until, "count", b.Count, "reason", reason)
	return true, errors.Join(getErr, histErr, putErr)
}

// length returns how long the ban after previous earlier ones lasts:
// Duration doubled per earlier ban, capped at MaxDuration.
func (d *Defender) length(previous int) time.Duration {
	l := d.o.Duration
	for i := 0; i < previous && l < d.o.MaxDuration; i++ {
		l *= 2
	}
	return min(l, d.o.MaxDuration)
}

// remember caches key's ban state (until is zero when not banned) for
// CacheTTL, so that `ferry ban del` applies within CacheTTL without
// notifications; a local ban (one the store failed to keep) until it
// ends. d.mu must not be held.
func (d *Defender) remember(key netip.Addr, until, now time.Time, local bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rememberLocked(key, until, now, local)
}

// rememberLocked is remember with d.mu held.
func (d *Defender) rememberLocked(key netip.Addr, until, now time.Time, local bool) {
	d.storeLocked(key, now, lookup{until: until, expires: now.Add(d.o.CacheTTL), local: local})
}

// storeLocked caches c for key, bounding the cache. d.mu must be held.
func (d *Defender) storeLocked(key netip.Addr, now time.Time, c lookup) {
	if c.local {
		c.expires = c.until
	}
	if _, ok := d.cache[key]; !ok && len(d.cache) >= d.o.MaxTracked {
		for k, c := range d.cache {
			if !now.Before(c.expires) {
				delete(d.cache, k)
			}
		}
		// Still full of fresh entries: a flood from many addresses. Start
		// afresh rather than scan on every insert; the cost is a store
		// lookup per address.
		if len(d.cache) >= d.o.MaxTracked/2 {
			clear(d.cache)
		}
	}
	d.cache[key] = c
}

// Invalidate forgets what d cached of key's ban state, so that its next
// check asks the store; the zero Addr forgets every key. Bans this
// Defender decided but could not store are kept. It is how a change
// announced by the store (Follow) applies at once.
func (d *Defender) Invalidate(key netip.Addr) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	if key.IsValid() {
		if c, ok := d.cache[key]; ok && !c.local {
			delete(d.cache, key)
		}
		return
	}
	for k, c := range d.cache {
		if !c.local {
			delete(d.cache, k)
		}
	}
}

// Follow applies the store's change notifications (SQLStore.Changes) to d
// until changes is closed: a key invalidates its entry, "" (or anything
// that is not an address) every entry. Run it in a goroutine of its own;
// with it, Options.CacheTTL can be FollowCacheTTL.
func (d *Defender) Follow(changes <-chan string) {
	for p := range changes {
		ip, err := netip.ParseAddr(p)
		if err != nil {
			d.Invalidate(netip.Addr{})
			continue
		}
		d.Invalidate(Key(ip))
	}
}

// Banned reports whether ip is banned and until when. It is meant to be
// called for every new connection, so answers are cached for CacheTTL (or
// until a notification invalidates them, see Follow).
//
// If the store fails, the address is let in (fail-open, the failure
// logged), unless this Defender already knows it banned: a ban database
// that is down must not turn into a refusal of every connection, and it
// need not, since every login of a user then fails closed (the user
// database is the same database: 421) and cannot be guessed at.
func (d *Defender) Banned(ctx context.Context, ip netip.Addr) (until time.Time, banned bool) {
	key, ok := d.subject(ip)
	if !ok {
		return time.Time{}, false
	}
	now := d.o.Now()

	d.mu.Lock()
	c, ok := d.cache[key]
	gen := d.gen
	d.mu.Unlock()
	if !ok || !now.Before(c.expires) {
		b, found, err := d.store.Get(ctx, key)
		d.mu.Lock()
		switch {
		case err != nil:
			d.log.Error("ban lookup failed; letting the client in unless banned here", "remote", ip, "err", err)
			if ok && now.Before(c.until) {
				break // a ban known here: keep it (and ask again next time)
			}
			c = lookup{expires: now.Add(min(failedLookupTTL, d.o.CacheTTL))}
			if d.gen == gen {
				d.storeLocked(key, now, c)
			}
		default:
			c = lookup{expires: now.Add(d.o.CacheTTL)}
			if found && b.Active(now) {
				c.until = b.Until
			}
			// A change announced while the store was read may be newer
			// than what it read: answer, but do not cache.
			if d.gen == gen {
				d.storeLocked(key, now, c)
			}
		}
		d.mu.Unlock()
	}
	if now.Before(c.until) {
		return c.until, true
	}
	return time.Time{}, false
}

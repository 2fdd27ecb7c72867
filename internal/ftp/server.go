// Package ftp is Ferry's protocol engine: RFC 959 with the extensions of RFC
// 2228, 2389, 2428, 3659, 4217 and 7151, over a command table (commands.go).
package ftp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferryftp/ferry/internal/ban"
	"github.com/ferryftp/ferry/internal/escape"
	"github.com/ferryftp/ferry/internal/quota"
	"github.com/ferryftp/ferry/internal/rate"
	"github.com/ferryftp/ferry/internal/sockopt"
	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/storage/local"
)

// Server serves FTP on any number of listeners. Set the fields and the site
// (SetSite), then call Serve; the fields must not change afterwards.
type Server struct {
	// Logger receives one line per connect, login, transfer and disconnect:
	// it is one observer of the sessions' events (see Observe), with a
	// queue of LogQueue events. Serve wraps its handler so that values
	// holding control characters are escaped (package escape).
	Logger *slog.Logger
	// LogQueue is the length of the Logger's event queue;
	// DefaultObserverQueue when 0.
	LogQueue int
	// Defender, when set, refuses banned addresses and scores failures.
	Defender Defender
	// WrapListener, when set, wraps every listener the server accepts on:
	// each one given to Serve (ControlConn) and each passive data listener
	// (PassiveConn), for the PROXY protocol, say. The connections it
	// accepts must report the client's address as RemoteAddr: passive data
	// connections are checked against the control connection's.
	WrapListener func(kind ConnKind, ln net.Listener) net.Listener
	// WrapConn, when set, wraps every connection before anything is read
	// or written on it (and before TLS): control connections as accepted,
	// passive data connections as accepted and active ones as dialled,
	// for byte counting, say. A wrapper that implements Unwrap() net.Conn
	// keeps urgent ABOR (SO_OOBINLINE), sendfile and the upload-trust check
	// working; one that also implements SentFile(n int64) is told the bytes
	// sendfile sent beneath it (internal/sockopt). A wrapper without
	// Unwrap works too, without those: downloads then pass through its
	// Write and urgent ABOR is not recognised.
	WrapConn func(kind ConnKind, c net.Conn) net.Conn
	// QuotaStore, when set, keeps the users' quota usage (package
	// sqlquota: in the database, shared by every server on it); nil
	// counts in this process's memory. Read once, at the first session.
	QuotaStore quota.Store

	site atomic.Pointer[Site] // the current site; swapped whole, never edited

	obsMu  sync.Mutex                      // serialises changes of subs
	subs   atomic.Pointer[[]*Subscription] // the observers; copied on change
	logSub *Subscription                   // the Logger's

	mu         sync.Mutex
	listeners  map[net.Listener]struct{}
	sessions   map[*session]struct{}
	perIP      map[netip.Addr]int
	active     int // admitted connections, guarded by mu
	perUser    map[string]int
	hashing    map[string]int        // on-demand digests running, by user name
	rates      map[string]*userRates // per-user rate limiters, by user name
	quotas     quota.Table           // quota usage, by user name and home
	pasvInUse  atomic.Int64          // open passive listeners
	inShutdown atomic.Bool
	draining   atomic.Bool   // set by Drain: sessions are told to reconnect
	done       chan struct{} // closed by Shutdown
	wg         sync.WaitGroup
	nextID     atomic.Uint64
	initOnce   sync.Once

	// background is cancelled by Shutdown: work that outlives a session
	// (the quota usage scan) runs under it.
	background     context.Context
	stopBackground context.CancelFunc
	// base is the context every session's derives from; cancelled when
	// Shutdown's grace period ends, which aborts the running transfers.
	base    context.Context
	endBase context.CancelFunc
}

// Defender scores misbehaviour and refuses banned addresses.
type Defender interface {
	// Banned reports whether ip is banned, checked at connect.
	Banned(ctx context.Context, ip netip.Addr) (until time.Time, banned bool)
	// Record scores e against ip and reports whether ip is banned now. An
	// error is a failure of the ban store: a login it happens in is
	// answered 421, like any store failure during a login.
	Record(ctx context.Context, ip netip.Addr, e int) (banned bool, err error)
}

// Event kinds passed to Defender.Record. A refused login is one
// EventFailedLogin whatever the reason, so that bans do not tell which user
// names exist.
const (
	EventFailedLogin   = 1
	EventProtocolError = 3
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("ftp: server closed")

func (srv *Server) init() {
	srv.initOnce.Do(func() {
		srv.quotas.Store = srv.QuotaStore
		srv.listeners = map[net.Listener]struct{}{}
		srv.sessions = map[*session]struct{}{}
		srv.perIP = map[netip.Addr]int{}
		srv.perUser = map[string]int{}
		srv.done = make(chan struct{})
		srv.background, srv.stopBackground = context.WithCancel(context.Background())
		srv.base, srv.endBase = context.WithCancel(context.Background())
		if srv.Logger == nil {
			srv.Logger = slog.New(slog.DiscardHandler)
		}
		// Paths, names and user names come from clients and disks.
		srv.Logger = slog.New(escape.Handler(srv.Logger.Handler()))
		srv.subs.Store(&[]*Subscription{})
		lo := &logObserver{log: srv.Logger}
		lo.sub = srv.observe(lo, srv.LogQueue)
		srv.logSub = lo.sub
	})
}

// SetSite installs the site that new connections get; sessions already
// running keep the one they started with. st must not change afterwards.
func (srv *Server) SetSite(st *Site) error {
	if st == nil || st.Auth == nil {
		return errors.New("ftp: a site needs an authenticator")
	}
	if st.Storage == nil {
		st.Storage = &local.Opener{}
	}
	if st.TLS != nil {
		st.tlsConfig = sessionTLSConfig(st.TLS, st.TLSMinVersion)
	}
	// The only slice of Settings: the caller keeps theirs, the site a copy
	// nobody else holds (Patterns are opaque and never change).
	st.TLSReuseExempt = slices.Clone(st.TLSReuseExempt)
	if st.up == nil {
		st.up = rate.New(st.UploadRate)
	}
	if st.down == nil {
		st.down = rate.New(st.DownloadRate)
	}
	srv.site.Store(st)
	return nil
}

// siteFor returns the site a new control connection is served by. Exactly
// one exists today; virtual hosts will choose by HOST or SNI.
func (srv *Server) siteFor(net.Conn) *Site { return srv.site.Load() }

// Serve accepts control connections on ln until Shutdown. With implicit set,
// TLS starts on connect (the port-990 style of RFC 4217 §10's predecessors).
func (srv *Server) Serve(ln net.Listener, implicit bool) error {
	srv.init()
	st := srv.site.Load()
	if st == nil {
		return errors.New("ftp: no site: call SetSite first")
	}
	if implicit && st.tlsConfig == nil {
		return errors.New("ftp: implicit TLS needs a certificate")
	}
	if srv.WrapListener != nil {
		ln = srv.WrapListener(ControlConn, ln)
	}
	srv.mu.Lock()
	if srv.inShutdown.Load() {
		srv.mu.Unlock()
		return ErrServerClosed
	}
	srv.listeners[ln] = struct{}{}
	srv.mu.Unlock()
	defer func() {
		srv.mu.Lock()
		delete(srv.listeners, ln)
		srv.mu.Unlock()
	}()

	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if srv.inShutdown.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) || isTemporary(err) {
				// Out of descriptors or similar: back off instead of spinning.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				srv.Logger.Warn("accept failed; retrying", "err", err, "delay", backoff)
				select {
				case <-time.After(backoff):
				case <-srv.done:
					return ErrServerClosed
				}
				continue
			}
			return err
		}
		backoff = 0
		srv.wg.Add(1)
		go srv.handle(c, implicit)
	}
}

func isTemporary(err error) bool {
	var se interface{ Temporary() bool }
	return errors.As(err, &se) && se.Temporary()
}

// handle runs one control connection after the admission checks; once
// the session is greeted, another goroutine runs it (see serve).
func (srv *Server) handle(c net.Conn, implicit bool) {
	s := srv.open(c)
	if s == nil {
		srv.wg.Done()
		return
	}
	s.serve(implicit)
}

// closed forgets an ended session.
func (srv *Server) closed(s *session) {
	srv.mu.Lock()
	delete(srv.sessions, s)
	srv.mu.Unlock()
	// Sent once the session no longer counts, so whoever reads the
	// event sees the server's state after it.
	s.emit(Event{Kind: KindDisconnect, Duration: time.Since(s.started)})
	srv.release(s.remote.Addr())
	srv.wg.Done()
}

// open makes the session of a new connection, or refuses the connection
// (banned address, limits) and returns nil.
func (srv *Server) open(c net.Conn) *session {
	if srv.WrapConn != nil {
		c = srv.WrapConn(ControlConn, c)
	}
	remote := addrPort(c.RemoteAddr())
	id := fmt.Sprintf("%x", srv.nextID.Add(1))

	site := srv.siteFor(c)
	if srv.Defender != nil {
		ctx, cancel := srv.base, context.CancelFunc(func() {})
		if d := site.BackendTimeout; d > 0 {
			ctx, cancel = context.WithTimeout(srv.base, d)
		}
		until, banned := srv.Defender.Banned(ctx, remote.Addr())
		cancel()
		if banned {
			srv.publish(Event{Kind: KindConnect, Time: time.Now(), Session: id, Remote: remote, Result: "refused", Reason: "banned", Until: until})
			c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprintf(c, "421 Too many failures from your address; try again later.\r\n")
			c.Close()
			return nil
		}
	}
	if msg := srv.admit(site, remote.Addr()); msg != "" {
		srv.publish(Event{Kind: KindConnect, Time: time.Now(), Session: id, Remote: remote, Result: "refused", Reason: msg})
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "421 %s\r\n", msg)
		c.Close()
		return nil
	}
	sockopt.OOBInline(c)

	s := newSession(srv, site, c, id)
	srv.mu.Lock()
	srv.sessions[s] = struct{}{}
	srv.mu.Unlock()
	return s
}

// admit counts a new connection against the global and per-IP limits and
// returns a refusal text, or "" when admitted.
func (srv *Server) admit(cfg *Site, ip netip.Addr) string {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if cfg.MaxSessions > 0 && srv.active >= cfg.MaxSessions {
		return "Too many users connected; try again later."
	}
	if cfg.MaxSessionsPerIP > 0 && srv.perIP[ip] >= cfg.MaxSessionsPerIP {
		return "Too many connections from your address."
	}
	srv.perIP[ip]++
	srv.active++
	return ""
}

func (srv *Server) release(ip netip.Addr) {
	srv.mu.Lock()
	srv.active--
	if srv.perIP[ip]--; srv.perIP[ip] <= 0 {
		delete(srv.perIP, ip)
	}
	srv.mu.Unlock()
}

// loginUser counts a session of user against the per-user limit (the
// user's own, or else def, the site's).
func (srv *Server) loginUser(name string, limit, def int) bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if limit <= 0 {
		limit = def
	}
	if limit > 0 && srv.perUser[name] >= limit {
		return false
	}
	srv.perUser[name]++
	return true
}

func (srv *Server) logoutUser(name string) {
	srv.mu.Lock()
	if srv.perUser[name]--; srv.perUser[name] <= 0 {
		delete(srv.perUser, name)
	}
	srv.mu.Unlock()
}

// Sessions reports the number of open control connections.
func (srv *Server) Sessions() int {
	srv.init()
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return len(srv.sessions)
}

// PassiveInUse reports the number of passive data listeners open now: the
// ports of the passive range in use. Safe from any goroutine.
func (srv *Server) PassiveInUse() int { return int(srv.pasvInUse.Load()) }

// abortWait bounds how long Shutdown waits for sessions to write their
// final replies once it has aborted them, before closing their connections.
const abortWait = 5 * time.Second

// Shutdown shuts the server down gracefully. It closes the listeners and
// ends every idle session with 421 at once; a session whose transfer runs
// lets it finish (226, then 421) until the grace period ends: the current
// site's ShutdownGrace, or ctx, whichever ends first. Then the remaining
// transfers are aborted (426, then 421, and no 226: the client sent no
// ABOR) and every session's context is cancelled. Sessions that are still
// open abortWait later are closed. Shutdown returns ctx.Err() when ctx
// ended before the sessions, nil otherwise.
func (srv *Server) Shutdown(ctx context.Context) error {
	var grace time.Duration
	if st := srv.site.Load(); st != nil {
		grace = st.ShutdownGrace
	}
	return srv.shutdown(ctx, grace)
}

// Drain is Shutdown for a binary upgrade, once a new process accepts on
// the listeners: the running transfers get grace (the drain timeout)
// instead of the site's ShutdownGrace, and sessions are told
// "421 Server restarting; please reconnect." so that clients come back to
// the new process.
func (srv *Server) Drain(ctx context.Context, grace time.Duration) error {
	srv.draining.Store(true)
	return srv.shutdown(ctx, grace)
}

// closingText is the text of the 421 a session gets when the server shuts
// down or drains.
func (srv *Server) closingText() string {
	if srv.draining.Load() {
		return "Server restarting; please reconnect."
	}
	return "Server shutting down."
}

func (srv *Server) shutdown(ctx context.Context, grace time.Duration) error {
	srv.init()
	defer func() {
		// The last events reach the logs.
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		srv.syncObservers(c)
		cancel()
	}()
	srv.mu.Lock()
	if !srv.inShutdown.Swap(true) {
		close(srv.done)
		srv.stopBackground()
	}
	for ln := range srv.listeners {
		ln.Close()
	}
	srv.mu.Unlock()
	finished := make(chan struct{})
	go func() { srv.wg.Wait(); close(finished) }()
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-finished:
		srv.endBase()
		return nil
	case <-timer.C:
	case <-ctx.Done():
	}
	srv.endBase()
	wait := time.NewTimer(abortWait)
	defer wait.Stop()
	select {
	case <-finished:
		return ctx.Err()
	case <-wait.C:
	}
	srv.mu.Lock()
	for s := range srv.sessions {
		s.raw.Close()
	}
	srv.mu.Unlock()
	// Closed connections end their sessions at once; don't hang on one
	// that cannot end.
	wait.Reset(abortWait)
	select {
	case <-finished:
	case <-wait.C:
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.New("ftp: sessions still open after the shutdown grace")
}

// PrepareData creates the data directory layout on first start: public/ for
// anonymous users and home/ for named users.
func PrepareData(dir string) error {
	for _, d := range []string{dir, filepath.Join(dir, "public"), filepath.Join(dir, "home")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}

func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// publicFS returns the site's anonymous tree, made (storage.HomeMaker),
// opened once and shared by every anonymous session: one descriptor and
// one check of the root instead of one per session.
func (st *Site) publicFS(ctx context.Context) (storage.FS, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.anonFS == nil {
		if hm, ok := st.Storage.(storage.HomeMaker); ok {
			if err := hm.MakeHome(ctx, st.AnonymousRoot); err != nil {
				return nil, err
			}
		}
		fsys, err := st.Storage.Open(ctx, st.AnonymousRoot)
		if err != nil {
			return nil, err
		}
		st.anonFS = fsys
	}
	return st.anonFS, nil
}

// BanDefender adapts the ban package's Defender to the engine's events.
func BanDefender(d *ban.Defender) Defender { return banDefender{d} }

type banDefender struct{ d *ban.Defender }

func (b banDefender) Banned(ctx context.Context, ip netip.Addr) (time.Time, bool) {
	return b.d.Banned(ctx, ip)
}

func (b banDefender) Record(ctx context.Context, ip netip.Addr, e int) (bool, error) {
	ev := ban.FailedLogin
	if e == EventProtocolError {
		ev = ban.ProtocolError
	}
	return b.d.Record(ctx, ip, ev)
}

package ftp

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferryftp/ferry/internal/event"
)

// EventKind says what an Event reports (package event).
type EventKind = event.Kind

// The kinds of Event (package event).
const (
	KindConnect    = event.KindConnect
	KindTLS        = event.KindTLS
	KindLogin      = event.KindLogin
	KindCommand    = event.KindCommand
	KindData       = event.KindData
	KindTransfer   = event.KindTransfer
	KindBan        = event.KindBan
	KindDisconnect = event.KindDisconnect
	KindChange     = event.KindChange
	KindRefused    = event.KindRefused
	KindClient     = event.KindClient
	KindFinding    = event.KindFinding
)

// Event is one thing that happened on a control connection; its fields are
// documented in package event.
type Event = event.Event

// Observer receives events. Observe runs on a goroutine of its own for each
// observer, never on a session's, so a slow observer delays only itself.
type Observer interface {
	Observe(Event)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(Event)

// Observe calls f(e).
func (f ObserverFunc) Observe(e Event) { f(e) }

// DefaultObserverQueue is the queue length of an observer registered with
// a length <= 0.
const DefaultObserverQueue = 1024

// Subscription is an observer's registration. Its queue is bounded: when it
// is full, events for this observer are dropped and counted, and no session
// ever waits.
type Subscription struct {
	o       Observer
	ch      chan Event
	quit    chan struct{}
	stopped sync.Once
	dropped atomic.Uint64
}

// barrierKind marks the event a Sync sends through the queue.
const barrierKind EventKind = 255

// Observe registers o for the events of every session from now on, with a
// queue of queue events (DefaultObserverQueue when queue <= 0).
func (srv *Server) Observe(o Observer, queue int) *Subscription {
	srv.init()
	return srv.observe(o, queue)
}

func (srv *Server) observe(o Observer, queue int) *Subscription {
	if queue <= 0 {
		queue = DefaultObserverQueue
	}
	sub := &Subscription{o: o, ch: make(chan Event, queue), quit: make(chan struct{})}
	go sub.run()
	srv.obsMu.Lock()
	defer srv.obsMu.Unlock()
	subs := append(append([]*Subscription(nil), *srv.subs.Load()...), sub)
	srv.subs.Store(&subs)
	return sub
}

func (sub *Subscription) run() {
	for {
		select {
		case e := <-sub.ch:
			if e.Kind == barrierKind {
				close(e.Err.(barrier))
				continue
			}
			sub.o.Observe(e)
		case <-sub.quit:
			return
		}
	}
}

// barrier is the channel a Sync waits on, carried in the event's Err.
type barrier chan struct{}

func (barrier) Error() string { return "barrier" }

// Dropped reports how many events this observer missed because its queue
// was full.
func (sub *Subscription) Dropped() uint64 { return sub.dropped.Load() }

// Sync waits until the observer has handled every event queued before the
// call, or ctx ends. Unlike sessions, it waits for room in a full queue.
func (sub *Subscription) Sync(ctx context.Context) error {
	b := make(barrier)
	select {
	case sub.ch <- Event{Kind: barrierKind, Err: b}:
	case <-sub.quit:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-b:
		return nil
	case <-sub.quit:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// StopObserving unregisters sub; events still queued are not delivered.
func (srv *Server) StopObserving(sub *Subscription) {
	srv.obsMu.Lock()
	var subs []*Subscription
	for _, x := range *srv.subs.Load() {
		if x != sub {
			subs = append(subs, x)
		}
	}
	srv.subs.Store(&subs)
	srv.obsMu.Unlock()
	sub.stopped.Do(func() { close(sub.quit) })
}

// publish hands e to every observer without waiting: a full queue drops it
// for that observer.
func (srv *Server) publish(e Event) {
	for _, sub := range *srv.subs.Load() {
		select {
		case sub.ch <- e:
		default:
			sub.dropped.Add(1)
		}
	}
}

// Publish hands an event that no session produced (a diagnosis finding,
// KindFinding) to every observer, as sessions' events are: without waiting.
// Its Time is set when zero.
func (srv *Server) Publish(e Event) {
	srv.init()
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	srv.publish(e)
}

// syncObservers waits until every observer has handled what is queued.
func (srv *Server) syncObservers(ctx context.Context) {
	for _, sub := range *srv.subs.Load() {
		sub.Sync(ctx)
	}
}

// emit publishes an event of this session, filling in the session's
// fields. Only the session goroutine calls it; see emitter.
func (s *session) emit(e Event) { s.emitter()(e) }

// emitter returns an emit function for other goroutines (a transfer's),
// with the session's fields as they are now.
func (s *session) emitter() func(Event) {
	srv, id, remote, user, secure, client := s.srv, s.id, s.remote, s.userName, s.tlsOn, s.client
	return func(e Event) {
		e.Time = time.Now()
		e.Session, e.Remote, e.Secure, e.Client = id, remote, secure, client
		if e.User == "" {
			e.User = user
		}
		srv.publish(e)
	}
}

// ---- snapshots ----

// SessionInfo is a snapshot of one live session, for an admin API.
type SessionInfo struct {
	ID        string
	Remote    netip.AddrPort
	Connected time.Time
	User      string // the user name given, if any
	Client    string // the client's software, as CLNT named it; "" without CLNT
	LoggedIn  bool
	Cwd       string // the current directory, when logged in
	TLS       bool   // the control connection is protected
	// Transfer is the running transfer, or nil.
	Transfer *TransferInfo
}

// TransferInfo describes a running transfer.
type TransferInfo struct {
	Cmd       string
	Path      string
	Direction string // "download", "upload", "list" or "hash"
	Started   time.Time
	Bytes     int64 // moved so far
	Size      int64 // the bytes the transfer will move, -1 when not known
}

// sessionState is what a session publishes for SessionSnapshots: immutable once
// stored; the session goroutine stores a new one when something changes.
type sessionState struct {
	user     string
	client   string
	loggedIn bool
	cwd      string
	tls      bool
	xfer     *transfer // its fixed fields and progress only
}

// publishState stores a new snapshot when the session's visible state
// changed; the session calls it before each reply and before it waits for
// the next line or transfer event.
func (s *session) publishState() {
	st := sessionState{user: s.userName, client: s.client, loggedIn: s.user != nil, tls: s.tlsOn, xfer: s.xfer}
	if st.loggedIn {
		st.cwd = s.cwd.String()
	}
	if old := s.state.Load(); old != nil && *old == st {
		return
	}
	s.state.Store(&st)
}

// SessionSnapshots returns a snapshot of every live session. It is safe to
// call from any goroutine at any time; a transfer's Bytes is read as it
// runs.
func (srv *Server) SessionSnapshots() []SessionInfo {
	srv.init()
	srv.mu.Lock()
	defer srv.mu.Unlock()
	out := make([]SessionInfo, 0, len(srv.sessions))
	for s := range srv.sessions {
		info := SessionInfo{ID: s.id, Remote: s.remote, Connected: s.started}
		if st := s.state.Load(); st != nil {
			info.User, info.Client, info.LoggedIn, info.Cwd, info.TLS = st.user, st.client, st.loggedIn, st.cwd, st.tls
			if t := st.xfer; t != nil {
				info.Transfer = &TransferInfo{Cmd: t.verb, Path: t.path, Direction: t.dir, Started: t.start, Bytes: t.progress.Load(), Size: t.size}
			}
		}
		out = append(out, info)
	}
	return out
}

// ---- the log observer ----

// logObserver writes the events as the server's log lines.
type logObserver struct {
	log  *slog.Logger
	sub  *Subscription
	seen uint64 // drops already reported
}

func (l *logObserver) Observe(e Event) {
	if d := l.sub.Dropped(); d > l.seen {
		l.log.Warn("log events dropped: observer queue full", "dropped", d-l.seen)
		l.seen = d
	}
	level, msg := slog.LevelInfo, ""
	var buf [12]slog.Attr // more than any event adds: no allocation
	attrs := buf[:0]
	add := func(a ...slog.Attr) { attrs = append(attrs, a...) }
	switch e.Kind {
	case KindConnect:
		switch {
		case e.Result == "ok":
			msg = "connect"
			add(slog.String("local", e.Local.String()), slog.Bool("implicit_tls", e.ImplicitTLS))
		case !e.Until.IsZero():
			level, msg = slog.LevelWarn, "refused banned address"
			add(slog.String("until", e.Until.UTC().Format(time.RFC3339)))
		default:
			level, msg = slog.LevelWarn, "refused connection"
			add(slog.String("reason", e.Reason))
		}
	case KindTLS:
		switch {
		case e.Result == "failed":
			msg = "TLS handshake failed"
			switch e.Conn {
			case "implicit":
				msg = "implicit TLS handshake failed"
			case "data":
				msg = "data TLS handshake failed"
			}
			add(slog.Any("err", e.Err))
		default:
			cs := e.TLS
			if cs == nil {
				cs = &tls.ConnectionState{}
			}
			add(slog.String("conn", e.Conn), slog.String("tls_version", tls.VersionName(cs.Version)),
				slog.String("cipher", tls.CipherSuiteName(cs.CipherSuite)), slog.Bool("resumed", cs.DidResume))
			msg = "TLS established"
			if e.Result == "refused" {
				level, msg = slog.LevelWarn, "TLS data connection refused"
				add(slog.String("refused", e.Reason))
			}
		}
	case KindLogin:
		msg = "login"
		add(slog.String("user", e.User))
		switch e.Result {
		case "ok":
			if e.Method == "anonymous" {
				add(slog.String("password", e.Detail))
			}
			add(slog.String("result", "ok"))
			if e.Method == "certificate" {
				add(slog.String("method", "certificate"))
			}
		case "refused":
			level, msg = slog.LevelWarn, "login refused"
			add(slog.String("reason", e.Reason))
		default: // failed, busy
			level = slog.LevelWarn
			add(slog.String("result", e.Result))
			if e.Reason != "" {
				add(slog.String("reason", e.Reason))
			}
			if e.Err != nil {
				add(slog.Any("err", e.Err))
			}
		}
	case KindCommand:
		level, msg = slog.LevelDebug, "command"
		add(slog.String("cmd", e.Cmd), slog.String("arg", e.Arg), slog.Int("code", e.Code))
	case KindData:
		switch e.Result {
		case "opened":
			level, msg = slog.LevelDebug, "data connection opened"
			add(slog.String("mode", e.Cmd), slog.String("from", e.Peer.String()))
		case "unused":
			level, msg = slog.LevelDebug, "passive listener closed unused"
			add(slog.String("mode", e.Cmd), slog.String("listener", e.Local.String()))
		case "listening":
			level, msg = slog.LevelDebug, "passive listener open"
			add(slog.String("mode", e.Cmd), slog.String("listener", e.Local.String()),
				slog.String("advertised", e.Peer.String()), slog.Int("in_use", e.InUse))
		}
		if level == slog.LevelDebug {
			break
		}
		level = slog.LevelWarn
		switch e.Reason {
		case "active address":
			msg = "active address refused"
			add(slog.String("target", e.Peer.String()))
		case "no passive port":
			msg = "no passive port available"
			add(slog.Any("err", e.Err))
		default:
			msg = "data connection refused"
			add(slog.String("reason", e.Reason))
			if e.Peer.IsValid() {
				add(slog.String("from", e.Peer.String()))
			}
			if e.Err != nil {
				add(slog.Any("err", e.Err))
			}
		}
	case KindTransfer:
		msg = "transfer"
		add(slog.String("user", e.User), slog.String("cmd", e.Cmd), slog.String("path", e.Path),
			slog.String("direction", e.Direction), slog.Int64("bytes", e.Bytes),
			slog.Duration("duration", e.Duration.Round(time.Microsecond)), slog.String("result", e.Result))
		if e.Err != nil && e.Result != "ok" {
			add(slog.String("err", e.Err.Error()))
		}
	case KindChange:
		// The audit trail: logged at info, the default level, with the
		// keys of a transfer.
		msg = "change"
		add(slog.String("user", e.User), slog.String("cmd", e.Cmd), slog.String("path", e.Path))
		if e.From != "" {
			add(slog.String("from", e.From))
		}
		if e.Detail != "" {
			add(slog.String("value", e.Detail))
		}
		add(slog.String("result", e.Result))
	case KindRefused:
		level, msg = slog.LevelWarn, "refused"
		add(slog.String("user", e.User), slog.String("cmd", e.Cmd), slog.String("path", e.Path),
			slog.String("result", "refused"), slog.String("reason", e.Reason), slog.Int("code", e.Code))
	case KindBan:
		level, msg = slog.LevelWarn, "address banned"
		add(slog.String("reason", e.Reason))
	case KindClient:
		msg = "client"
		add(slog.String("user", e.User), slog.String("client", e.Client))
	case KindDisconnect:
		msg = "disconnect"
		add(slog.String("user", e.User), slog.Duration("duration", e.Duration.Round(time.Millisecond)))
		if e.Client != "" {
			add(slog.String("client", e.Client))
		}
	default:
		return
	}
	ctx := context.Background()
	if !l.log.Enabled(ctx, level) {
		return
	}
	// The session's keys only now: Logger.With formats them, a cost that
	// every event paid when most (the commands) are not logged.
	log := l.log.With("session", e.Session, "remote", e.Remote.String())
	r := slog.NewRecord(e.Time, level, msg, 0)
	r.AddAttrs(attrs...)
	log.Handler().Handle(ctx, r)
}

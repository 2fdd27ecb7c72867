package ftp

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferryftp/ferry/internal/access"
	"github.com/ferryftp/ferry/internal/event"
	"github.com/ferryftp/ferry/internal/ftp/wire"
	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/tlsbind"
	"github.com/ferryftp/ferry/internal/users"
	"github.com/ferryftp/ferry/internal/vpath"
)

// maxQueued bounds the commands a client may send while a transfer runs
// (beyond ABOR, STAT, NOOP and QUIT, which are answered at once).
const maxQueued = 16

// session is one control connection. Its goroutine (serve) owns every field
// and is the only writer of replies; the reader goroutine only feeds lines.
type session struct {
	srv    *Server
	site   *Site    // taken at connect; the only settings this session reads
	conn   net.Conn // the control connection; a *tls.Conn after AUTH TLS
	raw    net.Conn // the TCP connection under conn
	id     string
	log    atomic.Pointer[slog.Logger] // made at first use: see logger
	remote netip.AddrPort
	local  netip.AddrPort
	out    []byte // reply scratch buffer
	// lastCode is the code of the last reply written, for the command
	// event.
	lastCode int
	started  time.Time                    // when the connection was accepted
	state    atomic.Pointer[sessionState] // published for Server.Sessions

	lines  chan lineMsg  // from the reader goroutine
	resume chan net.Conn // to the reader: go-ahead after a line (a new conn after AUTH); buffered, one at most
	queue  []string      // commands received during a transfer
	// resumeWith is the connection the reader continues on after the
	// current line: set by AUTH TLS (and CCC), nil otherwise.
	resumeWith net.Conn

	// Login state.
	userName string      // from USER, until PASS
	user     *users.User // nil until logged in
	anon     bool
	method   string // the login's method, for the events: "password", "certificate" or "anonymous"
	anonID   string // the anonymous password (sanitised), for the events
	failures int
	fs       storage.FS
	rules    access.Rules // the user's permission table
	rates    *userRates   // shared with the user's other sessions
	cwd      vpath.Path
	host     string // from HOST
	client   string // the client's software, from CLNT
	hash     hashState

	// Transfer parameters.
	typ        wire.Type
	rest       int64
	renameFrom *vpath.Path
	pasv       *passive
	active     netip.AddrPort // PORT/EPRT target; valid when activeSet
	activeSet  bool
	activeMode string // PORT or EPRT, for the events
	epsvAll    bool
	facts      wire.Facts

	// TLS state (RFC 4217).
	tlsOn bool // control connection is protected
	pbsz  bool
	protP bool
	tlsb  *tlsbind.Session // the identity data connections must resume; nil until TLS

	// sctx is the session's context: derived from the server's base, so
	// the end of the shutdown grace cancels it; cancelled by QUIT and when
	// the session ends. Transfers run under it. Commands run under
	// contexts of the server's base instead: a child of sctx would leave
	// sctx a map of its children (and a channel), kept by every idle
	// session; sctx is cancelled only between commands (and by QUIT, as
	// it ends).
	sctx    context.Context
	sCancel context.CancelFunc
	// cmdCtx is the running command's context (the server's base with
	// the backend deadline); nil between commands, and made by the
	// command's first ctx or longCtx call: most commands (TYPE, EPSV,
	// QUIT...) make no backend call, and two contexts and a timer per
	// command were a fifth of a short session's allocations. The reader
	// cancels it when it reads ABOR or QUIT ahead, or loses the connection
	// (see goAhead).
	cmdCtx context.Context
	// cmdLong is cmdCtx without the deadline, for work whose length is the
	// client's (a STAT listing it reads slowly).
	cmdLong context.Context
	cmdStop context.CancelFunc // cmdCtx's
	inCmd   bool               // a command runs: ctx makes cmdCtx
	cmdMu   sync.Mutex
	// cmdCancel cancels cmdLong and so cmdCtx; cmdInterrupted says the
	// reader has interrupted the running command, so that a context made
	// after that starts cancelled. Both guarded by cmdMu.
	cmdCancel      context.CancelFunc
	cmdInterrupted bool

	xfer     *transfer // the running transfer, or nil
	deadline time.Time // login or idle deadline
	loginBy  time.Time // login deadline, from connect or a REIN after login
	closing  bool
	draining bool // shutting down once the running transfer ends
	reading  bool // the reader goroutine runs

	// The waiter (see serve).
	timer     *time.Timer      // the login or idle deadline
	woke      int              // what woke the waiter: wokeLine...
	wokeLine  lineMsg          // with wokeLine
	wokeEvent xferEvent        // with wokeTransfer
	jobDone   chan *freshPanic // a job's end, and its panic
	over      bool             // the session ends: set by a job
}

type lineMsg struct {
	line string
	err  error
}

func newSession(srv *Server, site *Site, c net.Conn, id string) *session {
	s := &session{
		srv:     srv,
		site:    site,
		conn:    c,
		raw:     c,
		id:      id,
		remote:  addrPort(c.RemoteAddr()),
		local:   addrPort(c.LocalAddr()),
		lines:   make(chan lineMsg),
		resume:  make(chan net.Conn, 1),
		jobDone: make(chan *freshPanic),
		facts:   wire.DefaultFacts,
		started: time.Now(),
	}
	s.sctx, s.sCancel = context.WithCancel(srv.base)
	s.publishState()
	return s
}

// serve starts the session on the goroutine that accepted it and hands it
// to a waiter goroutine (wait) that runs it until the client quits, a
// timeout, or shutdown; the session is then over (finish).
//
// The waiter only waits: a goroutine's stack grows to fit its deepest call
// (a login, a TLS handshake, a listing) and never shrinks back to the
// smallest size once it has grown (a GC halves a stack only while a quarter
// of it is free, less the 800 bytes kept for nosplit calls), and an idle
// session's goroutines are most of what it costs. So the waiter starts on a
// fresh stack once the greeting is out, and runs everything it wakes for (a
// line, a transfer event, the timer, shutdown) as a job on a worker
// goroutine (runJob) while it waits for that: it allocates nothing and
// calls nothing deep until the session is over.
func (s *session) serve(implicit bool) {
	handed := false
	defer func() {
		if !handed {
			s.finish(recover(), nil)
		}
	}()
	if !s.greet(implicit) {
		return
	}
	s.deadline = s.loginBy
	s.reading = true
	go s.readLoop(s.conn)
	s.timer = time.NewTimer(time.Until(s.deadline))
	if !s.beforeWait() {
		return
	}
	handed = true
	go s.wait()
}

// wait is the session's waiter goroutine (see serve).
func (s *session) wait() {
	var p *freshPanic
	for !s.over {
		if s.xfer == nil && !s.draining {
			s.waitIdle()
		} else {
			var events <-chan xferEvent
			if s.xfer != nil {
				events = s.xfer.events
			}
			shutdown := s.srv.done
			if s.draining {
				shutdown = nil
			}
			s.waitBusy(events, shutdown)
		}
		if p = s.runJob(); p != nil {
			break
		}
	}
	var v any
	var stack []byte
	if p != nil {
		v, stack = p.value, p.stack
	}
	s.finish(v, stack)
}

// What woke the waiter, for the job.
const (
	wokeLine = iota + 1
	wokeLinesClosed
	wokeTransfer
	wokeTimer
	wokeShutdown
	wokeGraceOver
)

// waitIdle waits while no transfer runs and the server is not draining.
// The end of the shutdown grace needs no case of its own here: it comes
// after the start of the shutdown, which ends an idle session. Each case
// is a record (a sudog) that a waiting session keeps.
func (s *session) waitIdle() {
	select {
	case m, ok := <-s.lines:
		s.woke, s.wokeLine = wokeLine, m
		if !ok {
			s.woke = wokeLinesClosed
		}
	case <-s.timer.C:
		s.woke = wokeTimer
	case <-s.srv.done:
		s.woke = wokeShutdown
	}
}

// waitBusy is waitIdle while a transfer runs (its events) or the session
// drains (then the end of the grace, not the start of the shutdown).
func (s *session) waitBusy(events <-chan xferEvent, shutdown <-chan struct{}) {
	select {
	case m, ok := <-s.lines:
		s.woke, s.wokeLine = wokeLine, m
		if !ok {
			s.woke = wokeLinesClosed
		}
	case ev := <-events:
		s.woke, s.wokeEvent = wokeTransfer, ev
	case <-s.timer.C:
		s.woke = wokeTimer
	case <-shutdown:
		s.woke = wokeShutdown
	case <-s.srv.base.Done():
		s.woke = wokeGraceOver
	}
}

// Jobs run on worker goroutines that keep their stacks from job to job: a
// job on a new goroutine grew its stack from 2 KiB, copy by copy, every
// time (a stack copy walks every frame), which cost more than the rest of
// a short session. A worker waits workerIdle for its next job, then ends,
// and at most maxIdleWorkers wait at once; so an idle server keeps none,
// and a busy one a few, whatever its sessions. jobs hands a session to a
// worker: a go statement with an argument would allocate on the waiter's
// stack, and a rare allocation goes deep (sweeping), which would grow it.
var (
	jobs        = make(chan *session)
	idleWorkers atomic.Int32
)

const (
	workerIdle     = 250 * time.Millisecond
	maxIdleWorkers = 64
)

// runJob runs job on a worker goroutine and waits for it; the waiter is
// blocked meanwhile, so the job owns the session's state. It returns the
// job's panic, if any.
func (s *session) runJob() *freshPanic {
	select {
	case jobs <- s: // a worker was waiting
	default:
		go jobWorker()
		jobs <- s
	}
	return <-s.jobDone
}

func jobWorker() {
	var running *session
	defer func() {
		if running != nil {
			running.jobDone <- nil // runtime.Goexit in a job
		}
	}()
	var idle *time.Timer
	s := <-jobs
	for {
		running = s
		p := s.safeJob()
		running = nil
		s.jobDone <- p
		if idleWorkers.Add(1) > maxIdleWorkers {
			idleWorkers.Add(-1)
			return
		}
		if idle == nil {
			idle = time.NewTimer(workerIdle)
		} else {
			idle.Reset(workerIdle)
		}
		select {
		case s = <-jobs:
			idleWorkers.Add(-1)
		case <-idle.C:
			idleWorkers.Add(-1)
			return
		}
	}
}

// safeJob runs the session's job and returns its panic, if any.
func (s *session) safeJob() (fp *freshPanic) {
	defer func() {
		if p := recover(); p != nil {
			fp = &freshPanic{p, debug.Stack()}
		}
	}()
	s.job()
	return nil
}

// freshPanic is a job's panic, with the stack it happened on.
type freshPanic struct {
	value any
	stack []byte
}

// job is what the session does between two waits: what it woke for, then
// the queued commands, until the next wait or the end (s.over).
func (s *session) job() {
	s.over = !s.onWake() || !s.beforeWait()
}

// onWake handles what woke the waiter; false means the session ends.
func (s *session) onWake() bool {
	switch s.woke {
	case wokeLine:
		m := s.wokeLine
		s.wokeLine = lineMsg{}
		return s.onLine(&m)
	case wokeTransfer:
		ev := s.wokeEvent
		s.wokeEvent = xferEvent{}
		s.transferEvent(ev)
		return true
	case wokeTimer:
		return s.onTimer()
	case wokeShutdown:
		return s.onShutdown()
	case wokeGraceOver:
		return s.onGraceOver()
	}
	return false // wokeLinesClosed
}

// beforeWait runs the commands queued behind a transfer that may run now
// and sets the timer to the deadline; false means the session ends.
func (s *session) beforeWait() bool {
	for {
		if s.closing {
			return false
		}
		turned, ok := s.turn()
		if !turned {
			break
		}
		if !ok {
			return false
		}
	}
	s.timer.Reset(time.Until(s.deadline))
	return true
}

// finish ends the session, on every path: after a panic (p, with its
// stack, or the current one), it logs it.
func (s *session) finish(p any, stack []byte) {
	if p != nil {
		if stack == nil {
			stack = debug.Stack()
		}
		s.logger().Error("session panic", "panic", p, "stack", string(stack))
	}
	if s.timer != nil {
		s.timer.Stop()
	}
	s.cleanup()
	s.srv.closed(s)
}

// turn is the part of the loop that needs no wait: the next queued command,
// or the end of a drained session. turned reports whether it did either.
func (s *session) turn() (turned, ok bool) {
	s.publishState()
	if len(s.queue) > 0 && (s.xfer == nil || s.xfer.opened && midTransfer(s.queue[0])) {
		line := s.queue[0]
		s.queue = s.queue[1:]
		s.dispatch(line)
		return true, true
	}
	if s.draining && s.xfer == nil {
		s.reply(421, s.srv.closingText())
		return true, false
	}
	return false, false
}

// onGraceOver ends the session at the end of the shutdown grace period.
func (s *session) onGraceOver() bool {
	s.abortTransfer(false)
	s.reply(421, s.srv.closingText())
	return false
}

// onLine handles a line from the reader, or its error.
func (s *session) onLine(m *lineMsg) bool {
	if m.err != nil {
		if errors.Is(m.err, wire.ErrLineTooLong) {
			s.reply(500, "Command line too long.")
			s.record(EventProtocolError)
			s.resume <- nil
			return true
		}
		if !errors.Is(m.err, io.EOF) && !errors.Is(m.err, io.ErrUnexpectedEOF) && !errors.Is(m.err, net.ErrClosed) {
			s.logger().Debug("control read failed", "err", m.err)
		}
		s.abortTransfer(false)
		return false
	}
	s.handleLine(m.line)
	if !s.closing {
		s.resume <- s.resumeWith
		s.resumeWith = nil
	}
	return true
}

// onTimer handles the login or idle deadline.
func (s *session) onTimer() bool {
	if s.xfer != nil {
		// Data keeps the control connection alive: no idle
		// timeout while a transfer runs.
		s.deadline = time.Now().Add(s.site.IdleTimeout)
	} else if !time.Now().Before(s.deadline) {
		if s.user == nil {
			s.reply(421, "Login timeout; closing control connection.")
		} else {
			s.reply(421, "Idle timeout; closing control connection.")
		}
		s.logger().Info("timeout", "logged_in", s.user != nil)
		return false
	}
	return true
}

// onShutdown handles the start of the server's shutdown.
func (s *session) onShutdown() bool {
	if s.xfer == nil {
		s.reply(421, s.srv.closingText())
		return false
	}
	// The running transfer may finish within the grace period; its reply
	// then comes before the 421.
	s.draining = true
	s.logger().Info("shutdown: waiting for the running transfer", "cmd", s.xfer.verb)
	return true
}

// greet starts the session: the implicit TLS handshake, if any, and the
// 220 greeting; false means the session ends.
func (s *session) greet(implicit bool) bool {
	s.emit(Event{Kind: KindConnect, Result: "ok", Local: s.local, ImplicitTLS: implicit})
	// The login deadline counts from connect, the implicit TLS handshake
	// included.
	s.loginBy = time.Now().Add(s.site.LoginTimeout)
	if implicit {
		tc := tls.Server(s.raw, s.controlTLSConfig())
		tc.SetDeadline(s.loginBy)
		if err := tc.Handshake(); err != nil {
			s.emit(Event{Kind: KindTLS, Conn: "implicit", Result: "failed", Err: err})
			return false
		}
		tc.SetDeadline(time.Time{})
		// The login deadline starts again with the completed handshake,
		// as after AUTH TLS.
		s.loginBy = time.Now().Add(s.site.LoginTimeout)
		s.conn = tc
		s.tlsOn, s.pbsz, s.protP = true, true, true
		s.logTLS("control", tc.ConnectionState(), "")
	}
	s.reply(220, s.site.Banner)
	return true
}

// quitWait is how long a QUIT read ahead lets the running command go on
// before cancelling it: a client that pipelines "RETR f" and "QUIT" still
// gets its file, a hung backend still lets the client leave.
const quitWait = time.Second

// readLoop feeds control lines to the session. After each line it reads the
// next one ahead, but hands it over only with the session's go-ahead, so a
// client cannot run ahead by more than a line; ABOR, QUIT or a lost
// connection read ahead cancel the running command's context, so that a
// hung backend call cannot keep the session from answering (goAhead). After
// AUTH and CCC nothing is read ahead: the session swaps the connection first.
func (s *session) readLoop(c net.Conn) {
	defer close(s.lines)
	// r is made in the loop, which puts it on the heap: in this frame it
	// would keep an idle session's reader from the smallest stack.
	var r *wire.Reader
	pending := false // a line was handed over and its go-ahead has not come
	for {
		if r == nil {
			r = wire.NewReader(c, s.site.MaxLineBytes)
		}
		line, err := r.ReadLine()
		if pending && !s.goAhead(line, err) {
			return
		}
		pending = false
		s.lines <- lineMsg{line, err}
		if err != nil && !errors.Is(err, wire.ErrLineTooLong) {
			return
		}
		if verb, _ := wire.Split(line); verb != "AUTH" && verb != "CCC" {
			pending = true
			continue
		}
		next, ok := <-s.resume
		if !ok {
			return
		}
		if next != nil {
			// AUTH TLS: bytes the client sent in plaintext after AUTH
			// are discarded with the old reader (RFC 4217 §13 warns of
			// command injection across the TLS boundary).
			c, r = next, nil
		}
	}
}

// goAhead waits for the session's go-ahead for the previous line, having
// read the next one (line, err) ahead; false means the session has ended.
func (s *session) goAhead(line string, err error) bool {
	verb := ""
	if err == nil {
		verb, _ = wire.Split(line)
	}
	switch {
	case err != nil && !errors.Is(err, wire.ErrLineTooLong), verb == "ABOR":
		s.interrupt()
	case verb == "QUIT":
		t := time.NewTimer(quitWait)
		defer t.Stop()
		select {
		case _, ok := <-s.resume:
			return ok
		case <-t.C:
			s.interrupt()
		}
	}
	_, ok := <-s.resume
	return ok
}

// interrupt cancels the running command's context, if a command runs.
// Called by the reader goroutine.
func (s *session) interrupt() {
	s.cmdMu.Lock()
	s.cmdInterrupted = true
	if s.cmdCancel != nil {
		s.cmdCancel()
	}
	s.cmdMu.Unlock()
}

// backendCtx is the context of backend calls (storage, authentication,
// bans) made under parent: it ends at the site's BackendTimeout.
func (s *session) backendCtx(parent context.Context) (context.Context, context.CancelFunc) {
	if d := s.site.BackendTimeout; d > 0 {
		return context.WithTimeout(parent, d)
	}
	return context.WithCancel(parent)
}

// ctx is the context of the running command's backend calls; between
// commands, the session's.
func (s *session) ctx() context.Context {
	s.makeCmdCtx()
	if s.cmdCtx != nil {
		return s.cmdCtx
	}
	return s.sctx
}

// longCtx is ctx without the backend deadline: for a command's work whose
// length the client decides (it ends with ABOR, QUIT and the session).
func (s *session) longCtx() context.Context {
	s.makeCmdCtx()
	if s.cmdLong != nil {
		return s.cmdLong
	}
	return s.sctx
}

// makeCmdCtx makes the running command's contexts, once; cancelled at
// once when the reader has interrupted the command already.
func (s *session) makeCmdCtx() {
	if !s.inCmd || s.cmdCtx != nil {
		return
	}
	long, cancel := context.WithCancel(s.srv.base) // not sctx: see there
	ctx, stop := s.backendCtx(long)
	s.cmdMu.Lock()
	s.cmdLong, s.cmdCtx, s.cmdStop, s.cmdCancel = long, ctx, stop, cancel
	if s.cmdInterrupted {
		cancel()
	}
	s.cmdMu.Unlock()
}

// handleLine dispatches a line or queues it behind the running transfer.
func (s *session) handleLine(line string) {
	if s.xfer != nil {
		verb, _ := wire.Split(line)
		if verb == "AUTH" || verb == "CCC" {
			// The reader has already moved on: changing the
			// connection's protection now would be unsafe.
			s.reply(503, verb+" is not allowed during a transfer.")
			return
		}
		// Until the 150 is out, even mid-transfer commands wait, so
		// replies keep the order of the commands (ABOR and QUIT act now).
		early := !s.xfer.opened && verb != "ABOR" && verb != "QUIT"
		if c := commands[verb]; c == nil || !c.midTransfer || early {
			if len(s.queue) >= maxQueued {
				s.reply(421, "Too many commands pending; closing control connection.")
				s.closing = true
				return
			}
			s.queue = append(s.queue, line)
			return
		}
	}
	s.dispatch(line)
}

// dispatch runs one command through the rules of its table row.
func (s *session) dispatch(line string) {
	if s.user != nil {
		s.deadline = time.Now().Add(s.site.IdleTimeout)
	} else {
		s.deadline = s.loginBy // commands never extend the login timeout
	}
	s.cmdMu.Lock()
	s.inCmd, s.cmdInterrupted = true, false
	s.cmdMu.Unlock()
	defer func() {
		s.cmdMu.Lock()
		stop, cancel := s.cmdStop, s.cmdCancel
		s.cmdLong, s.cmdCtx, s.cmdStop, s.cmdCancel = nil, nil, nil, nil
		s.inCmd = false
		s.cmdMu.Unlock()
		if cancel != nil {
			stop()
			cancel()
		}
	}()
	verb, arg := wire.Split(line)
	s.lastCode = 0
	defer func() {
		if verb == "PASS" {
			arg = ""
		}
		s.emit(Event{Kind: KindCommand, Cmd: verb, Arg: arg, Code: s.lastCode})
	}()
	if verb == "" {
		s.reply(500, "Empty command.")
		return
	}
	c := commands[verb]
	if c == nil {
		s.reply(500, "Unknown command.")
		if s.user == nil {
			// Scored only before login: logged-in clients send
			// harmless extras (CLNT, XCRC...) on every connection.
			s.record(EventProtocolError)
		}
		return
	}
	if verb != "RNTO" && verb != "RNFR" {
		s.renameFrom = nil
	}
	if s.rangeRefused(verb) {
		return
	}
	switch {
	case !c.preTLS && !s.tlsOn && s.controlTLSRequired():
		s.reply(530, "TLS required on the control connection: use AUTH TLS first.")
		s.refused(verb, "", event.RefusedTLSRequired)
	case !c.public && s.user == nil:
		s.reply(530, "Please login with USER and PASS.")
	case c.argument && arg == "":
		s.reply(501, "Syntax error: "+verb+" needs an argument.")
	case c.data && s.pasv == nil && !s.activeSet:
		s.reply(425, "Use PORT, EPRT, PASV or EPSV first.")
	case c.data && !s.protP && s.dataTLSRequired():
		// RFC 4217 §9: the policy demands protected data connections.
		s.reply(521, "Data connection cannot be opened with this PROT setting: use PBSZ 0 and PROT P.")
		s.refused(verb, "", event.RefusedTLSRequired)
		s.abandonData()
	default:
		s.run(c, verb, arg)
	}
}

// reply writes one reply. It is the only writer of the control connection.
// Once the session is closing (after its 421 or 221) nothing more is sent.
func (s *session) reply(code int, text string) {
	if s.closing {
		return
	}
	s.lastCode = code
	// Whoever has read a reply sees its command's effect in
	// SessionSnapshots (a name from CLNT, a login, a new directory).
	s.publishState()
	s.out = wire.AppendReply(s.out[:0], code, text)
	s.write(s.out)
	if cap(s.out) > 4096 {
		s.out = nil // don't keep a big FEAT buffer per idle session
	}
}

// write writes b to the control connection under the write deadline; a
// failed write ends the session.
func (s *session) write(b []byte) {
	// A client that never reads must not outlive its timeouts: before
	// login the login deadline (plus a grace for the final 421) bounds
	// every write.
	dl := time.Now().Add(s.site.IdleTimeout)
	if s.user == nil && !s.loginBy.IsZero() {
		if by := s.loginBy.Add(5 * time.Second); by.Before(dl) {
			dl = by
		}
	}
	s.conn.SetWriteDeadline(dl)
	if _, err := s.conn.Write(b); err != nil {
		s.closing = true
	}
}

// replyChunk is how much of a long multi-line reply is held before it is
// written to the control connection.
const replyChunk = 32 << 10

// longReply writes a multi-line reply of any length (RFC 959 §4.2), such as
// STAT's listing, straight to the control connection in chunks of about
// replyChunk bytes, each under the write deadline: a client that does not
// read the reply holds one chunk of memory until the deadline ends the
// session, never the whole reply. Like reply, it runs on the session
// goroutine only. Its Write takes the middle lines, each ending in LF (a CR
// before the LF is dropped); the first line is written with the first
// chunk, so nothing is sent before the caller knows the reply is a success.
type longReply struct {
	s       *session
	code    int
	first   string
	started bool   // the first line is in buf or written
	buf     []byte // encoded lines not written yet; about replyChunk at most
	part    []byte // the start of a line whose LF has not come yet
}

func (s *session) newLongReply(code int, first string) *longReply {
	return &longReply{s: s, code: code, first: first}
}

func (r *longReply) start() {
	if !r.started {
		r.started = true
		r.buf = wire.AppendReplyStart(r.buf[:0], r.code, r.first)
	}
}

// Write adds middle lines; it fails once the connection has failed.
func (r *longReply) Write(p []byte) (int, error) {
	s := r.s
	if s.closing {
		return 0, net.ErrClosed
	}
	n := len(p)
	r.start()
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			r.part = append(r.part, p...)
			break
		}
		line := p[:i]
		if len(r.part) > 0 {
			r.part = append(r.part, line...)
			line = r.part
		}
		r.buf = wire.AppendReplyMiddle(r.buf, bytes.TrimSuffix(line, []byte{'\r'}))
		r.part = r.part[:0]
		p = p[i+1:]
		if len(r.buf) >= replyChunk {
			s.write(r.buf)
			if s.closing {
				return n - len(p), net.ErrClosed
			}
			r.buf = r.buf[:0]
		}
	}
	return n, nil
}

// end writes the last line (and a first one, if nothing was written).
func (r *longReply) end(last string) {
	s := r.s
	if s.closing {
		return
	}
	r.start()
	if len(r.part) > 0 {
		r.buf = wire.AppendReplyMiddle(r.buf, r.part)
	}
	r.buf = wire.AppendReplyEnd(r.buf, r.code, last)
	s.write(r.buf)
	r.buf, r.part = nil, nil
}

// record reports misbehaviour to the brute-force defence; a ban ends the
// session. It returns the ban store's error, if it failed (logged here); a
// ban this node decided but could not store ends the session as a store
// failure (421, user database error).
func (s *session) record(e int) error {
	if s.srv.Defender == nil {
		return nil
	}
	ctx, cancel := s.backendCtx(s.ctx())
	defer cancel()
	banned, err := s.srv.Defender.Record(ctx, s.remote.Addr(), e)
	if err != nil {
		s.logger().Error("ban store failed", "err", err)
	}
	if banned {
		reason := "failed logins"
		if e == EventProtocolError {
			reason = "protocol errors"
		}
		s.emit(Event{Kind: KindBan, Reason: reason})
		if err != nil {
			s.storeFailed()
			return err
		}
		s.reply(421, "Too many failures from your address; try again later.")
		s.closing = true
	}
	return err
}

// cleanup releases everything the session holds, on every exit path.
func (s *session) cleanup() {
	s.abortTransfer(false)
	s.closePassive()
	s.logout()
	s.sCancel()
	s.conn.Close()
	close(s.resume)
	if s.reading {
		for range s.lines {
			// drain so the reader goroutine can exit
		}
	}
}

// logout forgets the user, for QUIT, REIN and the end of the session.
func (s *session) logout() {
	if s.user != nil && !s.anon {
		s.srv.logoutUser(s.user.Name)
	}
	if c, ok := s.fs.(io.Closer); ok && !s.anon {
		c.Close() // the anonymous tree is shared, see publicFS
	}
	s.user, s.fs, s.anon, s.method, s.anonID = nil, nil, false, "", ""
}

// logger is the session's logger, with its keys. It is made at the first
// use: most sessions log nothing, and the keys cost a copy of the handler
// each, which an idle session would keep.
func (s *session) logger() *slog.Logger {
	if l := s.log.Load(); l != nil {
		return l
	}
	s.log.CompareAndSwap(nil, s.srv.Logger.With("session", s.id, "remote", s.remote.String()))
	return s.log.Load()
}

// controlTLSRequired reports whether the policy demands TLS on the control
// connection for this session (before login: for the named user, if known).
func (s *session) controlTLSRequired() bool { return s.tlsPolicy().control() }

func (s *session) dataTLSRequired() bool { return s.tlsPolicy().data() }

func (s *session) tlsPolicy() TLSPolicy {
	if s.site.tlsConfig == nil {
		return TLSNone
	}
	if s.anon || isAnonymous(s.userName) {
		if s.site.TLSAnonymousExempt {
			return TLSNone
		}
	}
	if s.user != nil && s.user.TLSRequired != "" {
		// The store validates it; an unknown value demands everything.
		if p, err := ParseTLSPolicy(s.user.TLSRequired); err == nil {
			return p
		}
		return TLSAll
	}
	return s.site.TLSRequired
}

func isAnonymous(name string) bool {
	n := strings.ToLower(name)
	return n == "anonymous" || n == "ftp"
}

// midTransfer reports a command answered while a transfer runs.
func midTransfer(line string) bool {
	verb, _ := wire.Split(line)
	c := commands[verb]
	return c != nil && c.midTransfer
}

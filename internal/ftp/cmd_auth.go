package ftp

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ferryftp/ferry/internal/access"
	"github.com/ferryftp/ferry/internal/event"
	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/users"
	"github.com/ferryftp/ferry/internal/vpath"
)

// failedLoginDelay slows password guessing on one connection.
const failedLoginDelay = time.Second

func (s *session) cmdUSER(r *request) error {
	arg := r.arg
	if s.user != nil {
		s.reply(530, "Already logged in; use REIN to change user.")
		return nil
	}
	if err := vpath.Check(arg); err != nil || len(arg) > 256 || !utf8.ValidString(arg) {
		s.reply(501, "Invalid user name.")
		return nil
	}
	s.userName = arg
	if !s.tlsOn && s.controlTLSRequired() {
		s.userName = ""
		s.reply(530, "TLS required on the control connection: use AUTH TLS first.")
		s.refused("USER", "", event.RefusedTLSRequired)
		return nil
	}
	if isAnonymous(arg) {
		s.reply(331, "Anonymous login ok, send your complete e-mail address as password.")
		return nil
	}
	u, err := s.certUser(arg)
	if err != nil {
		s.userName = ""
		s.storeFailed()
		return nil
	}
	if u != nil {
		// RFC 2228 §3: 232, logged in by the security exchange.
		if s.admitUser(u) {
			s.method = "certificate"
			s.emit(Event{Kind: KindLogin, User: u.Name, Result: "ok", Method: "certificate"})
			s.welcome(232, "User logged in, authorized by client certificate.")
		}
		return nil
	}
	s.reply(331, "Please specify the password.")
	return nil
}

// certUser returns the account that a verified client certificate logs in
// without a password (users.CertLogin), when the Authenticator has the
// users.Lookup capability; otherwise nil, and the login goes on with PASS.
// An error is the user store's (logged here): the login must not go on.
func (s *session) certUser(name string) (*users.User, error) {
	look, ok := s.site.Auth.(users.Lookup)
	if !ok {
		return nil, nil
	}
	req := s.loginRequest(name, "")
	if req.Cert == nil {
		return nil, nil
	}
	ctx, cancel := s.loginCtx()
	defer cancel()
	u, err := users.CertLogin(ctx, look, req)
	if err != nil {
		if !errors.Is(err, users.ErrAuth) {
			s.logger().Error("user store failed", "user", name, "err", err)
			return nil, err
		}
		return nil, nil
	}
	return u, nil
}

// storeFailed answers a login that the user or ban store could not decide
// (the database is away): 421 and the connection closes, never 530 (the
// client did nothing wrong, and is not scored) and never a login.
func (s *session) storeFailed() {
	s.reply(421, "Service not available: user database error.")
	s.closing = true
}

// loginRequest describes a login as name with password on this connection.
func (s *session) loginRequest(name, password string) users.LoginRequest {
	req := users.LoginRequest{Name: name, Password: password, Host: s.host, Remote: s.remote}
	if tc, ok := s.conn.(*tls.Conn); ok && s.tlsOn {
		cs := tc.ConnectionState()
		req.TLS = &cs
		if len(cs.VerifiedChains) > 0 {
			req.Cert = cs.VerifiedChains[0][0]
		}
	}
	return req
}

// loginCtx is the context of an authentication call: the command's, ending
// at the login deadline.
func (s *session) loginCtx() (context.Context, context.CancelFunc) {
	if s.loginBy.IsZero() {
		return context.WithCancel(s.ctx())
	}
	return context.WithDeadline(s.ctx(), s.loginBy)
}

// renewBackendCtx gives the rest of the running command a backend
// deadline counted from now, and returns the function that puts the old
// one back.
func (s *session) renewBackendCtx() func() {
	if s.cmdLong == nil {
		return func() {}
	}
	old := s.cmdCtx
	ctx, stop := s.backendCtx(s.cmdLong)
	s.cmdMu.Lock()
	s.cmdCtx = ctx
	s.cmdMu.Unlock()
	return func() {
		s.cmdMu.Lock()
		s.cmdCtx = old
		s.cmdMu.Unlock()
		stop()
	}
}

// passCtx is the context of a password check: the command's without the
// backend deadline, ending at the login deadline. A check may wait for its
// share of the hash memory budget (auth_hash_memory) behind a burst of
// logins, which the login deadline bounds; the store's queries have the
// database's own timeouts.
func (s *session) passCtx() (context.Context, context.CancelFunc) {
	if s.loginBy.IsZero() {
		return s.loginCtx()
	}
	return context.WithDeadline(s.longCtx(), s.loginBy)
}

// certNames reports whether the control connection's verified client
// certificate names the user.
func (s *session) certNames(name string) bool {
	return users.CertNames(s.loginRequest(name, "").Cert, name)
}

func (s *session) cmdPASS(r *request) error {
	arg := r.arg
	switch {
	case s.user != nil:
		s.reply(230, "Already logged in.")
		return nil
	case s.userName == "":
		s.reply(503, "Login with USER first.")
		return nil
	}
	name := s.userName
	if isAnonymous(name) {
		if !s.site.Anonymous {
			s.loginFailed(name, "anonymous logins are disabled", EventFailedLogin)
			return nil
		}
		root := s.site.AnonymousRoot
		if !s.startSession(&users.User{Name: "anonymous", Home: root}, true) {
			return nil
		}
		s.method, s.anonID = "anonymous", sanitizeEmail(arg)
		s.emit(Event{Kind: KindLogin, User: "anonymous", Result: "ok", Method: "anonymous", Detail: s.anonID})
		s.welcome(230, "Anonymous access granted, restrictions apply.")
		return nil
	}
	ctx, cancel := s.passCtx()
	u, err := s.site.Auth.Authenticate(ctx, s.loginRequest(name, arg))
	cancel()
	// The check may have waited past the command's backend deadline: the
	// calls after it (ban score, the home's storage) get theirs from now.
	defer s.renewBackendCtx()()
	if err != nil {
		if errors.Is(err, users.ErrBusy) {
			// The password checks in progress hold the memory budget
			// (auth_hash_memory) until the login deadline: not the
			// client's fault, so no score, and the same for every name.
			s.emit(Event{Kind: KindLogin, User: name, Result: "busy", Method: "password", Err: err})
			s.reply(421, "Too many logins in progress; try again later.")
			s.closing = true
			return nil
		}
		if !errors.Is(err, users.ErrAuth) {
			// The store is down: not the client's fault, so no score.
			s.logger().Error("user store failed", "user", name, "err", err)
			s.storeFailed()
			return nil
		}
		s.loginFailed(name, err.Error(), EventFailedLogin)
		return nil
	}
	// The Authenticator has refused these before checking the password
	// (users.Verifier.Login); checked again in case it did not.
	if !s.tlsOn && (u.TLSRequired == "control" || u.TLSRequired == "all") {
		s.loginFailed(name, "user requires TLS", EventFailedLogin)
		return nil
	}
	if u.CertRequired && !s.certNames(u.Name) {
		s.loginFailed(name, "user requires a client certificate", EventFailedLogin)
		return nil
	}
	if s.admitUser(u) {
		s.method = "password"
		s.emit(Event{Kind: KindLogin, User: name, Result: "ok", Method: "password"})
		s.welcome(230, "Login successful.")
	}
	return nil
}

// welcome writes the reply of a successful login: text after the site's
// login message and the user's own (users.User.LoginMessage), when there
// are, as one multi-line reply whose last line
// is text (so a client that reads only the code and the last line sees
// the usual reply). The message passes the reply encoder like any text.
func (s *session) welcome(code int, text string) {
	var msg []string
	if m := s.site.LoginMessage; m != "" {
		msg = append(msg, m)
	}
	if s.user != nil && s.user.LoginMessage != "" {
		msg = append(msg, s.user.LoginMessage)
	}
	s.reply(code, strings.Join(append(msg, text), "\n"))
}

// admitUser applies the per-user session limit and starts the session.
func (s *session) admitUser(u *users.User) bool {
	if !s.srv.loginUser(u.Name, u.MaxSessions, s.site.MaxSessionsPerUser) {
		s.emit(Event{Kind: KindLogin, User: u.Name, Result: "refused", Reason: "too many sessions of this user"})
		s.reply(421, "Too many sessions of this user; try again later.")
		s.closing = true
		return false
	}
	if !s.startSession(u, false) {
		s.srv.logoutUser(u.Name)
		return false
	}
	return true
}

// startSession opens the user's storage and resets the per-login state.
// A home the storage refuses to open because it holds the server's own
// files (storage.ErrProtected) fails the login with 530.
func (s *session) startSession(u *users.User, anon bool) bool {
	var err error
	// The anonymous tree is made and checked once, when publicFS first
	// opens it: every anonymous session then shares that open root, so
	// checking its path again at each login would check nothing served.
	if hm, ok := s.site.Storage.(storage.HomeMaker); ok && !anon {
		err = hm.MakeHome(s.ctx(), u.Home)
	}
	var rules access.Rules
	if err == nil {
		rules, err = access.Parse(u.Perms)
	}
	var fsys storage.FS
	if err == nil && anon {
		fsys, err = s.site.publicFS(s.ctx())
	} else if err == nil {
		fsys, err = s.site.Storage.Open(s.ctx(), u.Home)
	}
	if errors.Is(err, storage.ErrProtected) {
		s.logger().Error("login refused: the home exposes the server's own files; change the user's home", "user", u.Name, "err", err)
		s.reply(530, "Login refused: home directory not available.")
		return false
	}
	if err != nil {
		s.fail(err, "login")
		return false
	}
	if !anon {
		fsys = s.srv.withQuota(s.site, fsys, u)
	}
	s.user, s.anon, s.fs, s.rules = u, anon, fsys, rules
	s.rates = s.srv.userRates(u)
	s.cwd = vpath.Root()
	s.deadline = time.Now().Add(s.site.IdleTimeout)
	return true
}

// loginFailed answers 530 after a delay, and closes the connection after
// too many failures. The reason is logged, never sent.
func (s *session) loginFailed(name, reason string, ev int) {
	s.emit(Event{Kind: KindLogin, User: name, Result: "failed", Reason: reason})
	s.userName = ""
	s.failures++
	if err := s.record(ev); err != nil && !s.closing {
		s.storeFailed()
	}
	if s.closing {
		return
	}
	select {
	case <-time.After(failedLoginDelay):
	case <-s.srv.done:
	case <-s.ctx().Done():
	}
	s.reply(530, "Login incorrect.")
	if max := s.site.MaxLoginFailures; max > 0 && s.failures >= max {
		s.reply(421, "Too many failed logins; closing control connection.")
		s.closing = true
	}
}

// sanitizeEmail keeps an anonymous password fit for a log line.
func sanitizeEmail(p string) string {
	if len(p) > 64 {
		p = p[:64]
	}
	return p
}

func (s *session) cmdACCT(r *request) error {
	if s.user == nil {
		s.reply(503, "Login with USER and PASS first.")
		return nil
	}
	s.reply(202, "ACCT not needed.")
	return nil
}

// cmdREIN returns the session to its state just after connect (RFC 959
// §4.1.1), keeping the TLS layer of the control connection.
//
// The login deadline counts from connect: REIN before a login never moves
// it, or a client could hold a connection without ever logging in. REIN
// after a login starts a new one.
func (s *session) cmdREIN(r *request) error {
	if s.user != nil {
		s.loginBy = time.Now().Add(s.site.LoginTimeout)
	}
	s.closePassive()
	s.logout()
	s.userName, s.activeSet, s.rest, s.renameFrom = "", false, 0, nil
	s.typ, s.epsvAll, s.host = 0, false, ""
	s.hash = hashState{}
	s.deadline = s.loginBy
	s.reply(220, s.site.Banner)
	return nil
}

// cmdQUIT lets a running transfer finish and answer first (RFC 959 §4.1.1).
func (s *session) cmdQUIT(r *request) error {
	if t := s.xfer; t != nil {
		if t.work {
			// A digest is no use to a client that leaves.
			t.aborted = true
			t.cancel()
		}
		for ev := range t.events {
			s.transferEvent(ev)
			if s.xfer == nil {
				break
			}
		}
	}
	s.reply(221, "Goodbye.")
	s.closing = true
	s.sCancel()
	return nil
}

package ftp

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"time"
)

// ticketTag marks the Ferry session identity inside a TLS session ticket.
var ticketTag = []byte("ferry-ctl:")

var errDataTLS = errors.New("data connection TLS handshake failed")

// tlsRefusal is a protected data connection refused by the reuse policy.
type tlsRefusal struct {
	why   string
	state tls.ConnectionState
}

func (e *tlsRefusal) Error() string { return e.why }

// sessionTLSConfig derives the base TLS configuration: modern versions and
// suites and the "ftp" ALPN protocol. Per-session clones wrap and unwrap
// tickets through this base, so all use its (rotating) ticket keys.
func sessionTLSConfig(in *tls.Config, minVersion uint16) *tls.Config {
	c := in.Clone()
	if c.MinVersion == 0 {
		c.MinVersion = max(minVersion, tls.VersionTLS12)
	}
	if len(c.NextProtos) == 0 {
		c.NextProtos = []string{"ftp"}
	}
	if c.CipherSuites == nil {
		// TLS 1.2 suites: forward secret AEADs only (TLS 1.3's are fixed).
		c.CipherSuites = []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305,
		}
	}
	return c
}

// controlTLSConfig is the session's control-connection config: its tickets
// carry the session's identity, which data connections must present.
func (s *session) controlTLSConfig() *tls.Config {
	if s.tlsID == ([16]byte{}) {
		rand.Read(s.tlsID[:])
	}
	c := s.site.tlsConfig.Clone()
	c.WrapSession = s.wrapSession()
	return c
}

// wrapSession returns the ticket wrapper that binds tickets to this session.
func (s *session) wrapSession() func(tls.ConnectionState, *tls.SessionState) ([]byte, error) {
	base := s.site.tlsConfig
	id := append(append([]byte{}, ticketTag...), s.tlsID[:]...)
	return func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		ss.Extra = [][]byte{id}
		return base.EncryptTicket(cs, ss)
	}
}

// tlsBinding records, for one data connection, how its handshake related to
// the control session.
type tlsBinding struct {
	own     []byte
	foreign bool // a ticket of another session was presented
	resumed bool // our own session was resumed
}

// refusal says why a protected data connection breaks the reuse policy, or "".
func (b *tlsBinding) refusal(tc *tls.Conn) string {
	switch {
	case b.foreign:
		return "TLS session of another control connection presented on the data connection"
	case !b.resumed || !tc.ConnectionState().DidResume:
		return "data connection must resume the control connection's TLS session"
	}
	return ""
}

// dataTLSConfig is one data connection's config. It accepts only tickets of
// this session as resumable, and it never issues new tickets: a TLS 1.3
// ticket the client never reads makes an upload-only client reset the
// connection on close and lose the end of its file.
func (s *session) dataTLSConfig() (*tls.Config, *tlsBinding) {
	base := s.site.tlsConfig
	c := base.Clone()
	b := &tlsBinding{own: append(append([]byte{}, ticketTag...), s.tlsID[:]...)}
	c.UnwrapSession = func(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
		// Called only when the client offers a ticket, before the
		// server decides about sending new ones.
		c.SessionTicketsDisabled = true
		ss, err := base.DecryptTicket(identity, cs)
		if err != nil || ss == nil {
			return nil, err
		}
		for _, e := range ss.Extra {
			if bytes.Equal(e, b.own) {
				b.resumed = true
				return ss, nil
			}
		}
		b.foreign = true
		return nil, nil
	}
	getCert := base.GetCertificate
	c.GetCertificate = func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		// Under TLS 1.3 this runs only for full handshakes, after the
		// resumption check: no tickets on those either. Under TLS 1.2 it
		// runs before the resumption check, and TLS 1.2 tickets are read
		// by the client within the handshake, so they are harmless.
		if c.MaxVersion == 0 || c.MaxVersion >= tls.VersionTLS13 {
			if slices.Contains(h.SupportedVersions, tls.VersionTLS13) {
				c.SessionTicketsDisabled = true
			}
		}
		if getCert != nil {
			return getCert(h)
		}
		if len(base.Certificates) > 0 {
			return &base.Certificates[0], nil
		}
		return nil, errors.New("no certificate")
	}
	// TLS 1.2 reissues a ticket on every resumption (read by the client
	// within the handshake): it must carry the session identity too.
	c.WrapSession = s.wrapSession()
	return c, b
}

// reuseRequired applies --tls-session-reuse and the exemption list.
func (s *session) reuseRequired() bool {
	if s.site.TLSSessionReuse == ReuseOptional {
		return false
	}
	ip := s.remote.Addr()
	for _, p := range s.site.TLSReuseExempt {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// cmdAUTH starts TLS on the control connection (RFC 2228 §3, RFC 4217 §4).
func (s *session) cmdAUTH(r *request) error {
	arg := r.arg
	mech := strings.ToUpper(strings.TrimSpace(arg))
	switch {
	case s.site.tlsConfig == nil:
		return reply(502, "TLS is not configured.")
	case mech != "TLS" && mech != "SSL" && mech != "TLS-C" && mech != "TLS-P":
		return reply(504, "Unsupported security mechanism; use AUTH TLS.")
	case s.tlsOn:
		return reply(503, "TLS is already active.")
	}
	s.reply(234, "Proceed with TLS negotiation.")
	tc := tls.Server(s.raw, s.controlTLSConfig())
	s.raw.SetDeadline(time.Now().Add(s.site.LoginTimeout))
	err := tc.Handshake()
	s.raw.SetDeadline(time.Time{})
	if err != nil {
		s.emit(Event{Kind: KindTLS, Conn: "control", Result: "failed", Err: err})
		s.closing = true
		return nil
	}
	s.conn = tc
	s.resumeWith = tc
	s.tlsOn = true
	if mech == "SSL" || mech == "TLS-P" {
		// Old drafts: AUTH SSL implied protected data.
		s.pbsz, s.protP = true, true
	}
	// A new security exchange resets the login (RFC 2228 §3). After a
	// login it starts a new login deadline, as REIN does; before one, the
	// deadline counted from connect stays.
	if s.user != nil {
		s.loginBy = time.Now().Add(s.site.LoginTimeout)
	}
	s.logout()
	s.userName = ""
	s.deadline = s.loginBy
	s.logTLS("control", tc.ConnectionState(), "")
	return nil
}

// cmdPBSZ: only 0 makes sense for TLS (RFC 4217 §9).
func (s *session) cmdPBSZ(r *request) error {
	arg := r.arg
	if !s.tlsOn {
		return reply(503, "PBSZ needs a protected control connection (AUTH TLS first).")
	}
	if strings.TrimSpace(arg) == "" || strings.Trim(arg, "0123456789") != "" {
		return reply(501, "Syntax error in PBSZ argument.")
	}
	s.pbsz = true
	s.reply(200, "PBSZ=0")
	return nil
}

// cmdPROT sets data channel protection (RFC 2228 §3, RFC 4217 §9).
func (s *session) cmdPROT(r *request) error {
	arg := r.arg
	if !s.tlsOn {
		return reply(503, "PROT needs a protected control connection (AUTH TLS first).")
	}
	if !s.pbsz {
		return reply(503, "PBSZ must come before PROT.")
	}
	switch strings.ToUpper(strings.TrimSpace(arg)) {
	case "P":
		s.protP = true
		s.reply(200, "Protection level set to Private.")
	case "C":
		if s.dataTLSRequired() {
			return reply(534, "Policy requires protected data connections (PROT P).")
		}
		s.protP = false
		s.reply(200, "Protection level set to Clear.")
	case "S", "E":
		s.reply(536, "Only C and P protection levels are supported.")
	default:
		s.reply(504, "Unknown protection level.")
	}
	return nil
}

// cmdCCC clears the control channel after login, for NAT helpers; refused
// unless the operator enabled it.
func (s *session) cmdCCC(r *request) error {
	switch {
	case !s.tlsOn:
		s.reply(533, "Control connection is not protected.")
	case !s.site.TLSAllowCCC || s.controlTLSRequired():
		s.reply(534, "CCC is not allowed by policy.")
	default:
		s.reply(200, "Control connection returned to clear text.")
		if tc, ok := s.conn.(*tls.Conn); ok {
			// RFC 4217 §6: both sides end TLS with close_notify.
			tc.CloseWrite()
		}
		// The reader goroutine skips the client's close_notify, so the
		// session keeps serving (timeouts, shutdown) while it waits.
		s.conn = s.raw
		s.resumeWith = &afterCCC{Conn: s.raw}
		s.tlsOn = false
	}
	return nil
}

// skipCloseNotify consumes the client's close_notify record, read raw since
// the clear-text commands that follow must not be swallowed by TLS. A client
// that sends none starts with clear text, which is returned for the reader.
func skipCloseNotify(c net.Conn) ([]byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(c, hdr[:1]); err != nil {
		return nil, err
	}
	if hdr[0] != 21 && hdr[0] != 23 { // alert, or TLS 1.3's wrapped record
		return hdr[:1], nil
	}
	if _, err := io.ReadFull(c, hdr[1:]); err != nil {
		return nil, err
	}
	n := int(hdr[3])<<8 | int(hdr[4])
	_, err := io.CopyN(io.Discard, c, int64(n))
	return nil, err
}

// afterCCC is the control connection after CCC: its first read consumes the
// client's close_notify record before clear-text commands follow.
type afterCCC struct {
	net.Conn
	skipped bool
	pending []byte
}

func (c *afterCCC) Read(b []byte) (int, error) {
	if !c.skipped {
		c.skipped = true
		rest, err := skipCloseNotify(c.Conn)
		if err != nil {
			return 0, err
		}
		c.pending = rest
	}
	if len(c.pending) > 0 {
		n := copy(b, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// logTLS reports a TLS connection: established, or refused with a reason.
func (s *session) logTLS(kind string, cs tls.ConnectionState, refusal string) {
	e := Event{Kind: KindTLS, Conn: kind, Result: "ok", TLS: &cs}
	if refusal != "" {
		e.Result, e.Reason = "refused", refusal
	}
	s.emit(e)
}

var _ net.Conn = (*tls.Conn)(nil)

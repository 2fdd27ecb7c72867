package ftp

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"time"

	"github.com/ferryftp/ferry/internal/event"
	"github.com/ferryftp/ferry/internal/tlsbind"
)

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

// tlsSession is the session's TLS identity, which its data connections
// must resume (internal/tlsbind); made on first use.
func (s *session) tlsSession() *tlsbind.Session {
	if s.tlsb == nil {
		s.tlsb = tlsbind.New(s.site.tlsConfig)
	}
	return s.tlsb
}

// controlTLSConfig is the session's control-connection config.
func (s *session) controlTLSConfig() *tls.Config { return s.tlsSession().Control() }

// dataTLSConfig is one data connection's config and binding.
func (s *session) dataTLSConfig() (*tls.Config, *tlsbind.Binding) { return s.tlsSession().Data() }

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
	// A new security exchange resets the login (RFC 2228 §3), and the
	// login deadline starts again once the handshake completes: a user
	// reading the client's certificate prompt is not timed out, and a
	// client cannot stretch the login time this way more than once, since
	// a second AUTH is refused.
	s.loginBy = time.Now().Add(s.site.LoginTimeout)
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
			s.reply(534, "Policy requires protected data connections (PROT P).")
			s.refused("PROT", "", event.RefusedTLSRequired)
			return nil
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
		why := event.RefusedPolicy
		if s.controlTLSRequired() {
			why = event.RefusedTLSRequired
		}
		s.refused("CCC", "", why)
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

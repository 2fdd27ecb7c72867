// Package tlsbind binds FTPS data connections to the TLS session of their
// own control connection. A control session's tickets carry a random
// identity; a data connection's handshake resumes only a ticket with that
// identity, so a client that did not negotiate the control connection
// cannot take its data connections over (the "TLS session reuse" that
// vsftpd's require_ssl_reuse and FileZilla Server demand).
package tlsbind

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"slices"
)

// tag marks the session identity inside a TLS session ticket.
var tag = []byte("ferry-ctl:")

// Session is the TLS identity of one control session. Its configurations
// derive from a base whose ticket keys they all share.
type Session struct {
	base *tls.Config
	id   []byte // tag + 16 random bytes
}

// New returns a fresh identity whose configurations derive from base.
func New(base *tls.Config) *Session {
	var rnd [16]byte
	rand.Read(rnd[:])
	return &Session{base: base, id: append(append([]byte{}, tag...), rnd[:]...)}
}

// Control returns the control connection's configuration: its tickets carry
// the session's identity, which data connections must present.
func (s *Session) Control() *tls.Config {
	c := s.base.Clone()
	c.WrapSession = s.wrap
	return c
}

// wrap binds a ticket to the session.
func (s *Session) wrap(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
	ss.Extra = [][]byte{s.id}
	return s.base.EncryptTicket(cs, ss)
}

// Binding records, for one data connection, how its handshake related to
// the control session. It is written during the handshake and read after
// it, by the goroutine that runs it.
type Binding struct {
	own     []byte
	foreign bool // a ticket of another session was presented
	resumed bool // our own session was resumed
}

// The reasons Refusal gives.
const (
	// Foreign: the data connection presented a ticket of another
	// control session.
	Foreign = "TLS session of another control connection presented on the data connection"
	// NotResumed: the data connection did a full handshake (or resumed
	// nothing of this session), which every client that never resumes
	// does.
	NotResumed = "data connection must resume the control connection's TLS session"
)

// Refusal says why a protected data connection breaks the reuse rule
// (Foreign or NotResumed), or "".
func (b *Binding) Refusal(tc *tls.Conn) string {
	switch {
	case b.foreign:
		return Foreign
	case !b.resumed || !tc.ConnectionState().DidResume:
		return NotResumed
	}
	return ""
}

// Data returns one data connection's configuration and its Binding. It
// accepts only tickets of this session as resumable, and it never issues new
// tickets: a TLS 1.3 ticket the client never reads makes an upload-only
// client reset the connection on close and lose the end of its file.
func (s *Session) Data() (*tls.Config, *Binding) {
	base := s.base
	c := base.Clone()
	b := &Binding{own: s.id}
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
	c.WrapSession = s.wrap
	return c, b
}

package ftp

import (
	"errors"
	"net/netip"

	"github.com/ferryftp/ferry/internal/event"
	"github.com/ferryftp/ferry/internal/ftp/wire"
)

// cmdPASV opens a passive listener (RFC 959 §4.1.2); IPv4 only.
func (s *session) cmdPASV(r *request) error {
	if s.epsvAll {
		return reply(503, "EPSV ALL in effect: only EPSV is allowed.")
	}
	adv := s.pasvAddress()
	if !adv.Is4() {
		return reply(522, "PASV needs IPv4; use EPSV.")
	}
	p, err := s.openPassive("PASV")
	if err != nil {
		s.fail(err, "PASV")
		return nil
	}
	s.listening(p, netip.AddrPortFrom(adv, p.port()))
	s.reply(227, "Entering Passive Mode ("+wire.FormatPASV(netip.AddrPortFrom(adv, p.port()))+").")
	return nil
}

// pasvAddress is the address advertised by PASV: the configured public host
// (for NAT) or the address the client reached us on.
func (s *session) pasvAddress() netip.Addr {
	if h := s.site.PublicIP; h.IsValid() && s.local.Addr().Is4() {
		return h
	}
	return s.local.Addr().Unmap()
}

// cmdEPSV opens a passive listener and answers with its port only (RFC 2428 §3).
func (s *session) cmdEPSV(r *request) error {
	arg := r.arg
	a, err := wire.ParseEPSV(arg)
	switch {
	case errors.Is(err, wire.ErrEPSVProto):
		return reply(522, "Network protocol not supported, use (1,2).")
	case err != nil:
		return reply(501, "Syntax error in EPSV.")
	case a == wire.EPSVAll:
		s.epsvAll = true
		s.closePassive()
		s.activeSet = false
		s.reply(200, "EPSV ALL ok.")
		return nil
	case a == wire.EPSV4 && !s.local.Addr().Is4(), a == wire.EPSV6 && s.local.Addr().Is4():
		return reply(522, "Network protocol not supported on this connection, use ("+map[bool]string{true: "1", false: "2"}[s.local.Addr().Is4()]+").")
	}
	p, err := s.openPassive("EPSV")
	if err != nil {
		s.fail(err, "EPSV")
		return nil
	}
	s.listening(p, netip.AddrPortFrom(s.local.Addr(), p.port()))
	s.reply(229, "Entering Extended Passive Mode "+wire.FormatEPSV(p.port())+".")
	return nil
}

func (s *session) cmdPORT(r *request) error {
	arg := r.arg
	ap, err := wire.ParsePORT(arg)
	if err != nil {
		return reply(501, "Syntax error in PORT.")
	}
	s.setActive(ap, "PORT")
	return nil
}

func (s *session) cmdEPRT(r *request) error {
	arg := r.arg
	ap, err := wire.ParseEPRT(arg)
	if errors.Is(err, wire.ErrEPSVProto) {
		return reply(522, "Network protocol not supported, use (1,2).")
	}
	if err != nil {
		return reply(501, "Syntax error in EPRT.")
	}
	s.setActive(ap, "EPRT")
	return nil
}

// setActive accepts an active-mode target only on the client's own address
// and an unprivileged port: anything else is an FTP bounce attempt.
func (s *session) setActive(ap netip.AddrPort, verb string) {
	if s.epsvAll {
		s.reply(503, "EPSV ALL in effect: only EPSV is allowed.")
		return
	}
	fxp := s.user != nil && s.user.AllowFXP
	if ap.Addr().Unmap() != s.remote.Addr() && !fxp {
		// Not scored: clients behind NAT send their private address.
		s.emit(Event{Kind: KindData, Result: "refused", Reason: event.DataActiveAddress, Cmd: verb, Peer: ap})
		s.reply(504, "Active mode address must be your own.")
		return
	}
	if ap.Port() < 1024 {
		s.reply(504, "Active mode port must be 1024 or higher.")
		return
	}
	s.closePassive()
	s.active = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	s.activeSet = true
	s.activeMode = verb
	s.reply(200, "PORT command successful. Consider using EPSV.")
}

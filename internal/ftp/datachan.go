package ftp

import (
	"context"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferryftp/ferry/internal/event"
	"github.com/ferryftp/ferry/internal/sockopt"
	"github.com/ferryftp/ferry/internal/tlsbind"
)

// passive is a listener opened by PASV or EPSV. It belongs to the session
// until a transfer takes it; whoever holds it closes it.
type passive struct {
	ln    *net.TCPListener
	acc   net.Listener  // ln as Server.WrapListener wrapped it, or ln
	timer *time.Timer   // closes ln when nobody uses it in time
	inUse *atomic.Int64 // the server's count of open passive listeners
	once  sync.Once     // the count drops once, whoever closes first
	mode  string        // "PASV" or "EPSV", for the events
	// taken is set when a transfer takes the listener; closed before
	// that, it is reported unused (once) with emit.
	taken      atomic.Bool
	unusedOnce sync.Once
	emit       func(Event)
}

func (p *passive) port() uint16 { return uint16(p.ln.Addr().(*net.TCPAddr).Port) }

// close closes the listener. A client that already connected is accepted
// and closed cleanly first: closing a listener with a connection still
// queued makes the kernel reset that connection.
func (p *passive) close() {
	p.timer.Stop()
	p.idle()
	p.shut()
}

// idle reports a listener closed before any transfer took it: the client
// never used it, which is how a PASV reply whose address does not lead
// here looks from the server.
func (p *passive) idle() {
	if p.taken.Load() {
		return
	}
	p.unusedOnce.Do(func() {
		p.emit(Event{Kind: KindData, Result: "unused", Cmd: p.mode, Local: addrPort(p.ln.Addr())})
	})
}

func (p *passive) shut() {
	sockopt.CloseListener(p.ln)
	p.acc.Close() // the wrapper's, when there is one; ln is closed already
	p.release()
}

// release takes the listener off the server's count of passive ports in
// use, once, whichever way it was closed.
func (p *passive) release() { p.once.Do(func() { p.inUse.Add(-1) }) }

// openPassive listens on the control connection's local address, on a port
// of the configured range. Only one pending listener exists per session, so
// repeated PASV cannot exhaust the range.
func (s *session) openPassive(mode string) (*passive, error) {
	s.closePassive()
	s.activeSet = false
	ip := s.local.Addr()
	lo, hi := int(s.site.PassivePorts.Lo), int(s.site.PassivePorts.Hi)
	var ln *net.TCPListener
	var err error
	if lo == 0 {
		ln, err = listenData(netip.AddrPortFrom(ip, 0))
	} else {
		n := hi - lo + 1
		start := rand.IntN(n)
		for i := 0; i < n; i++ {
			port := lo + (start+i)%n
			ln, err = listenData(netip.AddrPortFrom(ip, uint16(port)))
			if err == nil {
				break
			}
		}
	}
	if err != nil {
		s.emit(Event{Kind: KindData, Result: "refused", Reason: event.DataNoPassivePort, Cmd: mode, Err: err})
		return nil, reply(425, "No passive port available; try again later.")
	}
	s.srv.pasvInUse.Add(1)
	p := &passive{ln: ln, acc: ln, inUse: &s.srv.pasvInUse, mode: mode, emit: s.emitter()}
	if w := s.srv.WrapListener; w != nil {
		p.acc = w(PassiveConn, ln)
	}
	p.timer = time.AfterFunc(s.site.DataTimeout, func() {
		p.idle()
		p.shut()
	})
	s.pasv = p
	return p, nil
}

// dataListen and dataDial make data connections without TCP keepalive:
// the data timeout bounds every wait on them already, and Go's default
// keepalive costs four setsockopt calls per connection. Passive listeners
// are plain TCP, not Go's default MPTCP: an MPTCP listener is two kernel
// sockets to create, bind and close, for every transfer, and FTP clients
// dial data connections with plain TCP.
var (
	dataListen = func() net.ListenConfig {
		lc := net.ListenConfig{KeepAlive: -1}
		lc.SetMultipathTCP(false)
		return lc
	}()
	dataDial = net.Dialer{KeepAlive: -1}
)

// listenData opens a passive listener on addr.
func listenData(addr netip.AddrPort) (*net.TCPListener, error) {
	ln, err := dataListen.Listen(context.Background(), "tcp", addr.String())
	if err != nil {
		return nil, err
	}
	return ln.(*net.TCPListener), nil
}

// listening reports a passive listener and what its reply advertised.
func (s *session) listening(p *passive, adv netip.AddrPort) {
	s.emit(Event{Kind: KindData, Result: "listening", Cmd: p.mode, Local: addrPort(p.ln.Addr()), Peer: adv,
		InUse: int(p.inUse.Load())})
}

func (s *session) closePassive() {
	if s.pasv != nil {
		s.pasv.close()
		s.pasv = nil
	}
}

// dataSpec is what a transfer needs to open its data connection. It is taken
// from the session when the transfer starts, so the transfer goroutine never
// touches session state.
type dataSpec struct {
	pasv     *passive
	mode     string // the command that set it up: PASV, EPSV, PORT or EPRT
	active   netip.AddrPort
	local    netip.Addr // for active connections
	peer     netip.Addr // the control connection's client address
	anyPeer  bool       // FXP allowed: skip the peer check
	timeout  time.Duration
	tls      *tls.Config // nil for PROT C
	bind     *tlsbind.Binding
	reuseReq bool
	emit     func(Event)                              // the session's emitter, safe on the transfer goroutine
	wrap     func(kind ConnKind, c net.Conn) net.Conn // Server.WrapConn, or nil
}

// takeData moves the data-connection settings into a spec for one transfer.
func (s *session) takeData() *dataSpec {
	d := &dataSpec{
		pasv:    s.pasv,
		active:  s.active,
		local:   s.local.Addr(),
		peer:    s.remote.Addr(),
		anyPeer: s.user != nil && s.user.AllowFXP,
		timeout: s.site.DataTimeout,
		emit:    s.emitter(),
		wrap:    s.srv.WrapConn,
		mode:    s.activeMode,
	}
	if d.pasv != nil {
		d.pasv.timer.Stop()
		d.pasv.taken.Store(true)
		d.mode = d.pasv.mode
	}
	s.pasv, s.activeSet = nil, false
	if s.protP {
		d.tls, d.bind = s.dataTLSConfig()
		d.reuseReq = s.reuseRequired()
	}
	return d
}

// open returns the data connection: accepted (passive) or dialled (active).
func (d *dataSpec) open(ctx context.Context) (net.Conn, error) {
	var c net.Conn
	if d.pasv != nil {
		defer d.pasv.shut()
		d.pasv.ln.SetDeadline(time.Now().Add(d.timeout))
		stop := context.AfterFunc(ctx, func() { d.pasv.ln.Close() })
		defer stop()
		// A connection from a foreign address is closed and the wait goes
		// on: anyone who can reach the passive range could otherwise
		// cancel other users' transfers.
		for c == nil {
			tc, err := d.pasv.acc.Accept()
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				d.emit(Event{Kind: KindData, Result: "refused", Reason: event.DataTimeout, Cmd: d.mode,
					Local: addrPort(d.pasv.ln.Addr()), Err: err})
				return nil, reply(425, "Can't open data connection: nobody connected in time.")
			}
			if d.wrap != nil {
				tc = d.wrap(PassiveConn, tc)
			}
			if got := addrPort(tc.RemoteAddr()); got.Addr() != d.peer && !d.anyPeer {
				tc.Close()
				d.emit(Event{Kind: KindData, Result: "refused", Reason: event.DataForeignAddress, Cmd: d.mode, Peer: got})
				continue
			}
			c = tc
		}
	} else {
		dl := dataDial
		dl.Timeout, dl.LocalAddr = d.timeout, net.TCPAddrFromAddrPort(netip.AddrPortFrom(d.local, 0))
		var err error
		c, err = dl.DialContext(ctx, "tcp", d.active.String())
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			d.emit(Event{Kind: KindData, Result: "refused", Reason: event.DataConnectFailed, Cmd: d.mode, Peer: d.active, Err: err})
			return nil, reply(425, "Can't open data connection to "+d.active.String()+".")
		}
		if d.wrap != nil {
			c = d.wrap(ActiveConn, c)
		}
	}
	return c, nil
}

// secure runs the data connection's TLS handshake (PROT P) after the 150
// reply, as clients that wait for it before negotiating expect, and applies
// the session-reuse policy.
func (d *dataSpec) secure(ctx context.Context, c net.Conn) (*tls.Conn, error) {
	tc := tls.Server(c, d.tls)
	c.SetDeadline(time.Now().Add(d.timeout))
	stop := context.AfterFunc(ctx, func() { c.Close() })
	err := tc.HandshakeContext(ctx)
	stop()
	c.SetDeadline(time.Time{})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errDataTLS, err)
	}
	if d.reuseReq {
		if why := d.bind.Refusal(tc); why != "" {
			return nil, &tlsRefusal{why: why, state: tc.ConnectionState()}
		}
	}
	return tc, nil
}

package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/ferryftp/ferry/internal/config"
	"github.com/ferryftp/ferry/internal/ftp"
	"github.com/ferryftp/ferry/internal/systemd"
	"golang.org/x/sys/unix"
)

// lnKey names a control listener: its kind and the address as configured
// (so ":0" stays the same listener across reloads), or "systemd:NAME#i" for
// a socket systemd passed; n counts earlier listeners of the same kind and
// address (two "127.0.0.1:0", say). An upgrade hands listeners over by key.
type lnKey struct {
	implicit bool
	addr     string
	n        int
}

func (k lnKey) String() string {
	s := "control " + k.addr
	if k.implicit {
		s = "implicit " + k.addr
	}
	if k.n > 0 {
		s += " " + strconv.Itoa(k.n)
	}
	return s
}

func parseLnKey(s string) (lnKey, bool) {
	f := strings.Fields(s)
	if len(f) < 2 || len(f) > 3 || f[0] != "control" && f[0] != "implicit" {
		return lnKey{}, false
	}
	k := lnKey{implicit: f[0] == "implicit", addr: f[1]}
	if len(f) == 3 {
		n, err := strconv.Atoi(f[2])
		if err != nil || n <= 0 {
			return lnKey{}, false
		}
		k.n = n
	}
	return k, true
}

// wantedListeners are the control listeners cfg asks for, in the order
// they are printed: listen, extra_listen, implicit_tls_listen.
func wantedListeners(cfg config.Config) []lnKey {
	seen := map[lnKey]int{}
	var keys []lnKey
	add := func(implicit bool, addr string) {
		k := lnKey{implicit: implicit, addr: addr}
		k.n = seen[k]
		seen[lnKey{implicit: implicit, addr: addr}]++
		keys = append(keys, k)
	}
	add(false, cfg.Listen)
	for _, a := range cfg.ExtraListen {
		add(false, a)
	}
	if cfg.ImplicitTLSListen != "" {
		add(true, cfg.ImplicitTLSListen)
	}
	return keys
}

// served is one listener the server accepts on.
type served struct {
	key     lnKey
	ln      net.Listener
	closing atomic.Bool   // closed on purpose: Serve's error is expected
	done    chan struct{} // closed when Serve returned
}

// listenerSet is the server's control listeners: bound at start (or
// inherited from an upgrading parent, or passed by systemd), changed by
// reloads, handed to the next process by an upgrade.
type listenerSet struct {
	srv    *ftp.Server
	stdout io.Writer
	// errc receives the error of a listener that failed on its own.
	errc chan error

	mu    sync.Mutex
	order []*served // in print order; guarded by mu
	fixed bool      // the sockets are systemd's: reloads leave them
}

func newListenerSet(srv *ftp.Server, stdout io.Writer) *listenerSet {
	return &listenerSet{srv: srv, stdout: stdout, errc: make(chan error, 8)}
}

// start opens the listeners of cfg, taking a parent's inherited ones by key
// and binding the rest; with systemd's sockets (activated) it serves those
// instead and ignores the addresses of cfg. Sockets handed over but not
// wanted any more are closed.
func (s *listenerSet) start(cfg config.Config, inherited map[lnKey]net.Listener, activated []systemd.Listener) error {
	var add []*served
	fail := func(err error) error {
		for _, l := range add {
			l.ln.Close()
		}
		for _, ln := range inherited {
			ln.Close()
		}
		return err
	}
	switch {
	case len(activated) > 0:
		s.fixed = true
		for i, a := range activated {
			k := lnKey{implicit: a.Name == "implicit", addr: "systemd:" + strings.ReplaceAll(a.Name, " ", "_") + "#" + strconv.Itoa(i)}
			add = append(add, &served{key: k, ln: a.Listener})
		}
	case hasSystemdKeys(inherited):
		// A parent that systemd activated: its sockets, whatever cfg says.
		s.fixed = true
		for k, ln := range inherited {
			add = append(add, &served{key: k, ln: ln})
			delete(inherited, k)
		}
		sortServed(add)
	default:
		for _, k := range wantedListeners(cfg) {
			if ln, ok := inherited[k]; ok {
				delete(inherited, k)
				add = append(add, &served{key: k, ln: ln})
				continue
			}
			ln, err := net.Listen("tcp", k.addr)
			if err != nil {
				return fail(fmt.Errorf("%s: %w", k, err))
			}
			add = append(add, &served{key: k, ln: ln})
		}
	}
	for k, ln := range inherited {
		ln.Close()
		delete(inherited, k)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range add {
		s.serveLocked(l)
	}
	return nil
}

func hasSystemdKeys(m map[lnKey]net.Listener) bool {
	for k := range m {
		if strings.HasPrefix(k.addr, "systemd:") {
			return true
		}
	}
	return false
}

// sortServed orders systemd's sockets as systemd passed them (#i).
func sortServed(l []*served) {
	idx := func(s *served) int {
		i := strings.LastIndexByte(s.key.addr, '#')
		n, _ := strconv.Atoi(s.key.addr[i+1:])
		return n
	}
	for i := 1; i < len(l); i++ {
		for j := i; j > 0 && idx(l[j]) < idx(l[j-1]); j-- {
			l[j], l[j-1] = l[j-1], l[j]
		}
	}
}

// serveLocked starts accepting on l and prints its address, the lines the
// tests and operators look for.
func (s *listenerSet) serveLocked(l *served) {
	l.done = make(chan struct{})
	s.order = append(s.order, l)
	if l.key.implicit {
		fmt.Fprintf(s.stdout, "Ferry implicit FTPS on %s\n", l.ln.Addr())
	} else {
		fmt.Fprintf(s.stdout, "Ferry listening on %s\n", l.ln.Addr())
	}
	go func() {
		defer close(l.done)
		err := s.srv.Serve(l.ln, l.key.implicit)
		if l.closing.Load() || errors.Is(err, ftp.ErrServerClosed) {
			return
		}
		s.errc <- fmt.Errorf("listener %s: %w", l.key, err)
	}()
}

// addrs returns the addresses of the control (or implicit) listeners.
func (s *listenerSet) addrs(implicit bool) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, l := range s.order {
		if l.key.implicit == implicit {
			out = append(out, l.ln.Addr().String())
		}
	}
	return out
}

// listenPlan is a reload's change of the listener set: the new sockets are
// bound already; commit serves them and closes the removed ones, abort
// closes the new ones.
type listenPlan struct {
	s      *listenerSet
	add    []*served
	remove []*served
	keep   []*served // in the new order, with add
	notes  []string
}

// prepare binds the listeners cfg adds. Nothing changes until commit.
func (s *listenerSet) prepare(cfg config.Config) (*listenPlan, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := &listenPlan{s: s}
	if s.fixed {
		p.keep = s.order
		p.notes = append(p.notes, "the listeners are systemd's sockets (socket activation): listen, extra_listen and implicit_tls_listen are not applied")
		return p, nil
	}
	have := map[lnKey]*served{}
	for _, l := range s.order {
		have[l.key] = l
	}
	for _, k := range wantedListeners(cfg) {
		if l, ok := have[k]; ok {
			delete(have, k)
			p.keep = append(p.keep, l)
			continue
		}
		ln, err := net.Listen("tcp", k.addr)
		if err != nil {
			p.abort()
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		l := &served{key: k, ln: ln}
		p.add = append(p.add, l)
		p.keep = append(p.keep, l)
	}
	for _, l := range s.order {
		if _, gone := have[l.key]; gone {
			p.remove = append(p.remove, l)
		}
	}
	return p, nil
}

func (p *listenPlan) abort() {
	for _, l := range p.add {
		l.ln.Close()
	}
}

// commit serves the new listeners and closes the removed ones; sessions
// they accepted go on. It returns notes for the reload's summary.
func (p *listenPlan) commit() []string {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range p.remove {
		l.closing.Store(true)
		l.ln.Close()
		p.notes = append(p.notes, "closed "+l.key.String()+" ("+l.ln.Addr().String()+")")
	}
	s.order = nil
	for _, l := range p.keep {
		if l.done == nil {
			s.serveLocked(l)
		} else {
			s.order = append(s.order, l)
		}
	}
	return p.notes
}

// stopAccepting closes every listener of this process and returns when no
// Serve loop accepts any more: after an upgrade the new process holds the
// same sockets and accepts alone, so nothing queued on them is lost.
func (s *listenerSet) stopAccepting() {
	s.mu.Lock()
	list := s.order
	s.mu.Unlock()
	for _, l := range list {
		l.closing.Store(true)
		l.ln.Close()
	}
	for _, l := range list {
		<-l.done
	}
}

// closeAll closes every listener (at the end of serve).
func (s *listenerSet) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.order {
		l.closing.Store(true)
		l.ln.Close()
	}
}

// dupFDs duplicates every listener's socket for an upgrade's child, with
// its key; the caller closes the descriptors. The duplicates are raw
// descriptors, never *os.File: os.File.Fd, which os/exec calls, would put
// the socket (shared with this process's listener) into blocking mode, and
// an accept blocked in the kernel cannot be interrupted by Close.
func (s *listenerSet) dupFDs() ([]int, []string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var fds []int
	var keys []string
	for _, l := range s.order {
		fd, err := dupSocket(l.ln)
		if err != nil {
			closeFDs(fds)
			return nil, nil, fmt.Errorf("%s: %w", l.key, err)
		}
		fds = append(fds, fd)
		keys = append(keys, l.key.String())
	}
	return fds, keys, nil
}

// dupSocket duplicates the socket under ln (close-on-exec, non-blocking
// like the original).
func dupSocket(ln any) (int, error) {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return -1, errors.New("cannot be handed over: not a socket")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var derr error
	if err := raw.Control(func(s uintptr) { fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	return fd, derr
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		syscall.Close(fd)
	}
}

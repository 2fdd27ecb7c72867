// Package sockopt holds Ferry's socket tricks: the options and system calls
// that package net does not offer, applied through connection wrappers.
//
// The wrapper convention: a net.Conn that wraps another and implements
// Unwrap() net.Conn lets these tricks reach the socket beneath it (urgent
// data inline, the peek of PeerGone, sendfile). Bytes that SendFile moves
// bypass the wrappers' Write; a wrapper that counts bytes implements
// SentFile(n int64) and is told (see NotifySent). A wrapper without Unwrap
// hides the socket: the tricks are skipped and data goes through its Write.
package sockopt

import (
	"crypto/tls"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// CloseListener closes ln without resetting the connections already queued
// on it: each is accepted, without waiting, and closed with a FIN once ln is
// closed. A client that connected to a passive port whose transfer was
// refused then reads end-of-file after the reply; closing the listener with
// the connection still queued would make the kernel reset it. Whoever sees
// that end-of-file can rely on ln being closed already.
func CloseListener(ln *net.TCPListener) error { return CloseListenerLinger(ln, 0) }

// CloseListenerLinger is CloseListener, but when linger is positive the
// queued connections are not ended at once: each is read and discarded
// until its peer closes it or linger elapses, and only then closed. A TLS
// client in its handshake takes an early end-of-file for a failed
// handshake (Node's TLS does, and basic-ftp then drops the reply it was
// about to read); with linger it reads the reply, closes, and sees nothing.
func CloseListenerLinger(ln *net.TCPListener, linger time.Duration) error {
	var queued []int
	if rc, err := ln.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			for len(queued) < 64 {
				nfd, _, err := syscall.Accept4(int(fd), syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
				if err == syscall.EINTR || err == syscall.ECONNABORTED {
					continue
				}
				if err != nil {
					return // EAGAIN: the queue is empty
				}
				queued = append(queued, nfd)
			}
		})
	}
	err := ln.Close()
	for _, fd := range queued {
		if linger > 0 {
			if c, ferr := fdConn(fd); ferr == nil {
				go drainUntilClosed(c, linger)
				continue
			}
		}
		closeGently(fd)
	}
	return err
}

// fdConn turns an accepted descriptor into a net.Conn, taking it over.
func fdConn(fd int) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), "queued")
	defer f.Close() // FileConn dups the descriptor
	return net.FileConn(f)
}

// drainUntilClosed discards what the peer sends until it closes the
// connection or linger elapses, then closes it.
func drainUntilClosed(c net.Conn, linger time.Duration) {
	c.SetReadDeadline(time.Now().Add(linger))
	io.Copy(io.Discard, c)
	c.Close()
}

// closeGently closes a socket with a FIN: unread data would make the kernel
// send a reset instead, so what already arrived is read and dropped.
func closeGently(fd int) {
	syscall.Shutdown(fd, syscall.SHUT_WR)
	var buf [4096]byte
	for i := 0; i < 16; i++ {
		n, _, err := syscall.Recvfrom(fd, buf[:], syscall.MSG_DONTWAIT)
		if n <= 0 || err != nil {
			break
		}
	}
	syscall.Close(fd)
}

// Unwrap returns the innermost connection under c, following Unwrap()
// net.Conn methods; c itself when it wraps nothing. It stops at a
// *tls.Conn, which has no such method: no trick may bypass TLS.
func Unwrap(c net.Conn) net.Conn {
	for i := 0; i < 32; i++ {
		u, ok := c.(interface{ Unwrap() net.Conn })
		if !ok {
			return c
		}
		next := u.Unwrap()
		if next == nil {
			return c
		}
		c = next
	}
	return c
}

// TCP returns the TCP connection under c, or nil when c is not one or a
// wrapper hides it.
func TCP(c net.Conn) *net.TCPConn {
	tc, _ := Unwrap(c).(*net.TCPConn)
	return tc
}

// NotifySent tells every wrapper on the way from c to its socket that
// implements SentFile(n int64) that n bytes went out beneath it.
func NotifySent(c net.Conn, n int64) {
	for i := 0; i < 32 && c != nil; i++ {
		if s, ok := c.(interface{ SentFile(n int64) }); ok {
			s.SentFile(n)
		}
		u, ok := c.(interface{ Unwrap() net.Conn })
		if !ok {
			return
		}
		c = u.Unwrap()
	}
}

// control runs f on the socket under c, if c reaches one.
func control(c net.Conn, f func(fd int)) bool {
	sc, ok := Unwrap(c).(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	// Control, unlike Read, does not wait for a goroutine's pending Read
	// on the same connection.
	return rc.Control(func(fd uintptr) { f(int(fd)) }) == nil
}

// OOBInline keeps TCP urgent data in the normal stream. Clients send ABOR
// as urgent data (RFC 959 §4.1.3, Python's ftplib does): without this the
// kernel takes its last byte out of band and the line never ends. It
// reports whether the option could be set.
func OOBInline(c net.Conn) bool {
	var err error
	ok := control(c, func(fd int) {
		err = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_OOBINLINE, 1)
	})
	return ok && err == nil
}

// PeerGone reports whether the peer has closed c (end-of-file or a reset
// pending), without consuming anything: a peek that never blocks. False
// when c hides its socket.
func PeerGone(c net.Conn) bool {
	gone := false
	control(c, func(fd int) {
		var b [1]byte
		n, _, err := syscall.Recvfrom(fd, b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		gone = n == 0 && err == nil || err == syscall.ECONNRESET
	})
	return gone
}

// Coalesce turns Nagle's algorithm on for a bulk send on c, also under a
// *tls.Conn (an option of the socket, not a way around TLS), and returns
// the function that turns it off again, which sends what it held at once.
// Go sets TCP_NODELAY on every connection, so each write, and each gap that
// sendfile finds in the socket buffer, leaves as a segment of its own;
// full segments mean fewer packets and less CPU per byte (the figures are
// in docs/benchmarks.md). It does nothing where c hides its socket.
func Coalesce(c net.Conn) (restore func()) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	t := TCP(c)
	if t == nil || t.SetNoDelay(false) != nil {
		return func() {}
	}
	return func() { t.SetNoDelay(true) }
}

// Package sockopt holds Ferry's socket tricks: the options and system calls
// that package net does not offer.
package sockopt

import (
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

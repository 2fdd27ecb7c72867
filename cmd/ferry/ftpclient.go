package main

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// ftpConn is a minimal FTP client for `ferry probe`: one control
// connection, raw replies, every wait under a deadline.
type ftpConn struct {
	conn    net.Conn
	r       *bufio.Reader
	timeout time.Duration
	// last is the last reply line read, for messages.
	last string
}

// dialFTP connects to addr and reads the greeting.
func dialFTP(addr string, timeout time.Duration) (*ftpConn, int, string, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, 0, "", err
	}
	f := &ftpConn{conn: c, r: bufio.NewReader(c), timeout: timeout}
	code, text, err := f.read()
	if err != nil {
		c.Close()
		return nil, 0, "", err
	}
	return f, code, text, nil
}

// Close closes the control connection.
func (f *ftpConn) Close() error { return f.conn.Close() }

// read returns the next reply; a multi-line reply's lines are joined with
// newlines (RFC 959 §4.2).
func (f *ftpConn) read() (int, string, error) {
	f.conn.SetReadDeadline(time.Now().Add(f.timeout))
	line, err := f.r.ReadString('\n')
	if err != nil {
		return 0, "", fmt.Errorf("reading the reply: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if len(line) < 3 {
		return 0, "", fmt.Errorf("malformed reply %q", line)
	}
	code, err := strconv.Atoi(line[:3])
	if err != nil {
		return 0, "", fmt.Errorf("malformed reply %q", line)
	}
	text := strings.TrimSpace(line[3:])
	if len(line) > 3 && line[3] == '-' {
		text = line[4:]
		for {
			l, err := f.r.ReadString('\n')
			if err != nil {
				return 0, "", fmt.Errorf("reading a multi-line reply: %w", err)
			}
			l = strings.TrimRight(l, "\r\n")
			if strings.HasPrefix(l, line[:3]+" ") {
				text += "\n" + l[4:]
				break
			}
			text += "\n" + l
		}
	}
	f.last = fmt.Sprintf("%d %s", code, firstLine(text))
	return code, text, nil
}

// send writes a command line without reading a reply.
func (f *ftpConn) send(format string, args ...any) error {
	line := fmt.Sprintf(format, args...)
	if strings.ContainsAny(line, "\r\n") {
		return errors.New("command with CR or LF")
	}
	f.conn.SetWriteDeadline(time.Now().Add(f.timeout))
	_, err := f.conn.Write([]byte(line + "\r\n"))
	return err
}

// cmd sends a command and reads its reply.
func (f *ftpConn) cmd(format string, args ...any) (int, string, error) {
	if err := f.send(format, args...); err != nil {
		return 0, "", err
	}
	return f.read()
}

// startTLS runs the client side of a TLS handshake on the control
// connection (after 234).
func (f *ftpConn) startTLS(cfg *tls.Config) (*tls.ConnectionState, error) {
	tc := tls.Client(f.conn, cfg)
	tc.SetDeadline(time.Now().Add(f.timeout))
	if err := tc.Handshake(); err != nil {
		return nil, err
	}
	tc.SetDeadline(time.Time{})
	f.conn, f.r = tc, bufio.NewReader(tc)
	cs := tc.ConnectionState()
	return &cs, nil
}

// remoteAddr is the server's address of the control connection.
func (f *ftpConn) remoteAddr() netip.AddrPort {
	if a, ok := f.conn.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort()
	}
	if tc, ok := f.conn.(*tls.Conn); ok {
		if a, ok := tc.NetConn().RemoteAddr().(*net.TCPAddr); ok {
			return a.AddrPort()
		}
	}
	return netip.AddrPort{}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// parsePASV reads the address of a 227 reply: "(h1,h2,h3,h4,p1,p2)".
func parsePASV(text string) (netip.AddrPort, error) {
	i := strings.IndexByte(text, '(')
	j := strings.IndexByte(text, ')')
	if i < 0 || j < i {
		return netip.AddrPort{}, fmt.Errorf("no address in %q", text)
	}
	parts := strings.Split(text[i+1:j], ",")
	if len(parts) != 6 {
		return netip.AddrPort{}, fmt.Errorf("bad address in %q", text)
	}
	var b [6]byte
	for k, p := range parts {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 0 || n > 255 {
			return netip.AddrPort{}, fmt.Errorf("bad address in %q", text)
		}
		b[k] = byte(n)
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[:4])), uint16(b[4])<<8|uint16(b[5])), nil
}

// parseEPSV reads the port of a 229 reply: "(|||port|)".
func parseEPSV(text string) (uint16, error) {
	i := strings.Index(text, "(|||")
	if i < 0 {
		return 0, fmt.Errorf("no port in %q", text)
	}
	rest := text[i+4:]
	j := strings.IndexByte(rest, '|')
	if j < 0 {
		return 0, fmt.Errorf("no port in %q", text)
	}
	n, err := strconv.ParseUint(rest[:j], 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("bad port in %q", text)
	}
	return uint16(n), nil
}

package main

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"
)

// reply is one FTP reply: its code and its text (lines joined by "\n").
type reply struct {
	Code int
	Msg  string
}

func (r reply) String() string { return fmt.Sprintf("%d %s", r.Code, r.Msg) }

// replyError is an unexpected reply to a command.
type replyError struct {
	Cmd   string
	Reply reply
}

func (e *replyError) Error() string {
	return fmt.Sprintf("%s: unexpected reply %d %s", e.Cmd, e.Reply.Code, firstLine(e.Reply.Msg))
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// dialer holds what every connection of one run shares: where the server is,
// the per-operation timeout, the local address to dial from, and the TLS
// configuration whose ClientSessionCache lets data connections resume the
// control connection's TLS session (RFC 4217 section 10.2; vsftpd's
// require_ssl_reuse and Ferry's tls_session_reuse insist on it).
type dialer struct {
	Addr    string
	Timeout time.Duration
	Local   net.IP // nil: let the kernel choose
	TLS     *tls.Config
	PASV    bool // skip EPSV, use PASV only
}

// newTLSConfig returns the client TLS configuration of one FTPS session. The
// control and data connections must use the same *tls.Config: the session
// cache is keyed by ServerName, which is therefore fixed to the control
// address's host so that data connections to other ports find the ticket.
func newTLSConfig(addr string) *tls.Config {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	return &tls.Config{
		InsecureSkipVerify: true, // self-signed benchmark certificates
		ServerName:         host,
		ClientSessionCache: tls.NewLRUClientSessionCache(8),
		MinVersion:         tls.VersionTLS12,
	}
}

func (d *dialer) dial(addr string) (net.Conn, error) {
	nd := net.Dialer{Timeout: d.Timeout}
	if d.Local != nil {
		nd.LocalAddr = &net.TCPAddr{IP: d.Local}
	}
	return nd.Dial("tcp", addr)
}

// conn is one FTP control connection spoken over raw lines.
type conn struct {
	d       *dialer
	nc      net.Conn // plain or *tls.Conn
	r       *textproto.Reader
	w       *bufio.Writer
	tlsConf *tls.Config // non-nil once AUTH TLS succeeded
	protP   bool        // PROT P: data connections are TLS too
	noEPSV  bool        // EPSV was refused once; use PASV
	feat    map[string]string
	Greet   reply
	// finalWait is how long the last transfer's final reply took after the
	// data connection was done (a server that fsyncs uploads shows it here).
	finalWait time.Duration
}

// connect opens a control connection and reads the greeting.
func (d *dialer) connect() (*conn, error) {
	nc, err := d.dial(d.Addr)
	if err != nil {
		return nil, err
	}
	c := &conn{d: d, noEPSV: d.PASV}
	c.setConn(nc)
	c.deadline()
	r, err := c.read()
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	if r.Code != 220 {
		nc.Close()
		return nil, &replyError{"greeting", r}
	}
	c.Greet = r
	return c, nil
}

func (c *conn) setConn(nc net.Conn) {
	c.nc = nc
	c.r = textproto.NewReader(bufio.NewReaderSize(nc, 4096))
	c.w = bufio.NewWriterSize(nc, 512)
}

func (c *conn) deadline() { c.nc.SetDeadline(time.Now().Add(c.d.Timeout)) }

func (c *conn) Close() error { return c.nc.Close() }

// read reads one (possibly multi-line) reply.
func (c *conn) read() (reply, error) {
	code, msg, err := c.r.ReadResponse(0)
	if err != nil {
		var te *textproto.Error
		if errors.As(err, &te) {
			return reply{te.Code, te.Msg}, nil
		}
		return reply{}, err
	}
	return reply{code, msg}, nil
}

func (c *conn) send(line string) error {
	c.deadline()
	c.w.WriteString(line)
	c.w.WriteString("\r\n")
	return c.w.Flush()
}

// cmd sends one command and reads its reply.
func (c *conn) cmd(line string) (reply, error) {
	if err := c.send(line); err != nil {
		return reply{}, err
	}
	return c.read()
}

// expect sends a command and fails unless the reply code is one of codes.
func (c *conn) expect(line string, codes ...int) (reply, error) {
	r, err := c.cmd(line)
	if err != nil {
		return r, fmt.Errorf("%s: %w", verb(line), err)
	}
	for _, code := range codes {
		if r.Code == code {
			return r, nil
		}
	}
	return r, &replyError{verb(line), r}
}

func verb(line string) string {
	if i := strings.IndexByte(line, ' '); i >= 0 {
		if strings.EqualFold(line[:i], "PASS") {
			return "PASS"
		}
		return line[:i]
	}
	return line
}

// authTLS upgrades the control connection (RFC 4217 section 4) and protects
// data connections with PBSZ 0 + PROT P.
func (c *conn) authTLS(conf *tls.Config) error {
	if _, err := c.expect("AUTH TLS", 234); err != nil {
		return err
	}
	tc := tls.Client(c.nc, conf)
	c.deadline()
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("control TLS handshake: %w", err)
	}
	c.setConn(tc)
	c.tlsConf = conf
	return nil
}

// protect sends PBSZ 0 and PROT P; call after login (vsftpd accepts both
// before, Ferry may require either order — after login works everywhere).
func (c *conn) protect() error {
	if _, err := c.expect("PBSZ 0", 200); err != nil {
		return err
	}
	if _, err := c.expect("PROT P", 200); err != nil {
		return err
	}
	c.protP = true
	return nil
}

// login sends USER and, when asked for, PASS.
func (c *conn) login(user, pass string) error {
	r, err := c.expect("USER "+user, 230, 331)
	if err != nil {
		return err
	}
	if r.Code == 230 {
		return nil
	}
	_, err = c.expect("PASS "+pass, 230)
	return err
}

// features sends FEAT once and returns the upper-cased feature names with
// their arguments (RFC 2389).
func (c *conn) features() map[string]string {
	if c.feat != nil {
		return c.feat
	}
	c.feat = map[string]string{}
	r, err := c.cmd("FEAT")
	if err != nil || r.Code != 211 {
		return c.feat
	}
	for _, l := range strings.Split(r.Msg, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(strings.ToLower(l), "features") || strings.EqualFold(l, "end") {
			continue
		}
		name, arg, _ := strings.Cut(l, " ")
		c.feat[strings.ToUpper(name)] = arg
	}
	return c.feat
}

// size sends SIZE and returns the size in bytes.
func (c *conn) size(path string) (int64, error) {
	r, err := c.expect("SIZE "+path, 213)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(r.Msg), 10, 64)
}

// passive asks for a passive data address: EPSV (RFC 2428) first, PASV when
// the server refuses it. The EPSV port is joined to the control connection's
// remote host; the PASV host is the one the server announced.
func (c *conn) passive() (string, error) {
	if !c.noEPSV {
		r, err := c.cmd("EPSV")
		if err != nil {
			return "", fmt.Errorf("EPSV: %w", err)
		}
		if r.Code == 229 {
			port, err := parseEPSV(r.Msg)
			if err != nil {
				return "", err
			}
			host, _, _ := net.SplitHostPort(c.nc.RemoteAddr().String())
			return net.JoinHostPort(host, strconv.Itoa(port)), nil
		}
		c.noEPSV = true
	}
	r, err := c.expect("PASV", 227)
	if err != nil {
		return "", err
	}
	return parsePASV(r.Msg)
}

// parseEPSV extracts the port of "Entering Extended Passive Mode (|||port|)".
func parseEPSV(msg string) (int, error) {
	i := strings.IndexByte(msg, '(')
	j := strings.LastIndexByte(msg, ')')
	if i < 0 || j < i+5 {
		return 0, fmt.Errorf("EPSV: bad reply %q", msg)
	}
	inner := msg[i+1 : j]
	d := inner[0]
	parts := strings.Split(inner, string(d))
	if len(parts) != 5 {
		return 0, fmt.Errorf("EPSV: bad reply %q", msg)
	}
	p, err := strconv.Atoi(parts[3])
	if err != nil || p <= 0 || p > 65535 {
		return 0, fmt.Errorf("EPSV: bad port in %q", msg)
	}
	return p, nil
}

// parsePASV extracts h1,h2,h3,h4,p1,p2 from a 227 reply (RFC 959 section 4.1.2).
func parsePASV(msg string) (string, error) {
	start := strings.IndexFunc(msg, func(r rune) bool { return r >= '0' && r <= '9' })
	if start < 0 {
		return "", fmt.Errorf("PASV: bad reply %q", msg)
	}
	end := start
	for end < len(msg) && (msg[end] == ',' || (msg[end] >= '0' && msg[end] <= '9')) {
		end++
	}
	f := strings.Split(msg[start:end], ",")
	if len(f) != 6 {
		return "", fmt.Errorf("PASV: bad reply %q", msg)
	}
	var n [6]int
	for i, s := range f {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 || v > 255 {
			return "", fmt.Errorf("PASV: bad reply %q", msg)
		}
		n[i] = v
	}
	host := fmt.Sprintf("%d.%d.%d.%d", n[0], n[1], n[2], n[3])
	return net.JoinHostPort(host, strconv.Itoa(n[4]*256+n[5])), nil
}

// transfer runs one data-connection command (RETR, STOR, LIST, MLSD …):
// passive address, data connect, the command, TLS on the data connection when
// PROT P, then body on the data connection, then the final reply. body must
// consume or produce the whole stream; transfer closes the data connection
// after it (for uploads that close is the end of file).
func (c *conn) transfer(line string, body func(io.ReadWriter) (int64, error)) (int64, error) {
	addr, err := c.passive()
	if err != nil {
		return 0, err
	}
	dc, err := c.d.dial(addr)
	if err != nil {
		return 0, fmt.Errorf("data connect %s: %w", addr, err)
	}
	defer dc.Close()
	dc.SetDeadline(time.Now().Add(c.d.Timeout))
	if err := c.send(line); err != nil {
		return 0, err
	}
	// The preliminary reply is read while the data side runs: a server may
	// answer 150 before or after it accepts the data connection and its TLS
	// handshake. A refusal closes the data connection to unblock the body.
	first := make(chan error, 1)
	go func() {
		r, err := c.read()
		if err == nil && (r.Code < 100 || r.Code >= 200) {
			err = &replyError{verb(line), r}
		}
		if err != nil {
			dc.Close()
		}
		first <- err
	}()
	var data io.ReadWriter = dc
	var tc *tls.Conn
	if c.protP {
		tc = tls.Client(dc, c.tlsConf)
		data = tc
	}
	n, berr := func() (int64, error) {
		if tc != nil {
			if err := tc.Handshake(); err != nil {
				return 0, fmt.Errorf("data TLS handshake: %w", err)
			}
			if !tc.ConnectionState().DidResume {
				return 0, errors.New("data TLS session did not resume the control session")
			}
		}
		return body(&deadlineRW{rw: data, nc: dc, timeout: c.d.Timeout, last: time.Now()})
	}()
	dataDone := time.Now()
	if berr == nil {
		closeData(dc, tc)
	} else {
		dc.Close()
	}
	if ferr := <-first; ferr != nil {
		return n, ferr
	}
	if berr != nil {
		return n, berr
	}
	c.deadline()
	r, err := c.read()
	c.finalWait = time.Since(dataDone)
	if err != nil {
		return n, fmt.Errorf("%s final reply (%.0fs after the data): %w", verb(line), c.finalWait.Seconds(), err)
	}
	if r.Code != 226 && r.Code != 250 {
		return n, &replyError{verb(line), r}
	}
	return n, nil
}

// deadlineRW pushes the data connection's deadline forward at most once a
// second, so a stalled transfer fails after Timeout instead of hanging.
type deadlineRW struct {
	rw      io.ReadWriter
	nc      net.Conn
	timeout time.Duration
	last    time.Time
}

func (d *deadlineRW) touch() {
	if now := time.Now(); now.Sub(d.last) > time.Second {
		d.last = now
		d.nc.SetDeadline(now.Add(d.timeout))
	}
}

func (d *deadlineRW) Read(p []byte) (int, error)  { d.touch(); return d.rw.Read(p) }
func (d *deadlineRW) Write(p []byte) (int, error) { d.touch(); return d.rw.Write(p) }

// readAll reads the stream to its end with buf and returns the byte count.
// A TLS stream that ends without close_notify counts as ended: the final
// reply and the byte count decide success.
func readAll(r io.Reader, buf []byte, onData func([]byte)) (int64, error) {
	var n int64
	for {
		k, err := r.Read(buf)
		if k > 0 {
			n += int64(k)
			if onData != nil {
				onData(buf[:k])
			}
		}
		if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// closeData ends a data connection gracefully: close_notify when TLS, a TCP
// half-close (the end of file of an upload), then whatever the server still
// sends (TLS 1.3 session tickets an upload never reads) is drained until the
// server closes. Closing with unread data would make the kernel send a RST,
// and the server could lose the tail of the upload.
func closeData(dc net.Conn, tc *tls.Conn) {
	defer dc.Close()
	if tc != nil {
		tc.CloseWrite()
	}
	if tcp, ok := dc.(*net.TCPConn); ok {
		tcp.CloseWrite()
	}
	var buf [4096]byte
	for {
		if _, err := dc.Read(buf[:]); err != nil {
			return
		}
	}
}

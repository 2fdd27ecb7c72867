package ftp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/certs"
	"github.com/ferryftp/ferry/internal/users"
)

// ftpsDeadline bounds every blocking step of the FTPS test clients, so a
// server bug shows as a failed test rather than a hung one. It is a safety
// net, never a measured threshold.
const ftpsDeadline = 30 * time.Second

// ftpsFixture is a certificate manager with its self-signed certificate in a
// temporary data directory, and the pool a client needs to trust it.
type ftpsFixture struct {
	m    *certs.Manager
	dir  string
	pool *x509.CertPool
}

func newFTPSFixture(t testing.TB) *ftpsFixture {
	t.Helper()
	dir := t.TempDir()
	m, err := certs.New(certs.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	f := &ftpsFixture{m: m, dir: dir}
	f.pool = f.currentPool(t)
	return f
}

// currentPool trusts the certificate now on disk.
func (f *ftpsFixture) currentPool(t testing.TB) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dir, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("no PEM block in cert.pem")
	}
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return pool
}

// renew replaces the self-signed pair on disk and reloads the manager.
func (f *ftpsFixture) renew(t testing.TB) {
	t.Helper()
	for _, n := range []string{"cert.pem", "key.pem"} {
		if err := os.Remove(filepath.Join(f.dir, "tls", n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.m.Reload(); err != nil {
		t.Fatal(err)
	}
}

// client returns a client config that trusts the fixture. maxVersion 0
// means the library's default; cache may be nil (no resumption).
func (f *ftpsFixture) client(maxVersion uint16, cache tls.ClientSessionCache) *tls.Config {
	return &tls.Config{
		ServerName:         "localhost",
		RootCAs:            f.pool,
		MaxVersion:         maxVersion,
		ClientSessionCache: cache,
		NextProtos:         []string{"ftp"},
	}
}

// startFTPS starts a test server with TLS from f; mod may change the
// configuration further.
func startFTPS(t testing.TB, f *ftpsFixture, mod func(*Site, *Server)) *testServer {
	t.Helper()
	return startServer(t, func(cfg *Site, srv *Server) {
		cfg.TLS = &tls.Config{GetCertificate: f.m.GetCertificate}
		if mod != nil {
			mod(cfg, srv)
		}
	})
}

// startFTPSOn is startFTPS on storage backend b.
func startFTPSOn(t testing.TB, b backend, f *ftpsFixture, mod func(*Site, *Server)) *testServer {
	t.Helper()
	return startOn(t, b, func(cfg *Site, srv *Server) {
		cfg.TLS = &tls.Config{GetCertificate: f.m.GetCertificate}
		if mod != nil {
			mod(cfg, srv)
		}
	})
}

// serveImplicit adds an implicit-FTPS listener to ts and returns its address.
func serveImplicit(t testing.TB, ts *testServer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go ts.srv.Serve(ln, true)
	return ln.Addr().String()
}

// ftpsShutdownWait bounds how long a test waits for a session to end or for
// Shutdown to return before it reports a leaked session; a safety net again.
const ftpsShutdownWait = 5 * time.Second

// signalWriter is a log sink that signals each line containing match.
type signalWriter struct {
	syncBuffer
	match  []byte
	signal chan<- struct{}
}

func (w *signalWriter) Write(p []byte) (int, error) {
	n, err := w.syncBuffer.Write(p)
	if bytes.Contains(p, w.match) {
		select {
		case w.signal <- struct{}{}:
		default:
		}
	}
	return n, err
}

// startImplicitFTPS starts a server with only an implicit-FTPS listener and
// signals each log line containing match. Unlike startServer, its cleanup
// does not hang when a session leaks: a Shutdown that does not return is
// reported and abandoned.
func startImplicitFTPS(t testing.TB, f *ftpsFixture, match string, signal chan<- struct{}) (*Server, string) {
	t.Helper()
	data := t.TempDir()
	if err := PrepareData(data); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(data, "home", "alice")
	auth := &memAuth{users: map[string]memUser{"alice": {pass: "secret", u: users.User{Name: "alice", Home: home}}}}
	logs := &signalWriter{match: []byte(match), signal: signal}
	srv := &Server{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if err := srv.SetSite(&Site{Settings: testSettings(data), Auth: auth, TLS: &tls.Config{GetCertificate: f.m.GetCertificate}}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln, true)
	t.Cleanup(func() {
		done := make(chan struct{})
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(ctx)
			close(done)
		}()
		if !t.Failed() { // after a reported leak, Shutdown is known to hang
			select {
			case <-done:
			case <-time.After(ftpsShutdownWait):
				t.Errorf("Shutdown did not return: a session never ended")
			}
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return srv, ln.Addr().String()
}

// dialFTPS connects, sends AUTH TLS and completes the control handshake.
func dialFTPS(t testing.TB, addr string, cfg *tls.Config) *client {
	t.Helper()
	c := dial(t, addr)
	c.cmd("AUTH TLS", 234)
	if err := c.startTLSFTPS(cfg); err != nil {
		t.Fatalf("control handshake: %v", err)
	}
	return c
}

// dialImplicit connects to an implicit-FTPS listener: TLS first, then 220.
func dialImplicit(t testing.TB, addr string, cfg *tls.Config) *client {
	t.Helper()
	raw, err := net.DialTimeout("tcp", addr, ftpsDeadline)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	c := &client{t: t, conn: raw, r: bufio.NewReader(raw)}
	if err := c.startTLSFTPS(cfg); err != nil {
		t.Fatalf("implicit handshake: %v", err)
	}
	c.expect(220)
	return c
}

// startTLSFTPS runs the client handshake on the control connection and
// continues the dialogue over it.
func (c *client) startTLSFTPS(cfg *tls.Config) error {
	tc := tls.Client(c.conn, cfg)
	tc.SetDeadline(time.Now().Add(ftpsDeadline))
	err := tc.Handshake()
	tc.SetDeadline(time.Time{})
	c.conn = tc
	c.r = bufio.NewReader(tc)
	return err
}

// tlsStateFTPS returns the control connection's TLS state.
func (c *client) tlsStateFTPS() tls.ConnectionState {
	c.t.Helper()
	tc, ok := c.conn.(*tls.Conn)
	if !ok {
		c.t.Fatal("control connection is not TLS")
	}
	return tc.ConnectionState()
}

// protectFTPS sends PBSZ 0 and PROT P.
func (c *client) protectFTPS() {
	c.t.Helper()
	c.cmd("PBSZ 0", 200)
	c.cmd("PROT P", 200)
}

// ftpsRecConn records every byte the client reads from the raw data socket, so
// a test can see what the server sent after the handshake.
type ftpsRecConn struct {
	net.Conn
	mu  sync.Mutex
	buf []byte
}

func (r *ftpsRecConn) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.mu.Lock()
	r.buf = append(r.buf, p[:n]...)
	r.mu.Unlock()
	return n, err
}

func (r *ftpsRecConn) received() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]byte(nil), r.buf...)
}

// holdConn is a client connection whose writes can be held back and sent
// together with more bytes in one write.
type holdConn struct {
	net.Conn
	held []byte
	on   bool
}

func (h *holdConn) hold() { h.on = true }

func (h *holdConn) Write(p []byte) (int, error) {
	if h.on {
		h.held = append(h.held, p...)
		return len(p), nil
	}
	return h.Conn.Write(p)
}

// flush sends the held bytes and more in one write and stops holding.
func (h *holdConn) flush(more []byte) error {
	b := append(h.held, more...)
	h.held, h.on = nil, false
	h.Conn.SetWriteDeadline(time.Now().Add(ftpsDeadline))
	_, err := h.Conn.Write(b)
	return err
}

// ftpsData is the client side of one protected data connection.
type ftpsData struct {
	tc   *tls.Conn
	raw  *ftpsRecConn
	hs   chan error // the handshake's result
	mark int        // bytes received when the handshake ended
}

// openTLSData opens a passive data connection, sends line and runs the
// client's data handshake alongside, the way FileZilla does: whether the
// server answers 150 before or after its data handshake, this client gets
// there. It returns the first reply to line.
func (c *client) openTLSData(line string, cfg *tls.Config) (*ftpsData, int, string) {
	c.t.Helper()
	raw := c.pasv()
	d := &ftpsData{raw: &ftpsRecConn{Conn: raw}, hs: make(chan error, 1)}
	d.tc = tls.Client(d.raw, cfg)
	d.tc.SetDeadline(time.Now().Add(ftpsDeadline))
	c.send(line)
	go func() { d.hs <- d.tc.Handshake() }()
	code, text := c.read()
	return d, code, text
}

// handshake waits for the data handshake and fails the test on an error.
func (d *ftpsData) handshake(t testing.TB) {
	t.Helper()
	if err := <-d.hs; err != nil {
		t.Fatalf("data handshake: %v", err)
	}
	d.mark = len(d.raw.received())
}

// retrTLS downloads name over a protected data connection.
func (c *client) retrTLS(name string, cfg *tls.Config) ([]byte, tls.ConnectionState) {
	c.t.Helper()
	d, code, text := c.openTLSData("RETR "+name, cfg)
	if code != 150 {
		c.t.Fatalf("RETR %s: want 150, got %d %s", name, code, text)
	}
	d.handshake(c.t)
	b, err := io.ReadAll(d.tc)
	if err != nil {
		c.t.Fatalf("RETR %s: reading data: %v", name, err)
	}
	d.tc.Close()
	c.expect(226)
	return b, d.tc.ConnectionState()
}

// storTLS uploads data under name: the client writes, then closes at once
// without reading, as upload-only clients do.
func (c *client) storTLS(name string, cfg *tls.Config, data []byte) tls.ConnectionState {
	c.t.Helper()
	d, code, text := c.openTLSData("STOR "+name, cfg)
	if code != 150 {
		c.t.Fatalf("STOR %s: want 150, got %d %s", name, code, text)
	}
	d.handshake(c.t)
	if _, err := d.tc.Write(data); err != nil {
		c.t.Fatalf("STOR %s: writing data: %v", name, err)
	}
	d.tc.Close()
	c.expect(226)
	return d.tc.ConnectionState()
}

// refusedTLS runs line on a protected data connection that the server is
// expected to refuse, and returns the final reply. A server may answer 150
// before its data handshake and refuse after it, so a 150 is skipped.
func (c *client) refusedTLS(line string, cfg *tls.Config) (int, string) {
	c.t.Helper()
	d, code, text := c.openTLSData(line, cfg)
	if code == 150 {
		code, text = c.read()
	}
	if err := <-d.hs; err == nil {
		// Drain until the server closes, so a ticket it might have sent
		// reaches the client's cache.
		io.Copy(io.Discard, d.tc)
	}
	d.tc.Close()
	return code, text
}

// ftpsRecords splits raw TLS records; it fails on a partial record.
func ftpsRecords(t testing.TB, b []byte) [][]byte {
	t.Helper()
	var recs [][]byte
	for len(b) > 0 {
		if len(b) < 5 {
			t.Fatalf("partial TLS record header % x", b)
		}
		n := 5 + (int(b[3])<<8 | int(b[4]))
		if len(b) < n {
			t.Fatalf("partial TLS record: have %d of %d bytes", len(b), n)
		}
		recs = append(recs, b[:n])
		b = b[n:]
	}
	return recs
}

// ftpsTicketCache counts the sessions a client stores: in TLS 1.3 each Put is
// a NewSessionTicket the server sent after the handshake.
type ftpsTicketCache struct {
	tls.ClientSessionCache
	puts atomic.Int64
}

func newFTPSTicketCache() *ftpsTicketCache {
	return &ftpsTicketCache{ClientSessionCache: tls.NewLRUClientSessionCache(16)}
}

func (c *ftpsTicketCache) Put(key string, cs *tls.ClientSessionState) {
	if cs != nil {
		c.puts.Add(1)
	}
	c.ClientSessionCache.Put(key, cs)
}

// ftpsFingerprint formats a certificate's SHA-256 like certs.Manager.Fingerprint.
func ftpsFingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

// ftpsLogLines returns the server log lines that contain every one of subs.
func ftpsLogLines(ts *testServer, subs ...string) []string {
	var out []string
next:
	for _, l := range strings.Split(ts.logText(), "\n") {
		for _, s := range subs {
			if !strings.Contains(l, s) {
				continue next
			}
		}
		out = append(out, l)
	}
	return out
}

// protectRetrTLS sets PBSZ/PROT P, then downloads name.
func (c *client) protectRetrTLS(name string, cfg *tls.Config) ([]byte, tls.ConnectionState) {
	c.t.Helper()
	c.protectFTPS()
	return c.retrTLS(name, cfg)
}

// ftpsCheckRefusalLog wants one log line for a refused data connection that
// carries the reason and the connection's TLS parameters.
func ftpsCheckRefusalLog(t *testing.T, ts *testServer, why string) {
	t.Helper()
	lines := ftpsLogLines(ts, "refused", why)
	if len(lines) == 0 {
		t.Errorf("no log line with the refusal reason %q", why)
		return
	}
	for _, key := range []string{"tls_version=", "cipher=", "resumed="} {
		found := false
		for _, l := range lines {
			found = found || strings.Contains(l, key)
		}
		if !found {
			t.Errorf("refusal log lacks %s: %q", strings.TrimSuffix(key, "="), lines)
		}
	}
}

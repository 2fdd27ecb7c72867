package ftp

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/certs"
	"github.com/ferryftp/ferry/internal/config"
)

// ftpsDeadline bounds every blocking step of the FTPS test clients, so a
// server bug shows as a failed test rather than a hung one. It is a safety
// net, never a measured threshold.
const ftpsDeadline = 30 * time.Second

// tlsFixture is a certificate manager with its self-signed certificate in a
// temporary data directory, and the pool a client needs to trust it.
type tlsFixture struct {
	m    *certs.Manager
	dir  string
	pool *x509.CertPool
}

func newTLSFixture(t testing.TB) *tlsFixture {
	t.Helper()
	dir := t.TempDir()
	m, err := certs.New(certs.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	f := &tlsFixture{m: m, dir: dir}
	f.pool = f.currentPool(t)
	return f
}

// currentPool trusts the certificate now on disk.
func (f *tlsFixture) currentPool(t testing.TB) *x509.CertPool {
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
func (f *tlsFixture) renew(t testing.TB) {
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
func (f *tlsFixture) client(maxVersion uint16, cache tls.ClientSessionCache) *tls.Config {
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
func startFTPS(t testing.TB, f *tlsFixture, mod func(*config.Config, *Server)) *testServer {
	t.Helper()
	return startServer(t, func(cfg *config.Config, srv *Server) {
		srv.TLS = &tls.Config{GetCertificate: f.m.GetCertificate}
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

// dialFTPS connects, sends AUTH TLS and completes the control handshake.
func dialFTPS(t testing.TB, addr string, cfg *tls.Config) *client {
	t.Helper()
	c := dial(t, addr)
	c.cmd("AUTH TLS", 234)
	if err := c.startTLS(cfg); err != nil {
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
	if err := c.startTLS(cfg); err != nil {
		t.Fatalf("implicit handshake: %v", err)
	}
	c.expect(220)
	return c
}

// startTLS runs the client handshake on the control connection and
// continues the dialogue over it.
func (c *client) startTLS(cfg *tls.Config) error {
	tc := tls.Client(c.conn, cfg)
	tc.SetDeadline(time.Now().Add(ftpsDeadline))
	err := tc.Handshake()
	tc.SetDeadline(time.Time{})
	c.conn = tc
	c.r = bufio.NewReader(tc)
	return err
}

// tlsState returns the control connection's TLS state.
func (c *client) tlsState() tls.ConnectionState {
	c.t.Helper()
	tc, ok := c.conn.(*tls.Conn)
	if !ok {
		c.t.Fatal("control connection is not TLS")
	}
	return tc.ConnectionState()
}

// protect sends PBSZ 0 and PROT P.
func (c *client) protect() {
	c.t.Helper()
	c.cmd("PBSZ 0", 200)
	c.cmd("PROT P", 200)
}

// recConn records every byte the client reads from the raw data socket, so
// a test can see what the server sent after the handshake.
type recConn struct {
	net.Conn
	mu  sync.Mutex
	buf []byte
}

func (r *recConn) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.mu.Lock()
	r.buf = append(r.buf, p[:n]...)
	r.mu.Unlock()
	return n, err
}

func (r *recConn) received() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]byte(nil), r.buf...)
}

// tlsData is the client side of one protected data connection.
type tlsData struct {
	tc   *tls.Conn
	raw  *recConn
	hs   chan error // the handshake's result
	mark int        // bytes received when the handshake ended
}

// openTLSData opens a passive data connection, sends line and runs the
// client's data handshake alongside, the way FileZilla does: whether the
// server answers 150 before or after its data handshake, this client gets
// there. It returns the first reply to line.
func (c *client) openTLSData(line string, cfg *tls.Config) (*tlsData, int, string) {
	c.t.Helper()
	raw := c.pasv()
	d := &tlsData{raw: &recConn{Conn: raw}, hs: make(chan error, 1)}
	d.tc = tls.Client(d.raw, cfg)
	d.tc.SetDeadline(time.Now().Add(ftpsDeadline))
	c.send(line)
	go func() { d.hs <- d.tc.Handshake() }()
	code, text := c.read()
	return d, code, text
}

// handshake waits for the data handshake and fails the test on an error.
func (d *tlsData) handshake(t testing.TB) {
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
	<-d.hs
	d.tc.Close()
	return code, text
}

// tlsRecords splits raw TLS records; it fails on a partial record.
func tlsRecords(t testing.TB, b []byte) [][]byte {
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

// countingCache counts the sessions a client stores: in TLS 1.3 each Put is
// a NewSessionTicket the server sent after the handshake.
type countingCache struct {
	tls.ClientSessionCache
	puts atomic.Int64
}

func newCountingCache() *countingCache {
	return &countingCache{ClientSessionCache: tls.NewLRUClientSessionCache(16)}
}

func (c *countingCache) Put(key string, cs *tls.ClientSessionState) {
	if cs != nil {
		c.puts.Add(1)
	}
	c.ClientSessionCache.Put(key, cs)
}

// fingerprintOf formats a certificate's SHA-256 like certs.Manager.Fingerprint.
func fingerprintOf(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

// logLines returns the server log lines that contain every one of subs.
func logLines(ts *testServer, subs ...string) []string {
	var out []string
next:
	for _, l := range strings.Split(ts.logs.String(), "\n") {
		for _, s := range subs {
			if !strings.Contains(l, s) {
				continue next
			}
		}
		out = append(out, l)
	}
	return out
}

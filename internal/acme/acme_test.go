package acme

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/ftp"
	"github.com/ferryftp/ferry/internal/testenv"
	"github.com/ferryftp/ferry/internal/testenv/pebbleenv"
	"github.com/ferryftp/ferry/internal/users"
)

// deadline bounds every wait: a safety net, never a measured threshold.
const deadline = 60 * time.Second

// challengeListeners starts the HTTP-01 and TLS-ALPN-01 listeners a
// manager answers on; Pebble is pointed at their ports.
func challengeListeners(t *testing.T) (httpLn, tlsLn net.Listener) {
	t.Helper()
	var err error
	if httpLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if tlsLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { httpLn.Close(); tlsLn.Close() })
	return httpLn, tlsLn
}

func port(ln net.Listener) int { return ln.Addr().(*net.TCPAddr).Port }

// serveChallenges answers m's challenges on the two listeners until the
// test ends.
func serveChallenges(t *testing.T, m *Manager, httpLn, tlsLn net.Listener) {
	t.Helper()
	hs := &http.Server{Handler: m.HTTPHandler(), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(httpLn)
	t.Cleanup(func() { hs.Close() })
	go ServeTLSALPN(tlsLn, m, slog.New(slog.DiscardHandler))
}

// anonAuth refuses every named login; the tests log in anonymously.
type anonAuth struct{}

func (anonAuth) Authenticate(context.Context, users.LoginRequest) (*users.User, error) {
	return nil, users.ErrAuth
}

// ftpsServer serves FTP with m's certificates on 127.0.0.1.
func ftpsServer(t *testing.T, m *Manager) string {
	t.Helper()
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "hello.txt"), []byte("hello\n"), 0o644)
	srv := &ftp.Server{}
	st := &ftp.Site{
		Settings: ftp.Settings{Banner: "ready", Anonymous: true, AnonymousRoot: root, LoginTimeout: deadline,
			IdleTimeout: deadline, DataTimeout: deadline, MaxLineBytes: 4096, MaxLoginFailures: 3},
		Auth: anonAuth{},
		TLS:  &tls.Config{GetCertificate: m.GetCertificate},
	}
	if err := srv.SetSite(st); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln, false)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return ln.Addr().String()
}

// ftpsClient is a control connection after AUTH TLS.
type ftpsClient struct {
	t    *testing.T
	conn *tls.Conn
	r    *bufio.Reader
	cfg  *tls.Config
	addr string
}

func dialFTPS(t *testing.T, addr string, cfg *tls.Config) *ftpsClient {
	t.Helper()
	raw, err := net.DialTimeout("tcp", addr, deadline)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	raw.SetDeadline(time.Now().Add(deadline))
	r := bufio.NewReader(raw)
	expect(t, r, "220")
	fmt.Fprintf(raw, "AUTH TLS\r\n")
	expect(t, r, "234")
	tc := tls.Client(raw, cfg)
	if err := tc.Handshake(); err != nil {
		t.Fatalf("FTPS handshake (the chain must verify against pebble's root): %v", err)
	}
	return &ftpsClient{t: t, conn: tc, r: bufio.NewReader(tc), cfg: cfg, addr: addr}
}

func expect(t *testing.T, r *bufio.Reader, code string) string {
	t.Helper()
	line, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, code+" ") {
		t.Fatalf("want %s, got %q (%v)", code, line, err)
	}
	return line
}

func (c *ftpsClient) cmd(line, code string) string {
	c.t.Helper()
	c.conn.SetDeadline(time.Now().Add(deadline))
	fmt.Fprintf(c.conn, "%s\r\n", line)
	return expect(c.t, c.r, code)
}

// retr downloads name over a protected EPSV data connection that resumes
// the control session.
func (c *ftpsClient) retr(name string) string {
	c.t.Helper()
	text := c.cmd("EPSV", "229")
	i, j := strings.Index(text, "(|||"), strings.Index(text, "|)")
	d, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", text[i+4:j]), deadline)
	if err != nil {
		c.t.Fatal(err)
	}
	defer d.Close()
	c.cmd("RETR "+name, "150")
	tc := tls.Client(d, c.cfg)
	tc.SetDeadline(time.Now().Add(deadline))
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := tc.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	expect(c.t, c.r, "226")
	return b.String()
}

func (c *ftpsClient) leaf() *x509.Certificate { return c.conn.ConnectionState().PeerCertificates[0] }

// TestPebbleHTTP01IssuesRenewsAndHotSwaps: a real ACME CA (Pebble) on
// loopback validates HTTP-01 against the manager's listener; the
// certificate is served on FTPS and verifies against Pebble's root; a
// renewal (acme_renew_before close to the lifetime) reaches new handshakes
// while an open session keeps working.
func TestPebbleHTTP01IssuesRenewsAndHotSwaps(t *testing.T) {
	httpLn, tlsLn := challengeListeners(t)
	const validity = time.Hour
	p := pebbleenv.Start(t, pebbleenv.Options{HTTPPort: port(httpLn), TLSPort: port(tlsLn), Validity: validity})
	data := t.TempDir()
	var log testenv.LogBuffer
	m, err := New(Options{
		Domains:      []string{"localhost"},
		Email:        "ops@example.com",
		DirectoryURL: p.Directory,
		HTTPClient:   p.Client,
		DataDir:      data,
		Challenges:   []string{HTTP01},
		// Due two seconds after issue: the forced renewal.
		RenewBefore: validity - 2*time.Second,
		RetryAfter:  time.Second,
		Logger:      slog.New(slog.NewTextHandler(&log, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	serveChallenges(t, m, httpLn, tlsLn)
	first := m.Renewed()
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { m.Run(ctx); close(runDone) }()
	t.Cleanup(func() { cancel(); <-runDone })
	waitCh(t, first, "the first certificate", &log)
	second := m.Renewed()
	cert1 := m.Current().Leaf

	addr := ftpsServer(t, m)
	cfg := &tls.Config{RootCAs: p.Roots, ServerName: "localhost", ClientSessionCache: tls.NewLRUClientSessionCache(8)}
	a := dialFTPS(t, addr, cfg)
	if !a.leaf().Equal(cert1) {
		t.Fatal("FTPS served another certificate than the manager's")
	}
	a.cmd("USER anonymous", "331")
	a.cmd("PASS ops@example.com", "230")
	a.cmd("PBSZ 0", "200")
	a.cmd("PROT P", "200")
	a.cmd("TYPE I", "200")
	if got := a.retr("hello.txt"); got != "hello\n" {
		t.Fatalf("RETR: %q", got)
	}

	waitCh(t, second, "the renewal", &log)
	cert2 := m.Current().Leaf
	if cert2.Equal(cert1) || !cert2.NotBefore.After(cert1.NotBefore.Add(-time.Second)) {
		t.Fatalf("renewal kept the certificate")
	}
	b := dialFTPS(t, addr, &tls.Config{RootCAs: p.Roots, ServerName: "localhost"})
	if !b.leaf().Equal(cert2) {
		t.Errorf("a new handshake after the renewal got serial %s, want the new %s", b.leaf().SerialNumber, cert2.SerialNumber)
	}
	// The session opened before the renewal keeps going, data included.
	a.cmd("NOOP", "200")
	if got := a.retr("hello.txt"); got != "hello\n" {
		t.Fatalf("RETR after the renewal: %q", got)
	}
	if !a.leaf().Equal(cert1) {
		t.Error("the open session's certificate changed")
	}
	if !strings.Contains(log.String(), "ACME certificate renewed") {
		t.Errorf("no renewal in the log:\n%s", log.String())
	}

	// Kept in the data directory, 0600; a new manager loads them without
	// an order.
	for _, f := range []string{AccountFile, AccountURL, CertFile, KeyFile} {
		fi, err := os.Stat(filepath.Join(data, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s is %v, want 0600", f, fi.Mode().Perm())
		}
	}
	if fi, _ := os.Stat(filepath.Join(data, Dir)); fi.Mode().Perm() != 0o700 {
		t.Errorf("%s is %v, want 0700", Dir, fi.Mode().Perm())
	}
	cancel()
	<-runDone
	m2, err := New(Options{Domains: []string{"localhost"}, DirectoryURL: p.Directory, DataDir: data, Challenges: []string{HTTP01}})
	if err != nil {
		t.Fatal(err)
	}
	if c := m2.Current(); c == nil || !c.Leaf.Equal(m.Current().Leaf) {
		t.Error("a new manager did not load the kept certificate")
	}
	// The certificate on disk is the chain Pebble issued.
	chain := m.Current().Certificate
	if len(chain) < 2 {
		t.Errorf("chain of %d certificates, want leaf and intermediate", len(chain))
	}
}

// TestPebbleTLSALPN01: the TLS-ALPN-01 challenge, answered on its own
// listener, validated by Pebble.
func TestPebbleTLSALPN01(t *testing.T) {
	httpLn, tlsLn := challengeListeners(t)
	p := pebbleenv.Start(t, pebbleenv.Options{HTTPPort: port(httpLn), TLSPort: port(tlsLn)})
	var log testenv.LogBuffer
	m, err := New(Options{
		Domains: []string{"localhost"}, DirectoryURL: p.Directory, HTTPClient: p.Client,
		DataDir: t.TempDir(), Challenges: []string{TLSALPN01},
		Logger: slog.New(slog.NewTextHandler(&log, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	// No HTTP-01 answers: only the TLS listener serves challenges.
	httpLn.Close()
	go ServeTLSALPN(tlsLn, m, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if err := m.Obtain(ctx); err != nil {
		t.Fatalf("obtain with tls-alpn-01: %v\n%s", err, log.String())
	}
	leaf := m.Current().Leaf
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: p.Roots, DNSName: "localhost",
		Intermediates: intermediates(m.Current())}); err != nil {
		t.Errorf("the certificate does not verify against pebble's root: %v", err)
	}
	if !strings.Contains(log.String(), "type=tls-alpn-01") {
		t.Errorf("log:\n%s", log.String())
	}
}

func intermediates(c *tls.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, der := range c.Certificate[1:] {
		if x, err := x509.ParseCertificate(der); err == nil {
			p.AddCert(x)
		}
	}
	return p
}

// TestFailedOrderFallsBackAndRetries: with the CA unreachable, handshakes
// get the fallback certificate and the error is logged; nothing is written.
func TestFailedOrderFallsBack(t *testing.T) {
	var log testenv.LogBuffer
	fallback := &tls.Certificate{}
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	url := "https://" + dead.Addr().String() + "/dir"
	dead.Close()
	data := t.TempDir()
	m, err := New(Options{
		Domains: []string{"ftp.example.com"}, DirectoryURL: url, DataDir: data,
		Challenges: []string{HTTP01}, RetryAfter: time.Hour,
		Fallback: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return fallback, nil },
		Logger:   slog.New(slog.NewTextHandler(&log, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := m.GetCertificate(&tls.ClientHelloInfo{ServerName: "ftp.example.com"}); c != fallback {
		t.Error("no fallback before the first certificate")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	for !strings.Contains(log.String(), "ACME order failed; retrying") {
		select {
		case <-done:
			t.Fatal("Run returned")
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	<-done
	if _, err := os.Stat(filepath.Join(data, CertFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed order wrote a certificate: %v", err)
	}
	// A TLS-ALPN-01 hello without a pending challenge is refused.
	if _, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: "ftp.example.com", SupportedProtos: []string{"acme-tls/1"}}); err == nil {
		t.Error("a challenge certificate with no challenge pending")
	}
}

func TestNewErrors(t *testing.T) {
	for _, o := range []Options{
		{DirectoryURL: "https://ca/dir", DataDir: "x", Challenges: []string{HTTP01}},
		{Domains: []string{"a.example"}, DataDir: "x", Challenges: []string{HTTP01}},
		{Domains: []string{"a.example"}, DirectoryURL: "https://ca/dir", DataDir: "x"},
		{Domains: []string{"a.example"}, DirectoryURL: "https://ca/dir", DataDir: "x", Challenges: []string{"dns-01"}},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

func waitCh(t *testing.T, ch <-chan struct{}, what string, log *testenv.LogBuffer) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(deadline):
		t.Fatalf("no %s within %v; log:\n%s", what, deadline, log.String())
	}
}

var _ = strconv.Itoa

package ftp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/users"
)

// Get makes the in-memory store a lookup too, as certificate logins need.
func (a *memAuth) Get(_ context.Context, name string) (*users.User, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	m, ok := a.users[name]
	if !ok {
		return nil, users.ErrNotFound
	}
	u := m.u
	return &u, nil
}

// testCA issues client certificates for the client-certificate tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Ferry test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue makes a client certificate for the common name cn.
func (ca *testCA) issue(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func setUser(ts *testServer, name string, f func(u *users.User)) {
	ts.auth.mu.Lock()
	defer ts.auth.mu.Unlock()
	m := ts.auth.users[name]
	f(&m.u)
	ts.auth.users[name] = m
}

func TestTLSClientCertificates(t *testing.T) {
	f := newFTPSFixture(t)
	ca := newTestCA(t)
	ts := startFTPS(t, f, func(cfg *Site, _ *Server) {
		cfg.TLS.ClientCAs = ca.pool
		cfg.TLS.ClientAuth = tls.VerifyClientCertIfGiven
	})
	setUser(ts, "alice", func(u *users.User) { u.CertRequired = true })
	setUser(ts, "bob", func(u *users.User) { u.CertLogin = true })
	withCert := func(cn string) *tls.Config {
		c := f.client(0, nil)
		cert := ca.issue(t, cn)
		c.Certificates = []tls.Certificate{cert}
		return c
	}

	// Certificate required: the password alone is not enough.
	c := dialFTPS(t, ts.addr, f.client(0, nil))
	c.cmd("USER alice", 331)
	c.cmd("PASS secret", 530)
	// A certificate for someone else does not do either.
	c = dialFTPS(t, ts.addr, withCert("mallory"))
	c.cmd("USER alice", 331)
	c.cmd("PASS secret", 530)
	// Password and a certificate naming alice.
	c = dialFTPS(t, ts.addr, withCert("alice"))
	c.login("alice", "secret")
	c.cmd("PWD", 257)
	if !strings.Contains(ts.logText(), "user requires a client certificate") {
		t.Error("the refusal reason was not logged")
	}

	// Certificate login: USER alone logs bob in (RFC 2228 232).
	c = dialFTPS(t, ts.addr, withCert("bob"))
	c.cmd("USER bob", 232)
	c.cmd("PWD", 257)
	// Without the certificate bob needs his password as usual.
	c = dialFTPS(t, ts.addr, f.client(0, nil))
	c.cmd("USER bob", 331)
	c.cmd("PASS hunter2", 230)
	// A certificate naming bob does not log in alice, who lacks cert-login.
	c = dialFTPS(t, ts.addr, withCert("alice"))
	c.cmd("USER alice", 331)

	// A certificate from an unknown CA fails the handshake.
	other := newTestCA(t)
	cfg := f.client(0, nil)
	cfg.Certificates = []tls.Certificate{other.issue(t, "bob")}
	raw := dial(t, ts.addr)
	raw.cmd("AUTH TLS", 234)
	if err := raw.startTLSFTPS(cfg); err == nil {
		// TLS 1.3 reports the client certificate's rejection on the
		// first read, not in Handshake.
		raw.send("USER bob")
		raw.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := raw.r.ReadString('\n'); err == nil {
			t.Error("a certificate from an unknown CA was accepted")
		}
	}
}

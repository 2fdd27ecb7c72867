package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestReloadTLS: a reload that names a new certificate and raises
// tls_min_version applies both to new sessions (the new certificate, a
// TLS 1.2 client refused), while a session protected before the reload goes
// on with the certificate it negotiated.
func TestReloadTLS(t *testing.T) {
	s := startServer(t, serverConfig{ConfigFile: true})
	s.addUser(t, testUser, testPass)
	old, oldCert := authTLS(t, s.Addr, tls.VersionTLS12)
	login(t, old)

	dir := t.TempDir()
	certFile, keyFile, want := writeCert(t, dir)
	src := fmt.Sprintf("tls_cert = %q\ntls_key = %q\ntls_min_version = \"1.3\"\n", certFile, keyFile)
	appendConfig(t, s, src)
	if r := s.ferry(t, "", "reload", "--data", s.Data); r.Code != 0 {
		t.Fatalf("reload: %s", r)
	}
	c, got := authTLS(t, s.Addr, tls.VersionTLS13)
	if got != want {
		t.Fatalf("new session's certificate %x, want the reloaded one %x", got, want)
	}
	login(t, c)
	if got == oldCert {
		t.Fatal("the certificate did not change")
	}
	// A client that stops at TLS 1.2 is refused now.
	nc, err := net.DialTimeout("tcp", s.Addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(time.Minute))
	tc := textproto.NewConn(nc)
	expectCode(t, tc, 220)
	tc.PrintfLine("AUTH TLS")
	expectCode(t, tc, 234)
	if err := tls.Client(nc, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12}).Handshake(); err == nil {
		t.Fatal("a TLS 1.2 handshake succeeded after tls_min_version = 1.3")
	}
	// The session protected before the reload goes on.
	old.PrintfLine("PWD")
	expectCode(t, old.Conn, 257)
}

// authTLS connects, upgrades with AUTH TLS at most maxVersion and returns the
// protected connection and the SHA-256 of the server's certificate.
func authTLS(t *testing.T, addr string, maxVersion uint16) (*ftpConn, [32]byte) {
	t.Helper()
	c, _ := dialFTP(t, addr)
	c.PrintfLine("AUTH TLS")
	expectCode(t, c.Conn, 234)
	tc := tls.Client(c.nc, &tls.Config{InsecureSkipVerify: true, MaxVersion: maxVersion, ClientSessionCache: tls.NewLRUClientSessionCache(4)})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(tc.ConnectionState().PeerCertificates[0].Raw)
	return &ftpConn{textproto.NewConn(tc), c.nc}, sum
}

// writeCert writes a new self-signed certificate and its key to dir and
// returns their paths and the certificate's SHA-256.
func writeCert(t *testing.T, dir string) (string, string, [32]byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "reloaded.example"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), DNSNames: []string{"reloaded.example"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeFile(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	writeFile(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}))
	return certFile, keyFile, sha256.Sum256(der)
}

// appendConfig adds lines to the server's settings file.
func appendConfig(t *testing.T, s *server, extra string) {
	t.Helper()
	b, err := os.ReadFile(s.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, s.ConfigPath, append(b, extra...))
}

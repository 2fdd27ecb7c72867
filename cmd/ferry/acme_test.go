package main

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ferryftp/ferry/internal/acme"
	"github.com/ferryftp/ferry/internal/certs"
	"github.com/ferryftp/ferry/internal/config"
	"github.com/ferryftp/ferry/internal/testenv/pebbleenv"
	"github.com/ferryftp/ferry/internal/testenv/pgenv"
)

// TestServeACME: ferry serve with acme_domains gets its certificate from a
// real ACME CA (Pebble on loopback, validating HTTP-01 on Ferry's challenge
// listener) before it starts, serves it on FTPS, keeps it in DATA/acme, and
// ferry cert show prints it.
func TestServeACME(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpAddr := l.Addr().String()
	l.Close() // Ferry binds it; Pebble is told the port first
	p := pebbleenv.Start(t, pebbleenv.Options{HTTPPort: l.Addr().(*net.TCPAddr).Port, TLSPort: 1})
	caFile := filepath.Join(t.TempDir(), "pebble-listener-ca.pem")
	if err := os.WriteFile(caFile, p.ListenerCA, 0o600); err != nil {
		t.Fatal(err)
	}
	s := startLive(t, func(c *config.Config) {
		c.ACMEDomains = []string{"localhost"}
		c.ACMEEmail = "ops@example.com"
		c.ACMECA = p.Directory
		c.ACMECARoot = caFile
		c.ACMEHTTPListen = httpAddr
	})
	f, code, _, err := dialFTP(s.addr, testDeadline)
	if err != nil || code != 220 {
		t.Fatal(code, err)
	}
	defer f.Close()
	mustCmd(t, f, 234, "AUTH TLS")
	cs, err := f.startTLS(&tls.Config{RootCAs: p.Roots, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("FTPS handshake against pebble's root: %v\n%s", err, s.log.String())
	}
	leaf := cs.PeerCertificates[0]
	if leaf.Issuer.CommonName == "" || !strings.HasPrefix(leaf.Issuer.CommonName, "Pebble Intermediate") {
		t.Errorf("issuer %q", leaf.Issuer)
	}
	mustCmd(t, f, 331, "USER anonymous")
	mustCmd(t, f, 230, "PASS x@example.com")

	code, out, errs := certCLI("show", "--data", s.data)
	if code != 0 {
		t.Fatalf("cert show: %d %s", code, errs)
	}
	fp := certs.Describe(leaf).Fingerprint
	for _, want := range []string{"(acme)", "SHA-256:     " + fp, "Names:       localhost", "Pebble Intermediate"} {
		if !strings.Contains(out, want) {
			t.Errorf("cert show lacks %q:\n%s", want, out)
		}
	}
	for _, name := range []string{acme.AccountFile, acme.CertFile, acme.KeyFile} {
		fi, err := os.Stat(filepath.Join(s.data, name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", name, fi, err)
		}
	}
	if !strings.Contains(s.log.String(), "ACME certificate obtained") {
		t.Errorf("log:\n%s", s.log.String())
	}
}

// TestReloadRefusesACMEChange: the acme_ settings apply at start only.
func TestReloadRefusesACMEChange(t *testing.T) {
	old := config.Defaults()
	old.ACMEDomains = []string{"ftp.example.com"}
	if err := restartOnly(old, old); err != nil {
		t.Fatalf("unchanged: %v", err)
	}
	for _, mod := range []func(*config.Config){
		func(c *config.Config) { c.ACMEDomains = []string{"ftp2.example.com"} },
		func(c *config.Config) { c.ACMEChallenges = []string{"tls-alpn-01"} },
		func(c *config.Config) { c.ACMEHTTPListen = ":8080" },
		func(c *config.Config) { c.ACMERenewBefore.Duration = 1 },
	} {
		cur := old
		cur.ACMEDomains = append([]string(nil), old.ACMEDomains...)
		mod(&cur)
		if err := restartOnly(old, cur); err == nil || !strings.Contains(err.Error(), "acme_*") {
			t.Errorf("a changed ACME setting reloaded: %v", err)
		}
	}
}

// TestServeACMEPostgresShared: two ferry serve on one PostgreSQL database
// share the ACME account and certificate: the first orders (kept in the
// database, not in its data directory), the second starts with that
// certificate and no order of its own, and both serve it on FTPS.
func TestServeACMEPostgresShared(t *testing.T) {
	url := pgenv.DB(t)
	freeAddr := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	httpB, httpA := freeAddr(), freeAddr()
	_, portB, _ := net.SplitHostPort(httpB)
	pb, _ := strconv.Atoi(portB)
	p := pebbleenv.Start(t, pebbleenv.Options{HTTPPort: pb, TLSPort: 1})
	caFile := filepath.Join(t.TempDir(), "pebble-listener-ca.pem")
	if err := os.WriteFile(caFile, p.ListenerCA, 0o600); err != nil {
		t.Fatal(err)
	}
	node := func(httpAddr string) *liveServer {
		return startLive(t, func(c *config.Config) {
			c.Database.URL = url
			c.ACMEDomains = []string{"localhost"}
			c.ACMECA = p.Directory
			c.ACMECARoot = caFile
			c.ACMEHTTPListen = httpAddr
		})
	}
	b := node(httpB)
	a := node(httpA)
	leaf := func(s *liveServer) *x509.Certificate {
		f, code, _, err := dialFTP(s.addr, testDeadline)
		if err != nil || code != 220 {
			t.Fatal(code, err)
		}
		defer f.Close()
		mustCmd(t, f, 234, "AUTH TLS")
		cs, err := f.startTLS(&tls.Config{RootCAs: p.Roots, ServerName: "localhost"})
		if err != nil {
			t.Fatalf("FTPS handshake against pebble's root: %v\n%s", err, s.log.String())
		}
		return cs.PeerCertificates[0]
	}
	la, lb := leaf(a), leaf(b)
	if !la.Equal(lb) {
		t.Errorf("the two servers serve serials %s and %s", la.SerialNumber, lb.SerialNumber)
	}
	// ferry cert show reads the shared certificate from the database.
	code, out, errs := certCLI("show", "--data", a.data, "--database", url)
	if code != 0 || !strings.Contains(out, "(acme, shared)") || !strings.Contains(out, "SHA-256:     "+certs.Describe(la).Fingerprint) {
		t.Errorf("cert show --database: %d %s %s", code, out, errs)
	}
	t.Setenv(config.DatabaseEnv, url)
	if code, out, _ := certCLI("show", "--data", a.data); code != 0 || !strings.Contains(out, "(acme, shared)") {
		t.Errorf("cert show with FERRY_DATABASE: %d %s", code, out)
	}
	// Without the database it falls back to the data directory's
	// self-signed certificate; an unreachable one is an error.
	if code, out, _ := certCLI("show", "--data", a.data, "--database", "sqlite:ferry.db"); code != 0 || !strings.Contains(out, "(self-signed)") {
		t.Errorf("cert show on SQLite: %d %s", code, out)
	}
	if code, _, errs := certCLI("show", "--data", a.data, "--database", "postgres://ferry@127.0.0.1:1/none?connect_timeout=2"); code != 1 || !strings.Contains(errs, "unreachable") {
		t.Errorf("cert show with an unreachable database: %d %s", code, errs)
	}
	if !strings.Contains(b.log.String(), "ACME certificate obtained") {
		t.Errorf("B's log:\n%s", b.log.String())
	}
	if strings.Contains(a.log.String(), "ACME certificate obtained") || !strings.Contains(a.log.String(), "ACME certificate loaded") {
		t.Errorf("A ordered, or did not load B's certificate:\n%s", a.log.String())
	}
	for _, s := range []*liveServer{a, b} {
		for _, name := range []string{acme.AccountFile, acme.CertFile, acme.KeyFile} {
			if _, err := os.Stat(filepath.Join(s.data, name)); err == nil {
				t.Errorf("%s written on PostgreSQL", name)
			}
		}
	}
}

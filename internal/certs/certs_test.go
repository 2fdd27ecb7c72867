package certs

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

// pair is an operator-style certificate: a leaf signed by its own test CA.
type pair struct {
	certPEM, keyPEM []byte
	leaf            *x509.Certificate
	ca              *x509.Certificate
}

// keyFormat names the PEM encodings New must accept.
type keyFormat int

const (
	ecPKCS8 keyFormat = iota
	ecSEC1
	rsaPKCS1
	rsaPKCS8
)

// issue makes a CA and a leaf for localhost valid until notAfter; the
// certificate PEM holds the leaf and then the CA (a full chain).
func issue(t *testing.T, format keyFormat, notAfter time.Time) pair {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              notAfter.Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)

	var (
		pub    crypto.PublicKey
		keyDER []byte
		keyTyp string
	)
	switch format {
	case ecPKCS8, ecSEC1:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		pub = &k.PublicKey
		if format == ecSEC1 {
			keyDER, _ = x509.MarshalECPrivateKey(k)
			keyTyp = "EC PRIVATE KEY"
		} else {
			keyDER, _ = x509.MarshalPKCS8PrivateKey(k)
			keyTyp = "PRIVATE KEY"
		}
	case rsaPKCS1, rsaPKCS8:
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		pub = &k.PublicKey
		if format == rsaPKCS1 {
			keyDER = x509.MarshalPKCS1PrivateKey(k)
			keyTyp = "RSA PRIVATE KEY"
		} else {
			keyDER, _ = x509.MarshalPKCS8PrivateKey(k)
			keyTyp = "PRIVATE KEY"
		}
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, pub, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(leafDER)
	certPEM := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})...)
	return pair{
		certPEM: certPEM,
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: keyTyp, Bytes: keyDER}),
		leaf:    leaf,
		ca:      ca,
	}
}

// fp is the fingerprint the Manager should report for p.
func (p pair) fp() string { return FingerprintOf(p.leaf.Raw) }

// write installs p at the given paths and moves their modification time
// forward, so a poller notices the change even on coarse-grained file systems
// and when the new files happen to have the old sizes.
func (p pair) write(t *testing.T, certFile, keyFile string) {
	t.Helper()
	for _, f := range []struct {
		name string
		data []byte
	}{{keyFile, p.keyPEM}, {certFile, p.certPEM}} {
		var mod time.Time
		if fi, err := os.Stat(f.name); err == nil {
			mod = fi.ModTime()
		}
		if err := os.WriteFile(f.name, f.data, 0o600); err != nil {
			t.Fatal(err)
		}
		if !mod.IsZero() {
			next := mod.Add(2 * time.Second)
			if err := os.Chtimes(f.name, next, next); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// operator sets up an operator-provided pair in a temporary directory.
func operator(t *testing.T, p pair) (Options, string, string) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	p.write(t, certFile, keyFile)
	return Options{CertFile: certFile, KeyFile: keyFile, Logger: testLogger(t)}, certFile, keyFile
}

// waitFor polls cond until it holds or a generous deadline passes; the
// deadline only bounds a failing test, it asserts nothing about speed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestGenerate(t *testing.T) {
	data := t.TempDir()
	m, err := New(Options{DataDir: data, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if !m.Generated() {
		t.Error("Generated() = false for the self-signed certificate")
	}

	tlsDir := filepath.Join(data, "tls")
	for name, want := range map[string]fs.FileMode{
		tlsDir:                            0o700 | fs.ModeDir,
		filepath.Join(tlsDir, "key.pem"):  0o600,
		filepath.Join(tlsDir, "cert.pem"): 0o644,
	} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode(), want)
		}
	}
	if tmp, _ := filepath.Glob(filepath.Join(tlsDir, ".tmp-*")); len(tmp) > 0 {
		t.Errorf("temporary files left behind: %v", tmp)
	}

	leaf := readLeaf(filepath.Join(tlsDir, "cert.pem"))
	if leaf == nil {
		t.Fatal("cert.pem does not parse")
	}
	if _, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("key type %T, want ECDSA", leaf.PublicKey)
	}
	wantDNS := []string{"localhost"}
	if h, err := os.Hostname(); err == nil && h != "localhost" && net.ParseIP(h) == nil {
		wantDNS = append(wantDNS, h)
	}
	for _, name := range wantDNS {
		if err := leaf.VerifyHostname(name); err != nil {
			t.Errorf("certificate not valid for %q: %v", name, err)
		}
	}
	for _, ip := range []string{"127.0.0.1", "::1"} {
		if err := leaf.VerifyHostname(ip); err != nil {
			t.Errorf("certificate not valid for %s: %v", ip, err)
		}
	}
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life < 364*24*time.Hour || life > 367*24*time.Hour {
		t.Errorf("validity %v, want about a year", life)
	}

	sum := sha256.Sum256(leaf.Raw)
	want := strings.ToUpper(hex.EncodeToString(sum[:]))
	got := m.Fingerprint()
	if !regexp.MustCompile(`^([0-9A-F]{2}:){31}[0-9A-F]{2}$`).MatchString(got) ||
		strings.ReplaceAll(got, ":", "") != want {
		t.Errorf("Fingerprint() = %q, want %s in colon form", got, want)
	}

	// A second server start reuses the pair.
	m2, err := New(Options{DataDir: data, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if m2.Fingerprint() != got {
		t.Errorf("second New generated a new certificate: %s, was %s", m2.Fingerprint(), got)
	}
}

func TestSelfSignedRenewal(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after time.Duration // time since generation
		renew bool
	}{
		{"fresh", 0, false},
		{"eleven months", 330 * 24 * time.Hour, false},
		{"within 30 days", 340 * 24 * time.Hour, true},
		{"expired", 400 * 24 * time.Hour, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := t.TempDir()
			start := time.Now()
			m, err := newManager(Options{DataDir: data, Logger: testLogger(t)}, func() time.Time { return start })
			if err != nil {
				t.Fatal(err)
			}
			later := start.Add(tc.after)
			var logged strings.Builder
			m2, err := newManager(Options{DataDir: data, Logger: slog.New(slog.NewTextHandler(&logged, nil))}, func() time.Time { return later })
			if err != nil {
				t.Fatal(err)
			}
			if renewed := m2.Fingerprint() != m.Fingerprint(); renewed != tc.renew {
				t.Errorf("renewed = %v, want %v", renewed, tc.renew)
			}
			// A renewal keeps the key, and the log says so.
			oldLeaf, newLeaf := m.cur.Load().cert.Leaf, m2.cur.Load().cert.Leaf
			if !bytes.Equal(oldLeaf.RawSubjectPublicKeyInfo, newLeaf.RawSubjectPublicKeyInfo) {
				t.Errorf("the renewed certificate has a new key")
			}
			if said := strings.Contains(logged.String(), "keeps its key"); said != tc.renew {
				t.Errorf("log says the key was kept: %v, want %v; log:\n%s", said, tc.renew, logged.String())
			}
			if leaf := m2.cur.Load().cert.Leaf; !leaf.NotAfter.After(later.Add(renewBefore)) {
				t.Errorf("certificate in use expires %v, too soon after %v", leaf.NotAfter, later)
			}
		})
	}
}

// TestWatchRenews covers a server that runs past the renewal point without
// restarting: the poll loop notices and renews.
func TestWatchRenews(t *testing.T) {
	data := t.TempDir()
	var clock atomicTime
	clock.Store(time.Now())
	m, err := newManager(Options{DataDir: data, Logger: testLogger(t)}, clock.Load)
	if err != nil {
		t.Fatal(err)
	}
	old := m.Fingerprint()
	stop := watch(t, m, time.Millisecond, nil)
	defer stop()
	clock.Store(clock.Load().Add(340 * 24 * time.Hour))
	waitFor(t, "renewal", func() bool { return m.Fingerprint() != old })
	if !m.Generated() {
		t.Error("renewed certificate is not marked as Ferry's")
	}
}

// atomicTime is a settable clock safe to read from the Watch goroutine.
type atomicTime struct{ ns atomic.Int64 }

func (a *atomicTime) Load() time.Time   { return time.Unix(0, a.ns.Load()) }
func (a *atomicTime) Store(t time.Time) { a.ns.Store(t.UnixNano()) }

func TestOperatorCertAtDefaultPathKept(t *testing.T) {
	data := t.TempDir()
	dir := filepath.Join(data, "tls")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// About to expire: Ferry must warn, never overwrite someone else's file.
	p := issue(t, ecPKCS8, time.Now().Add(10*24*time.Hour))
	p.write(t, filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	m, err := New(Options{DataDir: data, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if m.Generated() || m.Fingerprint() != p.fp() {
		t.Errorf("operator's certificate replaced: generated=%v fingerprint=%s", m.Generated(), m.Fingerprint())
	}

	// An operator's pair that does not load is reported, not replaced.
	other := issue(t, ecPKCS8, time.Now().Add(time.Hour))
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), other.keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{DataDir: data, Logger: testLogger(t)}); err == nil {
		t.Error("New accepted a key that does not match the certificate")
	}
}

// TestGeneratedPairRepaired covers a crash between writing the new key and
// the new certificate: the pair is Ferry's own, so Ferry regenerates it.
func TestGeneratedPairRepaired(t *testing.T) {
	data := t.TempDir()
	m, err := New(Options{DataDir: data, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	other := issue(t, ecPKCS8, time.Now().Add(time.Hour))
	if err := os.WriteFile(filepath.Join(data, "tls", "key.pem"), other.keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	m2, err := New(Options{DataDir: data, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if !m2.Generated() || m2.Fingerprint() == m.Fingerprint() {
		t.Errorf("mismatched self-signed pair not regenerated")
	}
}

func TestKeyFormatsAndChain(t *testing.T) {
	for _, tc := range []struct {
		name   string
		format keyFormat
	}{
		{"EC PKCS#8", ecPKCS8},
		{"EC SEC 1", ecSEC1},
		{"RSA PKCS#1", rsaPKCS1},
		{"RSA PKCS#8", rsaPKCS8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := issue(t, tc.format, time.Now().Add(90*24*time.Hour))
			o, _, _ := operator(t, p)
			m, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			c, _ := m.GetCertificate(nil)
			if len(c.Certificate) != 2 {
				t.Errorf("served %d certificates, want the leaf and its CA", len(c.Certificate))
			}
			if m.Fingerprint() != p.fp() || m.Generated() {
				t.Errorf("fingerprint %s generated=%v, want %s and false", m.Fingerprint(), m.Generated(), p.fp())
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	p := issue(t, ecPKCS8, time.Now().Add(time.Hour))
	q := issue(t, ecPKCS8, time.Now().Add(time.Hour))
	o, certFile, keyFile := operator(t, p)
	mismatched := filepath.Join(t.TempDir(), "other.key")
	if err := os.WriteFile(mismatched, q.keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"cert without key", Options{CertFile: certFile}},
		{"key without cert", Options{KeyFile: keyFile}},
		{"nothing at all", Options{}},
		{"missing file", Options{CertFile: certFile + ".nope", KeyFile: keyFile}},
		{"key does not match", Options{CertFile: certFile, KeyFile: mismatched}},
		{"key as certificate", Options{CertFile: keyFile, KeyFile: keyFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Logger = o.Logger
			if _, err := New(tc.o); err == nil {
				t.Error("New succeeded")
			}
		})
	}
}

func TestReload(t *testing.T) {
	a := issue(t, ecPKCS8, time.Now().Add(90*24*time.Hour))
	b := issue(t, rsaPKCS1, time.Now().Add(90*24*time.Hour))
	o, certFile, keyFile := operator(t, a)
	m, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if m.Fingerprint() != a.fp() {
		t.Fatalf("fingerprint %s, want %s", m.Fingerprint(), a.fp())
	}

	b.write(t, certFile, keyFile)
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	c, _ := m.GetCertificate(nil)
	if m.Fingerprint() != b.fp() || !c.Leaf.Equal(b.leaf) {
		t.Fatalf("after reload: fingerprint %s, want %s", m.Fingerprint(), b.fp())
	}

	for _, tc := range []struct {
		name string
		cert []byte
		key  []byte
	}{
		{"garbage certificate", []byte("not a certificate"), b.keyPEM},
		{"truncated certificate", b.certPEM[:len(b.certPEM)/3], b.keyPEM},
		{"mismatched key", b.certPEM, a.keyPEM},
		{"empty key", b.certPEM, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pair{certPEM: tc.cert, keyPEM: tc.key}.write(t, certFile, keyFile)
			if err := m.Reload(); err == nil {
				t.Error("Reload succeeded")
			}
			if got, _ := m.GetCertificate(nil); m.Fingerprint() != b.fp() || got != c {
				t.Errorf("a failed reload replaced the certificate")
			}
		})
	}
	if err := os.Remove(certFile); err != nil {
		t.Fatal(err)
	}
	if err := m.Reload(); err == nil || m.Fingerprint() != b.fp() {
		t.Errorf("reload of a missing file: err=%v fingerprint changed=%v", err, m.Fingerprint() != b.fp())
	}
}

// watch runs m.Watch until the returned function is called, which waits for
// Watch to return.
func watch(t *testing.T, m *Manager, interval time.Duration, hup <-chan os.Signal) (stop func()) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Watch(ctx, interval, hup)
	}()
	return func() {
		cancel()
		<-done
	}
}

func TestWatchPolls(t *testing.T) {
	a := issue(t, ecPKCS8, time.Now().Add(90*24*time.Hour))
	b := issue(t, ecPKCS8, time.Now().Add(90*24*time.Hour))
	c := issue(t, ecPKCS8, time.Now().Add(90*24*time.Hour))
	o, certFile, keyFile := operator(t, a)
	m, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	stop := watch(t, m, time.Millisecond, nil)
	defer stop()

	b.write(t, certFile, keyFile)
	waitFor(t, "the new certificate", func() bool { return m.Fingerprint() == b.fp() })

	// A broken pair is skipped; fixing it is picked up.
	pair{certPEM: []byte("junk"), keyPEM: b.keyPEM}.write(t, certFile, keyFile)
	c.write(t, certFile, keyFile)
	waitFor(t, "the repaired certificate", func() bool { return m.Fingerprint() == c.fp() })
}

func TestWatchHUP(t *testing.T) {
	a := issue(t, ecPKCS8, time.Now().Add(90*24*time.Hour))
	b := issue(t, ecPKCS8, time.Now().Add(90*24*time.Hour))
	o, certFile, keyFile := operator(t, a)
	m, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	hup := make(chan os.Signal)
	stop := watch(t, m, 0, hup) // no polling: only the signal reloads
	defer stop()

	b.write(t, certFile, keyFile)
	hup <- os.Interrupt // unbuffered: Watch has received it once this returns
	waitFor(t, "the reload", func() bool { return m.Fingerprint() == b.fp() })
}

func TestWatchStops(t *testing.T) {
	o, _, _ := operator(t, issue(t, ecPKCS8, time.Now().Add(time.Hour)))
	m, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		m.Watch(ctx, time.Hour, nil)
		close(done)
	}()
	cancel()
	<-done // the test times out if Watch ignores ctx
}

// TestHandshakeAcrossReload checks what operators rely on: after a reload
// new connections get the new certificate, and a connection made before it
// carries on undisturbed.
func TestHandshakeAcrossReload(t *testing.T) {
	a := issue(t, ecPKCS8, time.Now().Add(90*24*time.Hour))
	b := issue(t, rsaPKCS8, time.Now().Add(90*24*time.Hour))
	o, certFile, keyFile := operator(t, a)
	m, err := New(o)
	if err != nil {
		t.Fatal(err)
	}

	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: m.GetCertificate})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { // echo lines until the client hangs up
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()

	dial := func(p pair) *tls.Conn {
		t.Helper()
		roots := x509.NewCertPool()
		roots.AddCert(p.ca)
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "localhost"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if got := c.ConnectionState().PeerCertificates; len(got) != 2 || !got[0].Equal(p.leaf) {
			t.Fatalf("server presented %d certificates, leaf %v; want %v and its CA", len(got), got[0].Subject, p.leaf.Subject)
		}
		return c
	}
	echo := func(c *tls.Conn, msg string) {
		t.Helper()
		if _, err := c.Write([]byte(msg + "\n")); err != nil {
			t.Fatal(err)
		}
		got, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || got != msg+"\n" {
			t.Fatalf("echo: %q, %v", got, err)
		}
	}

	before := dial(a)
	echo(before, "one")

	b.write(t, certFile, keyFile)
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}

	after := dial(b)
	echo(after, "two")
	echo(before, "three")
	if !slices.Equal(before.ConnectionState().PeerCertificates[0].Raw, a.leaf.Raw) {
		t.Error("established connection's certificate changed")
	}
}

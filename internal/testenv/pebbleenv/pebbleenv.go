// Package pebbleenv starts Pebble, Let's Encrypt's ACME test server, on
// loopback for Ferry's ACME tests: a real RFC 8555 CA that validates the
// challenges by connecting to the ports the test names. Only tests import it.
package pebbleenv

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/testenv"
)

// Version is the Pebble that .ci/run installs.
const Version = "v2.10.3"

// Binary finds pebble: $FERRY_TOOLS/pebble, then
// $HOME/.cache/ferry-tools/pebble, then PATH.
func Binary() (string, error) {
	var cands []string
	if d := os.Getenv("FERRY_TOOLS"); d != "" {
		cands = append(cands, filepath.Join(d, "pebble"))
	}
	if h, err := os.UserHomeDir(); err == nil {
		cands = append(cands, filepath.Join(h, ".cache", "ferry-tools", "pebble"))
	}
	for _, c := range cands {
		if fi, err := os.Stat(c); err == nil && !fi.IsDir() {
			return c, nil
		}
	}
	if p, err := exec.LookPath("pebble"); err == nil {
		return p, nil
	}
	return "", errors.New("pebble not found in $FERRY_TOOLS, ~/.cache/ferry-tools or PATH " +
		"(install: GOBIN=~/.cache/ferry-tools go install github.com/letsencrypt/pebble/v2/cmd/pebble@" + Version + ")")
}

// Options says which ports Pebble's validation connects to.
type Options struct {
	// HTTPPort and TLSPort are where HTTP-01 and TLS-ALPN-01 challenges
	// are checked, on the identifier's address (localhost resolves to
	// loopback).
	HTTPPort, TLSPort int
	// Validity is the lifetime of the certificates issued; 0 means an hour.
	Validity time.Duration
}

// Pebble is a running Pebble.
type Pebble struct {
	// Directory is the ACME directory URL.
	Directory string
	// Client talks to the ACME server (it trusts the test CA that signs
	// Pebble's own HTTPS certificate).
	Client *http.Client
	// ListenerCA is the PEM of that test CA.
	ListenerCA []byte
	// Roots trusts the certificates Pebble issues (its root, fetched
	// from the management interface).
	Roots *x509.CertPool
	// RootPEM is that root.
	RootPEM []byte
	Log     func() string
}

// Start runs Pebble until the test ends. Without the binary, the test
// fails under CI and is skipped otherwise.
func Start(t testing.TB, o Options) *Pebble {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		if testenv.InCI() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	if o.Validity <= 0 {
		o.Validity = time.Hour
	}
	dir := t.TempDir()
	caPEM, certFile, keyFile := listenerCert(t, dir)
	acmePort, mgmtPort := freePort(t), freePort(t)
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":                  fmt.Sprintf("127.0.0.1:%d", acmePort),
		"managementListenAddress":        fmt.Sprintf("127.0.0.1:%d", mgmtPort),
		"certificate":                    certFile,
		"privateKey":                     keyFile,
		"httpPort":                       o.HTTPPort,
		"tlsPort":                        o.TLSPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm":                   "ecdsa",
		"profiles": map[string]any{"default": map[string]any{
			"description": "Ferry tests", "validityPeriod": int(o.Validity / time.Second)}},
	}}
	b, _ := json.Marshal(cfg)
	cfgFile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-config", cfgFile)
	// Validation is real (no PEBBLE_VA_ALWAYS_VALID); only the random
	// delays and rejected nonces are turned off.
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatalf("start pebble: %v", err)
	}
	logc := make(chan string, 1)
	ready := make(chan struct{})
	go func() {
		var all strings.Builder
		sc := bufio.NewScanner(pr)
		once := false
		for sc.Scan() {
			all.WriteString(sc.Text() + "\n")
			if !once && strings.Contains(sc.Text(), "ACME directory available at") {
				once = true
				close(ready)
			}
		}
		logc <- all.String()
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); pw.Close() }()
	p := &Pebble{ListenerCA: caPEM}
	var logText string
	p.Log = func() string { return logText }
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		logText = <-logc
		if t.Failed() {
			t.Logf("pebble log:\n%s", logText)
		}
	})
	select {
	case <-ready:
	case err := <-exited:
		t.Fatalf("pebble exited at start: %v\n%s", err, <-logc)
	case <-time.After(30 * time.Second):
		t.Fatal("pebble did not start")
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	p.Client = &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	p.Directory = fmt.Sprintf("https://127.0.0.1:%d/dir", acmePort)
	// The management listener starts beside the ACME one: retry briefly.
	var resp *http.Response
	for try := 0; ; try++ {
		resp, err = p.Client.Get(fmt.Sprintf("https://127.0.0.1:%d/roots/0", mgmtPort))
		if err == nil {
			break
		}
		if try == 100 {
			t.Fatalf("pebble root: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer resp.Body.Close()
	p.RootPEM, _ = io.ReadAll(resp.Body)
	p.Roots = x509.NewCertPool()
	if resp.StatusCode != 200 || !p.Roots.AppendCertsFromPEM(p.RootPEM) {
		t.Fatalf("pebble root: %s %q", resp.Status, p.RootPEM)
	}
	return p
}

// freePort returns a loopback port free right now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// listenerCert makes a CA and, signed by it, the certificate of Pebble's
// own HTTPS listeners (127.0.0.1, localhost); it returns the CA's PEM and
// the files of the pair.
func listenerCert(t testing.TB, dir string) ([]byte, string, string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Ferry test CA for pebble"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), certFile, keyFile
}

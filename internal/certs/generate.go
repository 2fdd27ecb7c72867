package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/ferryftp/ferry/internal/atomicfile"
)

// validity is the lifetime of a generated certificate. It is short enough
// that renewal is exercised routinely, and Ferry renews 30 days before the end.
const validity = 365 * 24 * time.Hour

// markerOU tags certificates Ferry generated, so Ferry only ever renews (and
// overwrites) its own certificate, never one an operator put in its place.
const markerOU = "Ferry self-signed"

// isGenerated reports whether leaf is a certificate Ferry generated.
func isGenerated(leaf *x509.Certificate) bool {
	return bytes.Equal(leaf.RawIssuer, leaf.RawSubject) &&
		slices.Equal(leaf.Subject.Organization, []string{"Ferry"}) &&
		slices.Contains(leaf.Subject.OrganizationalUnit, markerOU)
}

// generate writes a new self-signed ECDSA P-256 certificate, valid from now
// for validity, for localhost, 127.0.0.1, ::1 and this host's name, with a
// new key. The key file is 0600 and the directory 0700. Each file is written
// to a temporary name and renamed, so a crash never leaves a truncated file
// behind.
func generate(certFile, keyFile string, now time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("certs: generating key: %w", err)
	}
	return generateWith(certFile, keyFile, key, true, now)
}

// renewWithKey writes a new self-signed certificate for the key already in
// keyFile, which stays as it is: clients that pinned the public key (or an
// SSH-style "trust this key" prompt) keep trusting the server. It fails when
// keyFile holds no ECDSA key, and generate is the caller's fallback then.
func renewWithKey(certFile, keyFile string, now time.Time) error {
	b, err := os.ReadFile(keyFile)
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return fmt.Errorf("certs: %s: no PEM key", keyFile)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return fmt.Errorf("certs: %s: %w", keyFile, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return fmt.Errorf("certs: %s: not an ECDSA key", keyFile)
	}
	return generateWith(certFile, keyFile, key, false, now)
}

// generateWith writes a self-signed certificate for key, and the key itself
// when writeKey is set.
func generateWith(certFile, keyFile string, key *ecdsa.PrivateKey, writeKey bool, now time.Time) error {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return fmt.Errorf("certs: generating serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:         "localhost",
			Organization:       []string{"Ferry"},
			OrganizationalUnit: []string{markerOU},
		},
		// An hour of slack for clients whose clocks run slightly behind.
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if host, err := os.Hostname(); err == nil && host != "" && host != "localhost" {
		if ip := net.ParseIP(host); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, host)
			tmpl.Subject.CommonName = host
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("certs: creating certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("certs: encoding key: %w", err)
	}

	if err := os.MkdirAll(filepath.Dir(certFile), 0o700); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(keyFile), 0o700); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	// Key first: a crash between the two renames leaves a new key with the
	// old certificate, which fails to load loudly rather than serving a
	// certificate whose key is gone.
	if writeKey {
		if err := atomicfile.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
			return err
		}
	}
	return atomicfile.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// Package certs provides the server's TLS certificate: an operator's PEM pair,
// or a self-signed one Ferry generates in the data directory, swapped in place
// on reload (SIGHUP or a change on disk) so a renewed certificate takes effect
// without dropping sessions.
package certs

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// renewBefore is how long before its expiry Ferry's self-signed certificate
// is replaced, and how early an operator's certificate draws a warning.
const renewBefore = 30 * 24 * time.Hour

// Options configures a Manager.
type Options struct {
	// CertFile is a PEM file holding the certificate and, after it, any
	// intermediate certificates; all of them are served. Empty, together with
	// an empty KeyFile, selects the self-signed certificate in DataDir.
	CertFile string
	// KeyFile is the PEM private key (PKCS#8, PKCS#1 RSA or SEC 1 EC) that
	// matches the first certificate of CertFile.
	KeyFile string
	// DataDir is Ferry's data directory; the self-signed pair lives in
	// DataDir/tls/cert.pem and DataDir/tls/key.pem. Only used when CertFile
	// and KeyFile are empty.
	DataDir string
	// Logger receives reloads, renewals and failures; nil discards them.
	Logger *slog.Logger
}

// Manager holds the current certificate. It is safe for concurrent use: the
// certificate is swapped atomically, so handshakes never see a half-loaded pair.
type Manager struct {
	certFile, keyFile string
	// selfSigned is true when the paths are Ferry's defaults in the data
	// directory, where Ferry may generate (and renew) its own certificate.
	selfSigned bool
	log        *slog.Logger
	now        func() time.Time

	cur atomic.Pointer[loaded]
	// mu serialises loads and renewals, so two reloads cannot interleave
	// their file reads and leave the older pair installed.
	mu sync.Mutex
}

// loaded is one certificate as read from disk; it is never modified once
// published through Manager.cur.
type loaded struct {
	cert        *tls.Certificate
	fingerprint string
	generated   bool
	stamp       fileStamp // the files as they were when read
}

// New loads the configured certificate pair. When CertFile and KeyFile are
// both empty it uses DataDir/tls/cert.pem and key.pem, generating a self-signed
// certificate there on first use and replacing it, with the same key, when it
// is within 30 days of expiry.
func New(o Options) (*Manager, error) {
	return newManager(o, time.Now)
}

// newManager is New with an injectable clock, so renewal can be tested.
func newManager(o Options, now func() time.Time) (*Manager, error) {
	m := &Manager{certFile: o.CertFile, keyFile: o.KeyFile, log: o.Logger, now: now}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	switch {
	case o.CertFile == "" && o.KeyFile == "":
		if o.DataDir == "" {
			return nil, errors.New("certs: no certificate configured and no data directory for a self-signed one")
		}
		dir := filepath.Join(o.DataDir, "tls")
		m.certFile = filepath.Join(dir, "cert.pem")
		m.keyFile = filepath.Join(dir, "key.pem")
		m.selfSigned = true
	case o.CertFile == "" || o.KeyFile == "":
		return nil, errors.New("certs: a certificate file needs its key file and the other way round")
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.selfSigned {
		if err := m.ensureSelfSigned(); err != nil {
			return nil, err
		}
	}
	l, err := m.load()
	if err != nil {
		return nil, err
	}
	m.publish(l)
	return m, nil
}

// ensureSelfSigned generates the self-signed pair when either file is
// missing, when the certificate is Ferry's own and due for renewal, or when it
// is Ferry's own but no longer loads (a crash between writing the key and the
// certificate). Anything else that does not load is left for load to report:
// it is the operator's, and silently replacing it would hide the mistake.
func (m *Manager) ensureSelfSigned() error {
	_, certErr := os.Stat(m.certFile)
	_, keyErr := os.Stat(m.keyFile)
	switch {
	case errors.Is(certErr, os.ErrNotExist) || errors.Is(keyErr, os.ErrNotExist):
		m.log.Info("generating self-signed TLS certificate", "path", m.certFile)
		return generate(m.certFile, m.keyFile, m.now())
	case certErr != nil:
		return fmt.Errorf("certs: %w", certErr)
	case keyErr != nil:
		return fmt.Errorf("certs: %w", keyErr)
	}
	l, err := m.load()
	if err != nil {
		if leaf := readLeaf(m.certFile); leaf != nil && isGenerated(leaf) {
			m.log.Warn("self-signed TLS certificate unusable; generating a new one", "path", m.certFile, "err", err)
			return generate(m.certFile, m.keyFile, m.now())
		}
		return nil
	}
	if !l.generated || !m.due(l) {
		return nil
	}
	if err := renewWithKey(m.certFile, m.keyFile, m.now()); err != nil {
		m.log.Warn("renewing self-signed TLS certificate with a new key: the old one cannot be reused",
			"path", m.certFile, "expires", l.cert.Leaf.NotAfter, "fingerprint", l.fingerprint, "err", err)
		return generate(m.certFile, m.keyFile, m.now())
	}
	m.log.Info("renewed self-signed TLS certificate; it keeps its key", "path", m.certFile,
		"old_expires", l.cert.Leaf.NotAfter, "old_fingerprint", l.fingerprint, "key_kept", true,
		"public_key_sha256", publicKeyPin(l.cert.Leaf))
	return nil
}

// publicKeyPin is the SHA-256 of a certificate's public key (its
// SubjectPublicKeyInfo), in the same form as fingerprint: unchanged across
// a renewal that keeps the key.
func publicKeyPin(leaf *x509.Certificate) string {
	return FingerprintOf(leaf.RawSubjectPublicKeyInfo)
}

// due reports whether l expires within renewBefore.
func (m *Manager) due(l *loaded) bool {
	return m.now().Add(renewBefore).After(l.cert.Leaf.NotAfter)
}

// load reads and checks the pair from disk without installing it.
func (m *Manager) load() (*loaded, error) {
	// Stat before reading: if the files change in between, the stamp is the
	// older one and Watch loads again.
	st := m.stamp()
	certPEM, err := os.ReadFile(m.certFile)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	keyPEM, err := os.ReadFile(m.keyFile)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	// X509KeyPair keeps every CERTIFICATE block (the chain), accepts PKCS#8,
	// PKCS#1 and SEC 1 keys, checks that the key matches the leaf and fills
	// in Leaf.
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("certs: %s and %s: %w", m.certFile, m.keyFile, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("certs: %s: %w", m.certFile, err)
		}
	}
	return &loaded{
		cert:        &cert,
		fingerprint: FingerprintOf(cert.Certificate[0]),
		generated:   isGenerated(cert.Leaf),
		stamp:       st,
	}, nil
}

// publish installs l for new handshakes and warns about a certificate that
// is expired or about to be, which Ferry cannot renew itself.
func (m *Manager) publish(l *loaded) {
	m.cur.Store(l)
	leaf := l.cert.Leaf
	if !l.generated && m.due(l) {
		msg := "TLS certificate expires within 30 days; replace it"
		if !m.now().Before(leaf.NotAfter) {
			msg = "TLS certificate has expired; replace it"
		}
		m.log.Warn(msg, "path", m.certFile, "expires", leaf.NotAfter, "fingerprint", l.fingerprint)
	}
}

// GetCertificate returns the current certificate; it is meant for
// tls.Config.GetCertificate. A reload therefore affects new handshakes only:
// established connections keep the certificate they negotiated.
func (m *Manager) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return m.cur.Load().cert, nil
}

// Reload re-reads the certificate files (renewing the self-signed one first
// when it is due). On failure the current certificate stays in use and the
// error is logged and returned.
func (m *Manager) Reload() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reloadLocked()
}

func (m *Manager) reloadLocked() error {
	old := m.cur.Load()
	l, err := func() (*loaded, error) {
		if m.selfSigned {
			if err := m.ensureSelfSigned(); err != nil {
				return nil, err
			}
		}
		return m.load()
	}()
	if err != nil {
		m.log.Error("TLS certificate reload failed; keeping the current one",
			"err", err, "fingerprint", old.fingerprint)
		return err
	}
	m.publish(l)
	if l.fingerprint != old.fingerprint {
		m.log.Info("TLS certificate reloaded", "path", m.certFile,
			"fingerprint", l.fingerprint, "expires", l.cert.Leaf.NotAfter)
	}
	return nil
}

// Watch reloads the certificate when either file's modification time or size
// changes (checked every interval; interval <= 0 disables polling), when a
// value arrives on hup (the server passes its SIGHUP channel; nil is allowed)
// and, for Ferry's self-signed certificate, when it is due for renewal. It
// returns when ctx ends. A failed reload is logged and retried only after the
// files change again, so a half-copied pair does not flood the log.
func (m *Manager) Watch(ctx context.Context, interval time.Duration, hup <-chan os.Signal) {
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	// Compare with the files as loaded, not as they are now: a change made
	// between New and Watch must not be missed.
	last := m.cur.Load().stamp
	// After a failed renewal, wait before trying again rather than logging
	// the same failure at every tick.
	var retryRenewal time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			// Stamp before reading, so a change during the reload is seen
			// on the next tick rather than lost.
			last = m.stamp()
			_ = m.Reload()
		case <-tick:
			now := m.stamp()
			if now != last {
				last = now
				_ = m.Reload()
				continue
			}
			if cur := m.cur.Load(); m.selfSigned && cur.generated && m.due(cur) && !m.now().Before(retryRenewal) {
				if m.Reload() != nil || m.due(m.cur.Load()) {
					retryRenewal = m.now().Add(time.Hour)
				}
				last = m.stamp()
			}
		}
	}
}

// fileStamp identifies a version of the pair on disk cheaply. Stat errors are
// part of the stamp, so a file that vanishes and comes back is noticed.
type fileStamp struct {
	certMod, keyMod   time.Time
	certSize, keySize int64
	certOK, keyOK     bool
}

func (m *Manager) stamp() fileStamp {
	var s fileStamp
	if fi, err := os.Stat(m.certFile); err == nil {
		s.certMod, s.certSize, s.certOK = fi.ModTime(), fi.Size(), true
	}
	if fi, err := os.Stat(m.keyFile); err == nil {
		s.keyMod, s.keySize, s.keyOK = fi.ModTime(), fi.Size(), true
	}
	return s
}

// Fingerprint returns the SHA-256 of the current leaf certificate's DER
// encoding as upper-case hex pairs separated by colons, the form browsers and
// FTP clients show.
func (m *Manager) Fingerprint() string {
	return m.cur.Load().fingerprint
}

// Generated reports whether the current certificate is Ferry's self-signed one.
func (m *Manager) Generated() bool {
	return m.cur.Load().generated
}

// readLeaf parses the first certificate of a PEM file, or returns nil.
func readLeaf(name string) *x509.Certificate {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil
	}
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil
		}
		if b.Type == "CERTIFICATE" {
			leaf, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil
			}
			return leaf
		}
	}
}

// FingerprintOf is the SHA-256 of der in FileZilla's form, AA:BB:...
func FingerprintOf(der []byte) string {
	sum := sha256.Sum256(der)
	var b strings.Builder
	b.Grow(len(sum) * 3)
	for i, c := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}

// Info describes a certificate for an operator (ferry cert show).
type Info struct {
	Subject     string
	Issuer      string
	SANs        []string // DNS names, then IP addresses
	NotBefore   time.Time
	NotAfter    time.Time
	Fingerprint string // SHA-256 of the DER certificate, AA:BB:... as FileZilla shows it
	KeySHA256   string // SHA-256 of the public key, same form: unchanged by a renewal that keeps the key
	Generated   bool   // Ferry's own self-signed certificate
	Chain       int    // certificates in the file, the leaf included
}

// Describe returns the Info of leaf.
func Describe(leaf *x509.Certificate) Info {
	in := Info{
		Subject:     leaf.Subject.String(),
		Issuer:      leaf.Issuer.String(),
		NotBefore:   leaf.NotBefore,
		NotAfter:    leaf.NotAfter,
		Fingerprint: FingerprintOf(leaf.Raw),
		KeySHA256:   publicKeyPin(leaf),
		Generated:   isGenerated(leaf),
		Chain:       1,
	}
	in.SANs = append(in.SANs, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		in.SANs = append(in.SANs, ip.String())
	}
	return in
}

// ReadInfo describes the first certificate of the PEM file name.
func ReadInfo(name string) (Info, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return Info{}, fmt.Errorf("certs: %w", err)
	}
	return ParseInfo(name, data)
}

// ParseInfo describes the first certificate of PEM data; name says where
// it comes from, in errors.
func ParseInfo(name string, data []byte) (Info, error) {
	var ders [][]byte
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			ders = append(ders, b.Bytes)
		}
	}
	if len(ders) == 0 {
		return Info{}, fmt.Errorf("certs: %s: no PEM certificate", name)
	}
	leaf, err := x509.ParseCertificate(ders[0])
	if err != nil {
		return Info{}, fmt.Errorf("certs: %s: %w", name, err)
	}
	in := Describe(leaf)
	in.Chain = len(ders)
	return in, nil
}

package acme

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	xacme "golang.org/x/crypto/acme"
)

// The challenge types Manager answers.
const (
	HTTP01    = "http-01"
	TLSALPN01 = "tls-alpn-01"
)

// Options configures a Manager.
type Options struct {
	// Domains are the certificate's names; the first is its subject.
	Domains []string
	// Email is the account's contact address; may be empty.
	Email string
	// DirectoryURL is the CA's ACME directory.
	DirectoryURL string
	// HTTPClient talks to the CA; nil means http.DefaultClient. A private
	// CA's root goes into its transport.
	HTTPClient *http.Client
	// DataDir is Ferry's data directory: the account key and the
	// certificate are kept in DataDir/acme (see the file names).
	DataDir string
	// Challenges are the challenge types answered, in order of preference;
	// at least one of HTTP01 (served by HTTPHandler) and TLSALPN01 (by
	// GetCertificate, on a listener the CA reaches on port 443).
	Challenges []string
	// RenewBefore is how long before expiry the certificate is renewed; 0
	// renews when a third of its lifetime is left.
	RenewBefore time.Duration
	// RetryAfter is the first wait after a failed order; it doubles up to
	// an hour. 0 means one minute.
	RetryAfter time.Duration
	// Fallback, when set, serves handshakes while no certificate has been
	// obtained yet (Ferry's self-signed one).
	Fallback func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// Logger receives orders, renewals and failures; nil discards them.
	Logger *slog.Logger
}

// Manager obtains a certificate for Options.Domains from an ACME CA, keeps
// it in the data directory and renews it before it expires. Its
// GetCertificate always returns the current certificate, so a renewal
// reaches new handshakes while established sessions keep theirs. It is
// safe for concurrent use.
type Manager struct {
	opt    Options
	log    *slog.Logger
	client *xacme.Client
	now    func() time.Time

	cur atomic.Pointer[tls.Certificate] // the served certificate; nil until one is obtained

	mu sync.Mutex // serialises orders

	chMu     sync.Mutex
	tokens   map[string]string           // HTTP-01: token → key authorization
	alpn     map[string]*tls.Certificate // TLS-ALPN-01: domain → challenge certificate
	renewed  chan struct{}               // closed and replaced at each new certificate
	accountK crypto.Signer
}

// New loads or creates the account key and loads the certificate already
// kept in the data directory, if it covers the domains. It does not talk
// to the CA: Run does.
func New(o Options) (*Manager, error) {
	if len(o.Domains) == 0 {
		return nil, errors.New("acme: no domains")
	}
	if o.DirectoryURL == "" || o.DataDir == "" {
		return nil, errors.New("acme: a directory URL and a data directory are needed")
	}
	if len(o.Challenges) == 0 {
		return nil, errors.New("acme: no challenge type")
	}
	for _, c := range o.Challenges {
		if c != HTTP01 && c != TLSALPN01 {
			return nil, fmt.Errorf("acme: unknown challenge type %q", c)
		}
	}
	if o.RetryAfter <= 0 {
		o.RetryAfter = time.Minute
	}
	m := &Manager{opt: o, log: o.Logger, now: time.Now, tokens: map[string]string{},
		alpn: map[string]*tls.Certificate{}, renewed: make(chan struct{})}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Join(o.DataDir, Dir), 0o700); err != nil {
		return nil, fmt.Errorf("acme: %w", err)
	}
	key, err := m.accountKey()
	if err != nil {
		return nil, err
	}
	m.accountK = key
	m.client = &xacme.Client{Key: key, DirectoryURL: o.DirectoryURL, HTTPClient: o.HTTPClient, UserAgent: "ferry"}
	if c, err := m.loadCert(); err == nil {
		m.cur.Store(c)
		m.log.Info("ACME certificate loaded", "path", m.path(CertFile), "expires", c.Leaf.NotAfter,
			"fingerprint", fingerprint(c.Leaf.Raw))
	} else if !errors.Is(err, os.ErrNotExist) {
		m.log.Warn("ACME certificate on disk not usable; a new one will be ordered", "path", m.path(CertFile), "err", err)
	}
	return m, nil
}

func (m *Manager) path(rel string) string { return filepath.Join(m.opt.DataDir, rel) }

// accountKey reads the account key, creating it on first use.
func (m *Manager) accountKey() (crypto.Signer, error) {
	name := m.path(AccountFile)
	b, err := os.ReadFile(name)
	if errors.Is(err, os.ErrNotExist) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("acme: %w", err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, fmt.Errorf("acme: %w", err)
		}
		if err := writeFile(name, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
			return nil, err
		}
		m.log.Info("ACME account key created", "path", name)
		return k, nil
	}
	if err != nil {
		return nil, fmt.Errorf("acme: %w", err)
	}
	return parseKey(name, b)
}

func parseKey(name string, b []byte) (crypto.Signer, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("acme: %s: no PEM key", name)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("acme: %s: %w", name, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("acme: %s: not a signing key", name)
	}
	return s, nil
}

// loadCert reads the kept certificate; it must cover every domain.
func (m *Manager) loadCert() (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(m.path(CertFile))
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(m.path(KeyFile))
	if err != nil {
		return nil, err
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	if c.Leaf == nil {
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, err
		}
	}
	for _, d := range m.opt.Domains {
		if err := c.Leaf.VerifyHostname(d); err != nil {
			return nil, fmt.Errorf("the kept certificate does not cover %s", d)
		}
	}
	return &c, nil
}

// GetCertificate serves TLS handshakes (tls.Config.GetCertificate): a
// TLS-ALPN-01 challenge certificate when the CA asks for one (ALPN
// "acme-tls/1"), otherwise the current certificate, or the fallback while
// there is none.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if slices.Contains(hello.SupportedProtos, xacme.ALPNProto) {
		m.chMu.Lock()
		c := m.alpn[strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))]
		m.chMu.Unlock()
		if c == nil {
			return nil, fmt.Errorf("acme: no TLS-ALPN-01 challenge pending for %q", hello.ServerName)
		}
		return c, nil
	}
	if c := m.cur.Load(); c != nil {
		return c, nil
	}
	if m.opt.Fallback != nil {
		return m.opt.Fallback(hello)
	}
	return nil, errors.New("acme: no certificate obtained yet")
}

// ChallengeTLSConfig is the configuration of a TLS-ALPN-01 challenge
// listener: it speaks only "acme-tls/1".
func (m *Manager) ChallengeTLSConfig() *tls.Config {
	return &tls.Config{GetCertificate: m.GetCertificate, NextProtos: []string{xacme.ALPNProto}, MinVersion: tls.VersionTLS12}
}

// HTTPHandler answers HTTP-01 challenges under /.well-known/acme-challenge/
// and 404 for everything else.
func (m *Manager) HTTPHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.URL.Path, "/.well-known/acme-challenge/")
		m.chMu.Lock()
		resp, found := m.tokens[token]
		m.chMu.Unlock()
		if !ok || !found || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte(resp))
	})
}

// Current returns the current certificate, or nil.
func (m *Manager) Current() *tls.Certificate { return m.cur.Load() }

// Renewed returns a channel closed when the next new certificate is
// installed.
func (m *Manager) Renewed() <-chan struct{} {
	m.chMu.Lock()
	defer m.chMu.Unlock()
	return m.renewed
}

// renewAt is when c is due for renewal.
func (m *Manager) renewAt(c *tls.Certificate) time.Time {
	before := m.opt.RenewBefore
	if before <= 0 {
		before = c.Leaf.NotAfter.Sub(c.Leaf.NotBefore) / 3
	}
	return c.Leaf.NotAfter.Add(-before)
}

// Run obtains a certificate when there is none or it is due, then renews
// each one when it is due, until ctx ends. A failed order is logged and
// retried after RetryAfter, doubling up to an hour.
func (m *Manager) Run(ctx context.Context) {
	wait := m.opt.RetryAfter
	for {
		var next time.Time
		if c := m.cur.Load(); c != nil {
			next = m.renewAt(c)
		}
		if d := time.Until(next); d > 0 {
			// Re-checked at least hourly, in case the clock jumps.
			t := time.NewTimer(min(d, time.Hour))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		if err := m.Obtain(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			m.log.Error("ACME order failed; retrying", "domains", strings.Join(m.opt.Domains, ","),
				"retry_in", wait.String(), "err", err)
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			wait = min(2*wait, time.Hour)
			continue
		}
		wait = m.opt.RetryAfter
	}
}

// Obtain orders a certificate now, answers its challenges, keeps it in the
// data directory and installs it for new handshakes.
func (m *Manager) Obtain(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.cur.Load()
	if err := m.register(ctx); err != nil {
		return err
	}
	order, err := m.client.AuthorizeOrder(ctx, xacme.DomainIDs(m.opt.Domains...))
	if err != nil {
		return fmt.Errorf("new order: %w", err)
	}
	for _, u := range order.AuthzURLs {
		if err := m.authorize(ctx, u); err != nil {
			return err
		}
	}
	if order, err = m.client.WaitOrder(ctx, order.URI); err != nil {
		return fmt.Errorf("order: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: m.opt.Domains[0]}, DNSNames: m.opt.Domains}, key)
	if err != nil {
		return err
	}
	ders, _, err := m.client.CreateCertFromOrder(ctx, order, csr, true)
	if err != nil {
		return fmt.Errorf("finalize: %w", err)
	}
	var certPEM []byte
	for _, d := range ders {
		certPEM = append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})...)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("the CA's certificate: %w", err)
	}
	if c.Leaf == nil {
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return err
		}
	}
	// Key first: a crash between the two leaves a pair that fails to load
	// and is ordered again, never a certificate without its key.
	if err := writeFile(m.path(KeyFile), keyPEM); err != nil {
		return err
	}
	if err := writeFile(m.path(CertFile), certPEM); err != nil {
		return err
	}
	m.cur.Store(&c)
	m.chMu.Lock()
	close(m.renewed)
	m.renewed = make(chan struct{})
	m.chMu.Unlock()
	msg := "ACME certificate obtained"
	attrs := []any{"domains", strings.Join(m.opt.Domains, ","), "expires", c.Leaf.NotAfter,
		"renew_at", m.renewAt(&c), "fingerprint", fingerprint(c.Leaf.Raw), "issuer", c.Leaf.Issuer.String()}
	if old != nil {
		msg = "ACME certificate renewed; new handshakes get it, open sessions keep going"
		attrs = append(attrs, "old_fingerprint", fingerprint(old.Leaf.Raw), "old_expires", old.Leaf.NotAfter)
	}
	m.log.Info(msg, attrs...)
	return nil
}

// register creates the account on first use; an existing one is fine.
func (m *Manager) register(ctx context.Context) error {
	if _, err := os.Stat(m.path(AccountURL)); err == nil {
		return nil
	}
	acct := &xacme.Account{}
	if m.opt.Email != "" {
		acct.Contact = []string{"mailto:" + m.opt.Email}
	}
	a, err := m.client.Register(ctx, acct, xacme.AcceptTOS)
	switch {
	case errors.Is(err, xacme.ErrAccountAlreadyExists):
		a, err = m.client.GetReg(ctx, "")
		if err != nil {
			return fmt.Errorf("account: %w", err)
		}
	case err != nil:
		return fmt.Errorf("account: %w", err)
	}
	m.log.Info("ACME account registered", "ca", m.opt.DirectoryURL, "account", a.URI)
	return writeFile(m.path(AccountURL), []byte(a.URI+"\n"))
}

// authorize completes one authorization with the first offered challenge
// of the preferred types.
func (m *Manager) authorize(ctx context.Context, url string) error {
	z, err := m.client.GetAuthorization(ctx, url)
	if err != nil {
		return fmt.Errorf("authorization: %w", err)
	}
	if z.Status == xacme.StatusValid {
		return nil
	}
	domain := z.Identifier.Value
	var chal *xacme.Challenge
	for _, typ := range m.opt.Challenges {
		for _, c := range z.Challenges {
			if c.Type == typ {
				chal = c
				break
			}
		}
		if chal != nil {
			break
		}
	}
	if chal == nil {
		return fmt.Errorf("%s: the CA offers none of the challenges %s", domain, strings.Join(m.opt.Challenges, ", "))
	}
	switch chal.Type {
	case HTTP01:
		resp, err := m.client.HTTP01ChallengeResponse(chal.Token)
		if err != nil {
			return err
		}
		m.chMu.Lock()
		m.tokens[chal.Token] = resp
		m.chMu.Unlock()
		defer func() {
			m.chMu.Lock()
			delete(m.tokens, chal.Token)
			m.chMu.Unlock()
		}()
	case TLSALPN01:
		cert, err := m.client.TLSALPN01ChallengeCert(chal.Token, domain)
		if err != nil {
			return err
		}
		key := strings.ToLower(domain)
		m.chMu.Lock()
		m.alpn[key] = &cert
		m.chMu.Unlock()
		defer func() {
			m.chMu.Lock()
			delete(m.alpn, key)
			m.chMu.Unlock()
		}()
	}
	m.log.Info("ACME challenge", "domain", domain, "type", chal.Type)
	if _, err := m.client.Accept(ctx, chal); err != nil {
		return fmt.Errorf("%s: accepting %s: %w", domain, chal.Type, err)
	}
	if _, err := m.client.WaitAuthorization(ctx, z.URI); err != nil {
		return fmt.Errorf("%s: %s challenge: %w", domain, chal.Type, err)
	}
	return nil
}

// writeFile replaces name with data atomically, 0600.
func writeFile(name string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), ".tmp-"+filepath.Base(name)+"-*")
	if err != nil {
		return fmt.Errorf("acme: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("acme: writing %s: %w", name, err)
	}
	return nil
}

func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	var b strings.Builder
	for i, c := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}

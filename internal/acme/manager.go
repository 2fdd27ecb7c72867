package acme

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	xacme "golang.org/x/crypto/acme"

	"github.com/ferryftp/ferry/internal/certs"
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
	// DataDir is Ferry's data directory: without a Store, the account key
	// and the certificate are kept in DataDir/acme (see the file names).
	DataDir string
	// Store keeps the account and the certificate; nil means
	// FileStore{DataDir/acme}. A SharedStore makes the servers that share
	// it share one account and one certificate (see SharedStore).
	Store Store
	// NodeID names this server as the holder of a SharedStore's ordering
	// lease; "" means a random one.
	NodeID string
	// LeaseTTL bounds an order made under a SharedStore's lease: the lease
	// expires then, and the order is cancelled. 0 means ten minutes.
	LeaseTTL time.Duration
	// SyncInterval is how often a SharedStore is checked for a certificate
	// put by another server, besides its change notifications. 0 means a
	// minute.
	SyncInterval time.Duration
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
// it in its Store (the data directory by default) and renews it before it
// expires. Its
// GetCertificate always returns the current certificate, so a renewal
// reaches new handshakes while established sessions keep theirs. It is
// safe for concurrent use.
type Manager struct {
	opt    Options
	log    *slog.Logger
	client *xacme.Client
	now    func() time.Time

	cur atomic.Pointer[tls.Certificate] // the served certificate; nil until one is obtained

	store  Store
	shared SharedStore // store, when several servers share it; else nil

	mu sync.Mutex // serialises orders

	chMu      sync.Mutex
	tokens    map[string]string           // HTTP-01: token → key authorization
	alpn      map[string]*tls.Certificate // TLS-ALPN-01: domain → challenge certificate
	peerALPN  map[string]*tls.Certificate // TLS-ALPN-01 certificates built from a SharedStore's key authorizations, by domain+"\x00"+key authorization
	renewed   chan struct{}               // closed and replaced at each new certificate
	accountK  crypto.Signer
	installMu sync.Mutex // serialises install
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
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 10 * time.Minute
	}
	if o.SyncInterval <= 0 {
		o.SyncInterval = time.Minute
	}
	if o.NodeID == "" {
		var b [8]byte
		rand.Read(b[:])
		o.NodeID = fmt.Sprintf("%x", b)
	}
	m := &Manager{opt: o, log: o.Logger, now: time.Now, tokens: map[string]string{},
		alpn: map[string]*tls.Certificate{}, peerALPN: map[string]*tls.Certificate{}, renewed: make(chan struct{})}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	m.store = o.Store
	if m.store == nil {
		if err := os.MkdirAll(filepath.Join(o.DataDir, Dir), 0o700); err != nil {
			return nil, fmt.Errorf("acme: %w", err)
		}
		m.store = FileStore{Dir: filepath.Join(o.DataDir, Dir)}
	}
	m.shared, _ = m.store.(SharedStore)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	key, err := m.accountKey(ctx)
	if err != nil {
		return nil, err
	}
	m.accountK = key
	m.client = &xacme.Client{Key: key, DirectoryURL: o.DirectoryURL, HTTPClient: o.HTTPClient, UserAgent: "ferry"}
	if c, err := m.loadCert(ctx); err == nil {
		m.cur.Store(c)
		m.log.Info("ACME certificate loaded", "path", m.store.Where(NameCert), "expires", c.Leaf.NotAfter,
			"fingerprint", certs.FingerprintOf(c.Leaf.Raw))
	} else if !errors.Is(err, os.ErrNotExist) {
		m.log.Warn("ACME certificate kept not usable; a new one will be ordered", "path", m.store.Where(NameCert), "err", err)
	}
	return m, nil
}

// accountKey reads the account key, creating it on first use; of servers
// sharing a store, the first to create it wins and the others use it.
func (m *Manager) accountKey(ctx context.Context) (crypto.Signer, error) {
	name := m.store.Where(NameAccountKey)
	b, err := m.store.Get(ctx, NameAccountKey)
	if errors.Is(err, os.ErrNotExist) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("acme: %w", err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, fmt.Errorf("acme: %w", err)
		}
		mine := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		if b, err = m.store.Create(ctx, NameAccountKey, mine); err != nil {
			return nil, err
		}
		if string(b) == string(mine) {
			m.log.Info("ACME account key created", "path", name)
			return k, nil
		}
	} else if err != nil {
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
func (m *Manager) loadCert(ctx context.Context) (*tls.Certificate, error) {
	certPEM, err := m.store.Get(ctx, NameCert)
	if err != nil {
		return nil, err
	}
	keyPEM, err := m.store.Get(ctx, NameKey)
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
		domain := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
		m.chMu.Lock()
		c := m.alpn[domain]
		m.chMu.Unlock()
		if c == nil && m.shared != nil {
			ctx := hello.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			c = m.peerChallengeCert(ctx, domain)
		}
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
		if ok && !found && m.shared != nil && token != "" && r.Method == http.MethodGet {
			// Another server's order: the CA may reach any of them.
			ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
			ka, err := m.shared.Challenge(ctx, ChallengeKey(HTTP01, token))
			cancel()
			resp, found = ka, err == nil
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				m.log.Warn("ACME HTTP-01: reading the shared challenge failed", "err", err)
			}
		}
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
// retried after RetryAfter, doubling up to an hour. With a SharedStore it
// also installs the certificates other servers put there, as soon as the
// store's Changes tell, and at least every SyncInterval.
func (m *Manager) Run(ctx context.Context) {
	var changes <-chan string
	if m.shared != nil {
		ch, err := m.shared.Changes(ctx)
		if err != nil {
			m.log.Warn("ACME: no change notifications from the shared store; checking it every sync interval",
				"every", m.opt.SyncInterval.String(), "err", err)
		}
		changes = ch
	}
	wait := m.opt.RetryAfter
	for {
		var next time.Time
		if c := m.cur.Load(); c != nil {
			next = m.renewAt(c)
		}
		if d := time.Until(next); d > 0 {
			// Re-checked at least hourly, in case the clock jumps.
			d = min(d, time.Hour)
			if m.shared != nil {
				d = min(d, m.opt.SyncInterval)
			}
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case _, ok := <-changes:
				t.Stop()
				if !ok {
					changes = nil
				}
			case <-t.C:
			}
			if m.shared != nil {
				m.sync(ctx, m.cur.Load())
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
// store and installs it for new handshakes. With a SharedStore, only the
// holder of the lease orders: while another server holds it, Obtain waits
// for that server's certificate and installs it instead; and a certificate
// newer than the current one already in the store is installed without an
// order.
func (m *Manager) Obtain(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.cur.Load()
	if m.shared == nil {
		return m.order(ctx, old)
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	changes, err := m.shared.Changes(lctx)
	if err != nil {
		m.log.Warn("ACME: no change notifications from the shared store", "err", err)
	}
	waiting := false
	for {
		if m.sync(ctx, old) {
			return nil
		}
		ok, err := m.shared.TryLease(ctx, m.opt.NodeID, m.opt.LeaseTTL)
		if err != nil {
			return fmt.Errorf("taking the order lease: %w", err)
		}
		if ok {
			// The holder before may have put its certificate just now.
			if m.sync(ctx, old) {
				err = nil
			} else {
				octx, ocancel := context.WithTimeout(ctx, m.opt.LeaseTTL)
				err = m.order(octx, old)
				ocancel()
			}
			rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			if rerr := m.shared.ReleaseLease(rctx, m.opt.NodeID); rerr != nil {
				m.log.Warn("ACME: releasing the order lease failed; it expires by itself", "err", rerr)
			}
			rcancel()
			return err
		}
		if !waiting {
			waiting = true
			m.log.Info("ACME: another server holds the order lease; waiting for its certificate",
				"domains", strings.Join(m.opt.Domains, ","))
		}
		t := time.NewTimer(m.opt.SyncInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case _, ok := <-changes:
			t.Stop()
			if !ok {
				changes = nil
			}
		case <-t.C:
		}
	}
}

// sync installs the certificate in the store if it is another, no older
// than than (nil: any); it reports whether the current certificate is now
// that one.
func (m *Manager) sync(ctx context.Context, than *tls.Certificate) bool {
	c, err := m.loadCert(ctx)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) && ctx.Err() == nil {
			m.log.Warn("ACME: reading the shared certificate failed", "err", err)
		}
		return false
	}
	if than != nil && (bytes.Equal(c.Leaf.Raw, than.Leaf.Raw) || c.Leaf.NotAfter.Before(than.Leaf.NotAfter)) {
		return false
	}
	m.installMu.Lock()
	defer m.installMu.Unlock()
	cur := m.cur.Load()
	if cur != nil && bytes.Equal(cur.Leaf.Raw, c.Leaf.Raw) {
		return true
	}
	m.install(c, cur, "ACME certificate of another server installed; new handshakes get it, open sessions keep going")
	return true
}

// install serves c to new handshakes and tells Renewed; guarded by
// installMu.
func (m *Manager) install(c, old *tls.Certificate, msg string) {
	m.cur.Store(c)
	attrs := []any{"domains", strings.Join(m.opt.Domains, ","), "expires", c.Leaf.NotAfter,
		"renew_at", m.renewAt(c), "fingerprint", certs.FingerprintOf(c.Leaf.Raw), "issuer", c.Leaf.Issuer.String()}
	if old != nil {
		attrs = append(attrs, "old_fingerprint", certs.FingerprintOf(old.Leaf.Raw), "old_expires", old.Leaf.NotAfter)
	}
	m.log.Info(msg, attrs...)
	m.chMu.Lock()
	close(m.renewed)
	m.renewed = make(chan struct{})
	m.chMu.Unlock()
}

// order makes one order with the CA and installs its certificate.
func (m *Manager) order(ctx context.Context, old *tls.Certificate) error {
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
	// Key first: a crash between the two files leaves a pair that fails
	// to load and is ordered again, never a certificate without its key.
	// A database keeps both in one transaction.
	if err := m.store.Put(context.WithoutCancel(ctx), Entry{NameKey, keyPEM}, Entry{NameCert, certPEM}); err != nil {
		return err
	}
	msg := "ACME certificate obtained"
	if old != nil {
		msg = "ACME certificate renewed; new handshakes get it, open sessions keep going"
	}
	m.installMu.Lock()
	m.install(&c, old, msg)
	m.installMu.Unlock()
	return nil
}

// register creates the account on first use; an existing one is fine.
func (m *Manager) register(ctx context.Context) error {
	if _, err := m.store.Get(ctx, NameAccountURL); err == nil {
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
	return m.store.Put(ctx, Entry{NameAccountURL, []byte(a.URI + "\n")})
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
		if err := m.publish(ctx, ChallengeKey(HTTP01, chal.Token), resp); err != nil {
			return err
		}
		defer m.withdraw(ctx, ChallengeKey(HTTP01, chal.Token))
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
		// RFC 8737 §3: the certificate carries the SHA-256 of the key
		// authorization, the same as HTTP-01's response; other servers
		// build it from that.
		ka, err := m.client.HTTP01ChallengeResponse(chal.Token)
		if err != nil {
			return err
		}
		if err := m.publish(ctx, ChallengeKey(TLSALPN01, key), ka); err != nil {
			return err
		}
		defer m.withdraw(ctx, ChallengeKey(TLSALPN01, key))
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

// publish puts a challenge's key authorization in a SharedStore, for
// LeaseTTL at most; the caller withdraws it when the authorization ends.
func (m *Manager) publish(ctx context.Context, key, keyAuth string) error {
	if m.shared == nil {
		return nil
	}
	if err := m.shared.PutChallenge(ctx, key, keyAuth, m.opt.LeaseTTL); err != nil {
		return fmt.Errorf("publishing the challenge: %w", err)
	}
	return nil
}

// withdraw deletes a published challenge.
func (m *Manager) withdraw(ctx context.Context, key string) {
	if m.shared == nil {
		return
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := m.shared.DeleteChallenge(wctx, key); err != nil {
		m.log.Warn("ACME: withdrawing the challenge failed; it expires by itself", "err", err)
	}
}

// peerChallengeCert builds the TLS-ALPN-01 certificate of a challenge that
// another server published for domain, or returns nil.
func (m *Manager) peerChallengeCert(ctx context.Context, domain string) *tls.Certificate {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ka, err := m.shared.Challenge(ctx, ChallengeKey(TLSALPN01, domain))
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			m.log.Warn("ACME TLS-ALPN-01: reading the shared challenge failed", "err", err)
		}
		return nil
	}
	k := domain + "\x00" + ka
	m.chMu.Lock()
	c := m.peerALPN[k]
	m.chMu.Unlock()
	if c != nil {
		return c
	}
	c, err = alpnCert(domain, ka)
	if err != nil {
		m.log.Warn("ACME TLS-ALPN-01: building the challenge certificate failed", "err", err)
		return nil
	}
	m.chMu.Lock()
	if len(m.peerALPN) >= 16 {
		clear(m.peerALPN)
	}
	m.peerALPN[k] = c
	m.chMu.Unlock()
	return c
}

// idPeACMEIdentifier is the acmeIdentifier extension (RFC 8737 §6.1).
var idPeACMEIdentifier = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 31}

// alpnCert is a TLS-ALPN-01 challenge certificate (RFC 8737 §3): self-
// signed, for domain only, with the critical acmeIdentifier extension
// holding the SHA-256 of the key authorization.
func alpnCert(domain, keyAuth string) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(keyAuth))
	ext, err := asn1.Marshal(sum[:])
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "ACME challenge"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		DNSNames: []string{domain}, BasicConstraintsValid: true,
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		ExtraExtensions: []pkix.Extension{{Id: idPeACMEIdentifier, Critical: true, Value: ext}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/ferryftp/ferry/internal/acme"
	"github.com/ferryftp/ferry/internal/acme/sqlacme"
	"github.com/ferryftp/ferry/internal/certs"
	"github.com/ferryftp/ferry/internal/config"
	"github.com/ferryftp/ferry/internal/db"
)

// acmeFirstOrder bounds the order made at start when there is no
// certificate yet; after it the server starts with the fallback certificate
// and the manager keeps trying.
const acmeFirstOrder = 2 * time.Minute

// acmeService is the ACME manager of a running server with its challenge
// listeners.
type acmeService struct {
	m      *acme.Manager
	cancel context.CancelFunc
	done   chan struct{}
	closer []io.Closer
}

// startACME makes the ACME manager for cfg (acme_domains set), binds its
// challenge listeners, obtains a certificate when none is kept yet, and
// renews it in the background until stop. fallback serves handshakes while
// there is no certificate. A process started by an upgrade retries binding
// a challenge address its parent still holds.
//
// On PostgreSQL the account and the certificate are kept in the database
// (package sqlacme), shared by every server on it: one orders while the
// others wait for its certificate, each answers the challenges of any, and
// a renewal reaches all. On SQLite (one machine) they stay in DATA/acme.
func startACME(cfg config.Config, database *db.DB, node *db.Node, fallback *certs.Manager, log *slog.Logger, stdout io.Writer, child bool) (*acmeService, error) {
	client := http.DefaultClient
	if cfg.ACMECARoot != "" {
		pem, err := os.ReadFile(cfg.ACMECARoot)
		if err != nil {
			return nil, fmt.Errorf("acme_ca_root: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("acme_ca_root %s: no PEM certificates found", cfg.ACMECARoot)
		}
		client = &http.Client{Timeout: time.Minute, Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment, TLSClientConfig: &tls.Config{RootCAs: pool}}}
	}
	o := acme.Options{
		Domains:      cfg.ACMEDomains,
		Email:        cfg.ACMEEmail,
		DirectoryURL: cfg.ACMECA,
		HTTPClient:   client,
		DataDir:      cfg.Data,
		Challenges:   cfg.ACMEChallenges,
		RenewBefore:  cfg.ACMERenewBefore.Duration,
		Fallback:     fallback.GetCertificate,
		Logger:       log,
	}
	if database.Dialect() == db.Postgres {
		o.Store = sqlacme.New(database)
		o.NodeID = node.ID()
		log.Info("ACME account and certificate kept in the database, shared by every server on it", "database", database.String())
	}
	m, err := acme.New(o)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &acmeService{m: m, cancel: cancel, done: make(chan struct{})}
	for _, ch := range cfg.ACMEChallenges {
		addr, name := cfg.ACMEHTTPListen, "HTTP-01"
		if ch == acme.TLSALPN01 {
			addr, name = cfg.ACMETLSListen, "TLS-ALPN-01"
		}
		serveOn := func(ln net.Listener) {
			fmt.Fprintf(stdout, "ACME %s challenges on %s\n", name, ln.Addr())
			if ch == acme.TLSALPN01 {
				go acme.ServeTLSALPN(ln, m, log)
				return
			}
			hs := &http.Server{Handler: m.HTTPHandler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: nil}
			go hs.Serve(ln)
		}
		ln, err := net.Listen("tcp", addr)
		switch {
		case err == nil:
			s.closer = append(s.closer, ln)
			serveOn(ln)
		case child && errors.Is(err, syscall.EADDRINUSE):
			// The process being upgraded still answers there; take the
			// address when it lets go.
			log.Info("ACME challenge address still held by the old process; waiting for it", "addr", addr)
			go func() {
				for ctx.Err() == nil {
					if ln, err := net.Listen("tcp", addr); err == nil {
						context.AfterFunc(ctx, func() { ln.Close() })
						serveOn(ln)
						return
					}
					time.Sleep(time.Second)
				}
			}()
		default:
			s.close()
			cancel()
			return nil, fmt.Errorf("acme %s listener: %w", name, err)
		}
	}
	if m.Current() == nil {
		octx, ocancel := context.WithTimeout(ctx, acmeFirstOrder)
		err := m.Obtain(octx)
		ocancel()
		if err != nil {
			log.Error("no ACME certificate yet: serving the self-signed one meanwhile", "err", err)
		}
	}
	go func() {
		defer close(s.done)
		m.Run(ctx)
	}()
	return s, nil
}

// fingerprint is the served certificate's, or "" before the first one.
func (s *acmeService) fingerprint() string {
	if c := s.m.Current(); c != nil {
		return certs.Describe(c.Leaf).Fingerprint
	}
	return ""
}

func (s *acmeService) close() {
	for _, c := range s.closer {
		c.Close()
	}
}

// stop ends renewals and closes the challenge listeners.
func (s *acmeService) stop() {
	s.cancel()
	<-s.done
	s.close()
}

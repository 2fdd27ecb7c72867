package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/ferryftp/ferry/internal/ban"
	"github.com/ferryftp/ferry/internal/certs"
	"github.com/ferryftp/ferry/internal/config"
	"github.com/ferryftp/ferry/internal/ftp"
	"github.com/ferryftp/ferry/internal/metrics"
	"github.com/ferryftp/ferry/internal/xferlog"
)

// metricsQueue is the metrics observer's event queue: a burst of this many
// events is counted even while a scrape holds the observer up.
const metricsQueue = 8192

// ops is what the server offers operators besides FTP: the metrics
// endpoint and the log files other tools read (xferlog, auth log), all fed
// by the engine's events.
type ops struct {
	log     *slog.Logger
	metrics *metrics.Metrics // nil without metrics.listen
	http    *http.Server
	files   []*xferlog.File // the log files, for Reopen
	stopSig func()
	// bindDone, when set, is closed to stop bindLater.
	bindDone chan struct{}
	bindOnce sync.Once
}

// bindLater binds the metrics address once the process that holds it (the
// parent of an upgrade, draining) lets it go, retrying every 100 ms until
// Close.
func (o *ops) bindLater(addr string, serve func(net.Listener)) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-o.bindDone:
			return
		case <-t.C:
		}
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			o.log.Info("metrics endpoint taken over from the previous process", "addr", ln.Addr().String())
			go serve(ln)
			return
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			o.log.Error("metrics endpoint failed", "err", err)
			return
		}
	}
}

// StopMetrics closes the metrics endpoint, so that the process that
// upgraded this one can bind its address.
func (o *ops) StopMetrics() {
	if o.bindDone != nil {
		o.bindOnce.Do(func() { close(o.bindDone) })
	}
	if o.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		o.http.Shutdown(ctx)
		cancel()
	}
}

// opsState is what the metrics read of the running daemon at each scrape;
// a reload changes it.
type opsState struct {
	passivePorts func() int       // ports in the passive range; 0 when the OS picks
	certificate  func() time.Time // when the certificate served now expires
	bansActive   func() int       // addresses banned now
	// upgraded says this process was started by an upgrading parent,
	// which still holds the metrics address until it drains: the bind is
	// retried in the background instead of failing the start.
	upgraded bool
}

// startOps registers the observers of cfg's logs and metrics on srv (before
// it serves), starts the metrics endpoint, and reopens the log files on
// SIGUSR1.
func startOps(cfg config.Config, srv *ftp.Server, st opsState, log *slog.Logger, stdout io.Writer) (*ops, error) {
	o := &ops{log: log}
	ok := false
	defer func() {
		if !ok {
			o.Close()
		}
	}()
	if cfg.Xferlog != "" {
		f, err := xferlog.Open(cfg.Xferlog)
		if err != nil {
			return nil, fmt.Errorf("xferlog: %w", err)
		}
		o.files = append(o.files, f)
		srv.Observe(xferlog.NewTransfers(f, nil, o.writeFailed(f)), 0)
	}
	if cfg.AuthLog != "" {
		format, err := xferlog.ParseFormat(cfg.AuthLogFormat)
		if err != nil {
			return nil, err
		}
		f, err := xferlog.Open(cfg.AuthLog)
		if err != nil {
			return nil, fmt.Errorf("auth log: %w", err)
		}
		o.files = append(o.files, f)
		srv.Observe(xferlog.NewAuth(f, format, nil, o.writeFailed(f)), 0)
	}
	if cfg.Metrics.Listen != "" {
		o.metrics = metrics.New(metrics.Options{
			Version:      version,
			Verbs:        ftp.Verbs(),
			PerUser:      cfg.Metrics.PerUser,
			Sessions:     srv.Sessions,
			PassivePorts: st.passivePorts,
			PassiveInUse: srv.PassiveInUse,
			CertExpiry:   st.certificate,
			BansActive:   st.bansActive,
		})
		srv.Observe(o.metrics, metricsQueue)
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", o.metrics.Handler())
		o.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
		serve := func(ln net.Listener) {
			if err := o.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics endpoint failed", "err", err)
			}
		}
		ln, err := net.Listen("tcp", cfg.Metrics.Listen)
		switch {
		case err == nil:
			go serve(ln)
			fmt.Fprintf(stdout, "Metrics: http://%s/metrics\n", ln.Addr())
		case st.upgraded && errors.Is(err, syscall.EADDRINUSE):
			// The old process serves the metrics until it drains.
			o.bindDone = make(chan struct{})
			go o.bindLater(cfg.Metrics.Listen, serve)
		default:
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	if len(o.files) > 0 {
		usr1 := make(chan os.Signal, 1)
		signal.Notify(usr1, syscall.SIGUSR1)
		done := make(chan struct{})
		var once sync.Once
		o.stopSig = func() { once.Do(func() { signal.Stop(usr1); close(done) }) }
		go func() {
			for {
				select {
				case <-usr1:
					if err := o.Reopen(); err != nil {
						log.Error("reopening the log files failed", "err", err)
					} else {
						log.Info("log files reopened", "signal", "SIGUSR1")
					}
				case <-done:
					return
				}
			}
		}()
	}
	ok = true
	return o, nil
}

// Reopen opens the xferlog and the auth log again by name, for logrotate
// (SIGUSR1) and for a reload. A file that cannot be opened keeps its old
// descriptor; the errors are joined.
func (o *ops) Reopen() error {
	var errs []error
	for _, f := range o.files {
		if err := f.Reopen(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.Path(), err))
		}
	}
	return errors.Join(errs...)
}

// Reloaded counts a reload in the metrics: err nil for one that took
// effect.
func (o *ops) Reloaded(err error) {
	if o.metrics != nil {
		o.metrics.Reloaded(err)
	}
}

// Close stops the metrics endpoint and closes the log files; the server
// must have shut down (its observers have their last events).
func (o *ops) Close() {
	if o.stopSig != nil {
		o.stopSig()
	}
	o.StopMetrics()
	for _, f := range o.files {
		f.Close()
	}
}

// writeFailed reports failed writes to f, at most once a minute.
func (o *ops) writeFailed(f *xferlog.File) func(error) {
	var mu sync.Mutex
	var last time.Time
	return func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(last) < time.Minute {
			return
		}
		last = time.Now()
		o.log.Error("writing a log file failed", "file", f.Path(), "err", err)
	}
}

// certExpiry is when the certificate served now expires.
func certExpiry(cm *certs.Manager) time.Time {
	if cm == nil {
		return time.Time{}
	}
	c, err := cm.GetCertificate(nil)
	if err != nil || c == nil || len(c.Certificate) == 0 {
		return time.Time{}
	}
	leaf := c.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return time.Time{}
		}
	}
	return leaf.NotAfter
}

// activeBans counts the addresses banned now; 0 without a store.
func activeBans(s *ban.SQLStore) int {
	if s == nil {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	list, err := s.List(ctx)
	if err != nil {
		return 0
	}
	n, now := 0, time.Now()
	for _, b := range list {
		if b.Active(now) {
			n++
		}
	}
	return n
}

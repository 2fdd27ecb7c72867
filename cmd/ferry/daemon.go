package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ferryftp/ferry/internal/ban"
	"github.com/ferryftp/ferry/internal/certs"
	"github.com/ferryftp/ferry/internal/config"
	"github.com/ferryftp/ferry/internal/db"
	"github.com/ferryftp/ferry/internal/ftp"
	"github.com/ferryftp/ferry/internal/quota/sqlquota"
	"github.com/ferryftp/ferry/internal/storage/local"
	"github.com/ferryftp/ferry/internal/storage/s3/dbjournal"
	"github.com/ferryftp/ferry/internal/systemd"
	"github.com/ferryftp/ferry/internal/users"
	"github.com/ferryftp/ferry/internal/users/sqlstore"
)

// daemon is a running `ferry serve`: the engine, what its site was built
// from, and what reloads and upgrades it. reload and upgrade run one at a
// time (mu); everything the engine reads is swapped whole.
type daemon struct {
	// resolve reads the settings again (the file, then the flags given at
	// start over it); nil refuses reloads.
	resolve func() (config.Config, error)
	log     *slog.Logger
	level   *slog.LevelVar // the log level, changed by a reload; may be nil
	stdout  io.Writer
	notify  *systemd.Notifier

	srv      *ftp.Server
	database *db.DB             // users, bans and quota usage; closed last
	node     *db.Node           // this server in the nodes table: heartbeats, releases of gone servers
	journal  *dbjournal.Journal // on S3: the backend's journal, in the database
	store    *sqlstore.Store
	def      *liveDefender
	lns      *listenerSet
	ctl      *controlServer // nil when the socket could not be made
	child    bool           // started by an upgrading parent
	// handover is closed once a binary upgrade succeeded: this process
	// then drains its sessions and exits.
	handover     chan struct{}
	handoverOnce sync.Once

	mu        sync.Mutex    // serialises reload and upgrade; guards the fields below
	cfg       config.Config // the settings in force; Data is absolute
	stopWatch context.CancelFunc
	gen       int  // 1 at start, +1 per successful reload
	handedOff bool // an upgrade succeeded
	bans      *ban.SQLStore
	banOpts   ban.Options
	diag      *diagnosis // the NAT diagnosis; nil until started
	// acme obtains and renews the certificate when acme_domains is set;
	// made once at start (its settings cannot change by reload).
	acme *acmeService
	// stopFollow ends the current defender's Follow of the ban store's
	// changes; nil when none runs.
	stopFollow context.CancelFunc

	// s3 is the storage of a server on S3, made once at start: [storage]
	// does not change on reload, and its buffer budget is server-wide.
	s3 *s3Opener

	ops   *ops                          // metrics, xferlog and auth log
	certs atomic.Pointer[certs.Manager] // the certificate manager in use, for the metrics
}

// serveOptions are what runServe adds to serve: reloads re-run the flags
// and the file through resolve, and change the logger's level.
type serveOptions struct {
	resolve func() (config.Config, error)
	level   *slog.LevelVar
}

// serve runs the server until ctx ends, then shuts down gracefully. It
// cannot reload: see serveWith.
func serve(ctx context.Context, cfg config.Config, log *slog.Logger, stdout io.Writer) error {
	return serveWith(ctx, cfg, log, stdout, serveOptions{})
}

// serveWith runs the server until ctx ends (SIGTERM), then shuts down
// gracefully, or until a binary upgrade hands the listeners over, then
// drains. SIGHUP and `ferry reload` reload the settings; SIGUSR2 and
// `ferry upgrade` start the binary found at the executable's path.
func serveWith(ctx context.Context, cfg config.Config, log *slog.Logger, stdout io.Writer, o serveOptions) error {
	data, err := filepath.Abs(cfg.Data)
	if err != nil {
		return err
	}
	cfg.Data = data
	d := &daemon{
		resolve:  o.resolve,
		log:      log,
		level:    o.level,
		stdout:   stdout,
		notify:   systemd.NewNotifier(),
		cfg:      cfg,
		gen:      1,
		handover: make(chan struct{}),
	}
	// What an upgrading parent passed (listeners, control socket, ready
	// pipe); until the start succeeds, a failure is reported on the pipe.
	inh, err := takeInheritance()
	if err != nil {
		return err
	}
	d.child = inh != nil
	err = d.start(ctx, inh)
	if err != nil {
		// Cleaned up before the parent hears it, which may kill this
		// process at once.
		d.closeAll()
	}
	if inh != nil {
		inh.closeUnused()
		if err == nil {
			if d.ctl != nil {
				d.ctl.owned = true
			}
			// Before the parent hears it: the parent may exit at once, and
			// systemd must know the new main PID by then.
			d.notify.MainPID(os.Getpid(), d.statusLine())
		}
		inh.report(err)
	}
	if err != nil {
		return err
	}
	return d.run(ctx)
}

// start opens everything the server needs, binds or takes its listeners and
// starts serving; the caller reports the result to an upgrading parent.
func (d *daemon) start(ctx context.Context, inh *inheritance) error {
	cfg := d.cfg
	onS3 := cfg.Storage.Backend == "s3"
	var err error
	if onS3 {
		// The files are in the bucket: the data directory holds the
		// user store and the TLS certificate only.
		err = os.MkdirAll(cfg.Data, 0o755)
	} else {
		err = ftp.PrepareData(cfg.Data)
	}
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	// S3 first: a bucket that cannot be used stops the start before
	// anything else is made.
	if onS3 {
		// The journal of multipart uploads and directory renames is in
		// the database, opened below: it is bound to it then.
		d.journal = &dbjournal.Journal{}
		if d.s3, err = openS3(ctx, cfg, d.log, d.journal); err != nil {
			return fmt.Errorf("S3 storage: %w", err)
		}
		if os.Getenv("GOMEMLIMIT") == "" {
			debug.SetMemoryLimit(s3MemoryLimit(cfg))
			d.log.Info("soft memory limit set", "bytes", s3MemoryLimit(cfg))
		}
	}
	// One database for users and bans; one that cannot be reached is
	// retried until it answers, ctx ends or database.start_timeout passes.
	database, err := openDatabaseRetry(ctx, d.log, cfg.Data, cfg.Database.URL, dbOptions(cfg.Data, cfg.Database), cfg.Database.StartTimeout.Duration)
	if err != nil {
		return err
	}
	d.database = database
	d.log.Info("database open", "database", database.String(), "engine", string(database.Dialect()))
	// Quota usage is in the database on both engines, so that the CLI and
	// every server on it read the same counts; the node's heartbeat lets
	// the others release what this server's uploads hold if it dies.
	d.node, err = database.StartNode(ctx, db.NodeOptions{
		Heartbeat: cfg.Database.NodeHeartbeat.Duration,
		Timeout:   cfg.Database.NodeTimeout.Duration,
		Info:      fmt.Sprintf("ferry %s pid %d data %s", version, os.Getpid(), cfg.Data),
		Log:       d.log,
	})
	if err != nil {
		return err
	}
	if d.journal != nil {
		d.journal.Bind(database, d.node)
	}
	chunk := cfg.Database.QuotaChunk
	if chunk == 0 {
		chunk = -1 // sqlquota: each write's own bytes
	}
	quotas := sqlquota.New(database, d.node, sqlquota.Options{Chunk: chunk, Log: d.log})
	// One Verifier for the whole server: its budget bounds the memory of
	// every password check at once.
	d.store = sqlstore.New(database, sqlstore.Options{Verifier: users.NewVerifier(hashMemory(cfg))})
	if len(cfg.ACMEDomains) > 0 {
		// The self-signed certificate serves until the first order
		// succeeds.
		fallback, err := certs.New(certs.Options{DataDir: cfg.Data, Logger: d.log})
		if err != nil {
			return fmt.Errorf("TLS certificate: %w", err)
		}
		if d.acme, err = startACME(cfg, d.database, d.node, fallback, d.log, d.stdout, inh != nil); err != nil {
			return err
		}
	}
	site, cm, err := d.buildSite(cfg)
	if err != nil {
		return err
	}
	d.def = &liveDefender{}
	d.srv = &ftp.Server{Logger: d.log, Defender: d.def, QuotaStore: quotas}
	if err := d.srv.SetSite(site); err != nil {
		return err
	}
	d.diag = startDiagnosis(d.srv, cfg, d.log)
	if err := d.openBans(cfg); err != nil {
		return err
	}
	d.configureBans(cfg)
	d.watchCerts(cm)
	// Metrics, xferlog and auth log: observers registered before the
	// server serves, closed after its shutdown.
	d.ops, err = startOps(cfg, d.srv, opsState{
		passivePorts: func() int {
			d.mu.Lock()
			lo, hi := d.cfg.PassiveRange()
			d.mu.Unlock()
			if lo == 0 {
				return 0
			}
			return hi - lo + 1
		},
		certificate: func() time.Time { return certExpiry(d.certs.Load()) },
		bansActive: func() int {
			d.mu.Lock()
			b := d.bans
			d.mu.Unlock()
			return activeBans(b)
		},
		upgraded: inh != nil,
	}, d.log, d.stdout)
	if err != nil {
		return err
	}

	d.ctl, err = startControl(d, filepath.Join(cfg.Data, controlSocketName), inh.controlFor(filepath.Join(cfg.Data, controlSocketName)))
	if err != nil {
		return err
	}
	if d.ctl == nil {
		d.log.Warn("no control socket: ferry reload and ferry upgrade cannot reach this server; use SIGHUP and SIGUSR2", "path", filepath.Join(cfg.Data, controlSocketName))
	}

	activated, err := systemd.Listeners()
	if err != nil {
		return err
	}
	d.lns = newListenerSet(d.srv, d.stdout)
	if err := d.lns.start(cfg, inh.listenersOrNil(), activated); err != nil {
		return err
	}
	// Leftovers of uploads cut by a crash: the old files are intact, the
	// temporary ones go. Not after an upgrade: the old process's uploads
	// are still running. On S3, multipart uploads older than
	// s3_orphan_age are aborted now and periodically (another server, or
	// the process this one upgraded, may have younger ones running).
	if onS3 {
		// The journal knows which servers are gone: their uploads are
		// aborted within a node_timeout or so of it, not only at
		// s3_orphan_age.
		interval := min(sweepInterval(cfg.Storage.S3OrphanAge.Duration), cfg.Database.NodeTimeout.Duration)
		go sweepS3(ctx, d.s3, cfg.Storage.S3OrphanAge.Duration, interval, d.log)
	} else if inh == nil {
		started := time.Now()
		opener := site.Storage.(*local.Opener)
		go func() {
			if n, err := opener.Sweep(ctx, started); n > 0 || err != nil {
				d.log.Info("swept interrupted uploads", "removed", n, "err", err)
			}
		}()
	}

	ports := cfg.PassivePorts
	if ports == "" || ports == "0" {
		ports = "any (chosen by the OS)"
	}
	fmt.Fprintf(d.stdout, "Passive ports: %s\n", ports)
	if onS3 {
		where := "s3://" + cfg.Storage.S3Bucket + "/"
		if cfg.Storage.S3Prefix != "" {
			where += cfg.Storage.S3Prefix + "/"
		}
		fmt.Fprintf(d.stdout, "Data directory: %s (user store and TLS certificate)\n", cfg.Data)
		fmt.Fprintf(d.stdout, "Storage: %s (anonymous users see %spublic/, user homes are %shome/NAME/)\n", where, where, where)
	} else {
		fmt.Fprintf(d.stdout, "Data directory: %s (anonymous users see %s)\n", cfg.Data, filepath.Join(cfg.Data, "public"))
	}
	fp := cm.Fingerprint()
	if d.acme != nil {
		fp = d.acme.fingerprint() + " (ACME)"
	}
	fmt.Fprintf(d.stdout, "TLS certificate SHA-256: %s\n", fp)
	// A url with a password (or a query, where libpq takes one) is not
	// printed: the CLI gets it from FERRY_DATABASE.
	hint := fmt.Sprintf("printf 'secret\\n' | ferry user add NAME --data %s", cfg.Data)
	switch u := cfg.Database.URL; {
	case u == config.DefaultDatabaseURL:
	case db.Redact(u) == u:
		hint += " --database '" + u + "'"
	default:
		hint = fmt.Sprintf("printf 'secret\\n' | %s='<the database url>' ferry user add NAME --data %s", config.DatabaseEnv, cfg.Data)
	}
	fmt.Fprintf(d.stdout, "Add a user: %s --password-stdin\n", hint)
	d.log.Info("started", "listen", strings.Join(d.lns.addrs(false), ","), "passive_ports", cfg.PassivePorts, "anonymous", cfg.Anonymous, "storage", cfg.Storage.Backend, "version", version, "pid", os.Getpid(), "upgraded", inh != nil)
	return nil
}

// run serves until ctx ends or an upgrade hands over, handling SIGHUP
// (reload) and SIGUSR2 (upgrade) meanwhile, then shuts down.
func (d *daemon) run(ctx context.Context) error {
	defer d.closeAll()
	if !d.child {
		d.notify.Ready(d.statusLine())
	}
	if iv, ok := systemd.WatchdogInterval(); ok {
		go d.watchdog(ctx, iv/2)
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR2)
	defer signal.Stop(sigs)

	for {
		select {
		case <-ctx.Done():
			return d.shutdown()
		case <-d.handover:
			return d.drain()
		case err := <-d.lns.errc:
			d.srv.Shutdown(context.Background())
			return err
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP:
				d.reload()
			case syscall.SIGUSR2:
				go d.upgrade()
			}
		}
	}
}

// shutdown is the graceful stop of SIGTERM: running transfers get
// shutdown_grace (Shutdown reads it from the site's settings); a second
// signal aborts them at once.
func (d *daemon) shutdown() error {
	d.notify.Stopping("shutting down")
	d.mu.Lock()
	grace := d.cfg.ShutdownGrace.Duration
	d.mu.Unlock()
	d.log.Info("shutting down", "grace", grace.String())
	return d.stopServer(d.srv.Shutdown)
}

// drain ends this process after an upgrade: the new one accepts already.
// Running transfers get drain_timeout; idle sessions are told to reconnect.
// Nothing is said to systemd: the new process is the service now.
func (d *daemon) drain() error {
	d.mu.Lock()
	grace := d.cfg.DrainTimeout.Duration
	d.mu.Unlock()
	d.log.Info("upgrade: draining", "sessions", d.srv.Sessions(), "drain_timeout", grace.String())
	if d.ops != nil {
		d.ops.StopMetrics() // the new process takes the address over
	}
	return d.stopServer(func(ctx context.Context) error { return d.srv.Drain(ctx, grace) })
}

func (d *daemon) stopServer(stop func(context.Context) error) error {
	sctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(again)
	go func() {
		select {
		case <-again:
			d.log.Info("second signal: aborting the running transfers")
			cancel()
		case <-sctx.Done():
		}
	}()
	if err := stop(sctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// closeAll releases what start opened; safe on a half-started daemon.
func (d *daemon) closeAll() {
	if d.ops != nil {
		d.ops.Close() // first: its scrapes read the ban store
	}
	if d.diag != nil {
		// After Shutdown: the observers have had the last events.
		d.diag.stop()
	}
	if d.acme != nil {
		d.acme.stop()
	}
	if d.lns != nil {
		d.lns.closeAll()
	}
	if d.ctl != nil {
		d.ctl.close(!d.handedOffNow())
	}
	d.mu.Lock()
	if d.stopWatch != nil {
		d.stopWatch()
	}
	if d.stopFollow != nil {
		d.stopFollow()
	}
	if d.bans != nil {
		d.bans.Close()
	}
	d.mu.Unlock()
	if d.store != nil {
		d.store.Close()
	}
	if d.node != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := d.node.Close(ctx); err != nil {
			d.log.Warn("leaving the nodes table failed: the others release this server's quota reservations after node_timeout", "err", err)
		}
		cancel()
	}
	if d.database != nil {
		d.database.Close()
	}
	if d.s3 != nil {
		d.s3.b.Close()
	}
}

func (d *daemon) handedOffNow() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.handedOff
}

// watchdog pings systemd's watchdog every period while the server runs.
func (d *daemon) watchdog(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	d.notify.Watchdog()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.handover:
			return
		case <-t.C:
			d.notify.Watchdog()
		}
	}
}

// statusLine is the STATUS systemd shows.
func (d *daemon) statusLine() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.statusLineLocked()
}

func (d *daemon) statusLineLocked() string {
	return fmt.Sprintf("serving on %s; %d sessions; generation %d", strings.Join(d.lns.addrs(false), ", "), d.srv.Sessions(), d.gen)
}

// pid is this process's ID.
func pid() int { return os.Getpid() }

// buildSite compiles cfg into a site: settings, a certificate manager for
// its files, the TLS config and the storage opener with its protected
// paths. Nothing is installed: a reload that fails later changes nothing.
func (d *daemon) buildSite(cfg config.Config) (*ftp.Site, *certs.Manager, error) {
	data := cfg.Data
	cm, err := certs.New(certs.Options{CertFile: cfg.TLSCert, KeyFile: cfg.TLSKey, DataDir: data, Logger: d.log})
	if err != nil {
		return nil, nil, fmt.Errorf("TLS certificate: %w", err)
	}
	tlsCfg := &tls.Config{GetCertificate: cm.GetCertificate}
	if d.acme != nil {
		tlsCfg.GetCertificate = d.acme.m.GetCertificate
	}
	if cfg.TLSClientCA != "" {
		pem, err := os.ReadFile(cfg.TLSClientCA)
		if err != nil {
			return nil, nil, fmt.Errorf("client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("client CA %s: no PEM certificates found", cfg.TLSClientCA)
		}
		// Certificates are asked for, not demanded: users marked
		// "certificate required" are checked at login.
		tlsCfg.ClientCAs = pool
		tlsCfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	settings, err := engineSettings(cfg)
	if err != nil {
		return nil, nil, err
	}
	if d.s3 != nil {
		// On S3 the anonymous root DATA/public is the prefix public/
		// (s3Location).
		return &ftp.Site{Settings: settings, Auth: d.store, TLS: tlsCfg, Storage: d.s3}, cm, nil
	}
	// Local disk storage: no home may expose the server's own files, and
	// the anonymous tree is checked now, so a bad layout fails the start.
	keyFile := cfg.TLSKey
	if keyFile != "" {
		keyFile, _ = filepath.Abs(keyFile)
	}
	opener := &local.Opener{
		Protected: protectedPaths(data, cfg.Database.URL, keyFile),
		SweepDirs: []string{filepath.Join(data, "public"), filepath.Join(data, "home")},
	}
	if err := local.CheckRoot(settings.AnonymousRoot, opener.Protected); err != nil {
		return nil, nil, fmt.Errorf("anonymous root: %w", err)
	}
	return &ftp.Site{Settings: settings, Auth: d.store, TLS: tlsCfg, Storage: opener}, cm, nil
}

// watchCerts makes cm the watched certificate manager (files polled every
// 10 s), ending the watch of the one before. Called with mu held or before
// the daemon runs.
func (d *daemon) watchCerts(cm *certs.Manager) {
	if d.stopWatch != nil {
		d.stopWatch()
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.stopWatch = cancel
	d.certs.Store(cm)
	go cm.Watch(ctx, 10*time.Second, nil)
}

// openBans opens the ban store when cfg bans and it is not open yet: the
// part of configureBans that can fail. Called with mu held or before the
// daemon runs.
func (d *daemon) openBans(cfg config.Config) error {
	if cfg.BanThreshold <= 0 || d.bans != nil {
		return nil
	}
	d.bans = ban.NewSQLStore(d.database)
	return nil
}

// configureBans installs the defender cfg asks for (none when
// ban_threshold is 0) after openBans. The defender is replaced only when
// a ban setting changed, so scores survive a reload that does not touch
// them. Called with mu held or before the daemon runs.
//
// The defender follows the ban store's change notifications (a ban decided
// by another process, `ferry ban add|del`), which invalidate its cache at
// once, so it keeps answers for ban.FollowCacheTTL; when listening fails
// (the database is away at a reload) it keeps them for
// ban.DefaultCacheTTL, one second, as the only bound.
func (d *daemon) configureBans(cfg config.Config) {
	if cfg.BanThreshold <= 0 || d.bans == nil {
		d.def.set(nil)
		d.banOpts = ban.Options{}
		d.endFollow()
		return
	}
	o := ban.Options{
		Threshold: cfg.BanThreshold,
		Window:    cfg.BanWindow.Duration,
		Duration:  cfg.BanDuration.Duration,
		Allow:     cfg.BanAllowPrefixes(),
		Logger:    d.log,
	}
	if d.def.get() != nil && reflect.DeepEqual(o, d.banOpts) {
		return
	}
	d.banOpts = o
	d.endFollow()
	ctx, cancel := context.WithCancel(context.Background())
	changes, err := d.bans.Changes(ctx)
	if err != nil {
		cancel()
		d.log.Warn("cannot follow ban changes; another process's bans apply here within a second", "err", err)
		d.def.set(ftp.BanDefender(ban.NewDefender(d.bans, o)))
		return
	}
	o.CacheTTL = ban.FollowCacheTTL
	def := ban.NewDefender(d.bans, o)
	go def.Follow(changes)
	d.stopFollow = cancel
	d.def.set(ftp.BanDefender(def))
}

// endFollow stops the Follow of the defender before. Called with mu held
// or before the daemon runs.
func (d *daemon) endFollow() {
	if d.stopFollow != nil {
		d.stopFollow()
		d.stopFollow = nil
	}
}

// liveDefender is the server's Defender: the ban settings of the last
// reload, or none.
type liveDefender struct {
	cur atomic.Pointer[ftp.Defender]
}

func (l *liveDefender) set(d ftp.Defender) {
	if d == nil {
		l.cur.Store(nil)
		return
	}
	l.cur.Store(&d)
}

func (l *liveDefender) get() ftp.Defender {
	if p := l.cur.Load(); p != nil {
		return *p
	}
	return nil
}

func (l *liveDefender) Banned(ctx context.Context, ip netip.Addr) (time.Time, bool) {
	if d := l.get(); d != nil {
		return d.Banned(ctx, ip)
	}
	return time.Time{}, false
}

func (l *liveDefender) Record(ctx context.Context, ip netip.Addr, e int) (bool, error) {
	if d := l.get(); d != nil {
		return d.Record(ctx, ip, e)
	}
	return false, nil
}

// hashMemory is the budget of the server's password checks: the
// auth_hash_memory setting, whose default (0) on S3 is at most two checks,
// since there the checks of a login burst come on top of the uploads' part
// buffers (docs/storage.md, "Outages and memory").
func hashMemory(cfg config.Config) int64 {
	if cfg.AuthHashMemory == 0 && cfg.Storage.Backend == "s3" {
		return users.DefaultHashMemoryBeside()
	}
	return cfg.AuthHashMemory
}

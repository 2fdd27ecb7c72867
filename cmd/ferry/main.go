// Command ferry is the Ferry FTP/FTPS server and its administration tool.
// This file is wiring only: the protocol lives in internal/ftp.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ferryftp/ferry/internal/ban"
	"github.com/ferryftp/ferry/internal/certs"
	"github.com/ferryftp/ferry/internal/config"
	"github.com/ferryftp/ferry/internal/escape"
	"github.com/ferryftp/ferry/internal/ftp"
	"github.com/ferryftp/ferry/internal/storage/local"
	"github.com/ferryftp/ferry/internal/users"
	"github.com/ferryftp/ferry/internal/users/sqlstore"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `Ferry, a fast and secure FTP/FTPS server.

Usage:
  ferry serve [flags]              start the server (ferry serve -h lists the flags)
  ferry user add|list|passwd|del|disable|enable ...   manage users
  ferry ban list|add|del ...       manage banned addresses
  ferry cert show [--data DIR]     print the current TLS certificate (fingerprint as FileZilla shows it)
  ferry config check FILE | example
  ferry version
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return runServe(args[1:], stdout, stderr)
	case "user":
		return runUser(args[1:], stdin, stdout, stderr)
	case "ban":
		return runBan(args[1:], stdout, stderr)
	case "config":
		return runConfig(args[1:], stdout, stderr)
	case "cert":
		return runCert(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "ferry", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "ferry: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func runServe(args []string, stdout, stderr io.Writer) int {
	cfg, err := config.Resolve(args, "ferry serve", stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "ferry serve: %s\n", errText(err))
		return 2
	}
	log := newLogger(cfg, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, cfg, log, stdout); err != nil {
		fmt.Fprintf(stderr, "ferry serve: %s\n", errText(err))
		return 1
	}
	return 0
}

// errText is err's message for the terminal, each line with its control
// characters escaped (escape.Display): it may quote a name, a path or an
// address given on the command line or found in the user store.
func errText(err error) string {
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		lines[i] = escape.Display(l)
	}
	return strings.Join(lines, "\n")
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	// Logged values (paths, names, user names) come from clients and
	// disks: control characters in them are escaped (package escape).
	if cfg.LogFormat == "json" {
		return slog.New(escape.Handler(slog.NewJSONHandler(w, opts)))
	}
	return slog.New(escape.Handler(slog.NewTextHandler(w, opts)))
}

// serve runs the server until ctx ends, then shuts down gracefully.
func serve(ctx context.Context, cfg config.Config, log *slog.Logger, stdout io.Writer) error {
	if cfg.Storage.Backend != "local" {
		return fmt.Errorf("storage backend %q is not wired into ferry serve yet", cfg.Storage.Backend)
	}
	data, err := filepath.Abs(cfg.Data)
	if err != nil {
		return err
	}
	cfg.Data = data
	if err := ftp.PrepareData(data); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	// One Verifier for the whole server: its budget bounds the memory of
	// every password check at once.
	store, err := openUserStore(data, cfg.Database.URL, sqlstore.Options{Verifier: users.NewVerifier(cfg.AuthHashMemory)})
	if err != nil {
		return fmt.Errorf("user store: %w", err)
	}
	defer store.Close()

	cm, err := certs.New(certs.Options{CertFile: cfg.TLSCert, KeyFile: cfg.TLSKey, DataDir: data, Logger: log})
	if err != nil {
		return fmt.Errorf("TLS certificate: %w", err)
	}
	tlsCfg := &tls.Config{GetCertificate: cm.GetCertificate}
	if cfg.TLSClientCA != "" {
		pem, err := os.ReadFile(cfg.TLSClientCA)
		if err != nil {
			return fmt.Errorf("client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("client CA %s: no PEM certificates found", cfg.TLSClientCA)
		}
		// Certificates are asked for, not demanded: users marked
		// "certificate required" are checked at login.
		tlsCfg.ClientCAs = pool
		tlsCfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go cm.Watch(ctx, 10*time.Second, hup)

	settings, err := engineSettings(cfg)
	if err != nil {
		return err
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
		return fmt.Errorf("anonymous root: %w", err)
	}
	srv := &ftp.Server{Logger: log}
	if err := srv.SetSite(&ftp.Site{Settings: settings, Auth: store, TLS: tlsCfg, Storage: opener}); err != nil {
		return err
	}
	if cfg.BanThreshold > 0 {
		_, bansDB, err := databasePaths(data, cfg.Database.URL)
		if err != nil {
			return err
		}
		bans, err := ban.OpenSQL(bansDB)
		if err != nil {
			return fmt.Errorf("ban store: %w", err)
		}
		defer bans.Close()
		srv.Defender = ftp.BanDefender(ban.NewDefender(bans, ban.Options{
			Threshold: cfg.BanThreshold,
			Window:    cfg.BanWindow.Duration,
			Duration:  cfg.BanDuration.Duration,
			Allow:     cfg.BanAllowPrefixes(),
			Logger:    log,
		}))
	}

	// Leftovers of uploads cut by a crash: the old files are intact, the
	// temporary ones go.
	started := time.Now()
	go func() {
		if n, err := opener.Sweep(ctx, started); n > 0 || err != nil {
			log.Info("swept interrupted uploads", "removed", n, "err", err)
		}
	}()

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln, false) }()
	fmt.Fprintf(stdout, "Ferry listening on %s\n", ln.Addr())
	if cfg.ImplicitTLSListen != "" {
		iln, err := net.Listen("tcp", cfg.ImplicitTLSListen)
		if err != nil {
			ln.Close()
			return err
		}
		go func() { errc <- srv.Serve(iln, true) }()
		fmt.Fprintf(stdout, "Ferry implicit FTPS on %s\n", iln.Addr())
	}
	ports := cfg.PassivePorts
	if ports == "" || ports == "0" {
		ports = "any (chosen by the OS)"
	}
	fmt.Fprintf(stdout, "Passive ports: %s\n", ports)
	fmt.Fprintf(stdout, "Data directory: %s (anonymous users see %s)\n", data, filepath.Join(data, "public"))
	fmt.Fprintf(stdout, "TLS certificate SHA-256: %s\n", cm.Fingerprint())
	dbFlag := ""
	if cfg.Database.URL != config.DefaultDatabaseURL {
		dbFlag = " --database '" + cfg.Database.URL + "'"
	}
	fmt.Fprintf(stdout, "Add a user: printf 'secret\\n' | ferry user add NAME --data %s%s --password-stdin\n", cfg.Data, dbFlag)
	log.Info("started", "listen", ln.Addr().String(), "passive_ports", cfg.PassivePorts, "anonymous", cfg.Anonymous, "version", version)

	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, ftp.ErrServerClosed) {
			srv.Shutdown(context.Background())
			return err
		}
	}
	// Running transfers get shutdown_grace to finish (Shutdown reads it
	// from the site's settings); a second signal aborts them at once.
	log.Info("shutting down", "grace", cfg.ShutdownGrace.Duration.String())
	sctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(again)
	go func() {
		select {
		case <-again:
			log.Info("second signal: aborting the running transfers")
			cancel()
		case <-sctx.Done():
		}
	}()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// protectedPaths are the server's own files that no user's home may equal
// or contain: the data directory (with the ban database and the self-signed
// certificate's key), its tls/, the user database named by dbURL (wherever
// it lives) and the directory of a configured TLS key. Paths are made
// absolute.
func protectedPaths(dataDir, dbURL, tlsKey string) []string {
	paths := []string{dataDir, filepath.Join(dataDir, "tls")}
	if p, err := (config.Database{URL: dbURL}).SQLitePath(); err == nil {
		if !filepath.IsAbs(p) {
			p = filepath.Join(dataDir, p)
		}
		paths = append(paths, p)
	}
	if tlsKey != "" {
		paths = append(paths, filepath.Dir(tlsKey))
	}
	for i, p := range paths {
		if abs, err := filepath.Abs(p); err == nil {
			paths[i] = abs
		}
	}
	return paths
}

// Command ferry is the Ferry FTP/FTPS server and its administration tool.
// This file is wiring only: the protocol lives in internal/ftp.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/ferryftp/ferry/internal/config"
	"github.com/ferryftp/ferry/internal/escape"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `Ferry, a fast and secure FTP/FTPS server.

Usage:
  ferry serve [flags]              start the server (ferry serve -h lists the flags)
  ferry user add|list|passwd|del|disable|enable ...   manage users
  ferry ban list|add|del ...       manage banned addresses
  ferry cert show [--data DIR]     print the current TLS certificate (fingerprint as FileZilla shows it)
  ferry db status                  show the database's engine and schema version
  ferry diagnose [--data DIR]      print a running server's NAT and passive-mode findings
  ferry probe HOST[:PORT]          test a server from outside like a client: PASV, EPSV, TLS, reuse
  ferry config check FILE | example
  ferry reload|upgrade|status [--data DIR]   reload the running server's settings, upgrade its binary, show it
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
	case "db":
		return runDB(args[1:], stdout, stderr)
	case "config":
		return runConfig(args[1:], stdout, stderr)
	case "cert":
		return runCert(args[1:], stdout, stderr)
	case "reload", "upgrade", "status":
		return runControl(args[0], args[1:], stdout, stderr)
	case "diagnose":
		return runDiagnose(args[1:], stdout, stderr)
	case "probe":
		return runProbe(args[1:], stdin, stdout, stderr)
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
	log, level := newLeveledLogger(cfg, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o := serveOptions{
		resolve: func() (config.Config, error) { return config.Resolve(args, "ferry serve", io.Discard) },
		level:   level,
	}
	if err := serveWith(ctx, cfg, log, stdout, o); err != nil {
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
	log, _ := newLeveledLogger(cfg, w)
	return log
}

// newLeveledLogger is newLogger with the level a reload may change.
func newLeveledLogger(cfg config.Config, w io.Writer) (*slog.Logger, *slog.LevelVar) {
	var l slog.Level
	l.UnmarshalText([]byte(cfg.LogLevel))
	level := new(slog.LevelVar)
	level.Set(l)
	opts := &slog.HandlerOptions{Level: level}
	// Logged values (paths, names, user names) come from clients and
	// disks: control characters in them are escaped (package escape).
	if cfg.LogFormat == "json" {
		return slog.New(escape.Handler(slog.NewJSONHandler(w, opts))), level
	}
	return slog.New(escape.Handler(slog.NewTextHandler(w, opts))), level
}

// protectedPaths are the server's own files that no user's home may equal
// or contain: the data directory (with the self-signed certificate's key),
// its tls/, the SQLite database named by dbURL (wherever it lives) and the
// directory of a configured TLS key. Paths are made
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

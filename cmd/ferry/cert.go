package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ferryftp/ferry/internal/acme"
	"github.com/ferryftp/ferry/internal/acme/sqlacme"
	"github.com/ferryftp/ferry/internal/certs"
	"github.com/ferryftp/ferry/internal/config"
	"github.com/ferryftp/ferry/internal/db"
	"github.com/ferryftp/ferry/internal/escape"
)

const certUsage = `Usage:
  ferry cert show [--data DIR] [--database URL] [--cert FILE]   print the server's current certificate

Without --cert it reads the certificate the server serves: on a PostgreSQL
database (--database, else $FERRY_DATABASE) the ACME one kept there, shared
by every server, when there is one; else from the data directory (default
./ferry-data) the ACME one (DIR/acme/cert.pem) when it exists, else the
self-signed one (DIR/tls/cert.pem). The fingerprint is the
SHA-256 of the certificate, as FileZilla shows it when it asks to trust it.
`

// runCert runs `ferry cert SUBCOMMAND ...` (args start after "cert").
func runCert(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		io.WriteString(stderr, certUsage)
		return 2
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		io.WriteString(stdout, certUsage)
		return 0
	case "show":
	default:
		fmt.Fprintf(stderr, "ferry cert: unknown command %q\n%s", escape.Display(args[0]), certUsage)
		return 2
	}
	fset := flag.NewFlagSet("ferry cert show", flag.ContinueOnError)
	fset.SetOutput(stderr)
	data := fset.String("data", config.Defaults().Data, "data directory")
	file := fset.String("cert", "", "a PEM certificate file to show instead")
	dbURL := fset.String("database", "", databaseFlagHelp)
	if err := fset.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fset.NArg() > 0 {
		fmt.Fprintf(stderr, "ferry cert show: unexpected argument %q\n%s", escape.Display(fset.Arg(0)), certUsage)
		return 2
	}
	name, source := *file, "file"
	var in certs.Info
	var err error
	if name == "" {
		var found bool
		if name, in, found, err = sharedACMECert(cliDatabaseURL(*dbURL), *data); err != nil {
			fmt.Fprintf(stderr, "ferry cert show: %s\n", errText(err))
			return 1
		}
		source = "acme, shared"
		if !found {
			name, source = filepath.Join(*data, acme.CertFile), "acme"
			if _, err := os.Stat(name); errors.Is(err, fs.ErrNotExist) {
				name, source = filepath.Join(*data, "tls", "cert.pem"), "self-signed"
			}
		}
	}
	if source != "acme, shared" {
		in, err = certs.ReadInfo(name)
	}
	if err != nil {
		fmt.Fprintf(stderr, "ferry cert show: %s\n", errText(err))
		return 1
	}
	if source == "self-signed" && !in.Generated {
		source = "file in the data directory"
	}
	left := time.Until(in.NotAfter).Round(time.Hour)
	state := fmt.Sprintf("valid for %s more", fmtDays(left))
	if left <= 0 {
		state = "EXPIRED"
	}
	fmt.Fprintf(stdout, "File:        %s (%s)\n", escape.Display(name), source)
	fmt.Fprintf(stdout, "Subject:     %s\n", escape.Display(in.Subject))
	fmt.Fprintf(stdout, "Issuer:      %s\n", escape.Display(in.Issuer))
	fmt.Fprintf(stdout, "Names:       %s\n", escape.Display(strings.Join(in.SANs, ", ")))
	fmt.Fprintf(stdout, "Not before:  %s\n", in.NotBefore.UTC().Format(time.RFC3339))
	fmt.Fprintf(stdout, "Expires:     %s (%s)\n", in.NotAfter.UTC().Format(time.RFC3339), state)
	fmt.Fprintf(stdout, "SHA-256:     %s\n", in.Fingerprint)
	fmt.Fprintf(stdout, "Key SHA-256: %s\n", in.KeySHA256)
	if in.Chain > 1 {
		fmt.Fprintf(stdout, "Chain:       %d certificates\n", in.Chain)
	}
	return 0
}

// fmtDays renders d in days and hours.
func fmtDays(d time.Duration) string {
	days := int(d / (24 * time.Hour))
	hours := int(d % (24 * time.Hour) / time.Hour)
	if days == 0 {
		return fmt.Sprintf("%dh", hours)
	}
	return fmt.Sprintf("%dd %dh", days, hours)
}

// sharedACMECert describes the ACME certificate kept in a PostgreSQL
// database (package sqlacme); found is false on SQLite and when there is
// none.
func sharedACMECert(url, dataDir string) (where string, in certs.Info, found bool, err error) {
	if d, derr := db.ParseDialect(url); derr != nil || d != db.Postgres {
		return "", in, false, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	database, err := openDatabase(ctx, dataDir, url, db.Options{})
	if err != nil {
		return "", in, false, err
	}
	defer database.Close()
	s := sqlacme.New(database)
	pem, err := s.Get(ctx, acme.NameCert)
	if errors.Is(err, fs.ErrNotExist) {
		return "", in, false, nil
	}
	if err != nil {
		return "", in, false, err
	}
	where = s.Where(acme.NameCert)
	in, err = certs.ParseInfo(where, pem)
	return where, in, err == nil, err
}

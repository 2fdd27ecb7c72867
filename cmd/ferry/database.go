package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ferryftp/ferry/internal/config"
	"github.com/ferryftp/ferry/internal/db"
	"github.com/ferryftp/ferry/internal/escape"
)

// databaseFlagHelp is the help of --database of `ferry user`, `ferry ban`
// and `ferry db`.
const databaseFlagHelp = "the database as `URL`: sqlite:PATH (a relative PATH is inside the data directory) or postgres://USER:PASSWORD@HOST:PORT/DB?sslmode=…; " +
	"default $" + config.DatabaseEnv + ", else " + config.DefaultDatabaseURL + " (the server's [database] url)"

// cliDatabaseURL is the database a CLI command uses: --database when given,
// else FERRY_DATABASE, else the default (as `ferry serve` resolves it, but
// for the file, which the CLI does not read).
func cliDatabaseURL(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if env := os.Getenv(config.DatabaseEnv); env != "" {
		return env
	}
	return config.DefaultDatabaseURL
}

// dbOptions are the db.Options of the [database] settings.
func dbOptions(dataDir string, c config.Database) db.Options {
	return db.Options{
		DataDir:          dataDir,
		PoolSize:         c.PoolSize,
		StatementTimeout: c.StatementTimeout.Duration,
		ConnectTimeout:   c.ConnectTimeout.Duration,
	}
}

// openDatabase opens the database of url for a CLI command, creating the
// data directory (0700) for a new SQLite file. It never retries.
func openDatabase(ctx context.Context, dataDir, url string, o db.Options) (*db.DB, error) {
	o.DataDir = dataDir
	if _, ok := db.SQLitePath(url, dataDir); ok && !o.MustExist {
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, err
		}
	}
	return db.Open(ctx, url, o)
}

// Start-up retries of `ferry serve`: the first retry after retryFirst,
// doubling up to retryMax.
const (
	retryFirst = 500 * time.Millisecond
	retryMax   = 10 * time.Second
)

// openDatabaseRetry is openDatabase for `ferry serve`: a database it cannot
// reach (db.UnreachableError) is tried again with backoff, each failure
// logged, until it answers, ctx ends (SIGTERM) or limit passes (0: no
// limit). Any other error (a bad url, a newer schema) is returned at once.
func openDatabaseRetry(ctx context.Context, log *slog.Logger, dataDir, url string, o db.Options, limit time.Duration) (*db.DB, error) {
	start := time.Now()
	wait := retryFirst
	for attempt := 1; ; attempt++ {
		d, err := openDatabase(ctx, dataDir, url, o)
		var unreachable *db.UnreachableError
		if err == nil || !errors.As(err, &unreachable) {
			return d, err
		}
		if limit > 0 && time.Since(start)+wait > limit {
			return nil, fmt.Errorf("%w (gave up after %d attempts in %s: database.start_timeout)", err, attempt, time.Since(start).Round(time.Millisecond))
		}
		log.Warn("database unreachable, retrying", "database", unreachable.Display, "attempt", attempt, "retry_in", wait.String(), "err", unreachable.Err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (stopped while retrying)", err)
		case <-time.After(wait):
		}
		wait = min(2*wait, retryMax)
	}
}

const dbUsage = `Usage:
  ferry db status [--data DIR] [--database URL]   show the engine, the schema version and pending migrations

The database is --database URL, else $FERRY_DATABASE, else DIR/users.db
(sqlite:users.db). Migrations are applied by ferry serve, ferry user and
ferry ban when they open the database; status only reads.
`

// runDB runs `ferry db SUBCOMMAND ...`.
func runDB(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		io.WriteString(stderr, dbUsage)
		return 2
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		io.WriteString(stdout, dbUsage)
		return 0
	case "status":
	default:
		fmt.Fprintf(stderr, "ferry db: unknown command %q\n%s", args[0], dbUsage)
		return 2
	}
	fset := flag.NewFlagSet("ferry db status", flag.ContinueOnError)
	fset.SetOutput(stderr)
	data := fset.String("data", config.Defaults().Data, "data `DIR`: a relative sqlite:PATH is inside it")
	database := fset.String("database", "", databaseFlagHelp)
	pos, err := parseInterleaved(fset, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "ferry db status: unexpected argument %q\n", pos[0])
		fset.Usage()
		return 2
	}
	if err := dbStatus(context.Background(), stdout, *data, cliDatabaseURL(*database)); err != nil {
		fmt.Fprintf(stderr, "ferry db status: %s\n", errText(err))
		return 1
	}
	return 0
}

func dbStatus(ctx context.Context, w io.Writer, dataDir, url string) error {
	d, err := openDatabase(ctx, dataDir, url, db.Options{MustExist: true, NoMigrate: true})
	if db.IsNotExist(err) {
		p, _ := db.SQLitePath(url, dataDir)
		return fmt.Errorf("no database at %s (ferry serve or ferry user add creates it)", p)
	}
	if err != nil {
		return err
	}
	defer d.Close()
	st, err := d.Status(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "database:\t%s\n", escape.Display(d.String()))
	fmt.Fprintf(tw, "engine:\t%s\n", st.Dialect)
	fmt.Fprintf(tw, "schema version:\t%d\n", st.Version)
	fmt.Fprintf(tw, "this binary:\t%s, schema version %d\n", version, st.Latest)
	switch {
	case st.Newer:
		fmt.Fprintf(tw, "state:\tNEWER than this binary: upgrade Ferry; this binary refuses to use it\n")
	case len(st.Pending) == 0:
		fmt.Fprintf(tw, "state:\tup to date\n")
	default:
		fmt.Fprintf(tw, "state:\t%d pending migration(s), applied at the next start\n", len(st.Pending))
	}
	tw.Flush()
	if len(st.Applied) > 0 {
		fmt.Fprintln(w, "\napplied:")
		for _, a := range st.Applied {
			at := "(adopted from the release before schema_migrations)"
			if !a.At.IsZero() {
				at = a.At.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(w, "  %04d_%s  %s\n", a.Version, escape.Display(a.Name), at)
		}
	}
	if len(st.Pending) > 0 {
		var names []string
		for _, m := range st.Pending {
			names = append(names, fmt.Sprintf("%04d_%s", m.Version, m.Name))
		}
		fmt.Fprintf(w, "\npending:\n  %s\n", strings.Join(names, "\n  "))
	}
	return nil
}

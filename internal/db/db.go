// Package db is Ferry's one database: every piece of shared state (users,
// bans, and the tables later features add) lives in it, on SQLite (the
// embedded default, one machine) or PostgreSQL (shared by any number of
// Ferry processes). Open connects, then applies the embedded migrations
// (see migrate.go) so that the schema is the one this binary knows.
//
// Both engines run the same DML through database/sql: placeholders are $1,
// $2, …, which both accept; booleans are INTEGER 0/1 and times BIGINT
// (Unix micro- or nanoseconds), so that a value reads the same on either.
// Only DDL may differ per dialect (see migrate.go).
package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Dialect is a database engine.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Default settings, used for the zero values of Options.
const (
	DefaultPoolSize         = 10
	DefaultStatementTimeout = 10 * time.Second
	DefaultConnectTimeout   = 5 * time.Second
)

// Options are the settings of Open. Zero values take the defaults.
type Options struct {
	// DataDir is the directory a relative sqlite:PATH is in; "" is the
	// working directory.
	DataDir string
	// PoolSize is the most connections the *sql.DB keeps open (and so the
	// most statements running at once); DefaultPoolSize when 0. A
	// PostgreSQL server must allow every node's pool (plus the CLI's and
	// each Listen's one connection) within max_connections.
	PoolSize int
	// StatementTimeout bounds each statement: PostgreSQL's
	// statement_timeout, and on SQLite the time a statement waits for
	// another connection's write lock (busy_timeout).
	// DefaultStatementTimeout when 0.
	StatementTimeout time.Duration
	// ConnectTimeout bounds establishing one PostgreSQL connection (TCP,
	// TLS, authentication); DefaultConnectTimeout when 0. Unused on SQLite.
	ConnectTimeout time.Duration
	// MustExist makes Open of a sqlite:PATH whose file is missing fail
	// with an error wrapping fs.ErrNotExist instead of creating it, for the
	// commands that only read.
	MustExist bool
	// NoMigrate opens the database without applying migrations (for
	// `ferry db status`); the schema is not checked either.
	NoMigrate bool
}

func (o Options) withDefaults() Options {
	if o.PoolSize <= 0 {
		o.PoolSize = DefaultPoolSize
	}
	if o.StatementTimeout <= 0 {
		o.StatementTimeout = DefaultStatementTimeout
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	return o
}

// DB is an open database with its schema up to date. It is safe for
// concurrent use.
type DB struct {
	sql     *sql.DB
	dialect Dialect
	display string          // String(): no password
	path    string          // SQLite: the absolute file
	dsn     string          // SQLite: the driver name of the file, for Listen
	pgcfg   *pgx.ConnConfig // PostgreSQL: for Listen's own connections
	opts    Options
	hub     *hub // SQLite: in-process Notify deliveries

	closed context.Context // ends at Close, and with it every Listen
	close  context.CancelFunc
}

// Open connects to the database named by rawURL and applies the pending
// migrations. rawURL is one of
//
//	sqlite:PATH                       a file, relative to o.DataDir unless absolute
//	postgres://USER:PW@HOST:PORT/DB?sslmode=…  (or postgresql://)
//	host=… port=… user=… dbname=… sslmode=…   a libpq key=value DSN
//
// A new SQLite file and its directory are created with modes 0600 and
// 0700 (the database holds password hashes). Open fails on a database whose
// schema is newer than this binary's (see ErrNewerSchema). Errors never
// hold the password.
func Open(ctx context.Context, rawURL string, o Options) (*DB, error) {
	o = o.withDefaults()
	d, err := open(ctx, rawURL, o)
	if err != nil {
		return nil, err
	}
	d.closed, d.close = context.WithCancel(context.Background())
	if !o.NoMigrate {
		if err := d.migrate(ctx); err != nil {
			d.Close()
			return nil, fmt.Errorf("database %s: %w", d.display, err)
		}
	}
	return d, nil
}

// ParseDialect returns the engine that rawURL names, or an error saying what
// the accepted forms are. It does not connect.
func ParseDialect(rawURL string) (Dialect, error) {
	switch {
	case strings.HasPrefix(rawURL, "sqlite:"):
		p := strings.TrimPrefix(rawURL, "sqlite:")
		if p == "" || strings.ContainsRune(p, 0) {
			return "", fmt.Errorf("%q is not sqlite:PATH (a file name, taken literally)", Redact(rawURL))
		}
		return SQLite, nil
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		if _, err := url.Parse(rawURL); err != nil {
			return "", errors.New("the postgres:// url does not parse")
		}
		return Postgres, nil
	case isKeywordDSN(rawURL):
		return Postgres, nil
	}
	return "", fmt.Errorf("%q is neither sqlite:PATH nor a PostgreSQL url (postgres://USER:PASSWORD@HOST:PORT/DB?sslmode=require, or host=… dbname=… key=value pairs)", Redact(rawURL))
}

// isKeywordDSN reports whether s looks like a libpq key=value string.
func isKeywordDSN(s string) bool {
	f := strings.Fields(s)
	if len(f) == 0 {
		return false
	}
	for _, kv := range f {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return false
		}
	}
	return true
}

// SQLitePath returns the file a sqlite:PATH url names, joined to dataDir
// when relative, and false for any other url.
func SQLitePath(rawURL, dataDir string) (string, bool) {
	p, ok := strings.CutPrefix(rawURL, "sqlite:")
	if !ok || p == "" {
		return "", false
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(dataDir, p)
	}
	return p, true
}

func open(ctx context.Context, rawURL string, o Options) (*DB, error) {
	dialect, err := ParseDialect(rawURL)
	if err != nil {
		return nil, err
	}
	if dialect == SQLite {
		return openSQLite(rawURL, o)
	}
	return openPostgres(ctx, rawURL, o)
}

func openSQLite(rawURL string, o Options) (*DB, error) {
	p, _ := SQLitePath(rawURL, o.DataDir)
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil, err
	}
	if o.MustExist {
		if _, err := os.Stat(abs); err != nil {
			return nil, fmt.Errorf("database %s: %w", abs, err)
		}
	} else {
		if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
			return nil, fmt.Errorf("database %s: %w", abs, err)
		}
		// Create the file ourselves so that it gets 0600; SQLite gives its
		// WAL and shared-memory files the same mode.
		f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("database %s: %w", abs, err)
		}
		f.Close()
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", o.StatementTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	// Transactions take the write lock at BEGIN (BEGIN IMMEDIATE), so that
	// two writers wait for each other (busy_timeout) instead of failing on
	// lock upgrade, and so that migrate holds the lock from its first read.
	q.Set("_txlock", "immediate")
	dsn := (&url.URL{Scheme: "file", Path: abs, RawQuery: q.Encode()}).String()
	sdb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", abs, err)
	}
	sdb.SetMaxOpenConns(o.PoolSize)
	sdb.SetMaxIdleConns(min(o.PoolSize, 4))
	return &DB{sql: sdb, dialect: SQLite, display: "sqlite:" + abs, path: abs, dsn: dsn, opts: o, hub: newHub()}, nil
}

func openPostgres(ctx context.Context, rawURL string, o Options) (*DB, error) {
	display := Redact(rawURL)
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		// pgconn's parse errors hold the string: say only what is wrong.
		return nil, fmt.Errorf("database %s: cannot parse the PostgreSQL url or DSN", display)
	}
	cfg.ConnectTimeout = o.ConnectTimeout
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	if _, ok := cfg.RuntimeParams["statement_timeout"]; !ok {
		cfg.RuntimeParams["statement_timeout"] = fmt.Sprint(o.StatementTimeout.Milliseconds())
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "ferry"
	}
	sdb := stdlib.OpenDB(*cfg)
	sdb.SetMaxOpenConns(o.PoolSize)
	sdb.SetMaxIdleConns(o.PoolSize)
	sdb.SetConnMaxIdleTime(5 * time.Minute)
	d := &DB{sql: sdb, dialect: Postgres, display: display, pgcfg: cfg, opts: o}
	pctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout+o.StatementTimeout)
	defer cancel()
	if err := sdb.PingContext(pctx); err != nil {
		sdb.Close()
		return nil, &UnreachableError{Display: display, Err: err}
	}
	return d, nil
}

// UnreachableError is Open's error when the PostgreSQL server could not be
// reached or refused the connection: `ferry serve` retries on it.
type UnreachableError struct {
	Display string // the url without its password
	Err     error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("database %s unreachable: %v", e.Display, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// SQL returns the database/sql handle: the stores run their statements on it.
func (d *DB) SQL() *sql.DB { return d.sql }

// Dialect returns the engine.
func (d *DB) Dialect() Dialect { return d.dialect }

// String returns the database's url without its password, for logs.
func (d *DB) String() string { return d.display }

// Path returns the SQLite file, or "" on PostgreSQL.
func (d *DB) Path() string { return d.path }

// Close ends every Listen and closes every connection.
func (d *DB) Close() error {
	d.close()
	return d.sql.Close()
}

// Redact returns a database url as a message or a log may show it: with
// no password. The password of its user part becomes "xxxxx", its query
// (where libpq takes password=) and fragment "…", the opaque part of a
// "scheme:opaque" value "…" when it could hold one (user:pass@host), and a
// value that is no url but holds '@' or '=' (a MySQL or key=value DSN) is
// not shown at all.
func Redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable url)"
	}
	if u.Scheme == "" && strings.ContainsAny(s, "@=") {
		return "(hidden: not a url)"
	}
	if u.Opaque != "" && strings.ContainsAny(u.Opaque, "@=:") {
		u.Opaque = "…"
	}
	if u.RawQuery != "" {
		u.RawQuery = "…"
	}
	frag := u.Fragment != ""
	u.Fragment, u.RawFragment = "", ""
	if frag {
		return u.Redacted() + "#…"
	}
	return u.Redacted()
}

// IsNotExist reports whether err is Open's error for a missing SQLite file
// under Options.MustExist.
func IsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

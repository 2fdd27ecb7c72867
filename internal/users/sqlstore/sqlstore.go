// Package sqlstore is a users.Store kept in an SQLite database through the
// pure-Go driver modernc.org/sqlite. Several processes may use one file at
// once (the CLI while a server runs): the database is in WAL mode and every
// connection waits up to busyTimeout for a lock. Nothing is cached, so a
// change is seen by the next call of any handle.
//
// The schema (schema.sql) is portable SQL, so that a PostgreSQL store can
// share it later.
package sqlstore

import (
	"context"
	"database/sql"
	_ "embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/ferryftp/ferry/internal/users"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed schema.sql
var schemaSQL string

// schemaVersion is the version schema.sql creates and this code reads and
// writes. Later versions add migrations from one version to the next.
const schemaVersion = 1

// busyTimeout is how long a statement waits for another connection's lock.
const busyTimeout = 5 * time.Second

// Store is a users.Store in one SQLite file. It is safe for concurrent use.
type Store struct {
	db  *sql.DB
	ver *users.Verifier
}

var _ users.Store = (*Store)(nil)

// Options are the optional settings of Open.
type Options struct {
	// Verifier checks passwords in Authenticate within its memory budget;
	// nil means users.DefaultVerifier().
	Verifier *users.Verifier
}

// Open opens the user database at path, creating it (mode 0600, since it
// holds password hashes) and its schema when missing. The directory must
// exist. Open fails on a database written by a newer schema version.
func Open(path string, o Options) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: %w", err)
	}
	// Create the file ourselves so that it gets 0600; SQLite gives its WAL
	// and shared-memory files the same mode as the database file.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: %w", err)
	}
	f.Close()

	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	// Transactions take the write lock at BEGIN, so that two writers wait
	// for each other (busy_timeout) instead of failing on lock upgrade.
	q.Set("_txlock", "immediate")
	dsn := (&url.URL{Scheme: "file", Path: abs, RawQuery: q.Encode()}).String()

	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open %s: %w", abs, err)
	}
	s := &Store{db: db, ver: o.Verifier}
	if s.ver == nil {
		s.ver = users.DefaultVerifier()
	}
	if err := s.migrate(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlstore: %s: %w", abs, err)
	}
	return s, nil
}

// migrate creates the schema in a new database and checks the version of an
// existing one, under the write lock so that two processes opening a new
// file at once do not both create it.
func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx,
		`SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'`).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		if _, err := tx.ExecContext(ctx, schemaSQL); err != nil {
			return fmt.Errorf("creating schema: %w", err)
		}
	}
	var v sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_version`).Scan(&v); err != nil {
		return err
	}
	switch {
	case !v.Valid:
		return errors.New("schema_version is empty")
	case v.Int64 > schemaVersion:
		return fmt.Errorf("schema version %d is newer than this Ferry knows (%d); upgrade Ferry", v.Int64, schemaVersion)
	case v.Int64 < schemaVersion:
		return fmt.Errorf("schema version %d has no migration to %d", v.Int64, schemaVersion)
	}
	return tx.Commit()
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// columns are the users columns that make a users.User, in scanUser's order.
const columns = `name, home, disabled, tls_required, perms, quota_bytes, quota_files,
	max_sessions, upload_rate, download_rate, allow_fxp, cert_required, cert_login,
	created_at, updated_at`

type scanner interface{ Scan(dest ...any) error }

func scanUser(r scanner, extra ...any) (*users.User, error) {
	var u users.User
	var disabled, fxp, certReq, certLogin int
	var created, updated int64
	dest := append([]any{&u.Name, &u.Home, &disabled, &u.TLSRequired, &u.Perms, &u.QuotaBytes, &u.QuotaFiles,
		&u.MaxSessions, &u.UploadRate, &u.DownloadRate, &fxp, &certReq, &certLogin,
		&created, &updated}, extra...)
	if err := r.Scan(dest...); err != nil {
		return nil, err
	}
	u.Disabled, u.AllowFXP, u.CertRequired, u.CertLogin = disabled != 0, fxp != 0, certReq != 0, certLogin != 0
	u.Created, u.Updated = fromMicro(created), fromMicro(updated)
	return &u, nil
}

func fromMicro(us int64) time.Time { return time.UnixMicro(us).UTC() }

// now is the current time at the precision stored.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Get returns the user called name, or users.ErrNotFound.
func (s *Store) Get(ctx context.Context, name string) (*users.User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+columns+` FROM users WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", users.ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get %s: %w", name, err)
	}
	return u, nil
}

// List returns every user, ordered by name.
func (s *Store) List(ctx context.Context) ([]users.User, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+columns+` FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list: %w", err)
	}
	defer rows.Close()
	var list []users.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: list: %w", err)
		}
		list = append(list, *u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list: %w", err)
	}
	return list, nil
}

// Authenticate implements users.Authenticator with users.Verifier.Login: it
// returns the user when req names an enabled account whose password and
// TLS and certificate rules req meets, and otherwise an error wrapping
// users.ErrAuth with the reason, for the log, after the time of one
// password check whatever the reason. A check that could not start before
// ctx ended wraps users.ErrBusy; any other error is the database's.
func (s *Store) Authenticate(ctx context.Context, req users.LoginRequest) (*users.User, error) {
	var hash string
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+columns+`, password_hash FROM users WHERE name = ?`, req.Name), &hash)
	if errors.Is(err, sql.ErrNoRows) {
		u, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: authenticate: %w", err)
	}
	return s.ver.Login(ctx, req, u, hash)
}

// Add creates u with password, or returns users.ErrExists when the name is
// taken and users.ErrInvalid when u or the password cannot be stored. Created
// is kept when set (an import); Updated is now.
func (s *Store) Add(ctx context.Context, u users.User, password string) error {
	if err := u.Validate(); err != nil {
		return err
	}
	if err := users.ValidatePassword(password); err != nil {
		return err
	}
	hash, err := users.HashPassword(password)
	if err != nil {
		return err
	}
	t := now()
	if u.Created.IsZero() {
		u.Created = t
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO users (`+columns+`, password_hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (name) DO NOTHING`,
		u.Name, u.Home, b2i(u.Disabled), u.TLSRequired, u.Perms, u.QuotaBytes, u.QuotaFiles,
		u.MaxSessions, u.UploadRate, u.DownloadRate, b2i(u.AllowFXP), b2i(u.CertRequired), b2i(u.CertLogin),
		u.Created.UnixMicro(), t.UnixMicro(), hash)
	if err != nil {
		return fmt.Errorf("sqlstore: add %s: %w", u.Name, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlstore: add %s: %w", u.Name, err)
	} else if n == 0 {
		return fmt.Errorf("%w: %s", users.ErrExists, u.Name)
	}
	return nil
}

// Update stores every field of u but the name, the password and Created, and
// sets Updated to now. It returns users.ErrNotFound for a missing user.
func (s *Store) Update(ctx context.Context, u users.User) error {
	if err := u.Validate(); err != nil {
		return err
	}
	return s.exec(ctx, "update", u.Name, `UPDATE users SET home = ?, disabled = ?, tls_required = ?, perms = ?,
		quota_bytes = ?, quota_files = ?, max_sessions = ?, upload_rate = ?, download_rate = ?,
		allow_fxp = ?, cert_required = ?, cert_login = ?, updated_at = ? WHERE name = ?`,
		u.Home, b2i(u.Disabled), u.TLSRequired, u.Perms,
		u.QuotaBytes, u.QuotaFiles, u.MaxSessions, u.UploadRate, u.DownloadRate,
		b2i(u.AllowFXP), b2i(u.CertRequired), b2i(u.CertLogin), now().UnixMicro(), u.Name)
}

// SetPassword replaces the password of name. It returns users.ErrNotFound
// for a missing user and users.ErrInvalid for a password it refuses.
func (s *Store) SetPassword(ctx context.Context, name, password string) error {
	if err := users.ValidatePassword(password); err != nil {
		return err
	}
	hash, err := users.HashPassword(password)
	if err != nil {
		return err
	}
	return s.exec(ctx, "set password", name,
		`UPDATE users SET password_hash = ?, updated_at = ? WHERE name = ?`, hash, now().UnixMicro(), name)
}

// Delete removes name, or returns users.ErrNotFound.
func (s *Store) Delete(ctx context.Context, name string) error {
	return s.exec(ctx, "delete", name, `DELETE FROM users WHERE name = ?`, name)
}

// exec runs a statement that changes the row of user name, and returns
// users.ErrNotFound when there was none.
func (s *Store) exec(ctx context.Context, op, name, query string, args ...any) error {
	res, err := s.db.ExecContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("sqlstore: %s %s: %w", op, name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlstore: %s %s: %w", op, name, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %s", users.ErrNotFound, name)
	}
	return nil
}

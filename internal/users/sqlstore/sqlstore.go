// Package sqlstore is a users.Store in Ferry's database (package db), on
// SQLite or PostgreSQL: both run the same statements. Several processes may
// use one database at once (the CLI while servers run, several servers on
// one PostgreSQL). Nothing is cached, so a change is seen by the next call
// of any handle. The users table is migration 0001 of package db.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/ferryftp/ferry/internal/db"
	"github.com/ferryftp/ferry/internal/users"
)

// Store is a users.Store in a database. It is safe for concurrent use.
type Store struct {
	db    *sql.DB
	owned *db.DB // closed by Close when Open opened it
	ver   *users.Verifier
}

var _ users.Store = (*Store)(nil)

// Options are the optional settings of New and Open.
type Options struct {
	// Verifier checks passwords in Authenticate within its memory budget;
	// nil means users.DefaultVerifier().
	Verifier *users.Verifier
}

// New returns the store kept in d. Close does not close d: its opener does.
func New(d *db.DB, o Options) *Store {
	s := &Store{db: d.SQL(), ver: o.Verifier}
	if s.ver == nil {
		s.ver = users.DefaultVerifier()
	}
	return s
}

// Owning is New, but Close closes d: for a process that opens d only for
// its users.
func Owning(d *db.DB, o Options) *Store {
	s := New(d, o)
	s.owned = d
	return s
}

// Open opens (creating when missing, mode 0600, with its directory) the
// SQLite database at path and returns its store, which Close closes. It
// fails on a database written by a newer Ferry.
func Open(path string, o Options) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: %w", err)
	}
	d, err := db.Open(context.Background(), "sqlite:"+abs, db.Options{})
	if err != nil {
		return nil, fmt.Errorf("sqlstore: %w", err)
	}
	return Owning(d, o), nil
}

// Close closes the database if Open or Owning opened it.
func (s *Store) Close() error {
	if s.owned != nil {
		return s.owned.Close()
	}
	return nil
}

// columns are the users columns that make a users.User, in scanUser's order.
const columns = `name, home, disabled, tls_required, perms, quota_bytes, quota_files,
	max_sessions, upload_rate, download_rate, allow_fxp, cert_required, cert_login,
	login_message, created_at, updated_at`

type scanner interface{ Scan(dest ...any) error }

func scanUser(r scanner, extra ...any) (*users.User, error) {
	var u users.User
	var disabled, fxp, certReq, certLogin int
	var created, updated int64
	dest := append([]any{&u.Name, &u.Home, &disabled, &u.TLSRequired, &u.Perms, &u.QuotaBytes, &u.QuotaFiles,
		&u.MaxSessions, &u.UploadRate, &u.DownloadRate, &fxp, &certReq, &certLogin,
		&u.LoginMessage, &created, &updated}, extra...)
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
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+columns+` FROM users WHERE name = $1`, name))
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
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+columns+`, password_hash FROM users WHERE name = $1`, req.Name), &hash)
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
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
		ON CONFLICT (name) DO NOTHING`,
		u.Name, u.Home, b2i(u.Disabled), u.TLSRequired, u.Perms, u.QuotaBytes, u.QuotaFiles,
		u.MaxSessions, u.UploadRate, u.DownloadRate, b2i(u.AllowFXP), b2i(u.CertRequired), b2i(u.CertLogin),
		u.LoginMessage, u.Created.UnixMicro(), t.UnixMicro(), hash)
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
	return s.exec(ctx, "update", u.Name, `UPDATE users SET home = $1, disabled = $2, tls_required = $3, perms = $4,
		quota_bytes = $5, quota_files = $6, max_sessions = $7, upload_rate = $8, download_rate = $9,
		allow_fxp = $10, cert_required = $11, cert_login = $12, login_message = $13, updated_at = $14 WHERE name = $15`,
		u.Home, b2i(u.Disabled), u.TLSRequired, u.Perms,
		u.QuotaBytes, u.QuotaFiles, u.MaxSessions, u.UploadRate, u.DownloadRate,
		b2i(u.AllowFXP), b2i(u.CertRequired), b2i(u.CertLogin), u.LoginMessage, now().UnixMicro(), u.Name)
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
		`UPDATE users SET password_hash = $1, updated_at = $2 WHERE name = $3`, hash, now().UnixMicro(), name)
}

// Delete removes name, or returns users.ErrNotFound.
func (s *Store) Delete(ctx context.Context, name string) error {
	return s.exec(ctx, "delete", name, `DELETE FROM users WHERE name = $1`, name)
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

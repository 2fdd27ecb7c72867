// Package sqlacme keeps the ACME manager's state in Ferry's database
// (package db): the tables acme_state, acme_leases and acme_challenges, on
// SQLite or PostgreSQL. Servers that share the database share one ACME
// account and one certificate: it is an acme.SharedStore.
package sqlacme

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/ferryftp/ferry/internal/acme"
	"github.com/ferryftp/ferry/internal/db"
)

// Channel is the notification channel (db.Listen) on which Put announces
// a change; the payload is the first name put.
const Channel = "ferry_acme"

// leaseName is the one lease: the order of the certificate.
const leaseName = "order"

// Store is an acme.SharedStore in d.
type Store struct {
	d   *db.DB
	db  *sql.DB
	now func() time.Time
}

var _ acme.SharedStore = (*Store)(nil)

// New returns the store kept in d; it does not own d.
func New(d *db.DB) *Store { return &Store{d: d, db: d.SQL(), now: time.Now} }

// Where names the row of name, for logs.
func (s *Store) Where(name string) string { return s.d.String() + " acme_state " + name }

// Get returns the value of name, or an error wrapping fs.ErrNotExist.
func (s *Store) Get(ctx context.Context, name string) ([]byte, error) {
	var v string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM acme_state WHERE name = $1`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("acme_state %s: %w", name, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("acme_state %s: %w", name, err)
	}
	return []byte(v), nil
}

// Create inserts value unless name has one, and returns the value kept.
func (s *Store) Create(ctx context.Context, name string, value []byte) ([]byte, error) {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO acme_state (name, value, updated_ns) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO NOTHING`, name, string(value), s.now().UnixNano()); err != nil {
		return nil, fmt.Errorf("acme_state %s: %w", name, err)
	}
	return s.Get(ctx, name)
}

// Put replaces the values in one transaction and announces the change on
// Channel (on PostgreSQL at commit, to every server).
func (s *Store) Put(ctx context.Context, es ...acme.Entry) error {
	if len(es) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("acme_state: %w", err)
	}
	defer tx.Rollback()
	now := s.now().UnixNano()
	for _, e := range es {
		if _, err := tx.ExecContext(ctx, `INSERT INTO acme_state (name, value, updated_ns) VALUES ($1, $2, $3)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_ns = excluded.updated_ns`,
			e.Name, string(e.Value), now); err != nil {
			return fmt.Errorf("acme_state %s: %w", e.Name, err)
		}
	}
	if s.d.Dialect() == db.Postgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, Channel, es[0].Name); err != nil {
			return fmt.Errorf("acme_state: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("acme_state: %w", err)
	}
	if s.d.Dialect() == db.SQLite {
		s.d.Notify(ctx, Channel, es[0].Name)
	}
	return nil
}

// TryLease takes the order lease for holder, or extends holder's own, in
// one atomic statement: an INSERT when there is no row, else an UPDATE of
// an expired (or holder's) row.
func (s *Store) TryLease(ctx context.Context, holder string, ttl time.Duration) (bool, error) {
	now := s.now()
	until := now.Add(ttl).UnixNano()
	res, err := s.db.ExecContext(ctx, `INSERT INTO acme_leases (name, holder, expires_ns) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO NOTHING`, leaseName, holder, until)
	if err != nil {
		return false, err
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return true, nil
	}
	res, err = s.db.ExecContext(ctx, `UPDATE acme_leases SET holder = $1, expires_ns = $2
		WHERE name = $3 AND (expires_ns < $4 OR holder = $1)`, holder, until, leaseName, now.UnixNano())
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// ReleaseLease deletes holder's lease.
func (s *Store) ReleaseLease(ctx context.Context, holder string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM acme_leases WHERE name = $1 AND holder = $2`, leaseName, holder)
	return err
}

// LeaseHolder returns the holder of the unexpired lease, or "".
func (s *Store) LeaseHolder(ctx context.Context) (string, error) {
	var h string
	err := s.db.QueryRowContext(ctx, `SELECT holder FROM acme_leases WHERE name = $1 AND expires_ns >= $2`,
		leaseName, s.now().UnixNano()).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return h, err
}

// PutChallenge publishes a key authorization for ttl; expired rows go.
func (s *Store) PutChallenge(ctx context.Context, key, keyAuth string, ttl time.Duration) error {
	now := s.now()
	if _, err := s.db.ExecContext(ctx, `DELETE FROM acme_challenges WHERE expires_ns < $1`, now.UnixNano()); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO acme_challenges (name, key_auth, expires_ns) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET key_auth = excluded.key_auth, expires_ns = excluded.expires_ns`,
		key, keyAuth, now.Add(ttl).UnixNano())
	return err
}

// DeleteChallenge withdraws a challenge.
func (s *Store) DeleteChallenge(ctx context.Context, key string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM acme_challenges WHERE name = $1`, key)
	return err
}

// Challenge returns the unexpired key authorization of key, or an error
// wrapping fs.ErrNotExist.
func (s *Store) Challenge(ctx context.Context, key string) (string, error) {
	var ka string
	err := s.db.QueryRowContext(ctx, `SELECT key_auth FROM acme_challenges WHERE name = $1 AND expires_ns >= $2`,
		key, s.now().UnixNano()).Scan(&ka)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("acme challenge %s: %w", key, fs.ErrNotExist)
	}
	return ka, err
}

// Changes delivers a value after each Put by any server on the database
// until ctx ends (see db.Listen).
func (s *Store) Changes(ctx context.Context) (<-chan string, error) {
	return s.d.Listen(ctx, Channel)
}

package ban

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"time"

	"github.com/ferryftp/ferry/internal/db"
)

// DBFile is the ban database of the release before package db, beside its
// users.db; its rows are imported into the one database at the first start
// (see package db).
const DBFile = db.LegacyBansFile

// SQLStore is a Store in Ferry's database (package db): the bans table, on
// SQLite or PostgreSQL, shared by every process on the same database.
// `ferry ban list` and `ferry ban del` read and write it while servers run.
type SQLStore struct {
	db    *sql.DB
	owned *db.DB // closed by Close when OpenSQL opened it
	now   func() time.Time
}

var (
	_ Store   = (*SQLStore)(nil)
	_ History = (*SQLStore)(nil)
)

// NewSQLStore returns the ban store kept in d. Close does not close d.
func NewSQLStore(d *db.DB) *SQLStore {
	return &SQLStore{db: d.SQL(), now: time.Now}
}

// OwningSQLStore is NewSQLStore, but Close closes d: for a process that
// opens d only for its bans.
func OwningSQLStore(d *db.DB) *SQLStore {
	s := NewSQLStore(d)
	s.owned = d
	return s
}

// OpenSQL opens (creating if needed) the SQLite database at path and
// returns its ban store, which Close closes.
func OpenSQL(path string) (*SQLStore, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("ban: %w", err)
	}
	d, err := db.Open(context.Background(), "sqlite:"+abs, db.Options{})
	if err != nil {
		return nil, fmt.Errorf("ban: %w", err)
	}
	return OwningSQLStore(d), nil
}

// Close closes the database if OpenSQL or OwningSQLStore opened it.
func (s *SQLStore) Close() error {
	if s.owned != nil {
		return s.owned.Close()
	}
	return nil
}

// Get implements Store.
func (s *SQLStore) Get(ctx context.Context, ip netip.Addr) (Ban, bool, error) {
	return s.one(ctx, ip, s.now())
}

// Last implements History.
func (s *SQLStore) Last(ctx context.Context, ip netip.Addr) (Ban, bool, error) {
	return s.one(ctx, ip, s.now().Add(-forgetAfter))
}

// one returns ip's ban if it ends after after.
func (s *SQLStore) one(ctx context.Context, ip netip.Addr, after time.Time) (Ban, bool, error) {
	b := Ban{IP: ip}
	var until int64
	err := s.db.QueryRowContext(ctx,
		`SELECT until_ns, times, reason FROM bans WHERE ip = $1 AND until_ns > $2`,
		ip.String(), after.UnixNano()).Scan(&until, &b.Count, &b.Reason)
	if errors.Is(err, sql.ErrNoRows) {
		return Ban{}, false, nil
	}
	if err != nil {
		return Ban{}, false, fmt.Errorf("ban: reading %s: %w", ip, err)
	}
	b.Until = time.Unix(0, until)
	return b, true, nil
}

// Put implements Store. It also drops rows forgotten for escalation, which
// keeps the table from growing with every address ever banned.
func (s *SQLStore) Put(ctx context.Context, b Ban) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("ban: storing %s: %w", b.IP, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO bans (ip, until_ns, times, reason) VALUES ($1, $2, $3, $4)
		 ON CONFLICT (ip) DO UPDATE SET until_ns = excluded.until_ns, times = excluded.times, reason = excluded.reason`,
		b.IP.String(), b.Until.UnixNano(), b.Count, b.Reason); err != nil {
		return fmt.Errorf("ban: storing %s: %w", b.IP, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM bans WHERE until_ns <= $1`,
		s.now().Add(-forgetAfter).UnixNano()); err != nil {
		return fmt.Errorf("ban: pruning: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("ban: storing %s: %w", b.IP, err)
	}
	return nil
}

// Delete implements Store.
func (s *SQLStore) Delete(ctx context.Context, ip netip.Addr) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM bans WHERE ip = $1`, ip.String()); err != nil {
		return fmt.Errorf("ban: deleting %s: %w", ip, err)
	}
	return nil
}

// List implements Store.
func (s *SQLStore) List(ctx context.Context) ([]Ban, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT ip, until_ns, times, reason FROM bans WHERE until_ns > $1`, s.now().UnixNano())
	if err != nil {
		return nil, fmt.Errorf("ban: listing: %w", err)
	}
	defer rows.Close()
	var out []Ban
	for rows.Next() {
		var (
			b     Ban
			ip    string
			until int64
		)
		if err := rows.Scan(&ip, &until, &b.Count, &b.Reason); err != nil {
			return nil, fmt.Errorf("ban: listing: %w", err)
		}
		if b.IP, err = netip.ParseAddr(ip); err != nil {
			return nil, fmt.Errorf("ban: listing: bad address in database: %w", err)
		}
		b.Until = time.Unix(0, until)
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ban: listing: %w", err)
	}
	// Textual order puts 10.0.0.9 after 10.0.0.10; sort as addresses.
	slices.SortFunc(out, func(a, b Ban) int { return a.IP.Compare(b.IP) })
	return out, nil
}

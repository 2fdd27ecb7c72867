package ban

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/ferryftp/ferry/internal/db"
)

// DBFile is the ban database of the release before package db, beside its
// users.db; its rows are imported into the one database at the first start
// (see package db).
const DBFile = db.LegacyBansFile

// SQLStore is a Store in Ferry's database (package db): the bans and
// ban_failures tables, on SQLite or PostgreSQL, shared by every process on
// the same database. `ferry ban list` and `ferry ban del` read and write it
// while servers run. Every change of a ban (Put, Delete) is announced on
// Channel, so that the Defenders of every process drop what they cached
// (see Changes and Defender.Follow).
type SQLStore struct {
	d     *db.DB
	db    *sql.DB
	owned *db.DB // closed by Close when OpenSQL opened it
	now   func() time.Time
	adds  atomic.Uint64 // AddScore calls, for pruning every pruneEvery
}

var (
	_ Store   = (*SQLStore)(nil)
	_ History = (*SQLStore)(nil)
	_ Scorer  = (*SQLStore)(nil)
)

// Channel is the notification channel (db.Listen) on which SQLStore
// announces ban changes; the payload is the changed key (Key), or "" for
// "reload everything".
const Channel = "ferry_bans"

// NewSQLStore returns the ban store kept in d. Close does not close d.
func NewSQLStore(d *db.DB) *SQLStore {
	return &SQLStore{d: d, db: d.SQL(), now: time.Now}
}

// Changes returns the keys whose bans change (Put, Delete), by any process
// on the database, until ctx ends; "" means that changes may have been
// missed (a reconnect, or on SQLite a write by another process): forget
// everything. See db.Listen.
func (s *SQLStore) Changes(ctx context.Context) (<-chan string, error) {
	return s.d.Listen(ctx, Channel)
}

// notify announces a change of ip's ban in tx: on PostgreSQL by pg_notify
// in the transaction, so that it is delivered at commit; on SQLite the
// caller calls notified after the commit.
func (s *SQLStore) notify(ctx context.Context, tx *sql.Tx, ip netip.Addr) error {
	if s.d.Dialect() != db.Postgres {
		return nil
	}
	_, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, Channel, ip.String())
	return err
}

// notified is the SQLite half of notify, after the commit: the listeners of
// this process hear the key at once; those of other processes see the
// file change (PRAGMA data_version) and reload.
func (s *SQLStore) notified(ip netip.Addr) {
	if s.d.Dialect() == db.SQLite {
		s.d.Notify(context.Background(), Channel, ip.String())
	}
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

// Put implements Store. A ban starts the address's score over, and Put
// drops rows forgotten for escalation and scores that no longer count,
// which keeps the tables from growing with every address ever seen.
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
	if _, err := tx.ExecContext(ctx, `DELETE FROM ban_failures WHERE ip = $1`, b.IP.String()); err != nil {
		return fmt.Errorf("ban: storing %s: %w", b.IP, err)
	}
	now := s.now()
	if _, err := tx.ExecContext(ctx, `DELETE FROM bans WHERE until_ns <= $1`,
		now.Add(-forgetAfter).UnixNano()); err != nil {
		return fmt.Errorf("ban: pruning: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM ban_failures WHERE until_ns <= $1`, now.UnixNano()); err != nil {
		return fmt.Errorf("ban: pruning: %w", err)
	}
	if err := s.notify(ctx, tx, b.IP); err != nil {
		return fmt.Errorf("ban: storing %s: %w", b.IP, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("ban: storing %s: %w", b.IP, err)
	}
	s.notified(b.IP)
	return nil
}

// Delete implements Store: the ban, its history and the address's score.
func (s *SQLStore) Delete(ctx context.Context, ip netip.Addr) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("ban: deleting %s: %w", ip, err)
	}
	defer tx.Rollback()
	for _, q := range []string{`DELETE FROM bans WHERE ip = $1`, `DELETE FROM ban_failures WHERE ip = $1`} {
		if _, err := tx.ExecContext(ctx, q, ip.String()); err != nil {
			return fmt.Errorf("ban: deleting %s: %w", ip, err)
		}
	}
	if err := s.notify(ctx, tx, ip); err != nil {
		return fmt.Errorf("ban: deleting %s: %w", ip, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("ban: deleting %s: %w", ip, err)
	}
	s.notified(ip)
	return nil
}

// scoreSlots is how many slots a window is kept in: an event counts
// towards its address's score for the window plus at most a tenth of it.
const scoreSlots = 10

// pruneEvery is how many AddScore calls of one store pass between
// deletions of the scores that no longer count.
const pruneEvery = 64

// AddScore implements Scorer: it adds points to ip's row for the slot of
// now with one upsert (atomic on both engines, so concurrent processes
// never lose an event), then sums the rows that still count, in the same
// transaction. Two processes scoring the same key in the same slot see
// distinct totals; across a slot boundary one may see the other's point an
// event late.
func (s *SQLStore) AddScore(ctx context.Context, ip netip.Addr, points int, now time.Time, window time.Duration) (int, error) {
	width := max(int64(window)/scoreSlots, 1)
	t := now.UnixNano()
	slot := t - t%width
	until := slot + width + int64(window)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("ban: scoring %s: %w", ip, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO ban_failures (ip, slot, points, until_ns) VALUES ($1, $2, $3, $4)
		 ON CONFLICT (ip, slot) DO UPDATE SET points = ban_failures.points + excluded.points, until_ns = excluded.until_ns`,
		ip.String(), slot, points, until); err != nil {
		return 0, fmt.Errorf("ban: scoring %s: %w", ip, err)
	}
	var total int64
	if err := tx.QueryRowContext(ctx,
		`SELECT COALESCE(SUM(points), 0) FROM ban_failures WHERE ip = $1 AND until_ns > $2`,
		ip.String(), t).Scan(&total); err != nil {
		return 0, fmt.Errorf("ban: scoring %s: %w", ip, err)
	}
	if s.adds.Add(1)%pruneEvery == 0 {
		if _, err := tx.ExecContext(ctx, `DELETE FROM ban_failures WHERE until_ns <= $1`, t); err != nil {
			return 0, fmt.Errorf("ban: pruning scores: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("ban: scoring %s: %w", ip, err)
	}
	return int(total), nil
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

// Package sqlquota keeps quota usage in the database (package db), shared by
// every Ferry process on it: a quota.Store whose counters are rows of
// quota_usage, changed by single atomic statements that check the limit, so
// that processes uploading for one user at once never take it past its
// quota.
//
// What a process's uploads in progress hold (quota.Change's Held amounts)
// is also recorded per node in quota_reservations; when a node is gone
// (db.Node: its heartbeat older than the node timeout) the first live node
// to see it gives that back, in the transaction that deletes the node.
package sqlquota

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ferryftp/ferry/internal/db"
	"github.com/ferryftp/ferry/internal/quota"
	"github.com/ferryftp/ferry/internal/storage"
)

// DefaultChunk is the bytes an upload reserves at once: one database round
// trip per MiB uploaded instead of one per write.
const DefaultChunk = 1 << 20

// Options are the settings of New.
type Options struct {
	// Chunk is the bytes an upload reserves at once (quota.Store.Chunk);
	// DefaultChunk when 0, each write's own bytes when negative.
	Chunk int64
	// Log receives the counter changes that failed; nil discards.
	Log *slog.Logger
}

// Store is a quota.Store in the database.
type Store struct {
	d     *sql.DB
	node  *db.Node // nil: reservations are not recorded (the CLI)
	chunk int64
	log   *slog.Logger
}

var _ quota.Store = (*Store)(nil)

// New returns the Store of d. Reservations of uploads are recorded under
// node, whose release of gone nodes gives them back (the Store adds its
// db.Reaper); a nil node records none, for commands that do not upload.
func New(d *db.DB, node *db.Node, o Options) *Store {
	if o.Chunk == 0 {
		o.Chunk = DefaultChunk
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	s := &Store{d: d.SQL(), node: node, chunk: max(o.Chunk, 0), log: o.Log}
	if node != nil {
		node.OnGone(Release)
	}
	return s
}

// Chunk is the bytes an upload reserves at once.
func (s *Store) Chunk() int64 { return s.chunk }

// Counter returns the counter of name's usage under home.
func (s *Store) Counter(name, home string) quota.Counter {
	return &counter{s: s, name: name, home: home}
}

// Release gives back to quota_usage what node's uploads held and deletes
// its quota_reservations rows, in tx: a db.Reaper.
func Release(ctx context.Context, tx *sql.Tx, node string) error {
	rows, err := tx.QueryContext(ctx, `SELECT name, home, bytes, files FROM quota_reservations WHERE node = $1`, node)
	if err != nil {
		return err
	}
	type held struct {
		name, home   string
		bytes, files int64
	}
	var hs []held
	for rows.Next() {
		var h held
		if err := rows.Scan(&h.name, &h.home, &h.bytes, &h.files); err != nil {
			rows.Close()
			return err
		}
		hs = append(hs, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, h := range hs {
		if h.bytes == 0 && h.files == 0 {
			continue
		}
		if _, err := tx.ExecContext(ctx, `UPDATE quota_usage SET bytes = bytes - $1, files = files - $2 WHERE name = $3 AND home = $4`, h.bytes, h.files, h.name, h.home); err != nil {
			return err
		}
	}
	_, err = tx.ExecContext(ctx, `DELETE FROM quota_reservations WHERE node = $1`, node)
	return err
}

// Usage returns the counts of name under home, and false when the database
// keeps none (no server counted it since its quota was set).
func (s *Store) Usage(ctx context.Context, name, home string) (bytes, files int64, ok bool, err error) {
	err = s.d.QueryRowContext(ctx, `SELECT bytes, files FROM quota_usage WHERE name = $1 AND home = $2`, name, home).Scan(&bytes, &files)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, false, nil
	}
	return bytes, files, err == nil, err
}

// Set makes the counts of name under home what a scan of the home found
// plus what uploads in progress hold (of every node): `ferry user
// quota-scan`. A file committed between the scan and Set is counted twice
// or not at all; scan when the user is quiet.
func (s *Store) Set(ctx context.Context, name, home string, bytes, files int64) (int64, int64, error) {
	tx, err := s.d.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, err
	}
	defer tx.Rollback()
	b, f, err := set(ctx, tx, name, home, bytes, files, true)
	if err != nil {
		return 0, 0, err
	}
	return b, f, tx.Commit()
}

// set writes scanned counts plus the held reservations; with replace
// unset, a row that exists is kept.
func set(ctx context.Context, tx *sql.Tx, name, home string, bytes, files int64, replace bool) (int64, int64, error) {
	var hb, hf int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(bytes), 0), COALESCE(SUM(files), 0) FROM quota_reservations WHERE name = $1 AND home = $2`, name, home).Scan(&hb, &hf); err != nil {
		return 0, 0, err
	}
	conflict := `DO NOTHING`
	if replace {
		conflict = `DO UPDATE SET bytes = excluded.bytes, files = excluded.files, scanned_ns = excluded.scanned_ns`
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO quota_usage (name, home, bytes, files, scanned_ns) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (name, home) `+conflict, name, home, bytes+hb, files+hf, time.Now().UnixNano()); err != nil {
		return 0, 0, err
	}
	var b, f int64
	err := tx.QueryRowContext(ctx, `SELECT bytes, files FROM quota_usage WHERE name = $1 AND home = $2`, name, home).Scan(&b, &f)
	return b, f, err
}

// Forget deletes the counts of name under every home, so that the next
// server to need them counts the home afresh: `ferry user set` of a quota
// or a home, `ferry user del`. (Without a quota nothing is counted, so
// counts kept from before would be stale.)
func (s *Store) Forget(ctx context.Context, name string) error {
	_, err := s.d.ExecContext(ctx, `DELETE FROM quota_usage WHERE name = $1`, name)
	return err
}

// counter is one row of quota_usage.
type counter struct {
	s          *Store
	name, home string
	// scan counts the home: kept from Load, for a row that Forget
	// deleted while this process counts it. Guarded by the Usage's lock.
	scan func(context.Context) (int64, int64, error)
}

func (c *counter) Load(ctx context.Context, scan func(context.Context) (int64, int64, error)) error {
	c.scan = scan
	var b int64
	err := c.s.d.QueryRowContext(ctx, `SELECT bytes FROM quota_usage WHERE name = $1 AND home = $2`, c.name, c.home).Scan(&b)
	if !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	return c.insert(ctx)
}

// insert counts the home and inserts the row, unless another process did
// meanwhile (its counts win).
func (c *counter) insert(ctx context.Context) error {
	bytes, files, err := c.scan(ctx)
	if err != nil {
		return err
	}
	tx, err := c.s.d.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, _, err := set(ctx, tx, c.name, c.home, bytes, files, false); err != nil {
		return err
	}
	return tx.Commit()
}

// reserveSQL adds $1 bytes and $2 files unless a positive amount passes
// its limit ($5, $6; 0 unlimited): the check and the change are one
// statement, atomic on both engines.
const reserveSQL = `UPDATE quota_usage SET bytes = bytes + $1, files = files + $2
	WHERE name = $3 AND home = $4
	AND ($1 <= 0 OR CAST($5 AS BIGINT) <= 0 OR bytes + $1 <= $5)
	AND ($2 <= 0 OR CAST($6 AS BIGINT) <= 0 OR files + $2 <= $6)
	RETURNING bytes`

const adjustSQL = `UPDATE quota_usage SET bytes = bytes + $1, files = files + $2 WHERE name = $3 AND home = $4`

const holdSQL = `INSERT INTO quota_reservations (node, name, home, bytes, files) VALUES ($1, $2, $3, $4, $5)
	ON CONFLICT (node, name, home) DO UPDATE SET bytes = quota_reservations.bytes + excluded.bytes, files = quota_reservations.files + excluded.files`

// errNoRow: the row is gone (Forget) and must be counted again.
var errNoRow = errors.New("sqlquota: no usage row")

func (c *counter) Reserve(ctx context.Context, l quota.Limits, ch quota.Change) error {
	err := c.reserve(ctx, l, ch)
	if errors.Is(err, errNoRow) && c.scan != nil {
		if err := c.insert(ctx); err != nil {
			return err
		}
		err = c.reserve(ctx, l, ch)
	}
	return err
}

func (c *counter) reserve(ctx context.Context, l quota.Limits, ch quota.Change) error {
	return c.change(ctx, ch, func(q querier) error {
		var b int64
		err := q.QueryRowContext(ctx, reserveSQL, ch.Bytes, ch.Files, c.name, c.home, l.Bytes, l.Files).Scan(&b)
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		// Refused, or no row: say which.
		var files int64
		err = q.QueryRowContext(ctx, `SELECT bytes, files FROM quota_usage WHERE name = $1 AND home = $2`, c.name, c.home).Scan(&b, &files)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return errNoRow
		case err != nil:
			return err
		case ch.Bytes > 0 && l.Bytes > 0 && b+ch.Bytes > l.Bytes:
			return storage.ErrQuota
		default:
			return quota.ErrFiles
		}
	})
}

func (c *counter) Adjust(ctx context.Context, ch quota.Change) {
	err := c.change(ctx, ch, func(q querier) error {
		_, err := q.ExecContext(ctx, adjustSQL, ch.Bytes, ch.Files, c.name, c.home)
		return err
	})
	if err != nil {
		c.s.log.Error("quota: changing the usage failed; `ferry user quota-scan` counts it again", "user", c.name, "bytes", ch.Bytes, "files", ch.Files, "err", err)
	}
}

type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// change runs f, and records ch's held amounts in the same transaction
// when there are any (and a node to hold them).
func (c *counter) change(ctx context.Context, ch quota.Change, f func(querier) error) error {
	if c.s.node == nil || ch.HeldBytes == 0 && ch.HeldFiles == 0 {
		return f(c.s.d)
	}
	tx, err := c.s.d.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, holdSQL, c.s.node.ID(), c.name, c.home, ch.HeldBytes, ch.HeldFiles); err != nil {
		return fmt.Errorf("sqlquota: recording a reservation: %w", err)
	}
	return tx.Commit()
}

func (c *counter) Counts(ctx context.Context) (int64, int64, error) {
	var b, f int64
	err := c.s.d.QueryRowContext(ctx, `SELECT bytes, files FROM quota_usage WHERE name = $1 AND home = $2`, c.name, c.home).Scan(&b, &f)
	if errors.Is(err, sql.ErrNoRows) {
		// Forgotten since the load: what a new count would find.
		if c.scan == nil {
			return 0, 0, errNoRow
		}
		if err := c.insert(ctx); err != nil {
			return 0, 0, err
		}
		return c.Counts(ctx)
	}
	return b, f, err
}

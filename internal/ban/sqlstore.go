package ban

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// schema is plain SQL that SQLite and PostgreSQL both accept, so a shared
// PostgreSQL store can use it unchanged. Times are Unix nanoseconds: an
// integer compares the same everywhere, whatever the server's time zone.
// Rows outlive their ban by forgetAfter, for escalation (see History).
const schema = `
CREATE TABLE IF NOT EXISTS bans (
	ip       TEXT    PRIMARY KEY,
	until_ns BIGINT  NOT NULL,
	times    INTEGER NOT NULL,
	reason   TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS bans_until ON bans (until_ns);
`

// DBFile is the ban database's name inside Ferry's data directory; the
// server and `ferry ban` must agree on it.
const DBFile = "bans.db"

// SQLStore is a Store in an SQLite file (DATA/bans.db). SQLite in WAL mode
// lets `ferry ban list` and `ferry ban del` read and write the file while
// the server has it open.
type SQLStore struct {
	db  *sql.DB
	now func() time.Time
}

var (
	_ Store   = (*SQLStore)(nil)
	_ History = (*SQLStore)(nil)
)

// OpenSQL opens (creating if needed) the ban database at path.
func OpenSQL(path string) (*SQLStore, error) {
	// The driver treats everything after '?' as its own parameters.
	if strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("ban: database path %q must not contain '?'", path)
	}
	// WAL lets readers and one writer work at once; busy_timeout makes a
	// writer wait for another process's write instead of failing; an
	// immediate transaction takes the write lock up front, so it never has to
	// be upgraded (which SQLite cannot wait for).
	dsn := path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("ban: opening %s: %w", path, err)
	}
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("ban: opening %s: %w", path, err)
	}
	return &SQLStore{db: db, now: time.Now}, nil
}

// Close closes the database.
func (s *SQLStore) Close() error { return s.db.Close() }

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
		`SELECT until_ns, times, reason FROM bans WHERE ip = ? AND until_ns > ?`,
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
		`INSERT INTO bans (ip, until_ns, times, reason) VALUES (?, ?, ?, ?)
		 ON CONFLICT (ip) DO UPDATE SET until_ns = excluded.until_ns, times = excluded.times, reason = excluded.reason`,
		b.IP.String(), b.Until.UnixNano(), b.Count, b.Reason); err != nil {
		return fmt.Errorf("ban: storing %s: %w", b.IP, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM bans WHERE until_ns <= ?`,
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
	if _, err := s.db.ExecContext(ctx, `DELETE FROM bans WHERE ip = ?`, ip.String()); err != nil {
		return fmt.Errorf("ban: deleting %s: %w", ip, err)
	}
	return nil
}

// List implements Store.
func (s *SQLStore) List(ctx context.Context) ([]Ban, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT ip, until_ns, times, reason FROM bans WHERE until_ns > ?`, s.now().UnixNano())
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

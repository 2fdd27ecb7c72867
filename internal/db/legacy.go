package db

// The release before this package kept users in DATA/users.db (its own
// schema_version table, version 1, the users table of 0001_users.sql) and
// bans in DATA/bans.db beside it. Such a directory upgrades in place:
//
//   - a users.db with schema_version 1 and no schema_migrations is adopted
//     as version 1 (its users table is 0001's, column for column);
//   - migration 0002 (bans) imports every row of a bans.db in the same
//     directory as the database file, in its transaction, then renames that
//     file to bans.db.imported (kept, never read again, safe to delete);
//   - the old schema_version table is kept, set to 2, so that the old
//     release refuses the upgraded file with its own "schema version 2 is
//     newer than this Ferry knows" instead of using half of it.
//
// Stop the old server before starting the new one on its data directory.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
)

// LegacyBansFile is the ban database of the release before, beside its
// users.db.
const LegacyBansFile = "bans.db"

// isLegacy reports whether the SQLite database is a users.db of the release
// before: a schema_version table at version 1 and a users table, and no
// schema_migrations.
func isLegacy(ctx context.Context, q querier) (bool, error) {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'
		AND name IN ('schema_version', 'users')`).Scan(&n); err != nil {
		return false, err
	}
	if n != 2 {
		return false, nil
	}
	var m int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'
		AND name = 'schema_migrations'`).Scan(&m); err != nil {
		return false, err
	}
	if m > 0 {
		// Within migrate, schema_migrations exists but may be empty.
		var rows int
		if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&rows); err != nil {
			return false, err
		}
		if rows > 0 {
			return false, nil
		}
	}
	var v sql.NullInt64
	if err := q.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_version`).Scan(&v); err != nil {
		return false, err
	}
	return v.Valid && v.Int64 == 1, nil
}

// adoptLegacy records version 1 for a legacy users.db, in migrate's
// transaction.
func adoptLegacy(ctx context.Context, tx *sql.Tx) error {
	legacy, err := isLegacy(ctx, tx)
	if err != nil || !legacy {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (1, 'users', 0)`); err != nil {
		return fmt.Errorf("adopting the users.db of the previous release: %w", err)
	}
	return nil
}

// importLegacyBans is the SQLite part of migration 0002: it copies the rows
// of a legacy bans.db beside the database into the bans table, marks the
// old schema_version, and returns the rename of the old file for after the
// commit.
func importLegacyBans(ctx context.Context, d *DB, tx *sql.Tx) (func(), error) {
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL PRIMARY KEY);
		DELETE FROM schema_version; INSERT INTO schema_version (version) VALUES (2)`); err != nil {
		return nil, err
	}
	old := filepath.Join(filepath.Dir(d.path), LegacyBansFile)
	if old == d.path {
		return nil, nil
	}
	if _, err := os.Stat(old); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	src, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: old, RawQuery: q.Encode()}).String())
	if err != nil {
		return nil, err
	}
	defer src.Close()
	var n int
	if err := src.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'bans'`).Scan(&n); err != nil {
		return nil, fmt.Errorf("reading %s: %w", old, err)
	}
	if n > 0 {
		rows, err := src.QueryContext(ctx, `SELECT ip, until_ns, times, reason FROM bans`)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", old, err)
		}
		defer rows.Close()
		for rows.Next() {
			var ip, reason string
			var until, times int64
			if err := rows.Scan(&ip, &until, &times, &reason); err != nil {
				return nil, fmt.Errorf("reading %s: %w", old, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO bans (ip, until_ns, times, reason) VALUES ($1, $2, $3, $4)
				ON CONFLICT (ip) DO NOTHING`, ip, until, times, reason); err != nil {
				return nil, fmt.Errorf("importing %s: %w", old, err)
			}
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("reading %s: %w", old, err)
		}
	}
	return func() {
		// Best effort: the rows are in; a file left behind is never read.
		src.Close()
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if _, err := os.Stat(old + suffix); err == nil {
				os.Rename(old+suffix, old+".imported"+suffix)
			}
		}
	}, nil
}

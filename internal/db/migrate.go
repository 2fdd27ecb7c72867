package db

// Migrations
//
// The schema is built by numbered files embedded from migrations/:
//
//	migrations/NNNN_name.sql           run by both engines
//	migrations/sqlite/NNNN_name.sql    replaces NNNN for SQLite only
//	migrations/postgres/NNNN_name.sql  replaces NNNN for PostgreSQL only
//
// A per-dialect file is only for DDL that differs (identity columns, partial
// indexes, types); keep DML shared. Versions are the NNNN prefixes, 1, 2, 3 …
// without gaps; the table schema_migrations records each applied version
// with its name and time (Unix microseconds). Open applies every pending
// version in order, each in its own transaction together with its
// schema_migrations row, under a lock held by that transaction:
// pg_advisory_xact_lock(migrateLockKey) on PostgreSQL, the write lock of
// BEGIN IMMEDIATE on SQLite. So processes starting at once against one
// database apply each version exactly once: the others wait, then find it
// recorded. A database with a version this binary does not have is refused
// (ErrNewerSchema), before anything is written.
//
// To add a table (the helpers of issue 11 each add theirs):
//  1. add migrations/NNNN_what.sql with the next free number (run `ls
//     internal/db/migrations` and take the highest + 1; if two branches
//     pick the same number, the one landing second renumbers), in the
//     common subset of SQL: BIGINT, TEXT, INTEGER 0/1 for booleans, BIGINT
//     Unix times, no SERIAL or AUTOINCREMENT in shared files;
//  2. if its DDL must differ, add the same name under sqlite/ and
//     postgres/ instead of the shared file;
//  3. never edit a file that has landed: change a table with a new version;
//  4. the tests (TestMigrationsFromEmpty and the store suites) run every
//     migration on both engines.
//
// Tables reserved for the other parts of issue 11, added by their own
// migrations (0004 added ban_failures, the shared failed-login scores):
// quota_usage, quota_reservations and nodes (shared quotas and node heartbeats),
// s3_uploads and s3_renames (the S3 backend's journals).

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations
var migrationFS embed.FS

// Migration is one schema version.
type Migration struct {
	Version int
	Name    string // the file name without NNNN_ and .sql
	SQL     string // for the dialect it was loaded for
}

// ErrNewerSchema is wrapped by Open's error for a database that has a
// migration this binary does not know: it was upgraded by a newer Ferry.
var ErrNewerSchema = errors.New("the database schema is newer than this Ferry")

// migrateLockKey is the PostgreSQL advisory lock that serialises
// migrations: a constant, the same in every Ferry process.
const migrateLockKey int64 = 0x4665727279_4d67 // "Ferry" "Mg"

// Migrations returns the migrations of dialect d, ordered by version. It
// panics if the embedded files are malformed (a build mistake that
// TestMigrationFiles catches).
func Migrations(d Dialect) []Migration {
	ms, err := loadMigrations(d)
	if err != nil {
		panic(err)
	}
	return ms
}

func loadMigrations(d Dialect) ([]Migration, error) {
	byVersion := map[int]Migration{}
	read := func(dir string, override bool) error {
		ents, err := fs.ReadDir(migrationFS, dir)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		for _, e := range ents {
			if e.IsDir() {
				continue
			}
			base, ok := strings.CutSuffix(e.Name(), ".sql")
			num, name, ok2 := strings.Cut(base, "_")
			v, err := strconv.Atoi(num)
			if !ok || !ok2 || err != nil || len(num) != 4 || v <= 0 || name == "" {
				return fmt.Errorf("db: migration file %s/%s is not NNNN_name.sql", dir, e.Name())
			}
			text, err := fs.ReadFile(migrationFS, path.Join(dir, e.Name()))
			if err != nil {
				return err
			}
			if prev, dup := byVersion[v]; dup && !override {
				return fmt.Errorf("db: migrations %04d_%s and %s share version %d", v, prev.Name, e.Name(), v)
			}
			byVersion[v] = Migration{Version: v, Name: name, SQL: string(text)}
		}
		return nil
	}
	if err := read("migrations", false); err != nil {
		return nil, err
	}
	if err := read("migrations/"+string(d), true); err != nil {
		return nil, err
	}
	var ms []Migration
	for _, m := range byVersion {
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b Migration) int { return a.Version - b.Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("db: migration versions have a gap before %04d_%s", m.Version, m.Name)
		}
	}
	return ms, nil
}

// createMigrationsTable is run under the lock before reading versions.
const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    BIGINT NOT NULL PRIMARY KEY,
	name       TEXT   NOT NULL,
	applied_at BIGINT NOT NULL
)`

// lock takes the migration lock in tx: on SQLite the transaction already
// holds the write lock (BEGIN IMMEDIATE). On PostgreSQL the transaction's
// statements are freed from statement_timeout, since waiting for another
// process's migration, or a long migration, may take longer; Open's ctx
// bounds them instead.
func (d *DB) lock(ctx context.Context, tx *sql.Tx) error {
	if d.dialect == Postgres {
		if _, err := tx.ExecContext(ctx, `SET LOCAL statement_timeout = 0`); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLockKey); err != nil {
			return fmt.Errorf("taking the migration lock: %w", err)
		}
	}
	return nil
}

// migrate applies the pending migrations, each in its own transaction.
func (d *DB) migrate(ctx context.Context) error {
	ms, err := loadMigrations(d.dialect)
	if err != nil {
		return err
	}
	for _, m := range ms {
		done, err := d.apply(ctx, ms, m)
		if err != nil {
			return err
		}
		if done != nil {
			done()
		}
	}
	return nil
}

// apply runs m unless it is recorded, in one transaction that holds the
// migration lock. It returns what to do after the commit (the legacy file's
// rename), if anything.
func (d *DB) apply(ctx context.Context, ms []Migration, m Migration) (func(), error) {
	tx, err := d.sql.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if err := d.lock(ctx, tx); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, createMigrationsTable); err != nil {
		return nil, fmt.Errorf("creating schema_migrations: %w", err)
	}
	if d.dialect == SQLite {
		if err := adoptLegacy(ctx, tx); err != nil {
			return nil, err
		}
	}
	applied, err := appliedVersions(ctx, tx)
	if err != nil {
		return nil, err
	}
	if err := checkNotNewer(applied, ms); err != nil {
		return nil, err
	}
	if slices.Contains(applied, m.Version) {
		return nil, nil
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return nil, fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
	}
	var after func()
	if hook := hooks[hookKey{d.dialect, m.Version}]; hook != nil {
		if after, err = hook(ctx, d, tx); err != nil {
			return nil, fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
		m.Version, m.Name, time.Now().UnixMicro()); err != nil {
		return nil, fmt.Errorf("recording migration %04d_%s: %w", m.Version, m.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
	}
	return after, nil
}

// hookKey names a migration of one dialect that also runs Go code, in its
// transaction after its SQL; the func it returns runs after the commit.
type hookKey struct {
	dialect Dialect
	version int
}

var hooks = map[hookKey]func(ctx context.Context, d *DB, tx *sql.Tx) (func(), error){
	{SQLite, 2}: importLegacyBans,
}

func appliedVersions(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}) ([]int, error) {
	rows, err := q.QueryContext(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		return nil, fmt.Errorf("reading schema_migrations: %w", err)
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		vs = append(vs, v)
	}
	return vs, rows.Err()
}

func checkNotNewer(applied []int, ms []Migration) error {
	latest := len(ms)
	for _, v := range applied {
		if v > latest {
			return fmt.Errorf("%w: it is at version %d, this binary knows versions up to %d; run a Ferry at least as new as the one that upgraded it",
				ErrNewerSchema, applied[len(applied)-1], latest)
		}
	}
	return nil
}

// Status is what `ferry db status` shows.
type Status struct {
	Dialect Dialect
	// Version is the highest applied migration; 0 for an empty database.
	Version int
	// Latest is the highest migration this binary has.
	Latest int
	// Applied are the applied migrations with when (zero for a version
	// adopted from a release before schema_migrations).
	Applied []AppliedMigration
	// Pending are the migrations the next Open applies.
	Pending []Migration
	// Newer is set when the database has versions this binary lacks.
	Newer bool
}

// AppliedMigration is a row of schema_migrations.
type AppliedMigration struct {
	Version int
	Name    string
	At      time.Time
}

// Status reads the schema's state without changing it.
func (d *DB) Status(ctx context.Context) (Status, error) {
	ms, err := loadMigrations(d.dialect)
	if err != nil {
		return Status{}, err
	}
	st := Status{Dialect: d.dialect, Latest: len(ms)}
	has, err := d.hasTable(ctx, d.sql, "schema_migrations")
	if err != nil {
		return Status{}, err
	}
	applied := map[int]bool{}
	if has {
		rows, err := d.sql.QueryContext(ctx, `SELECT version, name, applied_at FROM schema_migrations ORDER BY version`)
		if err != nil {
			return Status{}, err
		}
		defer rows.Close()
		for rows.Next() {
			var a AppliedMigration
			var at int64
			if err := rows.Scan(&a.Version, &a.Name, &at); err != nil {
				return Status{}, err
			}
			if at != 0 {
				a.At = time.UnixMicro(at)
			}
			st.Applied = append(st.Applied, a)
			applied[a.Version] = true
			st.Version = max(st.Version, a.Version)
			if a.Version > st.Latest {
				st.Newer = true
			}
		}
		if err := rows.Err(); err != nil {
			return Status{}, err
		}
	} else if d.dialect == SQLite {
		if legacy, err := isLegacy(ctx, d.sql); err != nil {
			return Status{}, err
		} else if legacy {
			st.Version = 1
			st.Applied = []AppliedMigration{{Version: 1, Name: ms[0].Name}}
			applied[1] = true
		}
	}
	for _, m := range ms {
		if !applied[m.Version] {
			st.Pending = append(st.Pending, m)
		}
	}
	return st, nil
}

type querier interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}

// hasTable reports whether the table exists (in the current schema on
// PostgreSQL).
func (d *DB) hasTable(ctx context.Context, q querier, name string) (bool, error) {
	var n int
	var err error
	if d.dialect == Postgres {
		err = q.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.tables
			WHERE table_schema = current_schema() AND table_name = $1`, name).Scan(&n)
	} else {
		err = q.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1`, name).Scan(&n)
	}
	return n > 0, err
}

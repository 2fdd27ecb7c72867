package db_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/db"
	"github.com/ferryftp/ferry/internal/testenv/pgenv"
)

func TestMain(m *testing.M) { pgenv.Main(m) }

// engines are the databases every test runs on: a fresh SQLite file and a
// fresh database of the package's PostgreSQL cluster.
var engines = []struct {
	name string
	url  func(t *testing.T) string
}{
	{"sqlite", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "ferry.db") }},
	{"postgres", func(t *testing.T) string { return pgenv.DB(t) }},
}

func open(t *testing.T, url string, o db.Options) *db.DB {
	t.Helper()
	d, err := db.Open(t.Context(), url, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// wait bounds a wait that must end; the bound only stops a hung test.
const wait = 20 * time.Second

func TestMigrationFiles(t *testing.T) {
	for _, d := range []db.Dialect{db.SQLite, db.Postgres} {
		ms := db.Migrations(d)
		if len(ms) < 2 {
			t.Fatalf("%s: %d migrations", d, len(ms))
		}
		for i, m := range ms {
			if m.Version != i+1 || m.Name == "" || strings.TrimSpace(m.SQL) == "" {
				t.Errorf("%s: migration %d = %d %q", d, i, m.Version, m.Name)
			}
		}
		if ms[0].Name != "users" || ms[1].Name != "bans" {
			t.Errorf("%s: first migrations %q, %q", d, ms[0].Name, ms[1].Name)
		}
	}
}

// TestMigrationsFromEmpty: an empty database gets every migration, each
// recorded once, and a second Open applies nothing.
func TestMigrationsFromEmpty(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			url := e.url(t)
			d := open(t, url, db.Options{})
			if string(d.Dialect()) != e.name {
				t.Errorf("Dialect = %s", d.Dialect())
			}
			st, err := d.Status(t.Context())
			latest := len(db.Migrations(d.Dialect()))
			if err != nil || st.Version != latest || st.Latest != latest || len(st.Pending) != 0 || len(st.Applied) != latest || st.Newer {
				t.Fatalf("Status = %+v, %v", st, err)
			}
			for _, table := range []string{"users", "bans"} {
				var n int
				if err := d.SQL().QueryRowContext(t.Context(), "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil || n != 0 {
					t.Errorf("%s: %d rows, %v", table, n, err)
				}
			}
			again := open(t, url, db.Options{})
			st2, err := again.Status(t.Context())
			if err != nil || fmt.Sprint(st2.Applied) != fmt.Sprint(st.Applied) {
				t.Errorf("second Open changed schema_migrations: %+v, %v; was %+v", st2.Applied, err, st.Applied)
			}
		})
	}
}

// TestNewerSchemaRefused: a database with a version this binary lacks is
// refused with a message that says what to do, and left as it is.
func TestNewerSchemaRefused(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			url := e.url(t)
			d := open(t, url, db.Options{})
			latest := len(db.Migrations(d.Dialect()))
			if _, err := d.SQL().ExecContext(t.Context(), `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, 'from_the_future', 1)`, latest+1); err != nil {
				t.Fatal(err)
			}
			d2, err := db.Open(t.Context(), url, db.Options{})
			if err == nil {
				d2.Close()
				t.Fatal("Open accepted a newer schema")
			}
			if !errors.Is(err, db.ErrNewerSchema) || !strings.Contains(err.Error(), fmt.Sprintf("version %d", latest+1)) || !strings.Contains(err.Error(), "at least as new") {
				t.Errorf("Open: %v", err)
			}
			st, err := d.Status(t.Context())
			if err != nil || !st.Newer || st.Version != latest+1 {
				t.Errorf("Status = %+v, %v", st, err)
			}
		})
	}
}

// TestConcurrentOpen: processes starting at once on one database apply
// each migration exactly once (the lock), and none fails.
func TestConcurrentOpen(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			url := e.url(t)
			const n = 8
			var ready, wg sync.WaitGroup
			ready.Add(n)
			start := make(chan struct{})
			errs := make(chan error, n)
			for range n {
				wg.Go(func() {
					ready.Done()
					<-start
					// Each its own pool, as separate processes have.
					d, err := db.Open(context.Background(), url, db.Options{PoolSize: 2})
					if err == nil {
						d.Close()
					}
					errs <- err
				})
			}
			ready.Wait()
			close(start)
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Errorf("concurrent Open: %v", err)
				}
			}
			d := open(t, url, db.Options{NoMigrate: true})
			rows, err := d.SQL().QueryContext(t.Context(), `SELECT version, COUNT(*) FROM schema_migrations GROUP BY version ORDER BY version`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var got []string
			for rows.Next() {
				var v, c int
				if err := rows.Scan(&v, &c); err != nil {
					t.Fatal(err)
				}
				got = append(got, fmt.Sprintf("%d:%d", v, c))
			}
			var want []string
			for _, m := range db.Migrations(d.Dialect()) {
				want = append(want, fmt.Sprintf("%d:1", m.Version))
			}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("schema_migrations version:count = %v, want %v", got, want)
			}
		})
	}
}

// TestOptions: the pool size and the statement timeout reach the engine.
func TestOptions(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			d := open(t, e.url(t), db.Options{PoolSize: 3, StatementTimeout: 2 * time.Second})
			if got := d.SQL().Stats().MaxOpenConnections; got != 3 {
				t.Errorf("MaxOpenConnections = %d", got)
			}
			q, want := "PRAGMA busy_timeout", "2000"
			if d.Dialect() == db.Postgres {
				q, want = "SHOW statement_timeout", "2s"
			}
			var got string
			if err := d.SQL().QueryRowContext(t.Context(), q).Scan(&got); err != nil || got != want {
				t.Errorf("%s = %q, %v; want %q", q, got, err, want)
			}
		})
	}
}

// TestStatementTimeout: on PostgreSQL a statement longer than the timeout
// is cancelled by the server.
func TestStatementTimeout(t *testing.T) {
	d := open(t, pgenv.DB(t), db.Options{StatementTimeout: 200 * time.Millisecond})
	_, err := d.SQL().ExecContext(t.Context(), "SELECT pg_sleep(30)")
	if err == nil || !strings.Contains(err.Error(), "statement timeout") {
		t.Errorf("pg_sleep(30): %v", err)
	}
}

func TestMustExist(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "no.db")
	_, err := db.Open(t.Context(), "sqlite:no.db", db.Options{DataDir: dir, MustExist: true})
	if !db.IsNotExist(err) {
		t.Errorf("Open of a missing file: %v", err)
	}
	if _, err := os.Stat(path); err == nil {
		t.Error("MustExist created the file")
	}
	d := open(t, "sqlite:no.db", db.Options{DataDir: dir})
	if d.Path() != path || d.String() != "sqlite:"+path {
		t.Errorf("Path %q, String %q; want %s", d.Path(), d.String(), path)
	}
}

// TestParseDialect: every accepted form, and each malformed one refused
// with the forms named and no password shown.
func TestParseDialect(t *testing.T) {
	for url, want := range map[string]db.Dialect{
		"sqlite:users.db":        db.SQLite,
		"sqlite:/var/lib/a?b.db": db.SQLite,
		"postgres://u:pw@127.0.0.1:5432/ferry?sslmode=disable":  db.Postgres,
		"postgresql://db.example.com/ferry?sslmode=verify-full": db.Postgres,
		"host=127.0.0.1 port=5432 dbname=ferry sslmode=require": db.Postgres,
	} {
		if got, err := db.ParseDialect(url); got != want || err != nil {
			t.Errorf("ParseDialect(%q) = %q, %v", url, got, err)
		}
	}
	for _, url := range []string{
		"", "sqlite:", "sqlite:a\x00b", "users.db", "mysql://u:s3cret@h/db", "postgres://u:s3cret@[::1",
		"file:users.db", "host", "=x", "SQLITE:users.db",
	} {
		_, err := db.ParseDialect(url)
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("ParseDialect(%q): %v", url, err)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:s3cret@h:5432/db?sslmode=disable": "postgres://u:xxxxx@h:5432/db?…",
		"postgres://u@h/db":                             "postgres://u@h/db",
		"host=h password=s3cret":                        "(hidden: not a url)",
	} {
		if got := db.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestOpenUnreachable: a PostgreSQL that does not answer is an
// UnreachableError (which `ferry serve` retries) without the password.
func TestOpenUnreachable(t *testing.T) {
	c := pgenv.Shared(t)
	url := fmt.Sprintf("postgres://ferry:s3cret@127.0.0.1:%d/nosuchdb?sslmode=disable", c.Port)
	_, err := db.Open(t.Context(), url, db.Options{})
	var u *db.UnreachableError
	if !errors.As(err, &u) || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "nosuchdb") {
		t.Errorf("Open of a missing database: %v", err)
	}
	_, err = db.Open(t.Context(), "postgres://ferry:s3cret@127.0.0.1:1/x?sslmode=disable", db.Options{ConnectTimeout: time.Second})
	if !errors.As(err, &u) || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Open of a closed port: %v", err)
	}
}

// recv returns the next payload of c, failing the test after wait.
func recv(t *testing.T, c <-chan string) string {
	t.Helper()
	select {
	case p, ok := <-c:
		if !ok {
			t.Fatal("listen channel closed")
		}
		return p
	case <-time.After(wait):
		t.Fatal("no notification")
	}
	return ""
}

// TestListenNotify: a Notify on one handle reaches a Listen on another
// (PostgreSQL), or on the same (SQLite); on SQLite a write by another
// handle is seen as "" (reload).
func TestListenNotify(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			url := e.url(t)
			// A pool of one: Listen must not hold it.
			listener := open(t, url, db.Options{PoolSize: 1})
			ctx, cancel := context.WithCancel(t.Context())
			c, err := listener.Listen(ctx, "ferry_test")
			if err != nil {
				t.Fatal(err)
			}
			qctx, qcancel := context.WithTimeout(t.Context(), wait)
			var one int
			if err := listener.SQL().QueryRowContext(qctx, "SELECT 1").Scan(&one); err != nil {
				t.Errorf("a query beside a Listen on a pool of one: %v", err)
			}
			qcancel()
			if _, err := listener.Listen(ctx, "Bad Name"); err == nil {
				t.Error("Listen accepted a bad channel name")
			}
			notifier := listener
			if listener.Dialect() == db.Postgres {
				notifier = open(t, url, db.Options{})
			}
			if err := notifier.Notify(t.Context(), "ferry_other", "not for us"); err != nil {
				t.Fatal(err)
			}
			if err := notifier.Notify(t.Context(), "ferry_test", "192.0.2.1"); err != nil {
				t.Fatal(err)
			}
			if p := recv(t, c); p != "192.0.2.1" {
				t.Errorf("payload %q", p)
			}
			if listener.Dialect() == db.SQLite {
				other := open(t, url, db.Options{})
				if _, err := other.SQL().ExecContext(t.Context(), `INSERT INTO bans (ip, until_ns, times, reason) VALUES ('192.0.2.2', 1, 1, 'x')`); err != nil {
					t.Fatal(err)
				}
				if p := recv(t, c); p != "" {
					t.Errorf("after another handle's write: %q, want \"\"", p)
				}
			}
			cancel()
			for range c {
			}
		})
	}
}

// TestListenSurvivesRestart: a PostgreSQL restart cuts the listener's
// connection; it reconnects, says "" (notifications may be lost), and
// receives again.
func TestListenSurvivesRestart(t *testing.T) {
	c := pgenv.New(t)
	url := c.CreateDB(t)
	d := open(t, url, db.Options{ConnectTimeout: time.Second})
	ch, err := d.Listen(t.Context(), "ferry_test")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(); err != nil {
		t.Fatal(err)
	}
	if p := recv(t, ch); p != "" {
		t.Errorf("after the restart: %q, want \"\"", p)
	}
	// The pool's connections were cut too; database/sql retries a bad one.
	deadline := time.Now().Add(wait)
	for {
		err := d.Notify(t.Context(), "ferry_test", "back")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if p := recv(t, ch); p != "back" {
		t.Errorf("after the restart: %q, want back", p)
	}
	// Close ends the Listen.
	d.Close()
	for range ch {
	}
}

// openRaw opens a SQLite file the way the release before did.
func openRaw(t *testing.T, path string) *sql.DB {
	t.Helper()
	r, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestMigrationWaitsForTheLock: an Open whose statement timeout is shorter
// than another process's hold of the migration lock waits for it instead of
// failing, then finds nothing left to do.
func TestMigrationWaitsForTheLock(t *testing.T) {
	url := pgenv.DB(t)
	holder := open(t, url, db.Options{})
	tx, err := holder.SQL().BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(t.Context(), `SELECT pg_advisory_xact_lock($1)`, db.MigrateLockKey); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		start := time.Now()
		d, err := db.Open(context.Background(), url, db.Options{StatementTimeout: 50 * time.Millisecond})
		t.Logf("Open returned after %v: %v", time.Since(start), err)
		if err == nil {
			d.Close()
		}
		done <- err
	}()
	// Hold the lock for many statement timeouts; the Open must still wait.
	select {
	case err := <-done:
		t.Fatalf("Open did not wait for the lock: %v", err)
	case <-time.After(time.Second):
	}
	tx.Commit()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Open after the lock was released: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("Open still waits after the lock was released")
	}
}

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	neturl "net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/config"
	"github.com/ferryftp/ferry/internal/db"
	"github.com/ferryftp/ferry/internal/testenv"
	"github.com/ferryftp/ferry/internal/testenv/pgenv"
	"github.com/ferryftp/ferry/internal/users"
	"github.com/ferryftp/ferry/internal/users/sqlstore"
)

func TestMain(m *testing.M) {
	// The CLI reads FERRY_DATABASE; the tests set it where they mean to.
	os.Unsetenv(config.DatabaseEnv)
	pgenv.Main(m)
}

func dbCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = runDB(args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestCLIPostgres is the interface contract on PostgreSQL: `ferry user add
// NAME --database postgres://… --password-stdin`, `ferry ban … --database`,
// `ferry db status --database`, and FERRY_DATABASE instead of the flag. A
// second handle, standing for a server, sees every change.
func TestCLIPostgres(t *testing.T) {
	url := pgenv.DB(t)
	data := t.TempDir()
	var out, errb bytes.Buffer
	if code := runUser([]string{"add", "carol", "--database", url, "--password-stdin", "--data", data},
		strings.NewReader("pw\n"), &out, &errb); code != 0 {
		t.Fatalf("user add --database: %d %s", code, errb.String())
	}
	d, err := db.Open(t.Context(), url, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	server := sqlstore.New(d, sqlstore.Options{})
	if _, err := server.Authenticate(t.Context(), users.LoginRequest{Name: "carol", Password: "pw"}); err != nil {
		t.Errorf("carol cannot log in: %v", err)
	}
	if _, err := os.Stat(filepath.Join(data, "users.db")); err == nil {
		t.Error("a postgres --database made a users.db")
	}

	t.Setenv(config.DatabaseEnv, url)
	out.Reset()
	if code := runUser([]string{"list", "--data", data}, nil, &out, &errb); code != 0 || !strings.Contains(out.String(), "carol") {
		t.Errorf("user list with FERRY_DATABASE: %d %q %q", code, out.String(), errb.String())
	}
	if code, _, errs := banCLI("add", "192.0.2.44", "--data", data); code != 0 {
		t.Fatalf("ban add with FERRY_DATABASE: %d %s", code, errs)
	}
	t.Setenv(config.DatabaseEnv, "")
	if code, out, errs := banCLI("list", "--database", url, "--data", data); code != 0 || !strings.Contains(out, "192.0.2.44") {
		t.Errorf("ban list --database: %d %q %q", code, out, errs)
	}
	code, st, errs := dbCLI("status", "--database", url)
	latest := len(db.Migrations(db.Postgres))
	if code != 0 || !strings.Contains(st, "engine:          postgres") || !strings.Contains(st, fmt.Sprintf("schema version:  %d", latest)) ||
		!strings.Contains(st, "up to date") || !strings.Contains(st, "0002_bans") {
		t.Errorf("db status: %d\n%s%s", code, st, errs)
	}
	if code, out, errs := banCLI("del", "192.0.2.44", "--database", url); code != 0 || !strings.Contains(out, "unbanned") {
		t.Errorf("ban del --database: %d %q %q", code, out, errs)
	}
}

// TestDBStatus: on SQLite, status reads a missing file as an error without
// creating it, shows pending migrations of a file of the release before
// without applying them, and refuses malformed command lines.
func TestDBStatus(t *testing.T) {
	data := t.TempDir()
	code, _, errs := dbCLI("status", "--data", data)
	if code != 1 || !strings.Contains(errs, "no database at "+filepath.Join(data, "users.db")) {
		t.Errorf("status of a missing file: %d %q", code, errs)
	}
	if _, err := os.Stat(filepath.Join(data, "users.db")); err == nil {
		t.Error("status created the database")
	}
	// An empty file stands for a database no command has migrated yet.
	if err := os.WriteFile(filepath.Join(data, "users.db"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := dbCLI("status", "--data", data)
	// Every migration is pending; later ones (0003_user_login_message, ...)
	// follow the first two.
	if code != 0 || !strings.Contains(out, "schema version:  0") || !regexp.MustCompile(`state: +[1-9][0-9]* pending migration`).MatchString(out) ||
		!strings.Contains(out, "0001_users\n  0002_bans") {
		t.Errorf("status of an empty file: %d\n%s%s", code, out, errs)
	}
	if code, out, _ := dbCLI("status", "--data", data); !strings.Contains(out, "pending") || code != 0 {
		t.Error("status applied the migrations")
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "Usage"},
		{[]string{"help"}, 0, "ferry db status"},
		{[]string{"migrate"}, 2, "unknown command"},
		{[]string{"status", "extra", "--data", data}, 2, "unexpected argument"},
		{[]string{"status", "--nope"}, 2, "not defined"},
		{[]string{"status", "--database", "mysql://u:s3cret@h/db"}, 1, "neither sqlite:PATH nor a PostgreSQL url"},
	} {
		code, out, errs := dbCLI(tc.args...)
		if code != tc.code || !strings.Contains(out+errs, tc.want) || strings.Contains(out+errs, "s3cret") {
			t.Errorf("ferry db %v: %d, %q %q; want %d and %q", tc.args, code, out, errs, tc.code, tc.want)
		}
	}
}

// TestServeRetriesUnreachableDatabase: `ferry serve` waits for a database
// that is down at start, logging each attempt without the password, and
// opens it once it is up; start_timeout bounds the wait; a cancelled context
// (SIGTERM) ends it.
func TestServeRetriesUnreachableDatabase(t *testing.T) {
	c := pgenv.New(t)
	url := strings.Replace(c.CreateDB(t), "ferry@", "ferry:s3cret@", 1)
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	var logs testenv.LogBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	type result struct {
		d   *db.DB
		err error
	}
	done := make(chan result, 1)
	go func() {
		d, err := openDatabaseRetry(t.Context(), log, t.TempDir(), url, db.Options{ConnectTimeout: time.Second}, 0)
		done <- result{d, err}
	}()
	// Wait for two logged failures, then bring the server up.
	deadline := time.Now().Add(time.Minute)
	for strings.Count(logs.String(), "database unreachable, retrying") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no retries logged:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("after the start: %v", r.err)
	}
	r.d.Close()
	if l := logs.String(); strings.Contains(l, "s3cret") || !strings.Contains(l, "attempt=2") || !strings.Contains(l, "ferry:xxxxx@") {
		t.Errorf("logs:\n%s", l)
	}

	// Bounded by start_timeout.
	closed := fmt.Sprintf("postgres://ferry:s3cret@127.0.0.1:%d/x?sslmode=disable", c.Port)
	c.Stop()
	_, err := openDatabaseRetry(t.Context(), log, t.TempDir(), closed, db.Options{ConnectTimeout: time.Second}, 2*time.Second)
	if err == nil || !strings.Contains(err.Error(), "gave up") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("with start_timeout: %v", err)
	}
	// Ended by the context.
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err = openDatabaseRetry(ctx, log, t.TempDir(), closed, db.Options{ConnectTimeout: time.Second}, 0)
	if err == nil || !strings.Contains(err.Error(), "stopped while retrying") {
		t.Errorf("cancelled: %v", err)
	}
	// Not retried: a newer schema, a bad url.
	if _, err := openDatabaseRetry(t.Context(), log, t.TempDir(), "mysql://x", db.Options{}, 0); err == nil {
		t.Error("a bad url was accepted")
	}
}

// TestPostgresOutageInProcess is TestPostgresRestart (test/e2e) with the
// server in this process, to count its goroutines: PostgreSQL stopped
// under `ferry serve` (bans on, so its ban Listen runs) and started again;
// logins get 421 while it is down and 230 afterwards, and once settled the
// server runs no more goroutines than before the outage.
func TestPostgresOutageInProcess(t *testing.T) {
	c := pgenv.New(t)
	url := c.CreateDB(t)
	s := startLive(t, func(cfg *config.Config) {
		cfg.Database.URL = url
		cfg.Database.ConnectTimeout = config.Duration{Duration: 2 * time.Second}
		cfg.BanThreshold = 20
		cfg.Anonymous = false
	})
	var out, errb bytes.Buffer
	if code := runUser([]string{"add", "carol", "--database", url, "--password-stdin", "--data", s.data},
		strings.NewReader("pw\n"), &out, &errb); code != 0 {
		t.Fatalf("user add: %d %s", code, errb.String())
	}
	login := func() (int, string) {
		t.Helper()
		f, code, text, err := dialFTP(s.addr, testDeadline)
		if err != nil || code != 220 {
			t.Fatalf("connect: %d %s %v", code, text, err)
		}
		defer f.Close()
		mustCmd(t, f, 331, "USER carol")
		code, text, err = f.cmd("PASS pw")
		if err != nil {
			t.Fatalf("PASS: %v", err)
		}
		f.cmd("QUIT")
		return code, text
	}
	for range 3 {
		if code, text := login(); code != 230 {
			t.Fatalf("before: %d %s", code, text)
		}
	}
	before := settledGoroutines()

	// Writes what was committed (pgenv runs synchronous_commit=off, and
	// the stop is a crash).
	if _, err := pgExec(t, url, `CHECKPOINT`); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if code, text := login(); code != 421 || text != "Service not available: user database error." {
			t.Fatalf("login %d while PostgreSQL is down: %d %s", i+1, code, text)
		}
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(testDeadline)
	for {
		code, text := login()
		if code == 230 {
			break
		}
		if code != 421 || time.Now().After(deadline) {
			t.Fatalf("after the start: %d %s", code, text)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for range 3 {
		if code, text := login(); code != 230 {
			t.Fatalf("after: %d %s", code, text)
		}
	}
	// The ban Listen reconnects with a backoff of up to 5 s; give it that,
	// then the count must come back to what it was.
	deadline = time.Now().Add(testDeadline)
	var after int
	for {
		if after = settledGoroutines(); after <= before {
			break
		}
		if time.Now().After(deadline) {
			var dump bytes.Buffer
			pprof.Lookup("goroutine").WriteTo(&dump, 1)
			t.Fatalf("%d goroutines after the outage, %d before:\n%s", after, before, dump.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("goroutines: %d before the outage, %d after", before, after)
}

// settledGoroutines returns runtime.NumGoroutine once it has stayed the
// same for five reads 20 ms apart (connections just closed end their
// goroutines), or after two seconds.
func settledGoroutines() int {
	n, same := runtime.NumGoroutine(), 0
	for end := time.Now().Add(2 * time.Second); same < 5 && time.Now().Before(end); {
		time.Sleep(20 * time.Millisecond)
		if m := runtime.NumGoroutine(); m == n {
			same++
		} else {
			n, same = m, 0
		}
	}
	return n
}

// pgExec runs one statement on the database of url, on a handle of its own.
func pgExec(t *testing.T, url, q string) (int64, error) {
	t.Helper()
	d, err := db.Open(t.Context(), url, db.Options{NoMigrate: true, PoolSize: 1})
	if err != nil {
		return 0, err
	}
	defer d.Close()
	r, err := d.SQL().ExecContext(t.Context(), q)
	if err != nil {
		return 0, err
	}
	return r.RowsAffected()
}

// TestDatabaseSettingsApply: the [database] settings reach the pool as
// `ferry serve` opens it: pool_size bounds the connections,
// statement_timeout is every connection's (the ban Listen's too: it is the
// same configuration), and connect_timeout ends an attempt at a server that
// accepts TCP but never answers.
func TestDatabaseSettingsApply(t *testing.T) {
	url := pgenv.DB(t)
	c := config.Defaults().Database
	c.PoolSize = 3
	c.StatementTimeout = config.Duration{Duration: 1500 * time.Millisecond}
	c.ConnectTimeout = config.Duration{Duration: time.Second}
	d, err := openDatabase(t.Context(), t.TempDir(), url, dbOptions(t.TempDir(), c))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if got := d.SQL().Stats().MaxOpenConnections; got != 3 {
		t.Errorf("pool_size 3: MaxOpenConnections %d", got)
	}
	var got string
	if err := d.SQL().QueryRowContext(t.Context(), `SHOW statement_timeout`).Scan(&got); err != nil || got != "1500ms" {
		t.Errorf("statement_timeout 1.5s: SHOW statement_timeout = %q, %v", got, err)
	}

	// A server that accepts and stays silent.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { conn.Close() })
		}
	}()
	silent := fmt.Sprintf("postgres://ferry@%s/x?sslmode=disable", ln.Addr())
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline) // a safety net, far above connect_timeout
	defer cancel()
	_, err = openDatabase(ctx, t.TempDir(), silent, dbOptions(t.TempDir(), c))
	var ue *db.UnreachableError
	if !errors.As(err, &ue) || ctx.Err() != nil {
		t.Errorf("a silent server with connect_timeout 1s: %v (context: %v)", err, ctx.Err())
	}
}

// freezer forwards TCP connections to a PostgreSQL server and can stop
// forwarding without closing anything: a database whose packets are lost.
type freezer struct {
	ln     net.Listener
	target string
	frozen atomic.Bool
}

func newFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, target: target}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { f.serve(c) })
		}
	})
	return f
}

func (f *freezer) serve(c net.Conn) {
	defer c.Close()
	for f.frozen.Load() {
		time.Sleep(10 * time.Millisecond)
	}
	up, err := net.Dial("tcp", f.target)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		defer func() { done <- struct{}{} }()
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			for f.frozen.Load() {
				time.Sleep(10 * time.Millisecond)
			}
			if n > 0 {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
}

// TestPostgresUnresponsive: a database that stops answering without
// closing anything (packets lost, so statement_timeout cannot act) holds a
// login for the command's backend_timeout (or less, the login deadline),
// then it is answered 421 "user database error", never 530 nor a login;
// once the database answers again, logins succeed without a restart.
func TestPostgresUnresponsive(t *testing.T) {
	url := pgenv.DB(t)
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	fz := newFreezer(t, u.Host)
	u.Host = fz.ln.Addr().String()
	s := startLive(t, func(cfg *config.Config) {
		cfg.Database.URL = u.String()
		cfg.BanThreshold = 20
		cfg.Anonymous = false
		cfg.LoginTimeout = config.Duration{Duration: 8 * time.Second}
		cfg.BackendTimeout = config.Duration{Duration: 2 * time.Second}
	})
	var out, errb bytes.Buffer
	if code := runUser([]string{"add", "carol", "--database", url, "--password-stdin", "--data", s.data},
		strings.NewReader("pw\n"), &out, &errb); code != 0 {
		t.Fatalf("user add: %d %s", code, errb.String())
	}
	login := func() (int, string) {
		t.Helper()
		f, code, text, err := dialFTP(s.addr, testDeadline)
		if err != nil || code != 220 {
			t.Fatalf("connect: %d %s %v", code, text, err)
		}
		defer f.Close()
		mustCmd(t, f, 331, "USER carol")
		code, text, err = f.cmd("PASS pw")
		if err != nil {
			t.Fatalf("PASS: %v", err)
		}
		return code, text
	}
	if code, text := login(); code != 230 {
		t.Fatalf("before: %d %s", code, text)
	}
	fz.frozen.Store(true)
	start := time.Now()
	if code, text := login(); code != 421 || text != "Service not available: user database error." {
		t.Errorf("login while the database does not answer: %d %s", code, text)
	}
	t.Logf("the login while the database did not answer took %v (login_timeout 8s)", time.Since(start))
	fz.frozen.Store(false)
	deadline := time.Now().Add(testDeadline)
	for {
		code, text := login()
		if code == 230 {
			break
		}
		if code != 421 || time.Now().After(deadline) {
			t.Fatalf("after the database answers again: %d %s", code, text)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

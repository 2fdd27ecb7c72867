// Package pgenv starts throwaway PostgreSQL servers for tests: initdb into a
// short directory under /tmp, pg_ctl start on a free loopback port with
// fsync off, and a fresh database per test. It runs the server binaries of
// Debian's postgresql package (/usr/lib/postgresql/*/bin, or $FERRY_PG_BIN),
// as the postgres user through runuser when the tests run as root (initdb
// refuses root). Under CI (testenv.InCI) a missing PostgreSQL fails the
// test; elsewhere it skips with the reason. Only tests import it.
//
// A package shares one cluster: its TestMain calls Main (or Run), and each
// test calls DB for a database of its own. Fault tests that stop the server take a
// private cluster with New and call Stop, Start or Restart.
package pgenv

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/testenv"
	"github.com/jackc/pgx/v5"
)

// Superuser is the role every cluster is created with (trust
// authentication: any password is accepted).
const Superuser = "ferry"

// Cluster is one running (or stopped) PostgreSQL server of the tests.
type Cluster struct {
	// Dir is the cluster's temporary directory: data/, server.log and the
	// Unix socket. Port is its TCP port on 127.0.0.1, below the ephemeral
	// range (see freePort), the same after Restart.
	Dir  string
	Port int
	bin  string

	mu       sync.Mutex
	running  bool      // guarded by mu
	watchdog *exec.Cmd // stops the server if the test process dies
}

var (
	sharedMu    sync.Mutex
	shared      *Cluster // guarded by sharedMu
	sharedErr   error    // guarded by sharedMu
	mainRunning atomic.Bool
	dbCounter   atomic.Int64
)

// Main runs the package's tests, stops the shared cluster if a test started
// one, and exits. Call it from TestMain: func TestMain(m *testing.M) {
// pgenv.Main(m) }.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main for a TestMain that does more: it returns m.Run's code after
// stopping the shared cluster, instead of exiting.
func Run(m *testing.M) int {
	mainRunning.Store(true)
	code := m.Run()
	sharedMu.Lock()
	if shared != nil {
		shared.destroy()
	}
	sharedMu.Unlock()
	return code
}

// Shared returns the package's cluster, starting it at the first call. It
// skips the test (fails it under CI) when PostgreSQL is not installed.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	if !mainRunning.Load() {
		t.Fatal("pgenv: the package's TestMain must call pgenv.Main(m) or pgenv.Run(m), which stop the shared cluster")
	}
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil && sharedErr == nil {
		shared, sharedErr = start()
	}
	if sharedErr != nil {
		unavailable(t, sharedErr)
	}
	return shared
}

// DB creates a fresh database on the shared cluster and returns its url
// (postgres://ferry@127.0.0.1:PORT/t_N?sslmode=disable).
func DB(t testing.TB) string {
	t.Helper()
	return Shared(t).CreateDB(t)
}

// New starts a private cluster that the test's cleanup destroys.
func New(t testing.TB) *Cluster {
	t.Helper()
	c, err := start()
	if err != nil {
		unavailable(t, err)
	}
	t.Cleanup(c.destroy)
	return c
}

// errMissing marks PostgreSQL not being installed (as opposed to failing).
var errMissing = errors.New("PostgreSQL server binaries not found")

func unavailable(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, errMissing) && !testenv.InCI() {
		t.Skipf("pgenv: %v (apt-get install -y postgresql; CI=true makes this a failure)", err)
	}
	t.Fatalf("pgenv: %v", err)
}

// binDir finds the server binaries: $FERRY_PG_BIN, else the newest
// /usr/lib/postgresql/N/bin that has initdb.
func binDir() (string, error) {
	if d := os.Getenv("FERRY_PG_BIN"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			return "", fmt.Errorf("%w: FERRY_PG_BIN=%s: %v", errMissing, d, err)
		}
		return d, nil
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(found) == 0 {
		return "", fmt.Errorf("%w: no /usr/lib/postgresql/*/bin/initdb", errMissing)
	}
	sort.Slice(found, func(i, j int) bool { return version(found[i]) < version(found[j]) })
	return filepath.Dir(found[len(found)-1]), nil
}

func version(initdb string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return n
}

// command returns a command running bin/name as the postgres user when
// the tests run as root, else as the current user.
func (c *Cluster) command(name string, args ...string) *exec.Cmd {
	path := filepath.Join(c.bin, name)
	if os.Geteuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	}
	return exec.Command(path, args...)
}

func run(cmd *exec.Cmd) error {
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	return nil
}

func start() (*Cluster, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("/tmp", "fpg")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, bin: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("%w: running as root needs the postgres user of Debian's postgresql package: %v", errMissing, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	if err := run(c.command("initdb", "-D", filepath.Join(dir, "data"), "-U", Superuser, "-A", "trust",
		"-E", "UTF8", "--locale=C.UTF-8", "--no-sync", "--no-instructions")); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// The port is free when picked; another process may take it before the
	// server binds, so try a few.
	for range 3 {
		if c.Port, err = freePort(); err != nil {
			break
		}
		if err = c.Start(); err == nil {
			break
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c.startWatchdog()
	return c, nil
}

// freePort returns a free loopback port below the kernel's ephemeral range:
// a server that is stopped and started again (Restart) must find its port
// free, and a port in the ephemeral range may meanwhile be taken by an
// outgoing connection, even by a client retrying this very port (a TCP
// self-connect, which succeeds when nothing listens).
func freePort() (int, error) {
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				lo = n
			}
		}
	}
	// 10000-19999 is test/e2e's passive ports.
	if lo > 22000 {
		for range 100 {
			port := 20000 + rand.IntN(lo-21000)
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err == nil {
				l.Close()
				return port, nil
			}
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start starts the stopped server on its port and waits until it accepts
// connections.
func (c *Cluster) Start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return nil
	}
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off -c synchronous_commit=off "+
		"-c full_page_writes=off -c max_connections=300", c.Port, c.Dir)
	err := run(c.command("pg_ctl", "-D", filepath.Join(c.Dir, "data"), "-l", filepath.Join(c.Dir, "server.log"),
		"-w", "-t", "60", "-o", opts, "start"))
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(c.Dir, "server.log"))
		return fmt.Errorf("%v\nserver.log:\n%s", err, tail(log, 2000))
	}
	c.running = true
	return nil
}

// Stop stops the server at once (pg_ctl -m immediate: like a crash, every
// connection is cut).
func (c *Cluster) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running {
		return nil
	}
	if err := run(c.command("pg_ctl", "-D", filepath.Join(c.Dir, "data"), "-m", "immediate", "-w", "stop")); err != nil {
		return err
	}
	c.running = false
	return nil
}

// Restart stops the server at once and starts it again on the same port.
func (c *Cluster) Restart() error {
	if err := c.Stop(); err != nil {
		return err
	}
	return c.Start()
}

// URL returns the url of database name on the cluster.
func (c *Cluster) URL(name string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", Superuser, c.Port, name)
}

var unsafeName = regexp.MustCompile(`[^a-z0-9]+`)

// CreateDB creates an empty database named after the test and returns its
// url.
func (c *Cluster) CreateDB(t testing.TB) string {
	t.Helper()
	name := unsafeName.ReplaceAllString(strings.ToLower(t.Name()), "_")
	name = fmt.Sprintf("t%d_%s", dbCounter.Add(1), name)
	if len(name) > 60 {
		name = name[:60]
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		t.Fatalf("pgenv: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgenv: %v", err)
	}
	return c.URL(name)
}

// startWatchdog starts a shell that stops the server and removes Dir when
// the test process is gone without its cleanup (a test binary killed at
// its timeout), so that no cluster outlives its tests.
func (c *Cluster) startWatchdog() {
	stop := strings.Join(c.command("pg_ctl", "-D", filepath.Join(c.Dir, "data"), "-m", "immediate", "-w", "stop").Args, " ")
	script := fmt.Sprintf("while kill -0 %d 2>/dev/null; do sleep 1; done; %s >/dev/null 2>&1; rm -rf %s", os.Getpid(), stop, c.Dir)
	cmd := exec.Command("sh", "-c", script)
	if cmd.Start() == nil {
		c.watchdog = cmd
	}
}

// destroy stops the server and removes its directory.
func (c *Cluster) destroy() {
	if err := c.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "pgenv: %v\n", err)
	}
	if c.watchdog != nil {
		c.watchdog.Process.Kill()
		c.watchdog.Wait()
	}
	os.RemoveAll(c.Dir)
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// Package e2e drives the built ferry binary with real FTP clients (curl, lftp,
// python3 ftplib, basic-ftp, Java Commons Net). TestMain builds the binary once; every test starts its own
// server process in a fresh data directory on port 0 with a private passive
// port range, waits for its readiness line on stdout, and stops it by PID.
//
// Outside CI a missing client skips the tests that need it; with CI=true it is
// a failure.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/testenv"
	"github.com/ferryftp/ferry/internal/testenv/pgenv"
)

var (
	// ferryBin is the binary built by TestMain.
	ferryBin string
	// runDir is a temporary directory that lives for the whole test run.
	runDir string
	// inCI is true when the CI environment variable says so; missing clients
	// are then failures instead of skips.
	inCI = testenv.InCI()
)

const (
	// startTimeout bounds how long a server may take to print its readiness line.
	startTimeout = 30 * time.Second
	// stopTimeout bounds a graceful stop after SIGTERM before the server is killed.
	stopTimeout = 15 * time.Second
	// bigSize is the size of the large random file used for throughput round trips.
	bigSize = 100 << 20
	// testUser and testPass are the account most tests log in with.
	testUser = "alice"
	testPass = "secret"
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	var err error
	runDir, err = os.MkdirTemp("", "ferry-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(runDir)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var extra []string
	if os.Getenv("FERRY_E2E_RACE") == "1" {
		// The server is a separate process; -race on the test binary does not
		// reach it. Ask for it explicitly (slower transfers).
		extra = append(extra, "-race")
	}
	if ferryBin, err = testenv.BuildFerry(ctx, runDir, extra...); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	// Pick a passive port base per process in 10000-19999, below the
	// kernel's ephemeral range, so that two concurrent runs of this package
	// rarely collide; each range is also probed before use.
	pasvNext = pasvMin + (os.Getpid()%40)*200
	return pgenv.Run(m) // m.Run, then stop the PostgreSQL of the database tests
}

// requireTool skips (outside CI) or fails (in CI) a test whose client is missing.
func requireTool(t testing.TB, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			if inCI {
				t.Fatalf("%s is required under CI=true but not found: %v", name, err)
			}
			t.Skipf("%s not installed: %v", name, err)
		}
	}
}

// ---- servers ----

// serverConfig says how to start one server. The zero value is a plain FTP
// server on 127.0.0.1:0 with anonymous logins allowed.
type serverConfig struct {
	Listen       string // default 127.0.0.1:0
	NoAnonymous  bool   // pass --anonymous=false
	ImplicitTLS  bool   // also listen for implicit FTPS on the same host, port 0
	PassiveCount int    // size of the passive range; default 40
	Args         []string
	// ConfigFile starts `ferry serve --config FILE` alone: FILE (the
	// server's ConfigPath) sets listen, data, passive_ports, anonymous and
	// implicit_tls_listen, then ConfigExtra; Args come after --config.
	ConfigFile  bool
	ConfigExtra string
	Binary      string     // the ferry to run; default the one TestMain built
	Env         []string   // added to the environment
	ExtraFiles  []*os.File // descriptors 3 and up of the server
	Wrap        []string   // a command line that execs the binary, given as its next argument
}

// server is one running ferry process.
type server struct {
	Data         string // data directory (DATA/public, DATA/home/NAME)
	Addr         string // host:port of the control listener, as printed
	Host         string
	Port         int
	ImplicitAddr string // host:port of the implicit FTPS listener, when asked
	PassiveLo    int
	PassiveHi    int
	LogPath      string // the server's stderr
	ConfigPath   string // the TOML file, with serverConfig.ConfigFile

	cmd     *exec.Cmd
	stopped bool          // the test stopped the process itself and checked its exit
	done    chan struct{} // closed when the process has exited
	waitErr error         // valid after done is closed
	mu      sync.Mutex
	stdout  bytes.Buffer // guarded by mu
}

// Passive ranges are carved out of [pasvMin, pasvMax).
const pasvMin, pasvMax = 10000, 20000

var (
	pasvMu   sync.Mutex
	pasvNext int // next range start; guarded by pasvMu
)

// allocPassive returns a range of n ports that are free right now on every
// host given.
func allocPassive(t testing.TB, n int, hosts ...string) (int, int) {
	t.Helper()
	pasvMu.Lock()
	defer pasvMu.Unlock()
	for try := 0; try < 100; try++ {
		if pasvNext+n > pasvMax {
			pasvNext = pasvMin
		}
		lo := pasvNext
		pasvNext += n
		if portsFree(lo, lo+n-1, hosts) {
			return lo, lo + n - 1
		}
	}
	t.Fatalf("no free passive port range of %d ports found", n)
	return 0, 0
}

func portsFree(lo, hi int, hosts []string) bool {
	for p := lo; p <= hi; p++ {
		for _, h := range hosts {
			l, err := net.Listen("tcp", net.JoinHostPort(h, strconv.Itoa(p)))
			if err != nil {
				return false
			}
			l.Close()
		}
	}
	return true
}

// startServer starts ferry in a fresh data directory and waits until it
// prints its listening line(s). The server is stopped at test cleanup.
func startServer(t testing.TB, cfg serverConfig) *server {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.PassiveCount == 0 {
		cfg.PassiveCount = 40
	}
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		t.Fatalf("bad listen address %q: %v", cfg.Listen, err)
	}
	dir := t.TempDir()
	s := &server{
		Data:    filepath.Join(dir, "data"), // ferry creates it on first start
		LogPath: filepath.Join(dir, "server.log"),
		done:    make(chan struct{}),
	}
	s.PassiveLo, s.PassiveHi = allocPassive(t, cfg.PassiveCount, host)
	args := []string{"serve",
		"--listen", cfg.Listen,
		"--data", s.Data,
		"--passive-ports", fmt.Sprintf("%d-%d", s.PassiveLo, s.PassiveHi),
		"--anonymous=" + strconv.FormatBool(!cfg.NoAnonymous),
	}
	if cfg.ImplicitTLS {
		args = append(args, "--implicit-tls-listen", net.JoinHostPort(host, "0"))
	}
	if cfg.ConfigFile {
		s.ConfigPath = filepath.Join(dir, "ferry.toml")
		toml := fmt.Sprintf("listen = %q\ndata = %q\npassive_ports = \"%d-%d\"\nanonymous = %t\n",
			cfg.Listen, s.Data, s.PassiveLo, s.PassiveHi, !cfg.NoAnonymous)
		if cfg.ImplicitTLS {
			toml += fmt.Sprintf("implicit_tls_listen = %q\n", net.JoinHostPort(host, "0"))
		}
		writeFile(t, s.ConfigPath, []byte(toml+cfg.ConfigExtra))
		args = []string{"serve", "--config", s.ConfigPath}
	}
	args = append(args, cfg.Args...)
	bin := ferryBin
	if cfg.Binary != "" {
		bin = cfg.Binary
	}

	logf, err := os.Create(s.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Wrap) > 0 {
		s.cmd = exec.Command(cfg.Wrap[0], append(append(cfg.Wrap[1:], bin), args...)...)
	} else {
		s.cmd = exec.Command(bin, args...)
	}
	s.cmd.Env = append(os.Environ(), cfg.Env...)
	s.cmd.ExtraFiles = cfg.ExtraFiles
	// If the test binary dies (a -timeout panic skips cleanups), take the
	// server with it.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	s.cmd.Stdout = pw
	s.cmd.Stderr = logf
	if err := s.cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		logf.Close()
		t.Fatalf("start ferry: %v", err)
	}
	pw.Close()
	logf.Close()
	t.Logf("ferry %s (pid %d)", strings.Join(args, " "), s.cmd.Process.Pid)

	listening := make(chan string, 1)
	implicit := make(chan string, 1)
	go func() {
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.stdout.WriteString(line + "\n")
			s.mu.Unlock()
			if a, ok := addrAfter(line, "Ferry listening on "); ok {
				select {
				case listening <- a:
				default:
				}
			}
			if a, ok := addrAfter(line, "Ferry implicit FTPS on "); ok {
				select {
				case implicit <- a:
				default:
				}
			}
		}
		io.Copy(io.Discard, pr)
	}()
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() { s.stop(t) })

	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	wait := func(ch chan string, what string) string {
		select {
		case a := <-ch:
			return a
		case <-s.done:
			t.Fatalf("ferry exited before printing %q: %v\nstdout:\n%s\nstderr:\n%s", what, s.waitErr, s.Stdout(), s.LogTail(50))
		case <-deadline.C:
			t.Fatalf("ferry did not print %q within %v\nstdout:\n%s\nstderr:\n%s", what, startTimeout, s.Stdout(), s.LogTail(50))
		}
		return ""
	}
	s.Addr = wait(listening, "Ferry listening on")
	if cfg.ImplicitTLS {
		s.ImplicitAddr = wait(implicit, "Ferry implicit FTPS on")
	}
	h, p, err := net.SplitHostPort(s.Addr)
	if err != nil {
		t.Fatalf("cannot parse listening address %q: %v", s.Addr, err)
	}
	s.Host = h
	s.Port, err = strconv.Atoi(p)
	if err != nil || s.Port == 0 {
		t.Fatalf("listening line has no usable port: %q", s.Addr)
	}
	return s
}

// addrAfter returns the first word after prefix in line.
func addrAfter(line, prefix string) (string, bool) {
	i := strings.Index(line, prefix)
	if i < 0 {
		return "", false
	}
	f := strings.Fields(line[i+len(prefix):])
	if len(f) == 0 {
		return "", false
	}
	return strings.TrimRight(f[0], ".,;"), true
}

// stop sends SIGTERM and waits for a graceful exit; it kills the process
// after stopTimeout and reports that as a test error.
func (s *server) stop(t testing.TB) {
	if s.stopped {
		return
	}
	select {
	case <-s.done:
		t.Errorf("ferry (pid %d) exited during the test: %v\nstderr:\n%s", s.cmd.Process.Pid, s.waitErr, s.LogTail(40))
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-s.done:
		if s.waitErr != nil {
			t.Errorf("ferry (pid %d) did not exit cleanly after SIGTERM: %v\nstderr:\n%s", s.cmd.Process.Pid, s.waitErr, s.LogTail(40))
		}
	case <-timer.C:
		_ = s.cmd.Process.Kill()
		<-s.done
		t.Errorf("ferry (pid %d) still running %v after SIGTERM; killed\nstderr:\n%s", s.cmd.Process.Pid, stopTimeout, s.LogTail(40))
	}
	if t.Failed() {
		t.Logf("server log (%s), last lines:\n%s", s.LogPath, s.LogTail(80))
	}
}

// Stdout returns what the server printed on stdout so far.
func (s *server) Stdout() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stdout.String()
}

// LogTail returns the last n lines of the server's stderr.
func (s *server) LogTail(n int) string {
	b, err := os.ReadFile(s.LogPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Home is the host path of a user's home directory (the default --home).
func (s *server) Home(user string) string { return filepath.Join(s.Data, "home", user) }

// Public is the host path of the anonymous root.
func (s *server) Public() string { return filepath.Join(s.Data, "public") }

// URL returns SCHEME://user:pass@host:port/ + path; path must be URL-escaped
// already, user and pass are escaped here. An empty user gives an anonymous
// URL. The ftps scheme points at the implicit FTPS listener.
func (s *server) URL(scheme, user, pass, path string) string {
	u := url.URL{Scheme: scheme, Host: net.JoinHostPort(s.Host, strconv.Itoa(s.Port))}
	if scheme == "ftps" {
		u.Host = s.ImplicitAddr
	}
	if user != "" {
		u.User = url.UserPassword(user, pass)
	}
	return u.String() + "/" + path
}

// ferry runs a ferry subcommand (not serve) and returns its result.
func (s *server) ferry(t testing.TB, stdin string, args ...string) cmdResult {
	t.Helper()
	return runCmd(t, 60*time.Second, cmdOpts{Stdin: stdin}, ferryBin, args...)
}

// addUser adds a user with a password via the CLI and returns its home.
func (s *server) addUser(t testing.TB, name, pass string) string {
	t.Helper()
	r := s.ferry(t, pass+"\n", "user", "add", name, "--data", s.Data, "--password-stdin")
	if r.Code != 0 {
		t.Fatalf("ferry user add %s: %s", name, r)
	}
	home := s.Home(name)
	if fi, err := os.Stat(home); err != nil || !fi.IsDir() {
		// The contract says `user add` creates DATA/home/NAME; report it and
		// go on so that the other checks still run.
		t.Errorf("ferry user add %s did not create the home %s: %v", name, home, err)
		if err := os.MkdirAll(home, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return home
}

// ---- client processes ----

type cmdOpts struct {
	Dir   string
	Env   []string // added to os.Environ()
	Stdin string
}

type cmdResult struct {
	Cmd      string
	Stdout   string
	Stderr   string
	Code     int // exit code; -1 when it did not exit normally
	TimedOut bool
	Err      error
}

func (r cmdResult) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "$ %s\nexit %d", r.Cmd, r.Code)
	if r.TimedOut {
		b.WriteString(" (TIMED OUT)")
	}
	if r.Err != nil && r.Code == -1 {
		fmt.Fprintf(&b, " (%v)", r.Err)
	}
	fmt.Fprintf(&b, "\n--- stdout:\n%s\n--- stderr:\n%s", clip(r.Stdout, 6000), clip(r.Stderr, 12000))
	return b.String()
}

// clip keeps the head and the tail of a long text.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n/3] + fmt.Sprintf("\n[... %d bytes cut ...]\n", len(s)-n) + s[len(s)-2*n/3:]
}

// runCmd runs a client with a timeout and captures its output.
func runCmd(t testing.TB, timeout time.Duration, o cmdOpts, name string, args ...string) cmdResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = o.Dir
	cmd.Env = append(os.Environ(), o.Env...)
	cmd.Stdin = strings.NewReader(o.Stdin)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	r := cmdResult{
		Cmd:    shellQuote(name, args),
		Stdout: stdout.String(),
		Stderr: stderr.String(),
		Code:   cmd.ProcessState.ExitCode(),
		Err:    err,
	}
	if ctx.Err() != nil {
		r.TimedOut = true
		r.Code = -1
	}
	return r
}

func shellQuote(name string, args []string) string {
	q := func(s string) string {
		if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$;&|<>()*?[]#~`!{}") {
			return s
		}
		if len(s) > 300 {
			s = s[:300] + "…"
		}
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	parts := []string{q(name)}
	for _, a := range args {
		parts = append(parts, q(a))
	}
	return strings.Join(parts, " ")
}

// ---- data ----

var (
	bigOnce sync.Once
	bigPath string
	bigSum  string
	bigErr  error
)

// bigFile returns a 100 MiB random file generated once per test run.
func bigFile(t testing.TB) (path, sum string) {
	t.Helper()
	bigOnce.Do(func() {
		bigPath = filepath.Join(runDir, "big.bin")
		seed := uint64(time.Now().UnixNano())
		bigErr = writeRandom(bigPath, bigSize, seed)
		if bigErr == nil {
			bigSum, bigErr = fileSHA(bigPath)
		}
	})
	if bigErr != nil {
		t.Fatalf("big file: %v", bigErr)
	}
	return bigPath, bigSum
}

// writeRandom writes size pseudo-random bytes to path.
func writeRandom(path string, size int64, seed uint64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	var s [32]byte
	for i := range 4 {
		for j := range 8 {
			s[i*8+j] = byte(seed >> (8 * j))
		}
		seed = seed*6364136223846793005 + 1442695040888963407
	}
	_, err = io.CopyN(f, rand.NewChaCha8(s), size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// randBytes returns n pseudo-random bytes.
func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func fileSHA(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// writeFile writes data to path, creating parent directories.
func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// linkOrCopy places src at dst (hard link when possible).
func linkOrCopy(t testing.TB, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(src, dst); err == nil {
		return
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// checkFileSHA fails unless the file at path has the given sha256 (and size).
func checkFileSHA(t testing.TB, path, wantSum string, wantSize int64) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	got, err := fileSHA(path)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	if got != wantSum || fi.Size() != wantSize {
		t.Errorf("%s: size %d sha256 %s; want size %d sha256 %s", path, fi.Size(), got, wantSize, wantSum)
	}
}

// checkFileContent fails unless the file at path holds exactly want.
func checkFileContent(t testing.TB, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	if !bytes.Equal(got, want) {
		if len(want) < 200 && len(got) < 200 {
			t.Errorf("%s: content %q; want %q", path, got, want)
		} else {
			t.Errorf("%s: size %d sha256 %s; want size %d sha256 %s", path, len(got), sha(got), len(want), sha(want))
		}
	}
}

// tree maps slash-separated relative paths to a file's sha256, or "dir" for
// a directory.
type tree map[string]string

// readTree walks root into a tree.
func readTree(t testing.TB, root string) tree {
	t.Helper()
	tr := tree{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			tr[rel] = "dir"
			return nil
		}
		if !d.Type().IsRegular() {
			tr[rel] = "irregular"
			return nil
		}
		sum, err := fileSHA(p)
		if err != nil {
			return err
		}
		tr[rel] = sum
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	return tr
}

// diffTrees reports every difference between two trees.
func diffTrees(t testing.TB, what string, want, got tree) {
	t.Helper()
	var problems []string
	for p, w := range want {
		g, ok := got[p]
		switch {
		case !ok:
			problems = append(problems, "missing: "+p)
		case g != w:
			problems = append(problems, fmt.Sprintf("differs: %s (want %s, got %s)", p, short(w), short(g)))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			problems = append(problems, "unexpected: "+p)
		}
	}
	if len(problems) > 0 {
		if len(problems) > 30 {
			problems = append(problems[:30], fmt.Sprintf("... and %d more", len(problems)-30))
		}
		t.Errorf("%s: %d entries want, %d got; differences:\n  %s", what, len(want), len(got), strings.Join(problems, "\n  "))
	}
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// mustNotExist fails if path exists.
func mustNotExist(t testing.TB, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s exists (or cannot be checked: %v); want it absent", path, err)
	}
}

// Package faults tests Ferry's built binary under faults that no in-process
// test can produce: the server killed with SIGKILL in the middle of an
// upload and restarted on the same data directory, and a file system that
// fills up while an upload is written.
//
// TestMain builds ./cmd/ferry once. Every test starts its own server
// process on 127.0.0.1:0 in a fresh data directory, waits for its
// "Ferry listening on ADDR" line, and stops only the processes it started,
// by PID. The disk-full test mounts a small file system, which needs root:
// outside CI a non-root run skips it; under CI=true it must run.
package faults

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
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
)

var (
	// ferryBin is the binary built by TestMain.
	ferryBin string
	// inCI is set when the CI environment variable says so.
	inCI = testenv.InCI()
)

const (
	// waitLimit bounds every wait for a process, a reply or a file.
	waitLimit = 30 * time.Second
	// tempPrefix starts the names of in-progress uploads (storage.TempPrefix).
	tempPrefix = ".ferry-upload-"
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "ferry-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if ferryBin, err = testenv.BuildFerry(ctx, dir); err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		return 1
	}
	return m.Run()
}

// ---- server processes ----

// ferry is one running server process.
type ferry struct {
	Addr    string
	Data    string
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
}

var (
	portMu   sync.Mutex
	portNext = 12000 + (os.Getpid()%40)*100 // below the ephemeral range, apart from test/e2e's
)

// passiveRange returns 20 ports that are free right now on 127.0.0.1.
func passiveRange(t *testing.T) string {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	for try := 0; try < 200; try++ {
		lo := portNext
		portNext += 20
		if portNext > 19980 {
			portNext = 12000
		}
		free := true
		for p := lo; p < lo+20 && free; p++ {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				free = false
				continue
			}
			l.Close()
		}
		if free {
			return fmt.Sprintf("%d-%d", lo, lo+19)
		}
	}
	t.Fatal("no free passive port range")
	return ""
}

// startFerry starts `ferry serve` on data and waits for its listening line.
func startFerry(t *testing.T, data string, args ...string) *ferry {
	t.Helper()
	f := &ferry{Data: data, LogPath: filepath.Join(t.TempDir(), "server.log"), done: make(chan struct{})}
	logf, err := os.Create(f.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	all := append([]string{"serve", "--listen", "127.0.0.1:0", "--data", data, "--passive-ports", passiveRange(t)}, args...)
	f.cmd = exec.Command(ferryBin, all...)
	f.cmd.Stderr = logf
	stdout, err := f.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := f.cmd.Process.Pid
	t.Logf("ferry %s (pid %d)", strings.Join(all, " "), pid)
	go func() {
		f.cmd.Wait()
		close(f.done)
	}()
	t.Cleanup(func() {
		f.stop(t)
		if t.Failed() {
			log, _ := os.ReadFile(f.LogPath)
			t.Logf("server %d log:\n%s", pid, log)
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "Ferry listening on "); ok {
				addr <- a
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	select {
	case f.Addr = <-addr:
	case <-f.done:
		log, _ := os.ReadFile(f.LogPath)
		t.Fatalf("ferry exited before listening:\n%s", log)
	case <-time.After(waitLimit):
		t.Fatal("ferry did not print its listening line in time")
	}
	return f
}

// stop ends the process gracefully (SIGTERM), then by force; only ours, by PID.
func (f *ferry) stop(t *testing.T) {
	select {
	case <-f.done:
		return
	default:
	}
	syscall.Kill(f.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-f.done:
	case <-time.After(waitLimit):
		syscall.Kill(f.cmd.Process.Pid, syscall.SIGKILL)
		<-f.done
	}
}

// kill ends the process with SIGKILL and waits until it is gone.
func (f *ferry) kill(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(f.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-f.done:
	case <-time.After(waitLimit):
		t.Fatal("the killed server did not exit")
	}
}

// waitLog waits until the server's log holds a line containing s.
func (f *ferry) waitLog(t *testing.T, s string) string {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		b, _ := os.ReadFile(f.LogPath)
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, s) {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server never logged %q; log:\n%s", s, b)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// addUser creates a user with `ferry user add NAME --data DIR --password-stdin`.
func addUser(t *testing.T, data, name, pass string) string {
	t.Helper()
	cmd := exec.Command(ferryBin, "user", "add", name, "--data", data, "--password-stdin")
	cmd.Stdin = strings.NewReader(pass + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ferry user add: %v\n%s", err, out)
	}
	return filepath.Join(data, "home", name)
}

// ---- a raw FTP client ----

type client struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
	host string
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	host, _, _ := net.SplitHostPort(addr)
	cl := &client{t: t, conn: c, r: bufio.NewReader(c), host: host}
	cl.expect(220)
	return cl
}

func (c *client) read() (int, string) {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(waitLimit))
	line, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read reply: %v (got %q)", err, line)
	}
	code, err := strconv.Atoi(line[:min(3, len(line))])
	if err != nil || len(line) < 4 {
		c.t.Fatalf("malformed reply %q", line)
	}
	text := strings.TrimRight(line[4:], "\r\n")
	if line[3] == '-' {
		for {
			l, err := c.r.ReadString('\n')
			if err != nil {
				c.t.Fatalf("read multi-line reply: %v", err)
			}
			text += "\n" + strings.TrimRight(l, "\r\n")
			if strings.HasPrefix(l, line[:3]+" ") {
				break
			}
		}
	}
	return code, text
}

func (c *client) expect(code int) string {
	c.t.Helper()
	got, text := c.read()
	if got != code {
		c.t.Fatalf("want %d, got %d %s", code, got, text)
	}
	return text
}

func (c *client) cmd(line string, code int) string {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c.conn, line+"\r\n"); err != nil {
		c.t.Fatalf("send %q: %v", line, err)
	}
	got, text := c.read()
	if got != code {
		c.t.Fatalf("%s: want %d, got %d %s", line, code, got, text)
	}
	return text
}

func (c *client) login(user, pass string) {
	c.t.Helper()
	c.cmd("USER "+user, 331)
	c.cmd("PASS "+pass, 230)
	c.cmd("TYPE I", 200)
}

// pasv opens a passive data connection.
func (c *client) pasv() net.Conn {
	c.t.Helper()
	text := c.cmd("EPSV", 229)
	i, j := strings.Index(text, "(|||"), strings.Index(text, "|)")
	if i < 0 || j < i {
		c.t.Fatalf("bad EPSV reply %q", text)
	}
	d, err := net.DialTimeout("tcp", net.JoinHostPort(c.host, text[i+4:j]), 5*time.Second)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { d.Close() })
	return d
}

func (c *client) retr(name string) []byte {
	c.t.Helper()
	d := c.pasv()
	c.cmd("RETR "+name, 150)
	d.SetReadDeadline(time.Now().Add(waitLimit))
	b, err := io.ReadAll(d)
	if err != nil {
		c.t.Fatal(err)
	}
	c.expect(226)
	return b
}

func (c *client) listing(line string) string {
	c.t.Helper()
	d := c.pasv()
	c.cmd(line, 150)
	d.SetReadDeadline(time.Now().Add(waitLimit))
	b, _ := io.ReadAll(d)
	c.expect(226)
	return string(b)
}

// ---- helpers ----

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// tempFiles lists in-progress upload files below dir.
func tempFiles(dir string) map[string]int64 {
	out := map[string]int64{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), tempPrefix) {
			if fi, err := d.Info(); err == nil {
				out[p] = fi.Size()
			}
		}
		return nil
	})
	return out
}

func tempBytes(dir string) int64 {
	var n int64
	for _, s := range tempFiles(dir) {
		n += s
	}
	return n
}

// waitFor polls a file-system condition (there is no signal for it).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func sameFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes that differ from the %d expected", path, len(got), len(want))
	}
}

// ---- the tests ----

// TestFaultKillMidUpload: the server is killed with SIGKILL while a client
// is half-way through replacing a file. The old file survives the crash
// byte for byte, and the temporary file is swept when the server restarts
// on the same data directory.
func TestFaultKillMidUpload(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	home := addUser(t, data, "alice", "secret")
	old := randomBytes(t, 1<<20)
	if err := os.WriteFile(filepath.Join(home, "big.bin"), old, 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startFerry(t, data)
	c := dial(t, srv.Addr)
	c.login("alice", "secret")
	d := c.pasv()
	c.cmd("STOR big.bin", 150)
	// A throttled client: it sends the first 4 MiB of 64 and pauses there,
	// so the server is surely mid-upload when it dies.
	const sent = 4 << 20
	upload := randomBytes(t, sent)
	for off := 0; off < sent; off += 256 << 10 {
		if _, err := d.Write(upload[off : off+256<<10]); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the server to write what was sent", func() bool { return tempBytes(home) == sent })
	srv.kill(t)

	sameFile(t, filepath.Join(home, "big.bin"), old)
	left := tempFiles(home)
	if len(left) != 1 {
		t.Fatalf("after the crash: temporary files %v, want the one of the cut upload", left)
	}
	c.conn.Close()
	d.Close()

	// Restart on the same data directory: the leftover goes at start-up.
	srv2 := startFerry(t, data)
	line := srv2.waitLog(t, "swept interrupted uploads")
	if !strings.Contains(line, "removed=1") {
		t.Fatalf("sweep log line %q, want removed=1", line)
	}
	if left := tempFiles(data); len(left) != 0 {
		t.Fatalf("temporary files after the restart: %v", left)
	}
	sameFile(t, filepath.Join(home, "big.bin"), old)
	c2 := dial(t, srv2.Addr)
	c2.login("alice", "secret")
	if got := c2.retr("big.bin"); !bytes.Equal(got, old) {
		t.Fatalf("RETR big.bin after the restart: %d bytes that differ", len(got))
	}
	if ls := c2.listing("LIST -la"); strings.Contains(ls, tempPrefix) {
		t.Fatalf("LIST shows a temporary file: %q", ls)
	}
	// The restarted server takes uploads again.
	d2 := c2.pasv()
	c2.cmd("STOR big.bin", 150)
	d2.Write(upload)
	d2.Close()
	c2.expect(226)
	sameFile(t, filepath.Join(home, "big.bin"), upload)
}

// smallFS mounts a file system of about 2 MiB on dir: tmpfs when the kernel
// lets us, else a loop-mounted ext4 image. It is unmounted at cleanup, after
// the cleanups registered later (the server) have run.
func smallFS(t *testing.T, dir string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if inCI {
			t.Fatal("the disk-full test needs root to mount a small file system, and CI runs as root")
		}
		t.Skip("not root: cannot mount a small file system")
	}
	var tries []string
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", dir).CombinedOutput()
	if err == nil {
		t.Cleanup(func() { unmount(t, dir) })
		return "tmpfs"
	}
	tries = append(tries, fmt.Sprintf("tmpfs: %v: %s", err, out))
	img := filepath.Join(t.TempDir(), "small.img")
	for _, args := range [][]string{
		{"truncate", "-s", "4M", img},
		{"mkfs.ext4", "-q", "-F", "-m", "0", img},
		{"mount", "-o", "loop", img, dir},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			tries = append(tries, fmt.Sprintf("%s: %v: %s", strings.Join(args, " "), err, out))
			t.Fatalf("cannot mount a small file system:\n%s", strings.Join(tries, "\n"))
		}
	}
	t.Cleanup(func() { unmount(t, dir) })
	os.Chmod(dir, 0o755)
	os.Remove(filepath.Join(dir, "lost+found"))
	return "ext4 on a loop device"
}

func unmount(t *testing.T, dir string) {
	if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
		t.Errorf("umount %s: %v: %s", dir, err, out)
		exec.Command("umount", "-l", dir).Run()
	}
}

// TestFaultDiskFull: the user's home is a 2 MiB file system. An upload that
// does not fit is answered 452; the file it was replacing is intact and no
// partial file or temporary file is left; the space comes back.
func TestFaultDiskFull(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	home := addUser(t, data, "alice", "secret")
	kind := smallFS(t, home)
	t.Logf("home on %s", kind)
	old := randomBytes(t, 300<<10)
	if err := os.WriteFile(filepath.Join(home, "keep.bin"), old, 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startFerry(t, data)
	c := dial(t, srv.Addr)
	c.login("alice", "secret")
	huge := randomBytes(t, 4<<20)
	for _, name := range []string{"keep.bin", "new.bin"} {
		d := c.pasv()
		c.cmd("STOR "+name, 150)
		wrote := make(chan struct{})
		go func() {
			defer close(wrote)
			d.SetWriteDeadline(time.Now().Add(waitLimit))
			d.Write(huge) // fails when the server gives up: expected
			d.Close()
		}()
		code, text := c.read()
		<-wrote
		if code != 452 {
			t.Fatalf("STOR %s on a full disk: got %d %s, want 452", name, code, text)
		}
		if strings.Contains(text, data) || strings.Contains(text, home) {
			t.Fatalf("the reply carries a host path: %q", text)
		}
	}
	sameFile(t, filepath.Join(home, "keep.bin"), old)
	if _, err := os.Stat(filepath.Join(home, "new.bin")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a partial new.bin was left: %v", err)
	}
	if left := tempFiles(home); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
	if ls := c.listing("NLST"); strings.TrimSpace(ls) != "keep.bin" {
		t.Fatalf("NLST after the failures: %q", ls)
	}
	// APPE that runs out of space is cut back to where it started.
	ad := c.pasv()
	c.cmd("APPE keep.bin", 150)
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		ad.SetWriteDeadline(time.Now().Add(waitLimit))
		ad.Write(huge)
		ad.Close()
	}()
	code, text := c.read()
	<-wrote
	if code != 452 {
		t.Fatalf("APPE on a full disk: got %d %s, want 452", code, text)
	}
	sameFile(t, filepath.Join(home, "keep.bin"), old)
	// The space was given back: a small upload fits.
	small := randomBytes(t, 100<<10)
	d := c.pasv()
	c.cmd("STOR small.bin", 150)
	d.Write(small)
	d.Close()
	c.expect(226)
	sameFile(t, filepath.Join(home, "small.bin"), small)
	c.cmd("QUIT", 221)
}

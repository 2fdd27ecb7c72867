package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ferryftp/ferry/internal/config"
)

// controlSocketName is the control socket's name in the data directory:
// `ferry reload`, `ferry upgrade` and `ferry status` find a running server
// by its data directory.
const controlSocketName = "ferry.sock"

// controlAnswer is the server's one JSON reply on the control socket.
type controlAnswer struct {
	OK      bool   `json:"ok"`
	Message string `json:"message"` // the summary, or every problem (file:line)
	PID     int    `json:"pid"`     // the process that answered
}

// controlServer answers `ferry reload|upgrade|status` on a Unix socket in
// the data directory, mode 0600: whoever may connect may reload and upgrade
// the server, like whoever may signal it.
type controlServer struct {
	d    *daemon
	ln   *net.UnixListener
	path string
	// owned says whether the socket file is this process's to remove: it
	// made the socket, or took it from an upgrading parent and started.
	// A new process that fails to start leaves the parent's file alone.
	owned bool
	wg    sync.WaitGroup
	once  sync.Once
}

// startControl serves the control socket at path: the one an upgrading
// parent passed (inherited), or a new one. A socket left by a process that
// died is replaced; one that answers belongs to another server on this
// data directory, which is an error. A path the system cannot bind (longer
// than a Unix socket path may be) gives no server and no error: the
// caller warns.
func startControl(d *daemon, path string, inherited *net.UnixListener) (*controlServer, error) {
	ln := inherited
	if ln == nil {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("another ferry serves the data directory %s (its control socket %s answers); stop it first, or use ferry upgrade", filepath.Dir(path), path)
		}
		l, err := listenPrivate(path)
		if errors.Is(err, errLongPath) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("control socket: %w", err)
		}
		ln = l
	}
	// The file stays when the listener closes: after an upgrade the new
	// process serves it. close removes it when this process is the last.
	ln.SetUnlinkOnClose(false)
	c := &controlServer{d: d, ln: ln, path: path, owned: inherited == nil}
	c.wg.Add(1)
	go c.accept()
	return c, nil
}

func (c *controlServer) accept() {
	defer c.wg.Done()
	for {
		conn, err := c.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go c.handle(conn)
	}
}

// maxUnixPath is the size of sun_path on Linux, the terminating NUL
// included.
const maxUnixPath = 108

var errLongPath = errors.New("path too long for a Unix socket")

// listenPrivate binds a Unix socket at path that only this user may use:
// bound in a new 0700 directory beside it, made 0600, then renamed into
// place, so that nobody can connect before its mode is set.
func listenPrivate(path string) (*net.UnixListener, error) {
	// The temporary name is the longer one: "/.ferry-ctl-" + up to 10
	// digits + "/s".
	if len(filepath.Dir(path))+24 >= maxUnixPath {
		return nil, errLongPath
	}
	dir, err := os.MkdirTemp(filepath.Dir(path), ".ferry-ctl-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(false)
	err = os.Chmod(tmp, 0o600)
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// handle reads one command line and writes one answer. An upgrade's
// answer waits until the new process is ready or failed.
func (c *controlServer) handle(conn net.Conn) {
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(io.LimitReader(conn, 256)).ReadString('\n')
	if err != nil {
		return
	}
	conn.SetReadDeadline(time.Time{})
	var msg string
	switch cmd := strings.TrimSpace(line); cmd {
	case "reload":
		msg, err = c.d.reload()
	case "upgrade":
		msg, err = c.d.upgrade()
	case "status":
		msg = c.d.status()
	case "diagnose":
		msg, err = c.d.diagnoseJSON()
	default:
		err = fmt.Errorf("unknown control command %q", cmd)
	}
	a := controlAnswer{OK: err == nil, Message: msg, PID: os.Getpid()}
	if err != nil {
		a.Message = err.Error()
	}
	conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	json.NewEncoder(conn).Encode(a)
}

// handOver stops accepting, leaving the socket file to the new process.
func (c *controlServer) handOver() {
	c.once.Do(func() { c.ln.Close() })
	c.wg.Wait()
}

// close stops accepting; remove says whether the socket file goes too
// (not when a new process serves it, nor when this process never started).
func (c *controlServer) close(remove bool) {
	c.once.Do(func() { c.ln.Close() })
	c.wg.Wait()
	if remove && c.owned {
		os.Remove(c.path)
	}
}

// dupFD duplicates the socket for an upgrade's child (see dupFDs).
func (c *controlServer) dupFD() (int, error) { return dupSocket(c.ln) }

// status is the answer of `ferry status`.
func (d *daemon) status() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "pid %d\nversion %s\ngeneration %d\nsessions %d\n", pid(), version, d.gen, d.srv.Sessions())
	for _, a := range d.lns.addrs(false) {
		fmt.Fprintf(&b, "listening on %s\n", a)
	}
	for _, a := range d.lns.addrs(true) {
		fmt.Fprintf(&b, "implicit FTPS on %s\n", a)
	}
	fmt.Fprintf(&b, "passive ports %s", d.cfg.PassivePorts)
	return b.String()
}

const controlUsage = `Usage:
  ferry reload [--data DIR]    re-read the running server's settings (as SIGHUP does)
  ferry upgrade [--data DIR]   start the binary now at the server's path, hand it the listeners, drain the old process
  ferry status [--data DIR]    print the running server's PID, listeners and sessions

They reach the server that runs on the data directory DIR (default
./ferry-data) through its control socket DIR/ferry.sock. reload and upgrade
print what runs now and exit 0, or print why nothing changed and exit 1.
`

// runControl sends one control command to a running server and prints its
// answer: stdout and exit 0 on success, stderr and exit 1 on a refusal, 2
// on bad usage.
func runControl(cmd string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ferry "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	data := fs.String("data", config.Defaults().Data, "the server's data directory")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, controlUsage)
			return 0
		}
		fmt.Fprintf(stderr, "ferry %s: %v\n\n%s", cmd, err, controlUsage)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "ferry %s: unexpected argument %q\n\n%s", cmd, fs.Arg(0), controlUsage)
		return 2
	}
	path := filepath.Join(*data, controlSocketName)
	a, err := askControl(path, cmd)
	if err != nil {
		fmt.Fprintf(stderr, "ferry %s: %s\n", cmd, errText(err))
		return 1
	}
	if !a.OK {
		fmt.Fprintf(stderr, "ferry %s: server (pid %d): %s\n", cmd, a.PID, errText(errors.New(a.Message)))
		return 1
	}
	fmt.Fprintln(stdout, errText(errors.New(a.Message)))
	return 0
}

// askControl sends cmd on the control socket at path and reads the answer.
// An upgrade may take the new binary's whole start, so no deadline is set
// beyond the server's own (upgrade_timeout).
func askControl(path, cmd string) (controlAnswer, error) {
	var a controlAnswer
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return a, fmt.Errorf("no server answers on %s (is ferry serve running with this --data?): %w", path, err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, cmd+"\n"); err != nil {
		return a, err
	}
	if err := json.NewDecoder(c).Decode(&a); err != nil {
		return a, fmt.Errorf("reading the server's answer: %w", err)
	}
	return a, nil
}

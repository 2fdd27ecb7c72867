package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// upgradeEnv is the variable in which an upgrading parent tells its child
// what it passed: the JSON of an upgradeState. A process started without
// it binds its own listeners.
const upgradeEnv = "FERRY_UPGRADE"

// upgradeState is what a parent passes to the new binary: descriptor Ready
// is a pipe on which the child writes "ready\n" once it serves (or
// "failed: why\n"), the next ones are the listeners by key, then the
// control socket when Control names its path.
type upgradeState struct {
	Ready     int      `json:"ready"`
	Listeners []string `json:"listeners"`
	Control   string   `json:"control,omitempty"`
	Parent    int      `json:"parent"`
}

// upgrade starts the binary found now at this executable's path (so a
// file replaced since the start is the one run), with the same arguments,
// and hands it the listening sockets and the control socket: both
// processes hold them, so no connection is refused meanwhile. When the new
// process says it is ready within upgrade_timeout, this one stops
// accepting and drains (run sees handover closed); otherwise the child is
// killed and this process goes on serving as before. One upgrade runs at a
// time (mu), and a process that handed over cannot upgrade again (the new
// one can).
func (d *daemon) upgrade() (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	msg, err := d.upgradeLocked()
	if err != nil {
		d.log.Error("upgrade failed; this process keeps serving", "err", err)
	}
	return msg, err
}

func (d *daemon) upgradeLocked() (string, error) {
	if d.handedOff {
		return "", errors.New("this process has handed over to a new one already; ask that one")
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("cannot find the binary: %w", err)
	}
	fds, keys, err := d.lns.dupFDs()
	if err != nil {
		return "", err
	}
	defer func() { closeFDs(fds) }()
	st := upgradeState{Ready: 3, Listeners: keys, Parent: pid()}
	if d.ctl != nil {
		fd, err := d.ctl.dupFD()
		if err != nil {
			return "", fmt.Errorf("control socket: %w", err)
		}
		fds = append(fds, fd)
		st.Control = d.ctl.path
	}
	r, w, err := os.Pipe()
	if err != nil {
		return "", err
	}
	defer r.Close()
	state, _ := json.Marshal(st)
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		w.Close()
		return "", err
	}
	defer devNull.Close()
	// Descriptors 0-2 as this process has them (stdin from /dev/null),
	// then the ready pipe (3), the listeners and the control socket.
	files := []uintptr{devNull.Fd(), 1, 2, w.Fd()}
	for _, fd := range fds {
		files = append(files, uintptr(fd))
	}
	d.log.Info("upgrade: starting the new binary", "path", exe)
	childPID, _, err := syscall.StartProcess(exe, append([]string{exe}, os.Args[1:]...), &syscall.ProcAttr{
		Env:   append(childEnv(os.Environ()), upgradeEnv+"="+string(state)),
		Files: files,
	})
	w.Close()
	if err != nil {
		return "", fmt.Errorf("starting %s: %w", exe, err)
	}
	child, _ := os.FindProcess(childPID)
	exited := make(chan error, 1)
	go func() {
		ps, err := child.Wait()
		if err == nil && !ps.Success() {
			err = errors.New(ps.String())
		}
		exited <- err
	}()
	answer := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		answer <- line
	}()
	timer := time.NewTimer(d.cfg.UpgradeTimeout.Duration)
	defer timer.Stop()
	// fail kills the child unless it exited (gone), and waits for it.
	fail := func(why string, gone bool) (string, error) {
		if !gone {
			child.Kill()
			select {
			case err := <-exited:
				if err != nil {
					why += " (" + err.Error() + ")"
				}
			case <-time.After(5 * time.Second):
			}
		}
		return "", fmt.Errorf("the new binary %s (pid %d) %s; pid %d keeps serving", exe, childPID, why, pid())
	}
	select {
	case line := <-answer:
		switch {
		case line == "ready\n":
		case strings.HasPrefix(line, "failed: "):
			return fail("failed to start: "+strings.TrimSpace(strings.TrimPrefix(line, "failed: ")), false)
		default:
			// The pipe closed: the child exited (or closed it).
			select {
			case err := <-exited:
				return fail(fmt.Sprintf("exited before it was ready: %v", err), true)
			case <-timer.C:
				return fail("closed its ready pipe without a word", false)
			}
		}
	case err := <-exited:
		return fail(fmt.Sprintf("exited before it was ready: %v", err), true)
	case <-timer.C:
		return fail(fmt.Sprintf("was not ready within upgrade_timeout (%s)", d.cfg.UpgradeTimeout.Duration), false)
	}

	// The child accepts on the same sockets: stop accepting here, then
	// drain.
	d.handedOff = true
	d.lns.stopAccepting()
	if d.ctl != nil {
		d.ctl.handOver()
	}
	d.handoverOnce.Do(func() { close(d.handover) })
	sessions := d.srv.Sessions()
	d.log.Info("upgrade: the new process serves; draining", "new_pid", childPID, "sessions", sessions)
	return fmt.Sprintf("upgraded: pid %d serves now; pid %d drains %d sessions (drain_timeout %s)", childPID, pid(), sessions, d.cfg.DrainTimeout.Duration), nil
}

// childEnv is the environment of an upgrade's child: this one, without
// what named this process alone (socket activation, the watchdog's PID: the
// child pings once it is the main PID) or an earlier upgrade.
func childEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case upgradeEnv, "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "WATCHDOG_PID":
			continue
		}
		out = append(out, kv)
	}
	return out
}

// inheritance is what an upgrading parent passed to this process.
type inheritance struct {
	ready       *os.File
	listeners   map[lnKey]net.Listener
	control     *net.UnixListener
	controlPath string
	parent      int
}

// takeInheritance reads $FERRY_UPGRADE and takes the descriptors it names;
// nil when this process was not started by an upgrade. The variable is
// unset, and the descriptors are made close-on-exec.
func takeInheritance() (*inheritance, error) {
	v, ok := os.LookupEnv(upgradeEnv)
	if !ok {
		return nil, nil
	}
	os.Unsetenv(upgradeEnv)
	var st upgradeState
	if err := json.Unmarshal([]byte(v), &st); err != nil || st.Ready < 3 {
		return nil, fmt.Errorf("%s: %q is not what an upgrading ferry passes", upgradeEnv, v)
	}
	in := &inheritance{listeners: map[lnKey]net.Listener{}, controlPath: st.Control, parent: st.Parent}
	syscall.CloseOnExec(st.Ready)
	in.ready = os.NewFile(uintptr(st.Ready), "upgrade-ready")
	fd := st.Ready + 1
	take := func(name string) (net.Listener, error) {
		syscall.CloseOnExec(fd)
		f := os.NewFile(uintptr(fd), name)
		fd++
		defer f.Close()
		return net.FileListener(f)
	}
	for _, s := range st.Listeners {
		k, ok := parseLnKey(s)
		ln, err := take(s)
		if err != nil || !ok {
			in.closeUnused()
			return in, fmt.Errorf("inherited listener %q: %v", s, err)
		}
		in.listeners[k] = ln
	}
	if st.Control != "" {
		ln, err := take("control socket")
		ul, ok := ln.(*net.UnixListener)
		if err != nil || !ok {
			in.closeUnused()
			return in, fmt.Errorf("inherited control socket: %v", err)
		}
		in.control = ul
	}
	return in, nil
}

func (in *inheritance) listenersOrNil() map[lnKey]net.Listener {
	if in == nil {
		return nil
	}
	return in.listeners
}

// controlFor returns the inherited control socket when it is the one at
// path (the data directory may have changed with the settings), and takes
// it: closeUnused leaves it.
func (in *inheritance) controlFor(path string) *net.UnixListener {
	if in == nil || in.control == nil || in.controlPath != path {
		return nil
	}
	c := in.control
	in.control = nil
	return c
}

// closeUnused closes what was passed and not taken.
func (in *inheritance) closeUnused() {
	for k, ln := range in.listeners {
		ln.Close()
		delete(in.listeners, k)
	}
	if in.control != nil {
		in.control.Close()
		in.control = nil
	}
}

// report tells the parent whether this process serves.
func (in *inheritance) report(err error) {
	if in.ready == nil {
		return
	}
	msg := "ready\n"
	if err != nil {
		msg = "failed: " + strings.ReplaceAll(errText(err), "\n", "; ") + "\n"
	}
	in.ready.Write([]byte(msg))
	in.ready.Close()
	in.ready = nil
}

// Package systemd speaks the two systemd protocols a daemon needs, without a
// dependency: service notifications (sd_notify(3): READY, RELOADING,
// STOPPING, STATUS, WATCHDOG, MAINPID) and socket activation
// (sd_listen_fds(3): LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES).
package systemd

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Notifier sends state changes to the service manager's notification socket
// ($NOTIFY_SOCKET). The zero Notifier, and a nil one, send nothing: outside
// systemd every method is a no-op that returns nil.
type Notifier struct {
	addr string // the socket; "" when not run by a service manager
}

// NewNotifier returns a Notifier for $NOTIFY_SOCKET, or one that sends
// nothing when it is unset. A path starting with "@" is an abstract socket
// (Go's unix addresses map it so).
func NewNotifier() *Notifier {
	return &Notifier{addr: os.Getenv("NOTIFY_SOCKET")}
}

// Enabled reports whether notifications go anywhere.
func (n *Notifier) Enabled() bool { return n != nil && n.addr != "" }

// Notify sends one datagram of newline-separated VARIABLE=value assignments
// (sd_notify(3)). Each call dials the socket anew, so a manager that
// restarted meanwhile still hears it.
func (n *Notifier) Notify(state string) error {
	if !n.Enabled() {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("systemd notify: %w", err)
	}
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("systemd notify: %w", err)
	}
	return nil
}

// Ready says the service is up (after start, and again when a reload
// ends), with a status line for `systemctl status`.
func (n *Notifier) Ready(status string) error {
	return n.Notify("READY=1\n" + statusLine(status))
}

// Reloading says a reload has begun. systemd 253 and later want
// MONOTONIC_USEC, the CLOCK_MONOTONIC time of the request, with it; Ready
// ends the reload.
func (n *Notifier) Reloading() error {
	return n.Notify("RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(MonotonicUsec(), 10) + "\n" + statusLine("reloading the configuration"))
}

// Stopping says the service is shutting down.
func (n *Notifier) Stopping(status string) error {
	return n.Notify("STOPPING=1\n" + statusLine(status))
}

// Status updates the status line alone.
func (n *Notifier) Status(status string) error { return n.Notify(statusLine(status)) }

// Watchdog is the keep-alive ping of a service with WatchdogSec=.
func (n *Notifier) Watchdog() error { return n.Notify("WATCHDOG=1") }

// MainPID tells the manager that pid is now the service's main process (a
// new generation after a binary upgrade; the unit needs NotifyAccess=all),
// and that it is ready.
func (n *Notifier) MainPID(pid int, status string) error {
	return n.Notify("MAINPID=" + strconv.Itoa(pid) + "\nREADY=1\n" + statusLine(status))
}

// statusLine is a STATUS assignment: one line, newlines turned into spaces.
func statusLine(s string) string {
	if s == "" {
		return ""
	}
	return "STATUS=" + strings.NewReplacer("\n", " ", "\r", " ").Replace(s) + "\n"
}

// MonotonicUsec is CLOCK_MONOTONIC in microseconds, the clock systemd's
// MONOTONIC_USEC is read against.
func MonotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano() / 1000
}

// WatchdogInterval returns the watchdog timeout the manager asked for
// ($WATCHDOG_USEC), when it is meant for this process ($WATCHDOG_PID unset
// or equal to its PID). The service must send Watchdog more often than
// that; half of it is the usual period.
func WatchdogInterval() (time.Duration, bool) {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0, false
	}
	if p := os.Getenv("WATCHDOG_PID"); p != "" && p != strconv.Itoa(os.Getpid()) {
		return 0, false
	}
	return time.Duration(usec) * time.Microsecond, true
}

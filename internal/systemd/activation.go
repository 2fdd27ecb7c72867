package systemd

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// listenFDsStart is the first descriptor a service manager passes
// (SD_LISTEN_FDS_START).
const listenFDsStart = 3

// Listener is one socket passed by the service manager.
type Listener struct {
	// Name is the socket's FileDescriptorName= (from $LISTEN_FDNAMES);
	// systemd names an unnamed one after its .socket unit, and a manager
	// that passes no names leaves it "".
	Name string
	net.Listener
}

// Listeners returns the listening sockets passed by socket activation: the
// $LISTEN_FDS descriptors from 3, when $LISTEN_PID is this process. It
// unsets the three variables, so that a process started later does not take
// the descriptors for its own, and marks the descriptors close-on-exec. No
// activation gives no listeners and no error. A descriptor that is not a
// listening stream socket is an error (every descriptor is closed then).
func Listeners() ([]Listener, error) {
	pid, fds, names := os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_FDNAMES")
	if pid == "" {
		return nil, nil
	}
	os.Unsetenv("LISTEN_PID")
	os.Unsetenv("LISTEN_FDS")
	os.Unsetenv("LISTEN_FDNAMES")
	if pid != strconv.Itoa(os.Getpid()) {
		return nil, nil
	}
	n, err := strconv.Atoi(fds)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("socket activation: LISTEN_FDS=%q is not a count", fds)
	}
	var nameList []string
	if names != "" {
		nameList = strings.Split(names, ":")
	}
	var out []Listener
	// fail closes what was taken and the descriptors after the i-th.
	fail := func(i int, err error) ([]Listener, error) {
		for _, l := range out {
			l.Close()
		}
		for fd := listenFDsStart + i + 1; fd < listenFDsStart+n; fd++ {
			syscall.Close(fd)
		}
		return nil, err
	}
	for i := range n {
		fd := listenFDsStart + i
		syscall.CloseOnExec(fd)
		name := ""
		if i < len(nameList) {
			name = nameList[i]
		}
		f := os.NewFile(uintptr(fd), "systemd:"+name)
		ln, err := net.FileListener(f)
		f.Close() // FileListener holds its own duplicate
		if err != nil {
			return fail(i, fmt.Errorf("socket activation: descriptor %d (%q) is not a listening socket: %w", fd, name, err))
		}
		out = append(out, Listener{Name: name, Listener: ln})
	}
	return out, nil
}

// Package xferlog writes the logs other tools read: the classic xferlog of
// wu-ftpd, ProFTPD and vsftpd (one line per transfer, for webalizer, AWStats
// and ftpstats) and an auth log (one line per login and ban, for fail2ban),
// in Ferry's format or in vsftpd's. Both are engine observers fed by events
// (package event); both write to a File that reopens for logrotate.
package xferlog

import (
	"os"
	"sync"
)

// File is a log file opened for appending, written one line per write(2)
// (O_APPEND keeps concurrent writers' lines whole), that Reopen opens again
// by name after logrotate has moved it. Its methods are safe for concurrent
// use.
type File struct {
	path string
	mu   sync.Mutex
	f    *os.File // guarded by mu
}

// Open opens (creating it, mode 0640) the log file at path for appending.
func Open(path string) (*File, error) {
	f, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	return &File{path: path, f: f}, nil
}

func openAppend(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
}

// Path is the file's name.
func (f *File) Path() string { return f.path }

// WriteLine writes line, which must end in a newline, in one write.
func (f *File) WriteLine(line []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.f == nil {
		return os.ErrClosed
	}
	_, err := f.f.Write(line)
	return err
}

// Reopen opens the file again by its name and closes the old descriptor:
// after logrotate moved the file away, lines go to a new one. On failure
// the old descriptor stays in use.
func (f *File) Reopen() error {
	nf, err := openAppend(f.path)
	if err != nil {
		return err
	}
	f.mu.Lock()
	old := f.f
	f.f = nf
	f.mu.Unlock()
	if old != nil {
		return old.Close()
	}
	return nil
}

// Close closes the file; later writes fail.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.f == nil {
		return nil
	}
	err := f.f.Close()
	f.f = nil
	return err
}

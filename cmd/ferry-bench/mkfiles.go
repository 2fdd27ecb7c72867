package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// makeFiles creates n empty files f0000000 … in dir (names zero-padded so a
// sorted listing is in creation order), skipping those that exist, with a few
// goroutines: a million files take seconds, not minutes.
func makeFiles(dir string, n int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	width := len(strconv.Itoa(max(n-1, 0)))
	var failed atomic.Value
	t0 := time.Now()
	parallel(n, 8, func(i int) {
		if failed.Load() != nil {
			return
		}
		name := filepath.Join(dir, fmt.Sprintf("f%0*d", width, i))
		fd, err := syscall.Open(name, syscall.O_CREAT|syscall.O_WRONLY|syscall.O_CLOEXEC, 0o644)
		if err != nil {
			failed.CompareAndSwap(nil, fmt.Errorf("create %s: %w", name, err))
			return
		}
		syscall.Close(fd)
	})
	if err, _ := failed.Load().(error); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "ferry-bench: %d files in %s (%.1fs)\n", n, dir, time.Since(t0).Seconds())
	return nil
}

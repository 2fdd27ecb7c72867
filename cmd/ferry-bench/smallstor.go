package main

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// runSmallStor uploads N files of Size bytes over Concurrency sessions,
// each logged in once and storing its share back to back (files/s, the
// figure of many small uploads); the files are deleted afterwards unless
// Keep.
func runSmallStor(o *options, r *result) error {
	data := make([]byte, o.Size)
	fillRandom(data)
	r.Desc = fmt.Sprintf("%d × %s, %d sessions", o.N, humanBytes(o.Size), o.Concurrency)
	var (
		next, done atomic.Int64
		wg         sync.WaitGroup
		mu         sync.Mutex
		first      error
	)
	name := func(k int64) string { return fmt.Sprintf("%s-%06d", o.Upload, k) }
	var cpu0 float64
	if o.PID > 0 {
		cpu0 = treeCPU(o.PID)
	}
	start := time.Now()
	for i := range o.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := func() error {
				c, err := o.session(i, false)
				if err != nil {
					return err
				}
				defer c.quit()
				if _, err := c.expect("TYPE I", 200); err != nil {
					return err
				}
				for {
					k := next.Add(1) - 1
					if k >= int64(o.N) {
						return nil
					}
					n, err := c.transfer("STOR "+name(k), func(w io.ReadWriter) (int64, error) {
						n, err := w.Write(data)
						return int64(n), err
					})
					if err != nil {
						return err
					}
					if n != o.Size {
						return fmt.Errorf("STOR %s: %d bytes sent, want %d", name(k), n, o.Size)
					}
					done.Add(1)
				}
			}()
			if err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	m := r.Metrics
	m["files"] = float64(done.Load())
	m["seconds"] = el
	m["files_per_s"] = float64(done.Load()) / el
	if o.PID > 0 {
		m["server_cpu_s"] = treeCPU(o.PID) - cpu0
	}
	if first != nil {
		return first
	}
	if done.Load() != int64(o.N) {
		return errors.New("not every file was stored")
	}
	if !o.Keep {
		// Not timed: one session per width deletes what was stored.
		var next atomic.Int64
		var wg sync.WaitGroup
		for i := range o.Concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := o.session(i, false)
				if err != nil {
					return
				}
				defer c.quit()
				for {
					k := next.Add(1) - 1
					if k >= int64(o.N) {
						return
					}
					if _, err := c.expect("DELE "+name(k), 250); err != nil {
						mu.Lock()
						r.Info["dele_error"] = err.Error()
						mu.Unlock()
						return
					}
				}
			}()
		}
		wg.Wait()
	}
	return nil
}

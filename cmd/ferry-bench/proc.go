package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, the unit of the times in /proc/PID/stat. It is 100
// on every Linux architecture Go supports (the kernel exports 100 regardless
// of CONFIG_HZ).
const clockTicks = 100

// procStat holds the fields of /proc/PID/stat the benchmark needs.
type procStat struct {
	pid, ppid                    int
	utime, stime, cutime, cstime int64 // clock ticks
}

// readStat parses /proc/PID/stat. The command name may contain spaces and
// parentheses, so fields are counted from the last ')'.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state); field n is f[n-3].
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	num := func(n int) int64 { v, _ := strconv.ParseInt(string(f[n-3]), 10, 64); return v }
	return procStat{
		pid: pid, ppid: int(num(4)),
		utime: num(14), stime: num(15), cutime: num(16), cstime: num(17),
	}, nil
}

// processTree returns pid and all its live descendants (vsftpd forks two
// processes per session; Ferry is one process).
func processTree(root int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return []int{root}
	}
	children := map[int][]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == root {
			continue
		}
		st, err := readStat(pid)
		if err != nil {
			continue
		}
		children[st.ppid] = append(children[st.ppid], pid)
	}
	tree := []int{root}
	for i := 0; i < len(tree); i++ {
		tree = append(tree, children[tree[i]]...)
	}
	return tree
}

// treeCPU returns the CPU time, in seconds, used so far by the tree rooted at
// pid: each live process's utime+stime, plus cutime+cstime, which hold the
// times of descendants that exited and were reaped. Threads are included in
// their process's times.
func treeCPU(root int) float64 {
	var ticks int64
	for _, pid := range processTree(root) {
		st, err := readStat(pid)
		if err != nil {
			continue
		}
		ticks += st.utime + st.stime + st.cutime + st.cstime
	}
	return float64(ticks) / clockTicks
}

// treeRuntime returns the CPU time, in seconds, used so far by the tree
// rooted at pid, as the scheduler counts it: the sum_exec_runtime of every
// thread of each live process (/proc/PID/task/TID/schedstat, nanoseconds),
// plus the cutime+cstime ticks of descendants that exited. utime and stime
// are sampled at the timer tick (4 ms at CONFIG_HZ=250), so a transfer of
// 0.4 s is a hundred samples of whichever thread was on the CPU then;
// schedstat is exact. It returns -1 where schedstat is missing (a kernel
// without CONFIG_SCHED_INFO) or unreadable.
func treeRuntime(root int) float64 {
	var ns, ticks int64
	for _, pid := range processTree(root) {
		st, err := readStat(pid)
		if err != nil {
			continue // the process exited
		}
		ticks += st.cutime + st.cstime
		dir := "/proc/" + strconv.Itoa(pid) + "/task"
		tasks, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		read := 0
		for _, t := range tasks {
			b, err := os.ReadFile(dir + "/" + t.Name() + "/schedstat")
			if err != nil {
				continue // the thread exited, or there is no schedstat
			}
			v, err := parseSchedstat(b)
			if err != nil {
				return -1
			}
			ns += v
			read++
		}
		if read == 0 && len(tasks) > 0 {
			if _, err := os.Stat(dir); err == nil {
				return -1 // the process lives: its threads have no schedstat
			}
		}
	}
	return float64(ns)/1e9 + float64(ticks)/clockTicks
}

// parseSchedstat returns the first field of a schedstat line: the time
// on the CPU, in nanoseconds.
func parseSchedstat(b []byte) (int64, error) {
	f := bytes.Fields(b)
	if len(f) != 3 {
		return 0, fmt.Errorf("schedstat %q: want 3 fields", b)
	}
	return strconv.ParseInt(string(f[0]), 10, 64)
}

// memSum is summed memory over a process tree, in bytes.
type memSum struct {
	Rss, Pss int64
	Procs    int
}

// readRollup returns Rss and Pss from /proc/PID/smaps_rollup.
func readRollup(pid int, buf []byte) (rss, pss int64, err error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		return 0, 0, err
	}
	n, err := f.Read(buf)
	f.Close()
	if err != nil {
		return 0, 0, err
	}
	for _, line := range bytes.Split(buf[:n], []byte("\n")) {
		var dst *int64
		switch {
		case bytes.HasPrefix(line, []byte("Rss:")):
			dst = &rss
		case bytes.HasPrefix(line, []byte("Pss:")):
			dst = &pss
		default:
			continue
		}
		f := bytes.Fields(line)
		if len(f) >= 2 {
			v, _ := strconv.ParseInt(string(f[1]), 10, 64)
			*dst = v * 1024 // kB
		}
	}
	return rss, pss, nil
}

// treeMem sums Rss and Pss over the given processes. PSS divides pages shared
// between processes (vsftpd's forks) among them, so its sum is the tree's
// real footprint; RSS double-counts shared pages.
func treeMem(pids []int) memSum {
	buf := make([]byte, 8192)
	var m memSum
	for _, pid := range pids {
		rss, pss, err := readRollup(pid, buf)
		if err != nil {
			continue
		}
		m.Rss += rss
		m.Pss += pss
		m.Procs++
	}
	return m
}

// memSampler samples a process tree's summed memory every interval and keeps
// the peak, until stopped. The tree is re-walked every 20 samples, so
// processes forked for the measured session are picked up.
type memSampler struct {
	stop    chan struct{}
	done    sync.WaitGroup
	peak    memSum // peak Pss sample (with its Rss)
	peakRss int64
	samples int
}

func startSampler(root int, interval time.Duration) *memSampler {
	s := &memSampler{stop: make(chan struct{})}
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		var pids []int
		for {
			if s.samples%20 == 0 {
				pids = processTree(root)
			}
			m := treeMem(pids)
			s.samples++
			if m.Pss > s.peak.Pss {
				s.peak = m
			}
			if m.Rss > s.peakRss {
				s.peakRss = m.Rss
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// Stop ends sampling and returns the peak.
func (s *memSampler) Stop() (peak memSum, peakRss int64, samples int) {
	close(s.stop)
	s.done.Wait()
	return s.peak, s.peakRss, s.samples
}

// settle waits until the server's process tree has kept the same size for
// quiet, at most limit: vsftpd's session processes of a previous run may
// still be exiting, and would disturb a baseline.
func settle(root int, quiet, limit time.Duration) {
	deadline := time.Now().Add(limit)
	last, since := -1, time.Now()
	for time.Now().Before(deadline) {
		n := len(processTree(root))
		if n != last {
			last, since = n, time.Now()
		} else if time.Since(since) >= quiet {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// procStatusKiB reads one "Vm…" field of /proc/PID/status, in KiB.
func procStatusKiB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, field)
}

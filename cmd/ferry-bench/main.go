// Command ferry-bench drives any FTP server over raw protocol lines and
// prints one JSON object per scenario run (on stdout) plus a human line (on
// stderr). bench/compare.sh uses it to compare Ferry with vsftpd; see
// docs/benchmarks.md.
//
//	ferry-bench -addr 127.0.0.1:2121 -scenario retr -file big.bin -pid 1234
//	ferry-bench -addr 127.0.0.1:2121 -user bench -pass pw -scenario stor -size 1GiB
//	ferry-bench -addr 127.0.0.1:2121 -scenario list -path dir-10000
//	ferry-bench -addr 127.0.0.1:2121 -scenario sessions -c 50 -duration 10s
//	ferry-bench -addr 127.0.0.1:2121 -scenario idle -n 1000 -pid 1234
//	ferry-bench -scenario limit-sendfile,limit-tls -file /srv/ftp/big.bin
//	ferry-bench -scenario limit-recv -size 1GiB -dir /srv/ftp/upload
//	ferry-bench -mkfiles DIR -n 1000000
//	ferry-bench -report results.jsonl
//
// Scenarios: retr, stor, ftps-retr, ftps-stor (one binary passive transfer,
// MB/s = 10^6 bytes/s, and the server's CPU seconds per GiB), list (MLSD, or
// LIST when FEAT lacks MLST; ms, and with -pid the server's peak memory over
// its baseline while listing), sessions (clients looping connect, login,
// SIZE, RETR, QUIT), idle (sessions held; memory per session, NOOP check),
// smallstor (-n files of -size bytes stored over -c sessions, each logged
// in once; files/s). With -pid every result also has server_hwm_mib, the
// server's peak RSS so far (VmHWM).
// The limit scenarios need no server: they measure the machine's own
// ceilings on loopback (limits.go): limit-sendfile and limit-tls send the
// local -file to a client reading like retr's, plainly with sendfile(2) or
// through Go's TLS 1.3; limit-recv receives -size bytes from a client
// writing like stor's into a file in -dir; limit-sha256 hashes -size bytes
// from memory with SHA-256 on one thread, the most that an upload hashed
// while it is received can reach.
// Several scenarios may be given, comma separated.
//
// With -pid, the server's process tree is measured from /proc: CPU from
// /proc/PID/stat (utime+stime of every live process, plus cutime+cstime for
// reaped descendants), for a transfer from the exact runtime of every thread
// (/proc/PID/task/TID/schedstat), memory as summed PSS from
// /proc/PID/smaps_rollup.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("ferry-bench", flag.ContinueOnError)
	var o options
	var scenario, size, limitBuf, mkfiles, report, labelA, labelB, labelLimit string
	fs.StringVar(&o.Addr, "addr", "127.0.0.1:2121", "server control address host:port")
	fs.StringVar(&o.User, "user", "anonymous", "login name")
	fs.StringVar(&o.Pass, "pass", "ferry-bench@", "password")
	fs.StringVar(&scenario, "scenario", "", "retr|stor|ftps-retr|ftps-stor|list|sessions|idle|smallstor|limit-sendfile|limit-tls|limit-recv|limit-sha256, comma separated")
	fs.StringVar(&o.Key, "key", "", "result key for -report (default: derived from scenario and parameters)")
	fs.StringVar(&o.Label, "label", "", "server label recorded in results (e.g. vsftpd, ferry)")
	fs.IntVar(&o.Round, "round", 0, "round number recorded in results")
	fs.StringVar(&o.File, "file", "big.bin", "retr: file to download")
	fs.StringVar(&o.Upload, "upload", "ferry-bench-upload.bin", "stor: name to upload to; smallstor: prefix of the names (NAME-000001)")
	fs.StringVar(&size, "size", "64MiB", "stor: bytes to upload; smallstor: bytes of each file (suffixes KiB, MiB, GiB)")
	fs.BoolVar(&o.Keep, "keep", false, "stor: keep the uploaded file (default: DELE it)")
	fs.StringVar(&o.Path, "path", "dir-10000", "list: directory to list")
	fs.StringVar(&o.ListCmd, "list-cmd", "auto", "list: auto|MLSD|LIST|NLST")
	fs.IntVar(&o.Reps, "reps", 3, "list: listings per run (median reported)")
	fs.IntVar(&o.Expect, "expect", 0, "list: expected number of entries (0: not checked)")
	fs.IntVar(&o.Concurrency, "c", 50, "sessions: concurrent clients; smallstor: sessions")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "sessions: how long clients loop")
	fs.StringVar(&o.Small, "small", "small.bin", "sessions: file each session downloads")
	fs.IntVar(&o.N, "n", 1000, "idle: sessions to hold; smallstor: files to store; -mkfiles: files to create")
	fs.DurationVar(&o.Hold, "hold", 500*time.Millisecond, "idle: pause after the last login before measuring")
	fs.StringVar(&o.Dir, "dir", "", "limit-recv: directory to receive into (default: the system's temporary directory)")
	fs.StringVar(&o.TLSCert, "tls-cert", "", "limit-tls: certificate file (PEM) of the sender (default: a generated one)")
	fs.StringVar(&o.TLSKey, "tls-key", "", "limit-tls: key file (PEM) of -tls-cert")
	fs.StringVar(&limitBuf, "limit-buf", "1MiB", "limit-tls: the sender's file reads; limit-recv: the read-write receiver's buffer")
	fs.IntVar(&o.PID, "pid", 0, "server process id: measure CPU and memory of its process tree (0: don't)")
	fs.DurationVar(&o.Sample, "sample", 5*time.Millisecond, "memory sampling interval during listings")
	fs.DurationVar(&o.Settle, "settle", 500*time.Millisecond, "with -pid: before a run, wait until the server's process count has been stable this long")
	fs.DurationVar(&o.Timeout, "timeout", 60*time.Second, "timeout of each network operation")
	fs.IntVar(&o.SrcIPs, "src-ips", 1, "spread client connections over 127.0.0.1 … 127.0.0.N")
	fs.BoolVar(&o.PASV, "pasv", false, "use PASV only (default: EPSV, falling back to PASV when refused)")
	fs.StringVar(&mkfiles, "mkfiles", "", "create -n empty files in this directory and exit")
	fs.StringVar(&report, "report", "", "read JSON results (comma separated files) and print the comparison table")
	fs.StringVar(&labelA, "a", "vsftpd", "report: label of the reference server")
	fs.StringVar(&labelB, "b", "ferry", "report: label of the server under test")
	fs.StringVar(&labelLimit, "limit", "limit", "report: label of the limit scenarios' results (the machine's ceilings)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	switch {
	case mkfiles != "":
		if err := makeFiles(mkfiles, o.N); err != nil {
			fmt.Fprintln(os.Stderr, "ferry-bench:", err)
			return 1
		}
		return 0
	case report != "":
		if err := printReport(os.Stdout, strings.Split(report, ","), labelA, labelB, labelLimit); err != nil {
			fmt.Fprintln(os.Stderr, "ferry-bench:", err)
			return 1
		}
		return 0
	case scenario == "":
		fmt.Fprintln(os.Stderr, "ferry-bench: -scenario is required")
		fs.Usage()
		return 2
	}
	n, err := parseSize(size)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferry-bench: -size:", err)
		return 2
	}
	o.Size = n
	lb, err := parseSize(limitBuf)
	if err != nil || lb <= 0 || lb > 1<<30 {
		fmt.Fprintln(os.Stderr, "ferry-bench: -limit-buf: want 1 byte to 1 GiB:", limitBuf)
		return 2
	}
	o.LimitBuf = int(lb)
	raiseFileLimit(o.N + o.Concurrency*2 + 256)
	status := 0
	var mu sync.Mutex // guards stdout and current
	var current string
	enc := json.NewEncoder(os.Stdout)
	// Stopped by a signal (compare.sh's timeout), the running scenario still
	// leaves a failed result, so the report shows the failure.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		mu.Lock()
		r := result{Scenario: current, Key: o.Key, Server: o.Label, Round: o.Round, Addr: o.Addr,
			Time: time.Now().UTC().Format(time.RFC3339), Error: "stopped by " + sig.String(), Metrics: map[string]float64{}}
		if r.Key == "" {
			r.Key = defaultKey(&o, current)
		}
		enc.Encode(r)
		fmt.Fprintln(os.Stderr, humanLine(r))
		os.Exit(1)
	}()
	for _, sc := range strings.Split(scenario, ",") {
		sc = strings.TrimSpace(sc)
		mu.Lock()
		current = sc
		mu.Unlock()
		r := runScenario(&o, sc)
		mu.Lock()
		enc.Encode(r)
		fmt.Fprintln(os.Stderr, humanLine(r))
		mu.Unlock()
		if !r.OK {
			status = 1
		}
	}
	return status
}

// runScenario runs one scenario and returns its result, failed or not.
func runScenario(o *options, scenario string) result {
	r := result{
		Scenario: scenario, Key: o.Key, Server: o.Label, Round: o.Round, Addr: o.Addr,
		Time:    time.Now().UTC().Format(time.RFC3339),
		Metrics: map[string]float64{}, Info: map[string]any{},
	}
	if o.PID > 0 {
		settle(o.PID, o.Settle, time.Minute)
	}
	var err error
	switch scenario {
	case "retr":
		err = runTransfer(o, &r, false, false)
	case "stor":
		err = runTransfer(o, &r, true, false)
	case "ftps-retr":
		err = runTransfer(o, &r, false, true)
	case "ftps-stor":
		err = runTransfer(o, &r, true, true)
	case "list":
		err = runList(o, &r)
	case "sessions":
		err = runSessions(o, &r)
	case "idle":
		err = runIdle(o, &r)
	case "smallstor":
		err = runSmallStor(o, &r)
	case "limit-sendfile":
		err = runLimitSendfile(o, &r)
	case "limit-tls":
		err = runLimitTLS(o, &r)
	case "limit-recv":
		err = runLimitRecv(o, &r)
	case "limit-sha256":
		err = runLimitSHA256(o, &r)
	default:
		err = fmt.Errorf("unknown scenario %q", scenario)
	}
	if r.Key == "" {
		r.Key = defaultKey(o, scenario)
	}
	if o.PID > 0 {
		// The server's peak resident memory so far (its whole life).
		if kib, err := procStatusKiB(o.PID, "VmHWM"); err == nil {
			r.Metrics["server_hwm_mib"] = float64(kib) / 1024
		}
	}
	r.OK = err == nil
	if err != nil {
		r.Error = err.Error()
	}
	if len(r.Info) == 0 {
		r.Info = nil
	}
	return r
}

func defaultKey(o *options, scenario string) string {
	switch scenario {
	case "sessions":
		return fmt.Sprintf("sessions-%d", o.Concurrency)
	case "idle":
		return fmt.Sprintf("idle-%d", o.N)
	case "list":
		return "list-" + strings.ReplaceAll(strings.Trim(o.Path, "/"), "/", "-")
	}
	return scenario
}

func humanLine(r result) string {
	m := r.Metrics
	var b strings.Builder
	fmt.Fprintf(&b, "%-10s %-8s %-24s", r.Key, r.Server, r.Desc)
	if !r.OK {
		fmt.Fprintf(&b, " FAILED: %s", r.Error)
	}
	f := func(name, format string) {
		if v, ok := m[name]; ok {
			fmt.Fprintf(&b, " "+format, v)
		}
	}
	switch r.Scenario {
	case "retr", "stor", "ftps-retr", "ftps-stor":
		f("mb_per_s", "%.1f MB/s")
		f("seconds", "(%.2fs)")
		f("server_cpu_s_per_gib", "server %.2f CPU-s/GiB")
		f("client_cpu_s", "client %.2f CPU-s")
		f("final_reply_s", "226 after %.2fs")
	case "limit-sendfile", "limit-tls", "limit-recv", "limit-sha256":
		f("mb_per_s", "%.1f MB/s")
		f("seconds", "(%.2fs)")
		f("sender_cpu_s_per_gib", "sender %.2f CPU-s/GiB")
		f("cpu_s_per_gib", "process %.2f CPU-s/GiB")
		if v, ok := r.Info["receiver"].(string); ok {
			b.WriteString(" (" + v + ")")
		}
	case "list":
		if cmd, ok := r.Info["command"].(string); ok {
			b.WriteString(" " + cmd)
		}
		f("ms", "%.1f ms (median)")
		f("ms_min", "min %.1f ms")
		f("peak_pss_mib", "peak +%.1f MiB PSS")
		f("peak_rss_mib", "(+%.1f MiB RSS)")
	case "smallstor":
		f("files_per_s", "%.0f files/s")
		f("seconds", "(%.2fs)")
	case "sessions":
		f("sessions_per_s", "%.0f sessions/s")
		f("p50_ms", "p50 %.2f ms")
		f("p99_ms", "p99 %.2f ms")
		f("errors", "errors %.0f")
		f("server_cpu_ms_per_session", "server %.2f CPU-ms/session")
	case "idle":
		f("sessions", "%.0f held")
		f("kib_per_session", "%.1f KiB PSS/session")
		f("rss_kib_per_session", "(%.1f KiB RSS)")
		f("noop_ok", "NOOP ok %.0f")
		f("noop_failed", "failed %.0f")
		f("connect_s", "connect %.1fs")
	}
	return b.String()
}

// parseSize reads "4096", "64KiB", "64MiB", "1GiB" (also K, M, G, KB …, all binary).
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	low := strings.ToLower(s)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"gib", gib}, {"gb", gib}, {"g", gib}, {"mib", 1 << 20}, {"mb", 1 << 20}, {"m", 1 << 20}, {"kib", 1 << 10}, {"kb", 1 << 10}, {"k", 1 << 10}, {"b", 1}} {
		if strings.HasSuffix(low, u.suf) {
			mult = u.m
			s = s[:len(s)-len(u.suf)]
			break
		}
	}
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return v * mult, nil
}

// raiseFileLimit raises RLIMIT_NOFILE to at least want (or to the hard
// limit, or higher when privileged), for the idle scenario's thousands of
// connections.
func raiseFileLimit(want int) {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) != nil {
		return
	}
	w := uint64(want)
	if lim.Cur >= w {
		return
	}
	if lim.Max < w {
		try := lim
		try.Cur, try.Max = w, w
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &try) == nil {
			return
		}
	}
	lim.Cur = lim.Max
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}

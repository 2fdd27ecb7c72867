package main

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// options are the settings of one scenario run (see the flags in main.go).
type options struct {
	Addr, User, Pass string
	Key, Label       string
	Round            int

	File   string // retr, ftps-retr: file to download
	Upload string // stor, ftps-stor: file name to upload (deleted afterwards unless Keep)
	Size   int64  // stor, ftps-stor: bytes to upload
	Keep   bool

	Path    string // list: directory to list
	ListCmd string // list: auto (MLSD when FEAT has MLST, else LIST), MLSD, LIST, NLST
	Reps    int    // list: listings per run; the median is reported
	Expect  int    // list: expected entry count; 0: not checked

	Concurrency int           // sessions: concurrent clients
	Duration    time.Duration // sessions: how long clients loop
	Small       string        // sessions: file each session fetches

	N    int           // idle: sessions held
	Hold time.Duration // idle: pause between the last login and the measurement

	Dir      string // limit-recv: directory of the received file ("": the system's temporary directory)
	TLSCert  string // limit-tls: certificate and key files ("": a generated certificate)
	TLSKey   string
	LimitBuf int // limit-tls: the sender's reads of the file; limit-recv: the read-write receiver's buffer

	PID     int           // server process: CPU and memory of its tree; 0: not measured
	Sample  time.Duration // memory sampling interval
	Settle  time.Duration // quiet time of the process tree before a run
	Timeout time.Duration // per operation
	SrcIPs  int           // spread clients over 127.0.0.1 … 127.0.0.N (loopback only)
	PASV    bool          // passive mode by PASV only (default: EPSV, PASV when refused)
}

// result is one scenario run; it is printed as one JSON line.
type result struct {
	Scenario string             `json:"scenario"`
	Key      string             `json:"key"`
	Server   string             `json:"server,omitempty"`
	Round    int                `json:"round,omitempty"`
	Addr     string             `json:"addr"`
	Time     string             `json:"time"`
	OK       bool               `json:"ok"`
	Error    string             `json:"error,omitempty"`
	Desc     string             `json:"desc"`
	Metrics  map[string]float64 `json:"metrics"`
	Info     map[string]any     `json:"info,omitempty"`
}

func (o *options) dialer(i int) *dialer {
	d := &dialer{Addr: o.Addr, Timeout: o.Timeout, PASV: o.PASV}
	if o.SrcIPs > 1 {
		d.Local = net.IPv4(127, 0, byte((i%o.SrcIPs+1)>>8), byte((i%o.SrcIPs+1)&0xff))
	}
	return d
}

// session opens a control connection, optionally with AUTH TLS, and logs in.
func (o *options) session(i int, useTLS bool) (*conn, error) {
	d := o.dialer(i)
	c, err := d.connect()
	if err != nil {
		return nil, err
	}
	if useTLS {
		conf := newTLSConfig(o.Addr)
		d.TLS = conf
		if err := c.authTLS(conf); err != nil {
			c.Close()
			return nil, err
		}
	}
	if err := c.login(o.User, o.Pass); err != nil {
		c.Close()
		return nil, err
	}
	if useTLS {
		if err := c.protect(); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

func (c *conn) quit() {
	c.cmd("QUIT")
	c.Close()
}

func clientCPU() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

const gib = 1 << 30

// runTransfer is retr, stor, ftps-retr and ftps-stor: one binary passive
// transfer, its rate, and the CPU time the server's process tree spent on it.
func runTransfer(o *options, r *result, upload, useTLS bool) error {
	c, err := o.session(0, useTLS)
	if err != nil {
		return err
	}
	defer c.quit()
	if _, err := c.expect("TYPE I", 200); err != nil {
		return err
	}
	var want int64 = -1
	var line string
	var body func(io.ReadWriter) (int64, error)
	if upload {
		want = o.Size
		line = "STOR " + o.Upload
		r.Desc = fmt.Sprintf("%s, %s", humanBytes(o.Size), tern(useTLS, "TLS", "plain"))
		buf := make([]byte, xferBuf)
		fillRandom(buf)
		body = func(w io.ReadWriter) (int64, error) { return writeN(w, buf, o.Size) }
	} else {
		line = "RETR " + o.File
		if sz, err := c.size(o.File); err == nil {
			want = sz
		}
		r.Desc = fmt.Sprintf("%s, %s", humanBytes(want), tern(useTLS, "TLS", "plain"))
		buf := make([]byte, xferBuf)
		body = func(rd io.ReadWriter) (int64, error) { return readAll(rd, buf, nil) }
	}
	if tc, ok := c.nc.(*tls.Conn); ok {
		st := tc.ConnectionState()
		r.Info["tls"] = tls.VersionName(st.Version) + " " + tls.CipherSuiteName(st.CipherSuite)
	}
	var cpu0, run0 float64
	if o.PID > 0 {
		cpu0, run0 = treeCPU(o.PID), treeRuntime(o.PID)
	}
	ccpu0 := clientCPU()
	t0 := time.Now()
	n, err := c.transfer(line, body)
	el := time.Since(t0).Seconds()
	ccpu := clientCPU() - ccpu0
	if err != nil {
		return err
	}
	if want >= 0 && n != want {
		return fmt.Errorf("%s: transferred %d bytes, want %d", verb(line), n, want)
	}
	m := r.Metrics
	m["bytes"] = float64(n)
	m["seconds"] = el
	m["mb_per_s"] = float64(n) / el / 1e6
	m["client_cpu_s"] = ccpu
	m["final_reply_s"] = c.finalWait.Seconds()
	if o.PID > 0 {
		// The scheduler's exact runtime where the kernel has it; the
		// tick-sampled figure stays beside it (server_tick_cpu_*).
		ticks := treeCPU(o.PID) - cpu0
		cpu := ticks
		if run1 := treeRuntime(o.PID); run0 >= 0 && run1 >= 0 {
			cpu = run1 - run0
			r.Info["server_cpu"] = "schedstat"
		}
		m["server_cpu_s"] = cpu
		m["server_cpu_s_per_gib"] = cpu / (float64(n) / gib)
		m["server_tick_cpu_s"] = ticks
		m["server_tick_cpu_s_per_gib"] = ticks / (float64(n) / gib)
	}
	if upload && !o.Keep {
		if _, err := c.expect("DELE "+o.Upload, 250); err != nil {
			r.Info["dele_error"] = err.Error()
		}
	}
	return nil
}

// xferBuf is the size of the client's reads and writes on a data
// connection in the transfer scenarios, and on the limit scenarios' client
// end, so that the ceilings are measured with the same client.
const xferBuf = 1 << 20

// writeN writes size bytes to w, buf over and over: an upload from memory.
func writeN(w io.Writer, buf []byte, size int64) (int64, error) {
	var n int64
	for n < size {
		chunk := buf
		if rem := size - n; rem < int64(len(chunk)) {
			chunk = chunk[:rem]
		}
		k, err := w.Write(chunk)
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func tern(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

func fillRandom(b []byte) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i+8 <= len(b); i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
}

// runList lists a directory Reps times (MLSD, or LIST for servers without
// MLST in FEAT) and reports the median time; with a PID it samples the
// server tree's summed memory during each listing and reports the peak over
// the baseline taken after login.
func runList(o *options, r *result) error {
	c, err := o.session(0, false)
	if err != nil {
		return err
	}
	defer c.quit()
	cmd := strings.ToUpper(o.ListCmd)
	if cmd == "" || cmd == "AUTO" {
		cmd = "LIST"
		if _, ok := c.features()["MLST"]; ok {
			cmd = "MLSD"
		}
	}
	r.Info["command"] = cmd
	reps := max(o.Reps, 1)
	var times []float64
	var entries, nbytes int64
	var peakPss, peakRss int64
	var samples int
	var base memSum
	if o.PID > 0 {
		base = treeMem(processTree(o.PID))
		r.Metrics["baseline_pss_mib"] = float64(base.Pss) / (1 << 20)
	}
	buf := make([]byte, 256<<10)
	for range reps {
		var count lineCounter
		count.mlsd = cmd == "MLSD"
		var s *memSampler
		if o.PID > 0 {
			s = startSampler(o.PID, o.Sample)
		}
		t0 := time.Now()
		n, err := c.transfer(cmd+" "+o.Path, func(rd io.ReadWriter) (int64, error) {
			return readAll(rd, buf, count.feed)
		})
		el := time.Since(t0).Seconds()
		if s != nil {
			p, pr, k := s.Stop()
			peakPss = max(peakPss, p.Pss-base.Pss)
			peakRss = max(peakRss, pr-base.Rss)
			samples += k
		}
		if err != nil {
			return err
		}
		count.end()
		entries, nbytes = count.entries, n
		times = append(times, el*1000)
		if o.Expect > 0 && count.entries != int64(o.Expect) {
			return fmt.Errorf("%s %s: %d entries, want %d", cmd, o.Path, count.entries, o.Expect)
		}
	}
	r.Desc = fmt.Sprintf("%d entries", entries)
	m := r.Metrics
	m["entries"] = float64(entries)
	m["bytes"] = float64(nbytes)
	m["ms"] = median(times)
	m["ms_min"] = slices.Min(times)
	if o.PID > 0 {
		m["peak_pss_mib"] = float64(peakPss) / (1 << 20)
		m["peak_rss_mib"] = float64(peakRss) / (1 << 20)
		m["mem_samples"] = float64(samples)
	}
	return nil
}

// lineCounter counts listing entries in a stream: lines, less MLSD's
// type=cdir/pdir facts lines and LIST's "total N" line.
type lineCounter struct {
	mlsd    bool
	entries int64
	partial []byte // start of the current line (first 32 bytes at most)
}

func (l *lineCounter) feed(b []byte) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			if len(l.partial) < 32 {
				l.partial = append(l.partial, b[:min(len(b), 32-len(l.partial))]...)
			}
			return
		}
		if len(l.partial) < 32 {
			l.partial = append(l.partial, b[:min(i, 32-len(l.partial))]...)
		}
		l.line(l.partial)
		l.partial = l.partial[:0]
		b = b[i+1:]
	}
}

func (l *lineCounter) end() {
	if len(bytes.TrimSpace(l.partial)) > 0 {
		l.line(l.partial)
	}
	l.partial = l.partial[:0]
}

func (l *lineCounter) line(start []byte) {
	s := strings.ToLower(string(bytes.TrimSpace(start)))
	switch {
	case s == "":
	case l.mlsd && (strings.Contains(s, "type=cdir") || strings.Contains(s, "type=pdir")):
	case !l.mlsd && strings.HasPrefix(s, "total "):
	default:
		l.entries++
	}
}

// oneSession is the unit of the sessions scenario: connect, anonymous login,
// TYPE I, SIZE, RETR of a small file, QUIT.
func oneSession(o *options, i int, buf []byte) error {
	c, err := o.session(i, false)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.expect("TYPE I", 200); err != nil {
		return err
	}
	sz, err := c.size(o.Small)
	if err != nil {
		return err
	}
	n, err := c.transfer("RETR "+o.Small, func(rd io.ReadWriter) (int64, error) { return readAll(rd, buf, nil) })
	if err != nil {
		return err
	}
	if n != sz {
		return fmt.Errorf("RETR: %d bytes, SIZE said %d", n, sz)
	}
	_, err = c.expect("QUIT", 221)
	return err
}

// runSessions runs Concurrency clients that each loop oneSession until
// Duration has passed; sessions started before then are finished.
func runSessions(o *options, r *result) error {
	r.Desc = fmt.Sprintf("c=%d, %s", o.Concurrency, o.Duration)
	var (
		mu       sync.Mutex
		lats     []float64
		errs     atomic.Int64
		inWindow atomic.Int64 // sessions that succeeded and ended inside the window
		samples  = map[string]int{}
		wg       sync.WaitGroup
	)
	var cpu0 float64
	if o.PID > 0 {
		cpu0 = treeCPU(o.PID)
	}
	start := time.Now()
	stop := start.Add(o.Duration)
	for i := range o.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64<<10)
			var mine []float64
			for time.Now().Before(stop) {
				t0 := time.Now()
				err := oneSession(o, i, buf)
				if err == nil && !time.Now().After(stop) {
					inWindow.Add(1)
				}
				if err != nil {
					errs.Add(1)
					mu.Lock()
					if len(samples) < 10 {
						samples[errorKind(err)]++
					} else if _, ok := samples[errorKind(err)]; ok {
						samples[errorKind(err)]++
					}
					mu.Unlock()
					time.Sleep(10 * time.Millisecond) // no hot loop against a refusing server
					continue
				}
				mine = append(mine, time.Since(t0).Seconds()*1000)
			}
			mu.Lock()
			lats = append(lats, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	// The rate counts the sessions that ended inside the window; those still
	// running at its end finish (their latencies count) but not in the rate.
	el := time.Since(start).Seconds()
	m := r.Metrics
	m["sessions"] = float64(len(lats))
	m["errors"] = float64(errs.Load())
	m["seconds"] = el
	m["drain_s"] = el - o.Duration.Seconds()
	m["sessions_per_s"] = float64(inWindow.Load()) / o.Duration.Seconds()
	if len(lats) > 0 {
		slices.Sort(lats)
		m["p50_ms"] = percentile(lats, 50)
		m["p99_ms"] = percentile(lats, 99)
		m["max_ms"] = lats[len(lats)-1]
	}
	if o.PID > 0 {
		cpu := treeCPU(o.PID) - cpu0
		m["server_cpu_s"] = cpu
		if len(lats) > 0 {
			m["server_cpu_ms_per_session"] = cpu * 1000 / float64(len(lats))
		}
	}
	if len(samples) > 0 {
		r.Info["error_samples"] = samples
	}
	if len(lats) == 0 {
		return errors.New("no session completed")
	}
	return nil
}

// errorKind shortens an error for the error sample table: numbers such as
// ports are dropped so that the same failure is counted once.
func errorKind(err error) string {
	s := err.Error()
	var b strings.Builder
	for _, ch := range s {
		if ch >= '0' && ch <= '9' {
			continue
		}
		b.WriteRune(ch)
	}
	if b.Len() > 120 {
		return b.String()[:120]
	}
	return b.String()
}

// runIdle logs N sessions in and holds them, measures the server tree's
// summed PSS against the baseline taken before connecting, then checks that
// every session still answers NOOP.
func runIdle(o *options, r *result) error {
	r.Desc = fmt.Sprintf("n=%d", o.N)
	var base memSum
	if o.PID > 0 {
		// A few sessions first, so that what a server allocates once, on its
		// first sessions, is in the baseline and not charged to the N.
		for i := range 8 {
			if c, err := o.session(i, false); err == nil {
				c.cmd("NOOP")
				c.quit()
			}
		}
		settle(o.PID, o.Settle, time.Minute)
		base = treeMem(processTree(o.PID))
		r.Metrics["baseline_pss_mib"] = float64(base.Pss) / (1 << 20)
	}
	conns := make([]*conn, o.N)
	var connErrs atomic.Int64
	var firstErr atomic.Value
	t0 := time.Now()
	var retries atomic.Int64
	parallel(o.N, 64, func(i int) {
		// A refused or reset connection is tried twice more: an accept
		// queue that overflows under 64 concurrent connects (vsftpd's
		// listen backlog is 32) is not what this scenario measures.
		for attempt := 0; ; attempt++ {
			c, err := o.session(i, false)
			if err == nil {
				conns[i] = c
				return
			}
			if attempt == 2 {
				connErrs.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			retries.Add(1)
			time.Sleep(100 * time.Millisecond)
		}
	})
	m := r.Metrics
	m["connect_s"] = time.Since(t0).Seconds()
	m["connect_errors"] = float64(connErrs.Load())
	m["connect_retries"] = float64(retries.Load())
	if e := firstErr.Load(); e != nil {
		r.Info["first_connect_error"] = e
	}
	defer parallel(o.N, 64, func(i int) {
		if conns[i] != nil {
			conns[i].Timeout(5 * time.Second)
			conns[i].quit()
		}
	})
	held := o.N - int(connErrs.Load())
	m["sessions"] = float64(held)
	time.Sleep(o.Hold)
	if o.PID > 0 && held > 0 {
		tree := processTree(o.PID)
		mem := treeMem(tree)
		m["procs"] = float64(mem.Procs)
		m["pss_mib"] = float64(mem.Pss) / (1 << 20)
		m["kib_per_session"] = float64(mem.Pss-base.Pss) / 1024 / float64(held)
		m["rss_kib_per_session"] = float64(mem.Rss-base.Rss) / 1024 / float64(held)
	}
	var noopOK, noopFail atomic.Int64
	parallel(o.N, 64, func(i int) {
		if conns[i] == nil {
			return
		}
		if _, err := conns[i].expect("NOOP", 200); err != nil {
			noopFail.Add(1)
			firstErr.CompareAndSwap(nil, "NOOP: "+err.Error())
			return
		}
		noopOK.Add(1)
	})
	m["noop_ok"] = float64(noopOK.Load())
	m["noop_failed"] = float64(noopFail.Load())
	if e := firstErr.Load(); e != nil {
		r.Info["first_error"] = e
	}
	if held == 0 {
		return errors.New("no session logged in")
	}
	if connErrs.Load() > 0 || noopFail.Load() > 0 {
		return fmt.Errorf("%d connect errors, %d NOOP failures of %d sessions", connErrs.Load(), noopFail.Load(), o.N)
	}
	return nil
}

// Timeout changes the per-operation timeout of one connection.
func (c *conn) Timeout(d time.Duration) {
	dd := *c.d
	dd.Timeout = d
	c.d = &dd
}

// parallel runs f(0) … f(n-1) on at most width goroutines.
func parallel(n, width int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(width, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// percentile of sorted values, nearest rank.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	k := int(float64(len(sorted))*p/100+0.999999) - 1
	return sorted[max(0, min(k, len(sorted)-1))]
}

func humanBytes(n int64) string {
	switch {
	case n < 0:
		return "? bytes"
	case n >= gib && n%gib == 0:
		return fmt.Sprintf("%d GiB", n/gib)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

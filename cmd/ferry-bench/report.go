package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
)

// target is the goal of one table row, checked on Ferry's value b against
// vsftpd's value a.
type target struct {
	text  string
	holds func(a, b float64) bool // nil: reported only
}

func ratioAtLeast(x float64) target {
	return target{fmt.Sprintf("≥%.1f×", x), func(a, b float64) bool { return a > 0 && b/a >= x }}
}

func ratioAtMost(x float64, text string) target {
	return target{text, func(a, b float64) bool { return a > 0 && b/a <= x }}
}

func below(v float64, text string) target {
	return target{text, func(_, b float64) bool { return b < v }}
}

var zero = target{"0", func(_, b float64) bool { return b == 0 }}

// row is one line of the comparison table: a metric of the results with key.
type row struct {
	key, metric, label string
	format             string
	agg                string // "median" (default) or "max" over rounds (counts, peaks: no ratio shown)
	target             target
}

var rows = []row{
	{key: "retr", metric: "mb_per_s", label: "retr MB/s", format: "%.0f", target: ratioAtLeast(1.0)},
	{key: "retr", metric: "server_cpu_s_per_gib", label: "retr server CPU s/GiB", format: "%.2f", target: ratioAtMost(1.0, "≤1.0×")},
	{key: "stor", metric: "mb_per_s", label: "stor MB/s", format: "%.0f", target: ratioAtLeast(1.0)},
	{key: "stor", metric: "server_cpu_s_per_gib", label: "stor server CPU s/GiB", format: "%.2f"},
	{key: "ftps-retr", metric: "mb_per_s", label: "ftps-retr MB/s", format: "%.0f", target: ratioAtLeast(1.3)},
	{key: "ftps-retr", metric: "server_cpu_s_per_gib", label: "ftps-retr server CPU s/GiB", format: "%.2f"},
	{key: "ftps-stor", metric: "mb_per_s", label: "ftps-stor MB/s", format: "%.0f"},
	{key: "ftps-stor", metric: "server_cpu_s_per_gib", label: "ftps-stor server CPU s/GiB", format: "%.2f"},
	{key: "list", metric: "ms", label: "list time ms", format: "%.1f", target: ratioAtMost(1.0, "≤1.0×")},
	{key: "list-big", metric: "ms", label: "list time ms", format: "%.0f"},
	{key: "list-big", metric: "peak_pss_mib", label: "list peak memory over baseline MiB", format: "%.1f", agg: "max", target: below(64, "<64 MiB")},
	{key: "sessions-1", metric: "sessions_per_s", label: "sessions/s", format: "%.0f", target: ratioAtLeast(5)},
	{key: "sessions-1", metric: "p99_ms", label: "sessions p99 ms", format: "%.1f", target: ratioAtMost(0.2, "≤0.2×")},
	{key: "sessions-1", metric: "errors", label: "sessions errors", format: "%.0f", agg: "max"},
	{key: "sessions-2", metric: "sessions_per_s", label: "sessions/s", format: "%.0f", target: ratioAtLeast(5)},
	{key: "sessions-2", metric: "p99_ms", label: "sessions p99 ms", format: "%.1f"},
	{key: "sessions-2", metric: "errors", label: "sessions errors", format: "%.0f", agg: "max", target: zero},
	{key: "idle-1", metric: "kib_per_session", label: "idle KiB/session (PSS)", format: "%.1f"},
	{key: "idle-1", metric: "noop_failed", label: "idle NOOP failures", format: "%.0f", agg: "max", target: zero},
	{key: "idle-2", metric: "kib_per_session", label: "idle KiB/session (PSS)", format: "%.1f", target: ratioAtMost(0.1, "≤0.1×")},
	{key: "idle-2", metric: "noop_failed", label: "idle NOOP failures", format: "%.0f", agg: "max", target: zero},
	// S3 rows: Ferry on S3 (ferry-s3) against a plain S3 client straight to
	// the same service (s3-direct, bench/s3ceiling); issue 10's targets.
	{key: "s3-retr", metric: "mb_per_s", label: "S3 retr MB/s", format: "%.0f", target: ratioAtLeast(0.8)},
	{key: "s3-stor", metric: "mb_per_s", label: "S3 stor MB/s", format: "%.0f", target: ratioAtLeast(0.9)},
	{key: "s3-stor", metric: "final_reply_s", label: "S3 stor wait for 226 s", format: "%.2f"},
	{key: "s3-list", metric: "ms", label: "S3 MLSD / ListObjectsV2 ms", format: "%.1f", target: ratioAtMost(1.2, "≤1.2×")},
	{key: "s3-small", metric: "files_per_s", label: "S3 small uploads files/s", format: "%.0f"},
	{key: "s3-small", metric: "server_hwm_mib", label: "S3 server peak RSS MiB (the run so far)", format: "%.0f", agg: "max", target: below(256, "<256 MiB (s3_buffer_budget)")},
}

// printReport reads JSON result lines and prints, per row, the median over
// rounds of server a (vsftpd) and b (Ferry), their ratio b/a, the target and
// whether it holds. Failed runs are counted and shown; they carry no value.
func printReport(w io.Writer, files []string, a, b string) error {
	type k struct{ server, key string }
	runs := map[k][]result{}
	var keys []string
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if !strings.HasPrefix(line, "{") {
				continue
			}
			var r result
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				continue
			}
			if !slices.Contains(keys, r.Key) {
				keys = append(keys, r.Key)
			}
			runs[k{r.Server, r.Key}] = append(runs[k{r.Server, r.Key}], r)
		}
		f.Close()
	}
	value := func(server string, rw row) (float64, string) {
		rs := runs[k{server, rw.key}]
		var vals []float64
		failed := 0
		for _, r := range rs {
			if v, ok := r.Metrics[rw.metric]; ok && (r.OK || rw.agg == "max") {
				vals = append(vals, v)
			}
			if !r.OK {
				failed++
			}
		}
		if len(vals) == 0 {
			if failed == 0 {
				return math.NaN(), "—"
			}
			// Only failed runs: show what they measured, if anything, but
			// judge no target on it.
			var partial []float64
			for _, r := range rs {
				if v, ok := r.Metrics[rw.metric]; ok {
					partial = append(partial, v)
				}
			}
			if len(partial) == 0 {
				return math.NaN(), fmt.Sprintf("FAILED ×%d", failed)
			}
			return math.NaN(), fmt.Sprintf(rw.format+" (FAILED ×%d)", median(partial), failed)
		}
		v := median(vals)
		if rw.agg == "max" {
			v = slices.Max(vals)
		}
		s := fmt.Sprintf(rw.format, v)
		if cmd, ok := rs[0].Info["command"].(string); ok && rw.metric == "ms" {
			s += " " + cmd
		}
		if failed > 0 {
			s += fmt.Sprintf(" (%d/%d failed)", failed, len(rs))
		}
		return v, s
	}
	desc := func(key string) string {
		for _, s := range []string{a, b} {
			if rs := runs[k{s, key}]; len(rs) > 0 {
				return rs[0].Desc
			}
		}
		return ""
	}
	rounds := 0
	for _, rs := range runs {
		rounds = max(rounds, len(rs))
	}
	fmt.Fprintf(w, "| scenario | %s | %s | ratio | target | holds? |\n", a, strings.ToUpper(b[:1])+b[1:])
	fmt.Fprintln(w, "|---|---:|---:|---:|---|---|")
	known := map[string]bool{}
	for _, rw := range rows {
		known[rw.key] = true
		if len(runs[k{a, rw.key}]) == 0 && len(runs[k{b, rw.key}]) == 0 {
			continue
		}
		av, as := value(a, rw)
		bv, bs := value(b, rw)
		ratio := "—"
		if av > 0 && !math.IsNaN(bv) && rw.agg != "max" {
			ratio = fmt.Sprintf("%.2f×", bv/av)
		}
		holds, tt := "", "—"
		if rw.target.holds != nil {
			tt = rw.target.text
			switch {
			case math.IsNaN(bv) && strings.Contains(bs, "FAILED"):
				holds = "**no** (failed)"
			case math.IsNaN(bv) || (math.IsNaN(av) && strings.Contains(tt, "×")):
				holds = "n/a"
			case rw.target.holds(av, bv):
				holds = "yes"
			default:
				holds = "**no**"
			}
		}
		label := rw.label
		if d := desc(rw.key); d != "" {
			label += " (" + strings.ReplaceAll(d, "|", "/") + ")"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", label, as, bs, ratio, tt, holds)
	}
	for _, key := range keys {
		if !known[key] {
			fmt.Fprintf(w, "| %s | (no table row; see the JSON results) | | | | |\n", key)
		}
	}
	fmt.Fprintf(w, "\nValues are medians over up to %d rounds (errors, NOOP failures and peak memory: the maximum). ratio = %s / %s.\n", rounds, b, a)
	return nil
}

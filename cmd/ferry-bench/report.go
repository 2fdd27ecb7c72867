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
	return target{strings.TrimSuffix(fmt.Sprintf("≥%.2f", x), "0") + "×", func(a, b float64) bool { return a > 0 && b/a >= x }}
}

func ratioAtMost(x float64, text string) target {
	return target{text, func(a, b float64) bool { return a > 0 && b/a <= x }}
}

func below(v float64, text string) target {
	return target{text, func(_, b float64) bool { return b < v }}
}

func atMost(v float64, text string) target {
	return target{text, func(_, b float64) bool { return b <= v }}
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
	{key: "retr", metric: "mb_per_s", label: "retr MB/s", format: "%.0f", target: ratioAtLeast(1.05)},
	{key: "retr", metric: "server_cpu_s_per_gib", label: "retr server CPU s/GiB", format: "%.2f", target: ratioAtMost(1.0, "≤1.0×")},
	{key: "stor", metric: "mb_per_s", label: "stor MB/s", format: "%.0f", target: ratioAtLeast(1.2)},
	{key: "stor", metric: "server_cpu_s_per_gib", label: "stor server CPU s/GiB", format: "%.2f"},
	{key: "ftps-retr", metric: "mb_per_s", label: "ftps-retr MB/s", format: "%.0f", target: ratioAtLeast(1.3)},
	{key: "ftps-retr", metric: "server_cpu_s_per_gib", label: "ftps-retr server CPU s/GiB", format: "%.2f"},
	{key: "ftps-stor", metric: "mb_per_s", label: "ftps-stor MB/s", format: "%.0f"},
	{key: "ftps-stor", metric: "server_cpu_s_per_gib", label: "ftps-stor server CPU s/GiB", format: "%.2f"},
	{key: "list", metric: "ms", label: "list time ms", format: "%.1f", target: ratioAtMost(0.8, "≤0.8×")},
	{key: "list-big", metric: "ms", label: "list time ms", format: "%.0f"},
	{key: "list-big", metric: "peak_pss_mib", label: "list peak memory over baseline MiB", format: "%.1f", agg: "max", target: below(64, "<64 MiB")},
	{key: "sessions-1", metric: "sessions_per_s", label: "sessions/s", format: "%.0f", target: ratioAtLeast(8)},
	{key: "sessions-1", metric: "p99_ms", label: "sessions p99 ms", format: "%.1f", target: ratioAtMost(0.1, "≤0.1×")},
	{key: "sessions-1", metric: "errors", label: "sessions errors", format: "%.0f", agg: "max"},
	{key: "sessions-2", metric: "sessions_per_s", label: "sessions/s", format: "%.0f", target: ratioAtLeast(5)},
	{key: "sessions-2", metric: "p99_ms", label: "sessions p99 ms", format: "%.1f"},
	{key: "sessions-2", metric: "errors", label: "sessions errors", format: "%.0f", agg: "max", target: zero},
	{key: "idle-1", metric: "kib_per_session", label: "idle KiB/session (PSS)", format: "%.1f"},
	{key: "idle-1", metric: "noop_failed", label: "idle NOOP failures", format: "%.0f", agg: "max", target: zero},
	{key: "idle-2", metric: "kib_per_session", label: "idle KiB/session (PSS)", format: "%.1f", target: atMost(12, "≤12 KiB")},
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

// ceilingRow is one line of the table against the machine's ceilings: a
// servers' figure (row; its target is judged on the ceiling and Ferry's
// value, ratio = Ferry ÷ ceiling) beside the ceiling that a limit scenario
// measured in the same run.
type ceilingRow struct {
	row
	limitKey, limitMetric string
	vs                    string // what the ceiling is, after the label
}

var ceilingRows = []ceilingRow{
	{row{key: "retr", metric: "mb_per_s", label: "retr MB/s", format: "%.0f", target: ratioAtLeast(0.95)}, "limit-sendfile", "mb_per_s", "limit-sendfile"},
	{row{key: "retr", metric: "server_cpu_s_per_gib", label: "retr server CPU s/GiB", format: "%.2f"}, "limit-sendfile", "sender_cpu_s_per_gib", "limit-sendfile's sender thread"},
	{row{key: "stor", metric: "mb_per_s", label: "stor MB/s", format: "%.0f"}, "limit-recv", "mb_per_s", "limit-recv"},
	{row{key: "stor", metric: "mb_per_s", label: "stor MB/s", format: "%.0f"}, "limit-sha256", "mb_per_s", "limit-sha256 (Ferry hashes every upload byte)"},
	{row{key: "ftps-retr", metric: "mb_per_s", label: "ftps-retr MB/s", format: "%.0f", target: ratioAtLeast(0.90)}, "limit-tls", "mb_per_s", "limit-tls"},
	// On S3 (the report with -limit s3-direct): a bare relay of one
	// GetObject to a loopback client, what any server in between can reach.
	{row{key: "s3-retr", metric: "mb_per_s", label: "S3 retr MB/s", format: "%.0f"}, "s3-relay", "mb_per_s", "s3ceiling's relay"},
}

// judge returns a row's target text and whether it holds for a and b (a
// value and its text bs; NaN: none).
func judge(t target, av, bv float64, bs string) (text, holds string) {
	if t.holds == nil {
		return "—", ""
	}
	switch {
	case math.IsNaN(bv) && strings.Contains(bs, "FAILED"):
		holds = "**no** (failed)"
	case math.IsNaN(bv) || (!(av > 0) && strings.Contains(t.text, "×")):
		// A ratio to nothing, or to 0 (CPU below the 10 ms tick).
		holds = "n/a"
	case t.holds(av, bv):
		holds = "yes"
	default:
		holds = "**no**"
	}
	return t.text, holds
}

func ratioText(av, bv float64) string {
	if av > 0 && !math.IsNaN(bv) {
		return fmt.Sprintf("%.2f×", bv/av)
	}
	return "—"
}

// printReport reads JSON result lines and prints, per row, the median over
// rounds of server a (vsftpd) and b (Ferry), their ratio b/a, the target and
// whether it holds. Failed runs are counted and shown; they carry no value.
// When results of the limit scenarios (server label limit) are there, a
// second table puts a's and b's figures beside those ceilings.
func printReport(w io.Writer, files []string, a, b, limit string) error {
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
		for _, s := range []string{a, b, limit} {
			if rs := runs[k{s, key}]; len(rs) > 0 {
				return rs[0].Desc
			}
		}
		return ""
	}
	label := func(rw row) string {
		if d := desc(rw.key); d != "" {
			return rw.label + " (" + strings.ReplaceAll(d, "|", "/") + ")"
		}
		return rw.label
	}
	rounds := 0
	for _, rs := range runs {
		rounds = max(rounds, len(rs))
	}
	known := map[string]bool{}
	var lines []string
	for _, rw := range rows {
		known[rw.key] = true
		if len(runs[k{a, rw.key}]) == 0 && len(runs[k{b, rw.key}]) == 0 {
			continue
		}
		av, as := value(a, rw)
		bv, bs := value(b, rw)
		ratio := "—"
		if rw.agg != "max" {
			ratio = ratioText(av, bv)
		}
		tt, holds := judge(rw.target, av, bv, bs)
		lines = append(lines, fmt.Sprintf("| %s | %s | %s | %s | %s | %s |", label(rw), as, bs, ratio, tt, holds))
	}
	for _, cr := range ceilingRows {
		known[cr.limitKey] = true
	}
	for _, key := range keys {
		if !known[key] {
			lines = append(lines, fmt.Sprintf("| %s | (no table row; see the JSON results) | | | | |", key))
		}
	}
	// Only limit results (BENCH_SCENARIOS=limit): no servers' table.
	if len(lines) > 0 {
		fmt.Fprintf(w, "| scenario | %s | %s | ratio | target | holds? |\n", a, strings.ToUpper(b[:1])+b[1:])
		fmt.Fprintln(w, "|---|---:|---:|---:|---|---|")
		for _, l := range lines {
			fmt.Fprintln(w, l)
		}
		fmt.Fprintf(w, "\nValues are medians over up to %d rounds (errors, NOOP failures and peak memory: the maximum). ratio = %s / %s.\n", rounds, b, a)
	}

	var ceilings []ceilingRow
	for _, cr := range ceilingRows {
		if len(runs[k{limit, cr.limitKey}]) > 0 {
			ceilings = append(ceilings, cr)
		}
	}
	if len(ceilings) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\nAgainst the machine's ceilings, measured in the same run without a server (%s scenarios):\n\n", limit)
	fmt.Fprintf(w, "| scenario | ceiling | %s | ÷ ceiling | %s | ÷ ceiling | target | holds? |\n", a, strings.ToUpper(b[:1])+b[1:])
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---|---|")
	for _, cr := range ceilings {
		lr := cr.row
		lr.key, lr.metric = cr.limitKey, cr.limitMetric
		lv, ls := value(limit, lr)
		av, as := value(a, cr.row)
		bv, bs := value(b, cr.row)
		tt, holds := judge(cr.target, lv, bv, bs)
		fmt.Fprintf(w, "| %s vs %s | %s | %s | %s | %s | %s | %s | %s |\n", label(cr.row), cr.vs, ls, as, ratioText(lv, av), bs, ratioText(lv, bv), tt, holds)
	}
	fmt.Fprintf(w, "\nCeilings are medians over their rounds too; ÷ ceiling = the server's value / the ceiling.\n")
	return nil
}

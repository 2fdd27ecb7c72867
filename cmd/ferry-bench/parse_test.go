package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParsePassiveReplies(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		port int
		ok   bool
	}{
		{"Entering Extended Passive Mode (|||41234|)", 41234, true},
		{"Entering Extended Passive Mode (!!!2121!)", 2121, true},
		{"Entering Extended Passive Mode (|||0|)", 0, false},
		{"Entering Extended Passive Mode", 0, false},
		{"(|||99999|)", 0, false},
	} {
		p, err := parseEPSV(tc.msg)
		if (err == nil) != tc.ok || p != tc.port {
			t.Errorf("parseEPSV(%q) = %d, %v", tc.msg, p, err)
		}
	}
	for _, tc := range []struct{ msg, addr string }{
		{"Entering Passive Mode (127,0,0,1,160,200).", "127.0.0.1:41160"},
		{"Entering Passive Mode 10,1,2,3,0,21", "10.1.2.3:21"},
		{"Entering Passive Mode (127,0,0,1,160)", ""},
		{"Entering Passive Mode (127,0,0,256,1,1)", ""},
	} {
		a, err := parsePASV(tc.msg)
		if a != tc.addr || (err == nil) != (tc.addr != "") {
			t.Errorf("parsePASV(%q) = %q, %v; want %q", tc.msg, a, err, tc.addr)
		}
	}
}

func TestLineCounter(t *testing.T) {
	mlsd := "type=cdir;perm=el; .\r\ntype=pdir;perm=el; ..\r\ntype=file;size=0; a\r\ntype=file;size=0; b\r\ntype=dir; c"
	list := "total 3\r\n-rw-r--r-- 1 0 0 0 Jan 1 00:00 a\r\n-rw-r--r-- 1 0 0 0 Jan 1 00:00 b\r\n"
	for _, tc := range []struct {
		in   string
		mlsd bool
		want int64
	}{{mlsd, true, 3}, {list, false, 2}, {"", true, 0}} {
		// Fed one byte at a time, lines split across reads must count once.
		for _, step := range []int{1, 3, len(tc.in) + 1} {
			l := lineCounter{mlsd: tc.mlsd}
			for i := 0; i < len(tc.in); i += step {
				l.feed([]byte(tc.in[i:min(i+step, len(tc.in))]))
			}
			l.end()
			if l.entries != tc.want {
				t.Errorf("step %d: %d entries in %q, want %d", step, l.entries, tc.in, tc.want)
			}
		}
	}
}

func TestParseSizeAndStats(t *testing.T) {
	for in, want := range map[string]int64{"4096": 4096, "64KiB": 64 << 10, "64MiB": 64 << 20, "1GiB": 1 << 30, "2g": 2 << 30} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := parseSize("lots"); err == nil {
		t.Error("parseSize(lots) succeeded")
	}
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median = %v", m)
	}
	if m := median([]float64{4, 1, 2, 3}); m != 2.5 {
		t.Errorf("median = %v", m)
	}
	v := make([]float64, 100)
	for i := range v {
		v[i] = float64(i + 1)
	}
	if p := percentile(v, 99); p != 99 {
		t.Errorf("p99 = %v", p)
	}
	if p := percentile(v, 50); p != 50 {
		t.Errorf("p50 = %v", p)
	}
}

// TestProcTree measures this test process: it has CPU time and memory.
func TestProcTree(t *testing.T) {
	pid := os.Getpid()
	if tree := processTree(pid); len(tree) == 0 || tree[0] != pid {
		t.Fatalf("processTree = %v", tree)
	}
	m := treeMem([]int{pid})
	if m.Procs != 1 || m.Pss <= 0 || m.Rss < m.Pss {
		t.Errorf("treeMem = %+v", m)
	}
	if treeCPU(1) < 0 {
		t.Error("negative CPU")
	}
	// A busy loop of 50 ms is seen by the exact count.
	r0 := treeRuntime(pid)
	for t0 := time.Now(); time.Since(t0) < 50*time.Millisecond; {
	}
	if d := treeRuntime(pid) - r0; r0 < 0 || d < 0.04 {
		t.Errorf("treeRuntime: %v, then %v more after a 50 ms busy loop", r0, d)
	}
}

func TestParseSchedstat(t *testing.T) {
	if v, err := parseSchedstat([]byte("331494954 212076 46\n")); err != nil || v != 331494954 {
		t.Errorf("parseSchedstat = %d, %v", v, err)
	}
	for _, bad := range []string{"", "1 2", "x 2 3", "1 2 3 4"} {
		if _, err := parseSchedstat([]byte(bad)); err == nil {
			t.Errorf("parseSchedstat(%q): no error", bad)
		}
	}
}

func TestReport(t *testing.T) {
	lines := `{"scenario":"retr","key":"retr","server":"vsftpd","ok":true,"desc":"1 GiB, plain","metrics":{"mb_per_s":1000,"server_cpu_s_per_gib":0.5}}
{"scenario":"retr","key":"retr","server":"ferry","ok":true,"desc":"1 GiB, plain","metrics":{"mb_per_s":1200,"server_cpu_s_per_gib":0.6}}
{"scenario":"retr","key":"retr","server":"vsftpd","ok":true,"desc":"1 GiB, plain","metrics":{"mb_per_s":900,"server_cpu_s_per_gib":0.5}}
{"scenario":"retr","key":"retr","server":"ferry","ok":true,"desc":"1 GiB, plain","metrics":{"mb_per_s":1100,"server_cpu_s_per_gib":0.4}}
{"scenario":"list","key":"list-big","server":"ferry","ok":true,"desc":"1000000 entries","metrics":{"ms":900,"peak_pss_mib":12},"info":{"command":"MLSD"}}
{"scenario":"sessions","key":"sessions-2","server":"ferry","ok":false,"error":"x","metrics":{"errors":3}}
`
	f := filepath.Join(t.TempDir(), "r.jsonl")
	os.WriteFile(f, []byte(lines), 0o644)
	var b strings.Builder
	if err := printReport(&b, []string{f}, "vsftpd", "ferry", "limit"); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"| retr MB/s (1 GiB, plain) | 950 | 1150 | 1.21× | ≥1.05× | yes |",
		"| retr server CPU s/GiB (1 GiB, plain) | 0.50 | 0.50 | 1.00× | ≤1.0× | yes |",
		"| list time ms (1000000 entries) | — | 900 MLSD | — | — |  |",
		"| list peak memory over baseline MiB (1000000 entries) | — | 12.0 | — | <64 MiB | yes |",
		"| retr MB/s",
		"| sessions errors | — | 3 (1/1 failed) | — | 0 | **no** |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "ceiling") {
		t.Errorf("a ceiling table without limit results:\n%s", out)
	}
}

// TestReportTargets checks issue 13's targets on canned results, each on
// both sides of its bound, and the table against the limit scenarios'
// ceilings (a failed ceiling run is counted, not used).
func TestReportTargets(t *testing.T) {
	lines := `{"scenario":"retr","key":"retr","server":"vsftpd","ok":true,"desc":"1 GiB, plain","metrics":{"mb_per_s":1600,"server_cpu_s_per_gib":0.6}}
{"scenario":"retr","key":"retr","server":"ferry","ok":true,"desc":"1 GiB, plain","metrics":{"mb_per_s":1700,"server_cpu_s_per_gib":0.5}}
{"scenario":"limit-sendfile","key":"limit-sendfile","server":"limit","ok":true,"desc":"1 GiB, sendfile","metrics":{"mb_per_s":1760,"sender_cpu_s_per_gib":0.4,"cpu_s_per_gib":1.1}}
{"scenario":"stor","key":"stor","server":"vsftpd","ok":true,"desc":"1 GiB, plain","metrics":{"mb_per_s":1000,"server_cpu_s_per_gib":0.6}}
{"scenario":"stor","key":"stor","server":"ferry","ok":true,"desc":"1 GiB, plain","metrics":{"mb_per_s":1150,"server_cpu_s_per_gib":0.5}}
{"scenario":"limit-recv","key":"limit-recv","server":"limit","ok":true,"desc":"1 GiB, to a file","metrics":{"mb_per_s":2000}}
{"scenario":"limit-sha256","key":"limit-sha256","server":"limit","ok":true,"desc":"1 GiB, SHA-256","metrics":{"mb_per_s":1100}}
{"scenario":"ftps-retr","key":"ftps-retr","server":"vsftpd","ok":true,"desc":"1 GiB, TLS","metrics":{"mb_per_s":600}}
{"scenario":"ftps-retr","key":"ftps-retr","server":"ferry","ok":true,"desc":"1 GiB, TLS","metrics":{"mb_per_s":880}}
{"scenario":"limit-tls","key":"limit-tls","server":"limit","ok":false,"error":"x","desc":"1 GiB, TLS","metrics":{}}
{"scenario":"limit-tls","key":"limit-tls","server":"limit","ok":true,"desc":"1 GiB, TLS","metrics":{"mb_per_s":1000}}
{"scenario":"list","key":"list","server":"vsftpd","ok":true,"desc":"10000 entries","metrics":{"ms":50},"info":{"command":"LIST"}}
{"scenario":"list","key":"list","server":"ferry","ok":true,"desc":"10000 entries","metrics":{"ms":41},"info":{"command":"MLSD"}}
{"scenario":"sessions","key":"sessions-1","server":"vsftpd","ok":true,"desc":"c=50, 10s","metrics":{"sessions_per_s":100,"p99_ms":1000,"errors":0}}
{"scenario":"sessions","key":"sessions-1","server":"ferry","ok":true,"desc":"c=50, 10s","metrics":{"sessions_per_s":800,"p99_ms":100,"errors":0}}
{"scenario":"idle","key":"idle-2","server":"vsftpd","ok":true,"desc":"n=10000","metrics":{"kib_per_session":300,"noop_failed":0}}
{"scenario":"idle","key":"idle-2","server":"ferry","ok":true,"desc":"n=10000","metrics":{"kib_per_session":12.5,"noop_failed":0}}
`
	f := filepath.Join(t.TempDir(), "r.jsonl")
	os.WriteFile(f, []byte(lines), 0o644)
	var b strings.Builder
	if err := printReport(&b, []string{f}, "vsftpd", "ferry", "limit"); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"| retr MB/s (1 GiB, plain) | 1600 | 1700 | 1.06× | ≥1.05× | yes |",
		"| retr server CPU s/GiB (1 GiB, plain) | 0.60 | 0.50 | 0.83× | ≤1.0× | yes |",
		"| stor MB/s (1 GiB, plain) | 1000 | 1150 | 1.15× | ≥1.2× | **no** |",
		"| list time ms (10000 entries) | 50.0 LIST | 41.0 MLSD | 0.82× | ≤0.8× | **no** |",
		"| sessions/s (c=50, 10s) | 100 | 800 | 8.00× | ≥8.0× | yes |",
		"| sessions p99 ms (c=50, 10s) | 1000.0 | 100.0 | 0.10× | ≤0.1× | yes |",
		"| idle KiB/session (PSS) (n=10000) | 300.0 | 12.5 | 0.04× | ≤12 KiB | **no** |",
		"| scenario | ceiling | vsftpd | ÷ ceiling | Ferry | ÷ ceiling | target | holds? |",
		"| retr MB/s (1 GiB, plain) vs limit-sendfile | 1760 | 1600 | 0.91× | 1700 | 0.97× | ≥0.95× | yes |",
		"| retr server CPU s/GiB (1 GiB, plain) vs limit-sendfile's sender thread | 0.40 | 0.60 | 1.50× | 0.50 | 1.25× | — |  |",
		"| stor MB/s (1 GiB, plain) vs limit-recv | 2000 | 1000 | 0.50× | 1150 | 0.57× | — |  |",
		"| stor MB/s (1 GiB, plain) vs limit-sha256 (Ferry hashes every upload byte) | 1100 | 1000 | 0.91× | 1150 | 1.05× | — |  |",
		"| ftps-retr MB/s (1 GiB, TLS) vs limit-tls | 1000 (1/2 failed) | 600 | 0.60× | 880 | 0.88× | ≥0.9× | **no** |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "no table row") {
		t.Errorf("limit results listed as unknown keys:\n%s", out)
	}

	// The S3 report: s3ceiling's relay is the ceiling of Ferry's S3 retr
	// (compare.sh gives -limit s3-direct).
	s3 := `{"scenario":"retr","key":"s3-retr","server":"ferry-s3","ok":true,"desc":"1 GiB, plain","metrics":{"mb_per_s":1500}}
{"scenario":"s3-get","key":"s3-retr","server":"s3-direct","ok":true,"desc":"1 GiB, one GetObject","metrics":{"mb_per_s":2500}}
{"scenario":"s3-relay","key":"s3-relay","server":"s3-direct","ok":true,"desc":"1 GiB, one GetObject relayed","metrics":{"mb_per_s":1600}}
`
	s3f := filepath.Join(t.TempDir(), "s3.jsonl")
	os.WriteFile(s3f, []byte(s3), 0o644)
	var sb strings.Builder
	if err := printReport(&sb, []string{s3f}, "s3-direct", "ferry-s3", "s3-direct"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| S3 retr MB/s (1 GiB, one GetObject) | 2500 | 1500 | 0.60× | ≥0.8× | **no** |",
		"| S3 retr MB/s (1 GiB, one GetObject) vs s3ceiling's relay | 1600 | 2500 | 1.56× | 1500 | 0.94× | — |  |",
	} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("S3 report lacks %q:\n%s", want, sb.String())
		}
	}
	if strings.Contains(sb.String(), "no table row") {
		t.Errorf("s3-relay listed as an unknown key:\n%s", sb.String())
	}

	// Limit results alone (BENCH_SCENARIOS=limit): the ceilings, no servers' table.
	var only []string
	for _, l := range strings.Split(lines, "\n") {
		if strings.Contains(l, `"server":"limit"`) {
			only = append(only, l)
		}
	}
	os.WriteFile(f, []byte(strings.Join(only, "\n")), 0o644)
	b.Reset()
	if err := printReport(&b, []string{f}, "vsftpd", "ferry", "limit"); err != nil {
		t.Fatal(err)
	}
	out = b.String()
	if strings.Contains(out, "| ratio |") || !strings.Contains(out, "| retr MB/s vs limit-sendfile | 1760 | — | — | — | — | ≥0.95× | n/a |") {
		t.Errorf("report of limit results alone:\n%s", out)
	}

	// A CPU time below the tick is 0: no ratio to it is judged.
	os.WriteFile(f, []byte(`{"scenario":"retr","key":"retr","server":"vsftpd","ok":true,"metrics":{"mb_per_s":1,"server_cpu_s_per_gib":0}}
{"scenario":"retr","key":"retr","server":"ferry","ok":true,"metrics":{"mb_per_s":1,"server_cpu_s_per_gib":0.3}}
`), 0o644)
	b.Reset()
	if err := printReport(&b, []string{f}, "vsftpd", "ferry", "limit"); err != nil {
		t.Fatal(err)
	}
	if want := "| retr server CPU s/GiB | 0.00 | 0.30 | — | ≤1.0× | n/a |"; !strings.Contains(b.String(), want) {
		t.Errorf("report lacks %q:\n%s", want, b.String())
	}
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	if err := printReport(&b, []string{f}, "vsftpd", "ferry"); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"| retr MB/s (1 GiB, plain) | 950 | 1150 | 1.21× | ≥1.0× | yes |",
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
}

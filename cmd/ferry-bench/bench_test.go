package main

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/testenv"
)

// The smoke tests run every scenario of the tool, at sizes of kilobytes,
// against a real server: the Ferry binary built from this module, and vsftpd
// where it is installed. They check that each run succeeds and that its
// figures are sane, not how fast anything is.

const smokeFileSize = 256 << 10

// smokeTree writes the data tree the scenarios use into dir.
func smokeTree(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, smokeFileSize)
	fillRandom(big)
	if err := os.WriteFile(filepath.Join(dir, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "small.bin"), big[:4096], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := makeFiles(filepath.Join(dir, "dir-100"), 100); err != nil {
		t.Fatal(err)
	}
}

// serverOut collects a server's output for failure messages.
type serverOut struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *serverOut) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.buf.Len() < 1<<20 {
		s.buf.Write(p)
	}
	return len(p), nil
}

func (s *serverOut) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// startServer starts cmd, stops it when the test ends, and waits until addr
// greets with 220.
func startServer(t *testing.T, cmd *exec.Cmd, addr string) *serverOut {
	t.Helper()
	out := &serverOut{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(cmd.Path), out)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("%s exited before greeting: %v\n%s", cmd.Path, err, out)
		default:
		}
		d := &dialer{Addr: addr, Timeout: 2 * time.Second}
		if c, err := d.connect(); err == nil {
			c.quit()
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not greet on %s within 20s\n%s", cmd.Path, addr, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// passiveRange returns a range of 100 ports below the ephemeral range, where
// the client's own connections never take them.
func passiveRange() (lo, hi int) {
	lo = 30000 + rand.IntN(25)*100
	return lo, lo + 99
}

// smokeScenarios runs each scenario once at a tiny size and checks its result.
func smokeScenarios(t *testing.T, addr string, pid int, user, pass, upload string) {
	base := options{
		Addr: addr, User: "anonymous", Pass: "smoke@", Label: "smoke",
		File: "big.bin", Upload: upload, Size: smokeFileSize,
		Path: "dir-100", ListCmd: "auto", Reps: 2, Expect: 100,
		Concurrency: 4, Duration: 300 * time.Millisecond, Small: "small.bin",
		N: 20, Hold: 0,
		PID: pid, Sample: 2 * time.Millisecond, Settle: 50 * time.Millisecond,
		Timeout: 10 * time.Second, SrcIPs: 1,
	}
	named := base
	named.User, named.Pass = user, pass
	spread := base // clients from 127.0.0.1, .2 and .3
	spread.SrcIPs = 3
	cases := []struct {
		scenario string
		o        options
		check    map[string]float64 // metric → minimum value
	}{
		{"retr", base, map[string]float64{"bytes": smokeFileSize, "mb_per_s": 0.001}},
		{"stor", named, map[string]float64{"bytes": smokeFileSize, "mb_per_s": 0.001}},
		{"ftps-retr", base, map[string]float64{"bytes": smokeFileSize, "mb_per_s": 0.001}},
		{"ftps-stor", named, map[string]float64{"bytes": smokeFileSize, "mb_per_s": 0.001}},
		{"list", base, map[string]float64{"entries": 100, "ms": 0.001, "mem_samples": 1}},
		{"sessions", spread, map[string]float64{"sessions": 1, "p50_ms": 0.001, "p99_ms": 0.001}},
		{"idle", base, map[string]float64{"sessions": 20, "noop_ok": 20, "kib_per_session": -1e9}},
	}
	for _, tc := range cases {
		t.Run(tc.scenario, func(t *testing.T) {
			start := time.Now()
			r := runScenario(&tc.o, tc.scenario)
			t.Logf("%s (%.2fs)", humanLine(r), time.Since(start).Seconds())
			if !r.OK {
				t.Fatalf("%s failed: %s", tc.scenario, r.Error)
			}
			for name, minimum := range tc.check {
				v, ok := r.Metrics[name]
				if !ok {
					t.Errorf("metric %s missing: %v", name, r.Metrics)
				} else if v < minimum {
					t.Errorf("metric %s = %v, want ≥ %v", name, v, minimum)
				}
			}
			if tc.scenario == "sessions" && r.Metrics["errors"] != 0 {
				t.Errorf("sessions: %v errors: %v", r.Metrics["errors"], r.Info["error_samples"])
			}
			if tc.scenario == "idle" && r.Metrics["noop_failed"] != 0 {
				t.Errorf("idle: %v NOOP failures", r.Metrics["noop_failed"])
			}
			if strings.HasSuffix(tc.scenario, "retr") && pid > 0 {
				if _, ok := r.Metrics["server_cpu_s_per_gib"]; !ok {
					t.Errorf("no server CPU figure: %v", r.Metrics)
				}
			}
		})
	}
}

// TestSmokeFerry builds cmd/ferry, serves a tiny tree with it and runs every
// scenario against it. It fails, never skips, when Ferry does not build or
// run: the benchmark is only useful if it drives Ferry.
func TestSmokeFerry(t *testing.T) {
	tmp := t.TempDir()
	bin, err := testenv.BuildFerry(t.Context(), tmp)
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(tmp, "data")
	smokeTree(t, filepath.Join(data, "public"))
	add := exec.Command(bin, "user", "add", "bench", "--data", data, "--password-stdin")
	add.Stdin = strings.NewReader("smoke-password\n")
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ferry user add: %v\n%s", err, out)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	lo, hi := passiveRange()
	cmd := exec.Command(bin, "serve", "--listen", addr, "--data", data, "--passive-ports", fmt.Sprintf("%d-%d", lo, hi))
	startServer(t, cmd, addr)
	smokeScenarios(t, addr, cmd.Process.Pid, "bench", "smoke-password", "smoke-upload.bin")
}

// TestSmokeVsftpd runs the same scenarios against vsftpd (anonymous, with an
// upload directory), which keeps the tool honest against a reference server.
// It needs root and vsftpd; bench/compare.sh installs vsftpd.
func TestSmokeVsftpd(t *testing.T) {
	bin, err := exec.LookPath("vsftpd")
	if err != nil {
		bin = "/usr/sbin/vsftpd"
	}
	if _, err := os.Stat(bin); errors.Is(err, os.ErrNotExist) || os.Geteuid() != 0 {
		if testenv.InCI() {
			t.Fatal("CI runs as root with vsftpd installed by .ci/run; neither is here")
		}
		t.Skip("needs root and vsftpd (apt-get install vsftpd)")
	}
	tmp := t.TempDir()
	os.Chmod(tmp, 0o755)
	pub := filepath.Join(tmp, "public")
	smokeTree(t, pub)
	upload := filepath.Join(pub, "upload")
	os.Mkdir(upload, 0o777)
	os.Chmod(upload, 0o777) // writable by vsftpd's ftp user
	empty := filepath.Join(tmp, "empty")
	os.Mkdir(empty, 0o755)
	cert, key := filepath.Join(tmp, "cert.pem"), filepath.Join(tmp, "key.pem")
	if out, err := exec.Command("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
		"-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert).CombinedOutput(); err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	port := freePort(t)
	lo, hi := passiveRange()
	conf := filepath.Join(tmp, "vsftpd.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=%d
background=NO
anonymous_enable=YES
local_enable=NO
anon_root=%s
no_anon_password=YES
write_enable=YES
anon_upload_enable=YES
anon_other_write_enable=YES
pasv_min_port=%d
pasv_max_port=%d
seccomp_sandbox=NO
secure_chroot_dir=%s
xferlog_enable=NO
vsftpd_log_file=%s
ssl_enable=YES
allow_anon_ssl=YES
ssl_ciphers=HIGH
require_ssl_reuse=YES
rsa_cert_file=%s
rsa_private_key_file=%s
`, port, pub, lo, hi, empty, filepath.Join(tmp, "vsftpd.log"), cert, key)), 0o644)
	cmd := exec.Command(bin, conf)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	startServer(t, cmd, addr)
	smokeScenarios(t, addr, cmd.Process.Pid, "anonymous", "smoke@", "upload/smoke-upload.bin")
}

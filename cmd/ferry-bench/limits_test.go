package main

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// limitOptions returns the options of a small limit run on a file of size
// bytes (odd, so that a lost tail shows) in a new temporary directory.
func limitOptions(t *testing.T, size int64) options {
	t.Helper()
	dir := t.TempDir()
	data := make([]byte, size)
	fillRandom(data)
	file := filepath.Join(dir, "big.bin")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	recv := filepath.Join(dir, "recv")
	if err := os.Mkdir(recv, 0o755); err != nil {
		t.Fatal(err)
	}
	return options{Label: "limit", File: file, Size: size, Dir: recv, LimitBuf: 64 << 10, Timeout: 20 * time.Second}
}

// TestLimitScenarios runs the three ceilings at a few MiB and checks that
// every byte arrived and that the figures are there and sane, not how fast.
func TestLimitScenarios(t *testing.T) {
	const size = 3<<20 + 12345
	o := limitOptions(t, size)
	for _, tc := range []struct {
		scenario string
		metrics  []string
	}{
		{"limit-sendfile", []string{"sender_cpu_s", "sender_cpu_s_per_gib", "mb_per_s_nodelay", "mb_per_s_nagle"}},
		{"limit-tls", []string{"mb_per_s_nodelay", "mb_per_s_nagle"}},
		{"limit-recv", []string{"mb_per_s_read-write", "mb_per_s_splice", "cpu_s_per_gib_read-write", "cpu_s_per_gib_splice"}},
		{"limit-sha256", nil},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			r := runScenario(&o, tc.scenario)
			t.Log(humanLine(r))
			if !r.OK {
				t.Fatalf("%s failed: %s", tc.scenario, r.Error)
			}
			if r.Key != tc.scenario || r.Server != "limit" || r.Addr != loopback {
				t.Errorf("key %q, server %q, addr %q", r.Key, r.Server, r.Addr)
			}
			if got := r.Metrics["bytes"]; got != size {
				t.Errorf("bytes = %v, want %d", got, size)
			}
			for _, name := range []string{"mb_per_s", "seconds"} {
				if v := r.Metrics[name]; !(v > 0) {
					t.Errorf("%s = %v, want > 0", name, v)
				}
			}
			for _, name := range append([]string{"cpu_s", "cpu_s_per_gib"}, tc.metrics...) {
				if v, ok := r.Metrics[name]; !ok || v < 0 {
					t.Errorf("%s = %v (present: %v), want ≥ 0", name, v, ok)
				}
			}
			if tc.scenario == "limit-sendfile" || tc.scenario == "limit-tls" {
				if m := r.Info["sender"]; m != "nodelay" && m != "nagle" {
					t.Errorf("info.sender = %v", m)
				}
			}
			switch tc.scenario {
			case "limit-tls":
				if s, _ := r.Info["tls"].(string); !strings.HasPrefix(s, "TLS 1.3 ") {
					t.Errorf("info.tls = %q, want TLS 1.3", s)
				}
			case "limit-recv":
				if m := r.Info["receiver"]; m != "read-write" && m != "splice" {
					t.Errorf("info.receiver = %v", m)
				}
				left, _ := os.ReadDir(o.Dir)
				if len(left) != 0 {
					t.Errorf("received files left behind: %v", left)
				}
			}
		})
	}
}

// TestLimitTLSCertFiles runs limit-tls with the certificate from files, as
// compare.sh does with the servers' certificate.
func TestLimitTLSCertFiles(t *testing.T) {
	o := limitOptions(t, 1<<20+1)
	cert, err := limitCert("", "")
	if err != nil {
		t.Fatal(err)
	}
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	o.TLSCert, o.TLSKey = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(o.TLSCert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o644)
	os.WriteFile(o.TLSKey, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600)
	if r := runScenario(&o, "limit-tls"); !r.OK || r.Metrics["bytes"] != 1<<20+1 {
		t.Errorf("limit-tls with cert files: ok %v, %v, bytes %v", r.OK, r.Error, r.Metrics["bytes"])
	}
	o.TLSCert = filepath.Join(dir, "missing.pem")
	if r := runScenario(&o, "limit-tls"); r.OK {
		t.Error("limit-tls succeeded with a missing certificate file")
	}
}

// TestLimitFailures: a missing file or directory fails the run, with an error.
func TestLimitFailures(t *testing.T) {
	o := limitOptions(t, 4096)
	dir := filepath.Dir(o.File)
	o.File = filepath.Join(dir, "missing.bin")
	o.Dir = filepath.Join(dir, "missing")
	for _, sc := range []string{"limit-sendfile", "limit-tls", "limit-recv"} {
		if r := runScenario(&o, sc); r.OK || r.Error == "" {
			t.Errorf("%s: ok %v, error %q; want a failure", sc, r.OK, r.Error)
		}
	}
	o.File = dir
	if r := runScenario(&o, "limit-sendfile"); r.OK {
		t.Error("limit-sendfile of a directory succeeded")
	}
}

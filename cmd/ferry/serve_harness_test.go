package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/config"
	"github.com/ferryftp/ferry/internal/testenv"
)

// testDeadline bounds every wait of these tests: a safety net, never a
// measured threshold.
const testDeadline = 30 * time.Second

// liveServer is `ferry serve` running in-process on loopback.
type liveServer struct {
	addr string
	data string
	log  *testenv.LogBuffer
	stop func() // shuts the server down and waits for serve to return
}

// addrWriter is serve's stdout: it hands over the listening address.
type addrWriter struct {
	once sync.Once
	ch   chan string
	buf  testenv.LogBuffer
}

func (w *addrWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	for _, l := range strings.Split(w.buf.String(), "\n") {
		if a, ok := strings.CutPrefix(l, "Ferry listening on "); ok {
			w.once.Do(func() { w.ch <- strings.TrimSpace(a) })
		}
	}
	return len(p), nil
}

// startLive starts a server on 127.0.0.1 with a fresh data directory,
// passive ports chosen by the OS and no bans; mod changes the settings.
func startLive(t *testing.T, mod func(*config.Config)) *liveServer {
	t.Helper()
	cfg := config.Defaults()
	cfg.Data = filepath.Join(t.TempDir(), "data")
	cfg.Listen = "127.0.0.1:0"
	cfg.PassivePorts = "0"
	cfg.BanThreshold = 0
	cfg.LogLevel = "debug"
	if mod != nil {
		mod(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logBuf := &testenv.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	out := &addrWriter{ch: make(chan string, 1)}
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, log, out) }()
	s := &liveServer{data: cfg.Data, log: logBuf}
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("serve: %v", err)
				}
			case <-time.After(testDeadline):
				t.Errorf("serve did not return after its context ended")
			}
		})
	}
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("server log:\n%s", logBuf.String())
		}
	})
	select {
	case s.addr = <-out.ch:
	case err := <-done:
		t.Fatalf("serve returned before listening: %v", err)
	case <-time.After(testDeadline):
		t.Fatal("server did not start")
	}
	// "[::]:port" or "127.0.0.1:port": dial the loopback address.
	_, port, _ := net.SplitHostPort(s.addr)
	s.addr = net.JoinHostPort("127.0.0.1", port)
	return s
}

// login connects and logs in anonymously.
func (s *liveServer) login(t *testing.T) *ftpConn {
	t.Helper()
	f, code, text, err := dialFTP(s.addr, testDeadline)
	if err != nil || code != 220 {
		t.Fatalf("connect: %d %s %v", code, text, err)
	}
	t.Cleanup(func() { f.Close() })
	mustCmd(t, f, 331, "USER anonymous")
	mustCmd(t, f, 230, "PASS probe@example.com")
	return f
}

// mustCmd sends a command and checks the reply's code.
func mustCmd(t *testing.T, f *ftpConn, want int, format string, args ...any) string {
	t.Helper()
	code, text, err := f.cmd(format, args...)
	if err != nil || code != want {
		t.Fatalf("%s: got %d %s (%v), want %d", strings.Fields(format)[0], code, text, err, want)
	}
	return text
}

// tlsClient trusts the server's self-signed certificate; cache may be nil.
func (s *liveServer) tlsClient(t *testing.T, cache tls.ClientSessionCache) *tls.Config {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.data, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return &tls.Config{RootCAs: pool, ServerName: "localhost", ClientSessionCache: cache}
}

// listEPSV lists the current directory over an EPSV data connection.
func listEPSV(t *testing.T, f *ftpConn, cfg *tls.Config) {
	t.Helper()
	port, err := parseEPSV(mustCmd(t, f, 229, "EPSV"))
	if err != nil {
		t.Fatal(err)
	}
	listOn(t, f, net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))), cfg)
}

// listPASV lists over PASV, connecting where the reply says.
func listPASV(t *testing.T, f *ftpConn, cfg *tls.Config) {
	t.Helper()
	ap, err := parsePASV(mustCmd(t, f, 227, "PASV"))
	if err != nil {
		t.Fatal(err)
	}
	listOn(t, f, ap.String(), cfg)
}

func listOn(t *testing.T, f *ftpConn, addr string, cfg *tls.Config) {
	t.Helper()
	d, err := net.DialTimeout("tcp", addr, testDeadline)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	mustCmd(t, f, 150, "LIST")
	if cfg != nil {
		tc := tls.Client(d, cfg)
		tc.SetDeadline(time.Now().Add(testDeadline))
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		d = tc
	}
	d.SetReadDeadline(time.Now().Add(testDeadline))
	var b [4096]byte
	for {
		if _, err := d.Read(b[:]); err != nil {
			break
		}
	}
	if code, text, err := f.read(); err != nil || code != 226 {
		t.Fatalf("LIST: %d %s %v", code, text, err)
	}
}

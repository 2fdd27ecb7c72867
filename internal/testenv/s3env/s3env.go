// Package s3env runs a real S3 engine for tests: versitygw with its posix
// backend in a temporary directory, on a free loopback port. Under CI
// (testenv.InCI) a missing versitygw fails the test; elsewhere it skips.
// Only tests import it.
//
// A test package shares one engine through Shared (and stops it in TestMain
// with Main); a fault test that stops and restarts the engine starts its own
// with Start.
package s3env

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferryftp/ferry/internal/testenv"
)

// The engine's root credentials and region.
const (
	AccessKey = "ferryadmin"
	SecretKey = "ferrysecret123"
	Region    = "us-east-1"
)

// Server is one running versitygw.
type Server struct {
	Endpoint  string // "http://127.0.0.1:PORT"
	Addr      string // "127.0.0.1:PORT"
	AccessKey string
	SecretKey string
	Region    string
	Dir       string // the posix backend's root

	bin string
	mu  sync.Mutex
	cmd *exec.Cmd     // guarded by mu; nil while stopped
	ex  chan struct{} // closed when cmd exited, guarded by mu
}

// Binary finds versitygw: $FERRY_TOOLS/versitygw, then
// $HOME/.cache/ferry-tools/versitygw, then PATH.
func Binary() (string, error) {
	var cands []string
	if d := os.Getenv("FERRY_TOOLS"); d != "" {
		cands = append(cands, filepath.Join(d, "versitygw"))
	}
	if h, err := os.UserHomeDir(); err == nil {
		cands = append(cands, filepath.Join(h, ".cache", "ferry-tools", "versitygw"))
	}
	for _, c := range cands {
		if fi, err := os.Stat(c); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return c, nil
		}
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	return "", errors.New("versitygw not found in $FERRY_TOOLS, ~/.cache/ferry-tools or PATH " +
		"(install: GOBIN=~/.cache/ferry-tools go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)")
}

// need finds versitygw or ends the test: a failure under CI, a skip
// elsewhere.
func need(tb testing.TB) string {
	tb.Helper()
	bin, err := Binary()
	if err != nil {
		if testenv.InCI() {
			tb.Fatalf("CI: %v", err)
		}
		tb.Skipf("skipping S3 test: %v", err)
	}
	return bin
}

// Start runs a private versitygw for tb, stopped in tb.Cleanup.
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin := need(tb)
	dir, err := os.MkdirTemp("", "ferry-s3-")
	if err != nil {
		tb.Fatal(err)
	}
	s, err := start(bin, dir)
	if err != nil {
		os.RemoveAll(dir)
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

var shared struct {
	once sync.Once
	s    *Server
	err  error
}

// Shared returns the test binary's one versitygw, started on first use;
// Main stops it. Tests must not stop it: use Start for that.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	need(tb)
	s, err := SharedServer()
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// SharedServer is Shared for callers without a testing.TB: it returns the
// test binary's engine, or the reason there is none (not installed, or it
// did not start).
func SharedServer() (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "ferry-s3-")
		if err != nil {
			shared.err = err
			return
		}
		shared.s, shared.err = start(bin, dir)
		if shared.err != nil {
			os.RemoveAll(dir)
		}
	})
	return shared.s, shared.err
}

// Main runs a test binary's tests and then stops the shared engine; call it
// from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if shared.s != nil {
		shared.s.Close()
	}
	os.Exit(code)
}

func start(bin, dir string) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	s := &Server{
		Endpoint: "http://" + addr, Addr: addr,
		AccessKey: AccessKey, SecretKey: SecretKey, Region: Region,
		Dir: dir, bin: bin,
	}
	if err := s.Restart(); err != nil {
		return nil, err
	}
	return s, nil
}

// Restart starts the engine again on the same address and directory after
// Stop (a no-op while it runs), and waits until it answers.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	cmd := exec.Command(s.bin, "--port", s.Addr, "--quiet", "--keep-alive", "posix", s.Dir)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	out, err := os.OpenFile(filepath.Join(s.Dir, ".versitygw.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	// A test binary killed by its timeout must not leave the engine
	// running (it would hold the test's ports, files and inherited
	// descriptors).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start versitygw: %w", err)
	}
	ex := make(chan struct{})
	go func() { cmd.Wait(); close(ex) }()
	s.cmd, s.ex = cmd, ex
	// Ready when it answers HTTP: any status will do (an unsigned request
	// is refused with 403).
	deadline := time.Now().Add(60 * time.Second)
	for delay := 5 * time.Millisecond; ; delay = min(delay*2, 200*time.Millisecond) {
		resp, err := http.Get(s.Endpoint + "/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-ex:
			s.cmd = nil
			b, _ := os.ReadFile(filepath.Join(s.Dir, ".versitygw.log"))
			return fmt.Errorf("versitygw exited at start: %s", b)
		case <-time.After(delay):
		}
		if time.Now().After(deadline) {
			s.stopLocked()
			return fmt.Errorf("versitygw on %s not ready after 60s: %v", s.Addr, err)
		}
	}
}

// Stop stops the engine (SIGTERM to its PID, SIGKILL after 3 s: it waits for idle keep-alive connections) and
// waits for it to exit; its data stays for Restart.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

func (s *Server) stopLocked() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.ex:
	case <-time.After(3 * time.Second):
		s.cmd.Process.Kill()
		<-s.ex
	}
	s.cmd = nil
}

// Close stops the engine and removes its directory.
func (s *Server) Close() {
	s.Stop()
	os.RemoveAll(s.Dir)
}

// Client returns an SDK client of the engine with its root credentials,
// path-style.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(s.Endpoint),
		Region:       s.Region,
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
}

// NewBucket creates a bucket with a fresh name for tb and returns the
// name. The bucket and its objects stay until the engine's directory is
// removed.
func (s *Server) NewBucket(tb testing.TB) string {
	tb.Helper()
	name, err := s.CreateBucket(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return name
}

// CreateBucket creates a bucket with a fresh name.
func (s *Server) CreateBucket(ctx context.Context) (string, error) {
	var b [6]byte
	rand.Read(b[:])
	name := "ferry-" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		return "", fmt.Errorf("create bucket %s: %w", name, err)
	}
	return name, nil
}

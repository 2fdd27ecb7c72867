package metrics_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/certs"
	"github.com/ferryftp/ferry/internal/event"
	"github.com/ferryftp/ferry/internal/ftp"
	"github.com/ferryftp/ferry/internal/metrics"
	"github.com/ferryftp/ferry/internal/testenv"
	"github.com/ferryftp/ferry/internal/users"
)

// auth knows alice, password secret.
type auth struct{ home string }

func (a auth) Authenticate(_ context.Context, req users.LoginRequest) (*users.User, error) {
	if req.Name == "alice" && req.Password == "secret" {
		return &users.User{Name: "alice", Home: a.home}, nil
	}
	return nil, fmt.Errorf("%w: wrong password", users.ErrAuth)
}

// server is an in-process Ferry with the metrics observing it.
type server struct {
	srv      *ftp.Server
	m        *metrics.Metrics
	sub      *ftp.Subscription
	addr     string
	implicit string
	home     string
}

func start(t *testing.T, o metrics.Options) *server {
	t.Helper()
	data := t.TempDir()
	if err := ftp.PrepareData(data); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(data, "home", "alice")
	os.MkdirAll(home, 0o755)
	cm, err := certs.New(certs.Options{DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	srv := &ftp.Server{}
	site := &ftp.Site{
		Settings: ftp.Settings{
			Banner: "ready", Anonymous: true, AnonymousRoot: filepath.Join(data, "public"),
			LoginTimeout: 30 * time.Second, IdleTimeout: time.Minute, DataTimeout: 30 * time.Second,
			MaxLineBytes: 4096, MaxLoginFailures: 3, TLSMinVersion: tls.VersionTLS12,
		},
		Auth: auth{home},
		TLS:  &tls.Config{GetCertificate: cm.GetCertificate},
	}
	if err := srv.SetSite(site); err != nil {
		t.Fatal(err)
	}
	o.Verbs = ftp.Verbs()
	o.Sessions = srv.Sessions
	o.PassiveInUse = srv.PassiveInUse
	m := metrics.New(o)
	sub := srv.Observe(m, 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	iln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln, false)
	go srv.Serve(iln, true)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return &server{srv: srv, m: m, sub: sub, addr: ln.Addr().String(), implicit: iln.Addr().String(), home: home}
}

// scrape returns /metrics once the metrics have every event so far.
func (s *server) scrape(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.sub.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.m.Handler())
	defer hs.Close()
	resp, err := http.Get(hs.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q, want the text format 0.0.4", ct)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// conn speaks raw control lines.
type conn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr string) *conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	k := &conn{t: t, c: c, r: bufio.NewReader(c)}
	k.expect(220)
	return k
}

func (k *conn) expect(code int) string {
	k.t.Helper()
	k.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var text string
	for {
		line, err := k.r.ReadString('\n')
		if err != nil {
			k.t.Fatalf("want %d: %v", code, err)
		}
		text += line
		if len(line) >= 4 && line[3] == ' ' {
			if got, _ := strconv.Atoi(line[:3]); got != code {
				k.t.Fatalf("want %d, got %q", code, text)
			}
			return text
		}
	}
}

func (k *conn) cmd(line string, code int) string {
	k.t.Helper()
	fmt.Fprintf(k.c, "%s\r\n", line)
	return k.expect(code)
}

// epsv opens a passive port and returns its address.
func (k *conn) epsv() string {
	k.t.Helper()
	text := k.cmd("EPSV", 229)
	i := strings.Index(text, "(|||")
	port := text[i+4 : strings.Index(text[i:], "|)")+i]
	return "127.0.0.1:" + port
}

// TestScrapeAfterSession: a scripted session (a failed and a good login,
// LIST, STOR, a RETR aborted before its data connection, a data connection
// from a foreign address, AUTH TLS, a plaintext client on the implicit-TLS
// port) leaves exact counts in the families it touches, and promtool finds
// nothing wrong with the scrape.
func TestScrapeAfterSession(t *testing.T) {
	s := start(t, metrics.Options{Version: "test"})
	gone := disconnects(s.srv)
	os.WriteFile(filepath.Join(s.home, "big.bin"), bytes.Repeat([]byte("x"), 1<<20), 0o644)

	c := dial(t, s.addr)
	c.cmd("USER alice", 331)
	c.cmd("PASS wrong", 530)
	c.cmd("USER alice", 331)
	c.cmd("PASS secret", 230)
	c.cmd("TYPE I", 200)

	// LIST: the listing's bytes are what the client reads.
	d, err := net.Dial("tcp", c.epsv())
	if err != nil {
		t.Fatal(err)
	}
	c.cmd("LIST", 150)
	listing, _ := io.ReadAll(d)
	d.Close()
	c.expect(226)

	// A data connection from another address than the client's is
	// refused (and the wait goes on); then the client's own carries STOR.
	addr := c.epsv()
	foreign := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}
	f, err := foreign.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from 127.0.0.2: %v", err)
	}
	fmt.Fprintf(c.c, "STOR up.bin\r\n")
	f.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := f.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("the foreign data connection was not closed: %d, %v", n, err)
	}
	f.Close()
	d, err = net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.expect(150)
	d.Write([]byte("0123456789"))
	d.Close()
	c.expect(226)

	// RETR aborted before its data connection opens: no bytes move.
	c.epsv()
	fmt.Fprintf(c.c, "RETR big.bin\r\n")
	c.cmd("ABOR", 226)

	// AUTH TLS on a second session: a TLS 1.3 control handshake.
	c2 := dial(t, s.addr)
	c2.cmd("AUTH TLS", 234)
	tc := tls.Client(c2.c, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"ftp"}})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c2.c, c2.r = tc, bufio.NewReader(tc)
	c2.cmd("QUIT", 221)

	// A plaintext client on the implicit-TLS port: a failed handshake.
	p, err := net.Dial("tcp", s.implicit)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(p, "USER alice\r\n")
	p.SetReadDeadline(time.Now().Add(10 * time.Second))
	io.ReadAll(p)
	p.Close()

	c.cmd("QUIT", 221)
	waitGone(t, gone, 3)
	out := s.scrape(t)

	want := []string{
		`ferry_build_info{goversion="` + goVersion() + `",version="test"} 1`,
		`ferry_sessions 0`,
		`ferry_sessions_total 3`,
		`ferry_logins_total{method="password",result="failed"} 1`,
		`ferry_logins_total{method="password",result="ok"} 1`,
		`ferry_logins_total{method="anonymous",result="ok"} 0`,
		`ferry_login_failures_total{reason="credentials"} 1`,
		`ferry_login_failures_total{reason="session_limit"} 0`,
		`ferry_commands_total{class="3xx",command="USER"} 2`,
		`ferry_commands_total{class="5xx",command="PASS"} 1`,
		`ferry_commands_total{class="2xx",command="PASS"} 1`,
		`ferry_commands_total{class="2xx",command="EPSV"} 3`,
		`ferry_commands_total{class="2xx",command="LIST"} 1`,
		`ferry_commands_total{class="2xx",command="STOR"} 1`,
		`ferry_commands_total{class="none",command="RETR"} 1`,
		`ferry_commands_total{class="2xx",command="ABOR"} 1`,
		`ferry_commands_total{class="2xx",command="AUTH"} 1`,
		`ferry_commands_total{class="2xx",command="QUIT"} 2`,
		`ferry_transfers_total{direction="list",result="ok"} 1`,
		`ferry_transfers_total{direction="upload",result="ok"} 1`,
		`ferry_transfers_total{direction="download",result="aborted"} 1`,
		`ferry_transfers_total{direction="download",result="ok"} 0`,
		`ferry_transfer_bytes_total{direction="list"} ` + strconv.Itoa(len(listing)),
		`ferry_transfer_bytes_total{direction="upload"} 10`,
		`ferry_transfer_bytes_total{direction="download"} 0`,
		`ferry_transfer_duration_seconds_count{direction="upload"} 1`,
		`ferry_transfer_duration_seconds_count{direction="download"} 1`,
		`ferry_data_connections_opened_total 2`,
		`ferry_data_connections_refused_total{reason="wrong_peer"} 1`,
		`ferry_data_connections_refused_total{reason="timeout"} 0`,
		`ferry_data_connections_refused_total{reason="tls_reuse"} 0`,
		`ferry_passive_ports_in_use 0`,
		`ferry_passive_port_exhausted_total 0`,
		`ferry_tls_handshakes_total{channel="control",version="1.3"} 1`,
		`ferry_tls_handshakes_total{channel="data",version="1.3"} 0`,
		`ferry_tls_handshake_failures_total{channel="control"} 1`,
		`ferry_tls_handshake_failures_total{channel="data"} 0`,
		`ferry_bans_total{reason="failed_logins"} 0`,
		`ferry_config_reloads_total{result="success"} 0`,
		`ferry_changes_total{op="delete"} 0`,
		`ferry_refusals_total{reason="permission"} 0`,
	}
	for _, line := range want {
		if !hasLine(out, line) {
			t.Errorf("scrape lacks %s", line)
		}
	}
	if len(listing) == 0 {
		t.Error("empty listing")
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", ferryLines(out))
	}
	promtool(t, out)
}

func goVersion() string { return runtime.Version() }

// hasLine reports whether the exposition holds line exactly.
func hasLine(out, line string) bool {
	for _, l := range strings.Split(out, "\n") {
		if l == line {
			return true
		}
	}
	return false
}

func ferryLines(out string) string {
	var b strings.Builder
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "ferry_") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// disconnects returns a channel that gets a value per session that ends.
func disconnects(srv *ftp.Server) <-chan struct{} {
	ch := make(chan struct{}, 100)
	srv.Observe(ftp.ObserverFunc(func(e event.Event) {
		if e.Kind == event.KindDisconnect {
			ch <- struct{}{}
		}
	}), 0)
	return ch
}

// waitGone waits for n sessions to end.
func waitGone(t *testing.T, ch <-chan struct{}, n int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for range n {
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("fewer than %d sessions ended", n)
		}
	}
}

// promtool runs `promtool check metrics` on a scrape: it must find nothing
// to report. Under CI a missing promtool fails the test.
func promtool(t *testing.T, out string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if testenv.InCI() {
			t.Fatal("promtool not found: .ci/run installs it (Debian package prometheus)")
		}
		t.Skip("promtool not found (apt-get install prometheus); skipping the lint")
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(out)
	res, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(res)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, res)
	}
}

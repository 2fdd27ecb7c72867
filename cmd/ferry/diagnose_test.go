package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/config"
	"github.com/ferryftp/ferry/internal/natdiag"
)

func diagnoseCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := runDiagnose(args, &out, &errb)
	return code, out.String(), errb.String()
}

// findingIDs runs `ferry diagnose --json` and returns the IDs found.
func findingIDs(t *testing.T, data string) []string {
	t.Helper()
	code, out, errs := diagnoseCLI("--data", data, "--json")
	if code == 2 {
		t.Fatalf("diagnose: %s", errs)
	}
	var rep natdiag.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("diagnose --json: %v\n%s", err, out)
	}
	var ids []string
	for _, f := range rep.Findings {
		ids = append(ids, f.ID)
	}
	if (code == 1) != (len(ids) > 0) {
		t.Errorf("exit status %d with findings %v", code, ids)
	}
	return ids
}

// stopAndDiagnose stops the server (which writes its last findings once
// every event is handled) and returns `ferry diagnose`'s text and IDs.
func stopAndDiagnose(t *testing.T, s *liveServer) (string, []string) {
	t.Helper()
	s.stop()
	_, out, errs := diagnoseCLI("--data", s.data)
	if !strings.Contains(out, "stopped") {
		t.Errorf("diagnose after stop: %q %q", out, errs)
	}
	return out, findingIDs(t, s.data)
}

func wantOnly(t *testing.T, ids []string, want ...string) {
	t.Helper()
	slices.Sort(ids)
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("findings %v, want %v", ids, want)
	}
}

var loopbackPublic = func(c *config.Config) { c.DiagnosePublicNetworks = []string{"127.0.0.0/8"} }

// TestDiagnosePasvWrongAddress: --public-host 127.0.0.9 with passive
// listeners on 127.0.0.1: PASV data never arrives (the client's connection
// to 127.0.0.9 is refused), EPSV works. Read from the running server.
func TestDiagnosePasvWrongAddress(t *testing.T) {
	s := startLive(t, func(c *config.Config) {
		loopbackPublic(c)
		c.PublicHost = "127.0.0.9"
		c.DataTimeout = config.Duration{Duration: time.Second}
	})
	f := s.login(t)
	listEPSV(t, f, nil)
	for i := 0; i < 3; i++ {
		ap, err := parsePASV(mustCmd(t, f, 227, "PASV"))
		if err != nil {
			t.Fatal(err)
		}
		if ap.Addr().String() != "127.0.0.9" {
			t.Fatalf("PASV advertised %s", ap)
		}
		if i == 2 {
			// The last one: the client sends its LIST anyway and the
			// server waits data_timeout for it.
			mustCmd(t, f, 425, "LIST")
			continue
		}
		d, err := net.DialTimeout("tcp", ap.String(), testDeadline)
		if err == nil {
			d.Close()
			t.Fatalf("a connection to %s was accepted: the set-up is not what the test means", ap)
		}
		if !errorsIsRefused(err) {
			t.Fatalf("dial %s: %v, want connection refused", ap, err)
		}
	}
	// Read while the server runs: the file is rewritten on change.
	deadline := time.Now().Add(testDeadline)
	for !slices.Contains(findingIDs(t, s.data), natdiag.IDPasvWrong) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s finding; log:\n%s", natdiag.IDPasvWrong, s.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	code, out, _ := diagnoseCLI("--data", s.data)
	if code != 1 {
		t.Errorf("diagnose exit %d with a finding", code)
	}
	for _, want := range []string{"[ERROR] pasv_wrong_address", "PASV data connections never arrive while EPSV ones work",
		"setting:  public_host", `public_host is "127.0.0.9"`, "Server pid", "from its control socket"} {
		if !strings.Contains(out, want) {
			t.Errorf("diagnose output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(s.log.String(), "NAT diagnosis: PASV data connections never arrive") {
		t.Errorf("the finding was not logged:\n%s", s.log.String())
	}
	f.cmd("QUIT")
	_, ids := stopAndDiagnose(t, s)
	wantOnly(t, ids, natdiag.IDPasvWrong)
	// After the stop: the file the server left, marked stopped.
	if _, out, _ := diagnoseCLI("--data", s.data); !strings.Contains(out, "stopped at") {
		t.Errorf("after the stop:\n%s", out)
	}
}

func errorsIsRefused(err error) bool {
	var se syscall.Errno
	for e := err; e != nil; {
		if x, ok := e.(syscall.Errno); ok {
			se = x
			break
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			break
		}
		e = u.Unwrap()
	}
	return se == syscall.ECONNREFUSED
}

// TestDiagnosePasvPrivate: a client treated as public is told a private
// address (public_host 10.0.0.5, the Docker case).
func TestDiagnosePasvPrivate(t *testing.T) {
	s := startLive(t, func(c *config.Config) {
		c.DiagnosePublicNetworks = []string{"127.0.0.1/32"}
		c.PublicHost = "10.0.0.5"
	})
	f := s.login(t)
	mustCmd(t, f, 227, "PASV")
	f.cmd("QUIT")
	out, ids := stopAndDiagnose(t, s)
	wantOnly(t, ids, natdiag.IDPasvPrivate)
	for _, want := range []string{"10.0.0.5", "private", `public_host = "10.0.0.5"`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestDiagnosePasvUnreachable: passive replies (PASV and EPSV) from three
// sessions that nobody ever connects to: a firewall.
func TestDiagnosePasvUnreachable(t *testing.T) {
	s := startLive(t, loopbackPublic)
	for i := 0; i < 3; i++ {
		f := s.login(t)
		mustCmd(t, f, 229, "EPSV")
		if i < 2 {
			mustCmd(t, f, 227, "PASV") // closes the EPSV listener unused
		}
		mustCmd(t, f, 221, "QUIT")
	}
	out, ids := stopAndDiagnose(t, s)
	wantOnly(t, ids, natdiag.IDPasvUnreachable)
	if !strings.Contains(out, "5 passive data connections (2 PASV, 3 EPSV) from 3 sessions") ||
		!strings.Contains(out, "setting:  passive_ports") {
		t.Errorf("output:\n%s", out)
	}
}

// TestDiagnosePassiveExhaustion: a two-port range and three sessions that
// each hold a passive listener: the third gets 425.
func TestDiagnosePassiveExhaustion(t *testing.T) {
	lo := freePortPair(t)
	s := startLive(t, func(c *config.Config) {
		loopbackPublic(c)
		c.PassivePorts = fmt.Sprintf("%d-%d", lo, lo+1)
	})
	var fs []*ftpConn
	for i := 0; i < 3; i++ {
		f := s.login(t)
		fs = append(fs, f)
		want := 229
		if i == 2 {
			want = 425
		}
		mustCmd(t, f, want, "EPSV")
	}
	// Use the two listeners, so no other finding comes of them.
	for _, f := range fs[:2] {
		mustCmd(t, f, 221, "QUIT")
	}
	out, ids := stopAndDiagnose(t, s)
	if !slices.Contains(ids, natdiag.IDPassiveExhaust) {
		t.Fatalf("findings %v", ids)
	}
	if !strings.Contains(out, fmt.Sprintf("now %d-%d (2 ports)", lo, lo+1)) || !strings.Contains(out, "[ERROR] passive_exhaustion") {
		t.Errorf("output:\n%s", out)
	}
}

// freePortPair returns lo where lo and lo+1 are free on 127.0.0.1.
func freePortPair(t *testing.T) int {
	t.Helper()
	for try := 0; try < 100; try++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lo := l.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", lo+1))
		l.Close()
		if err == nil {
			l2.Close()
			if lo >= 1024 && lo+1 <= 65535 {
				return lo
			}
		}
	}
	t.Fatal("no two adjacent free ports")
	return 0
}

// TestDiagnoseDataPeerMismatch: data connections from 127.0.0.2 for a
// control connection from 127.0.0.1 (a multi-address NAT): refused, and
// the transfer goes on with the right one.
func TestDiagnoseDataPeerMismatch(t *testing.T) {
	s := startLive(t, loopbackPublic)
	f := s.login(t)
	port, err := parseEPSV(mustCmd(t, f, 229, "EPSV"))
	if err != nil {
		t.Fatal(err)
	}
	target := fmt.Sprintf("127.0.0.1:%d", port)
	if err := f.send("LIST"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		dl := net.Dialer{Timeout: testDeadline, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
		d, err := dl.Dial("tcp", target)
		if err != nil {
			t.Fatal(err)
		}
		// The server closes a foreign connection at once.
		d.SetReadDeadline(time.Now().Add(testDeadline))
		var b [1]byte
		if _, err := d.Read(b[:]); err == nil {
			t.Fatal("the server sent data to a foreign address")
		}
		d.Close()
	}
	d, err := net.DialTimeout("tcp", target, testDeadline)
	if err != nil {
		t.Fatal(err)
	}
	if code, text, err := f.read(); code != 150 {
		t.Fatalf("LIST: %d %s %v", code, text, err)
	}
	d.SetReadDeadline(time.Now().Add(testDeadline))
	var b [4096]byte
	for {
		if _, err := d.Read(b[:]); err != nil {
			break
		}
	}
	d.Close()
	if code, text, err := f.read(); code != 226 {
		t.Fatalf("LIST: %d %s %v", code, text, err)
	}
	mustCmd(t, f, 221, "QUIT")
	out, ids := stopAndDiagnose(t, s)
	wantOnly(t, ids, natdiag.IDPeerMismatch)
	if !strings.Contains(out, "127.0.0.2 for 127.0.0.1 (3)") || !strings.Contains(out, "PROXY protocol") {
		t.Errorf("output:\n%s", out)
	}
}

// TestDiagnoseClientBehindNAT: PORT names a private address that is not
// the client's.
func TestDiagnoseClientBehindNAT(t *testing.T) {
	s := startLive(t, loopbackPublic)
	f := s.login(t)
	mustCmd(t, f, 504, "PORT 192,168,1,2,195,80")
	mustCmd(t, f, 221, "QUIT")
	out, ids := stopAndDiagnose(t, s)
	wantOnly(t, ids, natdiag.IDClientNAT)
	if !strings.Contains(out, "PORT 192.168.1.2 (private) from 127.0.0.1") || !strings.Contains(out, "passive mode") {
		t.Errorf("output:\n%s", out)
	}
}

// TestDiagnoseTLSReuseRefused: a client that names itself with CLNT and
// does not resume its TLS session on the data connection.
func TestDiagnoseTLSReuseRefused(t *testing.T) {
	s := startLive(t, loopbackPublic)
	f, code, _, err := dialFTP(s.addr, testDeadline)
	if err != nil || code != 220 {
		t.Fatal(code, err)
	}
	defer f.Close()
	mustCmd(t, f, 234, "AUTH TLS")
	if _, err := f.startTLS(s.tlsClient(t, nil)); err != nil {
		t.Fatal(err)
	}
	f.cmd("CLNT NoReuse FTP 1.0")
	mustCmd(t, f, 331, "USER anonymous")
	mustCmd(t, f, 230, "PASS x@example.com")
	mustCmd(t, f, 200, "PBSZ 0")
	mustCmd(t, f, 200, "PROT P")
	port, err := parseEPSV(mustCmd(t, f, 229, "EPSV"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), testDeadline)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	mustCmd(t, f, 150, "LIST")
	tc := tls.Client(d, s.tlsClient(t, nil)) // no session cache: a full handshake
	tc.SetDeadline(time.Now().Add(testDeadline))
	tc.Handshake()
	if code, text, _ := f.read(); code != 522 {
		t.Fatalf("LIST without reuse: %d %s, want 522", code, text)
	}
	mustCmd(t, f, 221, "QUIT")
	out, ids := stopAndDiagnose(t, s)
	wantOnly(t, ids, natdiag.IDReuseRefused)
	if !strings.Contains(out, `"NoReuse FTP 1.0" (1)`) || !strings.Contains(out, "tls_reuse_exempt") {
		t.Errorf("output:\n%s", out)
	}
}

// TestDiagnoseHealthy: a healthy mix (EPSV, PASV to the right address,
// TLS with session reuse, an idle session) gives no finding at all.
func TestDiagnoseHealthy(t *testing.T) {
	s := startLive(t, loopbackPublic)
	f := s.login(t)
	listEPSV(t, f, nil)
	listPASV(t, f, nil)
	mustCmd(t, f, 221, "QUIT")

	g, code, _, err := dialFTP(s.addr, testDeadline)
	if err != nil || code != 220 {
		t.Fatal(code, err)
	}
	defer g.Close()
	cfg := s.tlsClient(t, tls.NewLRUClientSessionCache(4))
	mustCmd(t, g, 234, "AUTH TLS")
	if _, err := g.startTLS(cfg); err != nil {
		t.Fatal(err)
	}
	g.cmd("CLNT Healthy 1.0")
	mustCmd(t, g, 331, "USER anonymous")
	mustCmd(t, g, 230, "PASS x@example.com")
	mustCmd(t, g, 200, "PBSZ 0")
	mustCmd(t, g, 200, "PROT P")
	listEPSV(t, g, cfg)
	listPASV(t, g, cfg)
	mustCmd(t, g, 221, "QUIT")

	s.login(t).cmd("NOOP")
	out, ids := stopAndDiagnose(t, s)
	wantOnly(t, ids)
	if !strings.Contains(out, "No problems found") {
		t.Errorf("output:\n%s", out)
	}
	if code, _, _ := diagnoseCLI("--data", s.data); code != 0 {
		t.Errorf("exit status %d without findings", code)
	}
}

// TestDiagnoseErrors: every malformed form of the command, and no server.
func TestDiagnoseErrors(t *testing.T) {
	empty := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--data", empty}, 2, "is a server running"},
		{[]string{"extra"}, 2, `unexpected argument "extra"`},
		{[]string{"--bogus"}, 2, "flag provided but not defined"},
	} {
		code, _, errs := diagnoseCLI(tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.msg) {
			t.Errorf("%q: %d %q, want %d and %q", tc.args, code, errs, tc.code, tc.msg)
		}
	}
	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, natdiag.FileName), []byte("{"), 0o600)
	if code, _, errs := diagnoseCLI("--data", bad); code != 2 || !strings.Contains(errs, "diagnostics.json") {
		t.Errorf("a broken file: %d %q", code, errs)
	}
	// A file not rewritten for long tells of a stopped server.
	old := t.TempDir()
	natdiag.WriteReport(filepath.Join(old, natdiag.FileName), natdiag.Report{PID: 1, Updated: time.Now().Add(-time.Hour)})
	if code, out, _ := diagnoseCLI("--data", old); code != 0 || !strings.Contains(out, "may not be running") {
		t.Errorf("a stale file: %d %q", code, out)
	}
}

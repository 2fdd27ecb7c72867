package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryftp/ferry/internal/config"
	"github.com/ferryftp/ferry/internal/ftp"
	"github.com/ferryftp/ferry/internal/users"
)

func probeCLI(stdin string, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := runProbe(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// verdicts maps each check to its status line.
func verdicts(out string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && (f[0] == "ok" || f[0] == "warn" || f[0] == "FAIL" || f[0] == "skip") {
			m[f[1]] = l
		}
	}
	return m
}

var probeChecks = []string{"control", "login", "pasv-address", "pasv-data", "epsv-data", "auth-tls", "tls-login",
	"prot-p-reuse", "prot-p-no-reuse"}

// TestProbeHealthy: a healthy local server passes every check.
func TestProbeHealthy(t *testing.T) {
	s := startLive(t, nil)
	code, out, errs := probeCLI("", s.addr, "--ca", filepath.Join(s.data, "tls", "cert.pem"))
	if code != 0 {
		t.Fatalf("probe: %d\n%s%s", code, out, errs)
	}
	v := verdicts(out)
	for _, c := range probeChecks {
		if !strings.HasPrefix(v[c], "ok ") {
			t.Errorf("%s: %q\n%s", c, v[c], out)
		}
	}
	if !strings.Contains(v["prot-p-no-reuse"], "refused without session reuse (522)") {
		t.Errorf("no-reuse verdict %q", v["prot-p-no-reuse"])
	}
	// A named user, the password from standard input.
	if code, _, errs := runUserCLI(t, "alice", s.data); code != 0 {
		t.Fatalf("user add: %s", errs)
	}
	code, out, _ = probeCLI("secret\n", s.addr, "--user", "alice", "--ca", filepath.Join(s.data, "tls", "cert.pem"))
	if v := verdicts(out); code != 0 || !strings.Contains(v["login"], "logged in as alice") {
		t.Errorf("probe --user: %d\n%s", code, out)
	}
	code, out, _ = probeCLI("wrong\n", s.addr, "--user", "alice")
	if v := verdicts(out); code != 1 || !strings.HasPrefix(v["login"], "FAIL") {
		t.Errorf("probe with a wrong password: %d\n%s", code, out)
	}
	// Without --ca the self-signed certificate is a warning, not a failure.
	code, out, _ = probeCLI("", s.addr)
	if v := verdicts(out); code != 0 || !strings.HasPrefix(v["auth-tls"], "warn") || !strings.Contains(out, "ferry cert show") {
		t.Errorf("probe without --ca: %d\n%s", code, out)
	}
}

// runUserCLI adds user NAME with password "secret" in data.
func runUserCLI(t *testing.T, name, data string) (int, string, string) {
	var out, errb bytes.Buffer
	code := runUser([]string{"add", name, "--data", data, "--password-stdin"}, strings.NewReader("secret\n"), &out, &errb)
	return code, out.String(), errb.String()
}

// TestProbeWrongPublicHost: --public-host 127.0.0.9 while the passive
// listeners are on 127.0.0.1: the PASV checks fail with the fix, EPSV works.
func TestProbeWrongPublicHost(t *testing.T) {
	s := startLive(t, func(c *config.Config) { c.PublicHost = "127.0.0.9" })
	code, out, _ := probeCLI("", s.addr, "--ca", filepath.Join(s.data, "tls", "cert.pem"))
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	v := verdicts(out)
	if !strings.HasPrefix(v["pasv-data"], "FAIL") || !strings.Contains(v["pasv-data"], "127.0.0.9") ||
		!strings.Contains(out, "fix: set public_host (--public-host) to 127.0.0.1") {
		t.Errorf("pasv-data verdict:\n%s", out)
	}
	if !strings.HasPrefix(v["pasv-address"], "warn") || !strings.HasPrefix(v["epsv-data"], "ok") {
		t.Errorf("verdicts:\n%s", out)
	}
	// A public client told a private address: the address check fails too.
	// (Exercised through the classification, since loopback is not public.)
}

// TestProbeNoTLS: a server without TLS fails the TLS checks with advice.
func TestProbeNoTLS(t *testing.T) {
	srv := &ftp.Server{}
	if err := srv.SetSite(&ftp.Site{
		Settings: ftp.Settings{Banner: "plain", Anonymous: true, AnonymousRoot: t.TempDir(), LoginTimeout: testDeadline,
			IdleTimeout: testDeadline, DataTimeout: testDeadline, MaxLineBytes: 4096, MaxLoginFailures: 3},
		Auth: refuseAll{},
	}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln, false)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	code, out, _ := probeCLI("", ln.Addr().String())
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	v := verdicts(out)
	if !strings.HasPrefix(v["auth-tls"], "FAIL") || !strings.Contains(v["auth-tls"], "502") || !strings.Contains(out, "offers no TLS") {
		t.Errorf("auth-tls:\n%s", out)
	}
	for _, c := range []string{"prot-p-reuse", "prot-p-no-reuse"} {
		if !strings.HasPrefix(v[c], "skip") {
			t.Errorf("%s: %q", c, v[c])
		}
	}
	for _, c := range []string{"control", "login", "pasv-address", "pasv-data", "epsv-data"} {
		if !strings.HasPrefix(v[c], "ok") {
			t.Errorf("%s: %q", c, v[c])
		}
	}
}

type refuseAll struct{}

func (refuseAll) Authenticate(context.Context, users.LoginRequest) (*users.User, error) {
	return nil, users.ErrAuth
}

// TestProbeNoServer: nothing listens: the control check fails.
func TestProbeNoServer(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	code, out, _ := probeCLI("", addr)
	if v := verdicts(out); code != 1 || !strings.HasPrefix(v["control"], "FAIL") || len(v) != 1 {
		t.Errorf("probe of a closed port: %d\n%s", code, out)
	}
}

// TestProbeUsage: every malformed form of the command.
func TestProbeUsage(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.pem")
	notPEM := filepath.Join(t.TempDir(), "x.pem")
	os.WriteFile(notPEM, []byte("x"), 0o600)
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{nil, "want one HOST[:PORT], got 0"},
		{[]string{"a", "b"}, "want one HOST[:PORT], got 2"},
		{[]string{"host:"}, "is not HOST[:PORT]"},
		{[]string{":21"}, "is not HOST[:PORT]"},
		{[]string{"a b"}, "is not HOST[:PORT]"},
		{[]string{"ftp://host"}, "is not HOST[:PORT]"},
		{[]string{"host", "--timeout", "0s"}, "--timeout must be positive"},
		{[]string{"host", "--password-stdin"}, "--password-stdin needs --user"},
		{[]string{"host", "--bogus"}, "flag provided but not defined"},
		{[]string{"host", "--ca", missing}, "no such file"},
		{[]string{"host", "--ca", notPEM}, "no PEM certificates"},
	} {
		code, _, errs := probeCLI("", tc.args...)
		if code != 2 || !strings.Contains(errs, tc.msg) {
			t.Errorf("%q: %d %q, want 2 and %q", tc.args, code, errs, tc.msg)
		}
	}
	if code, _, errs := probeCLI("", "host", "--user", "bob"); code != 2 || !strings.Contains(errs, "reading the password") {
		t.Errorf("--user without a password: %d %q", code, errs)
	}
	for in, want := range map[string]string{"ftp.example.com": "ftp.example.com:21", "h:2121": "h:2121",
		"2001:db8::1": "[2001:db8::1]:21", "[2001:db8::1]:990": "[2001:db8::1]:990"} {
		if got, _, err := probeAddr(in); err != nil || got != want {
			t.Errorf("probeAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryftp/ferry/internal/certs"
)

func certCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := runCert(args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestCertShow: ferry cert show prints the self-signed certificate's
// subject, names, expiry and its SHA-256 fingerprint in FileZilla's form.
func TestCertShow(t *testing.T) {
	data := t.TempDir()
	m, err := certs.New(certs.Options{DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(data, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(blk.Bytes)
	var fp []string
	for _, c := range sum {
		fp = append(fp, fmt.Sprintf("%02X", c))
	}
	want := strings.Join(fp, ":")
	if want != m.Fingerprint() {
		t.Fatalf("manager fingerprint %s, computed %s", m.Fingerprint(), want)
	}
	code, out, errs := certCLI("show", "--data", data)
	if code != 0 {
		t.Fatalf("cert show: %d %s", code, errs)
	}
	for _, s := range []string{
		"SHA-256:     " + want + "\n",
		"(self-signed)",
		"Subject:     " + leaf.Subject.String(),
		"Names:       localhost",
		"127.0.0.1",
		"Expires:     " + leaf.NotAfter.UTC().Format("2006-01-02T15:04:05Z"),
		"valid for 36",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
	// --cert names a file directly; the same certificate gives the same lines.
	code, out2, _ := certCLI("show", "--cert", filepath.Join(data, "tls", "cert.pem"))
	if code != 0 || !strings.Contains(out2, want) || !strings.Contains(out2, "(file)") {
		t.Errorf("cert show --cert: %d\n%s", code, out2)
	}
}

// TestCertShowErrors: every malformed form of the command.
func TestCertShowErrors(t *testing.T) {
	empty := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{nil, 2, "Usage"},
		{[]string{"list"}, 2, `unknown command "list"`},
		{[]string{"show", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"show", "--bogus"}, 2, "flag provided but not defined"},
		{[]string{"show", "--data", empty}, 1, "no such file"},
		{[]string{"show", "--cert", filepath.Join(empty, "none.pem")}, 1, "no such file"},
	} {
		code, _, errs := certCLI(tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.msg) {
			t.Errorf("%q: %d %q, want %d and %q", tc.args, code, errs, tc.code, tc.msg)
		}
	}
	notPEM := filepath.Join(empty, "x.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	if code, _, errs := certCLI("show", "--cert", notPEM); code != 1 || !strings.Contains(errs, "no PEM certificate") {
		t.Errorf("not PEM: %d %q", code, errs)
	}
	if code, out, _ := certCLI("help"); code != 0 || !strings.Contains(out, "cert show") {
		t.Errorf("help: %d %q", code, out)
	}
}

package ftp

import (
	"bufio"
	"go/parser"
	"go/token"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestEngineDoesNotImportConfig keeps the engine free of the configuration
// format: it reads only its typed Settings, which cmd/ferry compiles.
func TestEngineDoesNotImportConfig(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == "github.com/ferryftp/ferry/internal/config" {
				t.Errorf("%s imports %s", name, p)
			}
		}
	}
}

func TestParseTLSPolicy(t *testing.T) {
	for _, p := range []TLSPolicy{TLSNone, TLSControl, TLSData, TLSAll} {
		got, err := ParseTLSPolicy(p.String())
		if err != nil || got != p {
			t.Errorf("ParseTLSPolicy(%q) = %v, %v", p.String(), got, err)
		}
	}
	if _, err := ParseTLSPolicy("ALL"); err == nil {
		t.Error(`ParseTLSPolicy("ALL") succeeded`)
	}
	if !TLSAll.control() || !TLSAll.data() || TLSControl.data() || TLSData.control() || TLSNone.control() {
		t.Error("control/data do not follow the policy")
	}
}

// TestSessionKeepsItsSite checks that a session reads the site it started
// with: a site installed later reaches new connections only.
func TestSessionKeepsItsSite(t *testing.T) {
	ts := startServer(t, nil)
	old := dial(t, ts.addr)
	old.login("alice", "secret")
	next := &Site{Settings: testSettings(ts.data), Auth: ts.auth}
	next.Banner = "Second site."
	next.Anonymous = false
	if err := ts.srv.SetSite(next); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
	if text := c.expect(220); text != "Second site." {
		t.Errorf("new connection greeted with %q, want the new banner", text)
	}
	c.cmd("USER anonymous", 331)
	c.cmd("PASS x@example.com", 530)
	if text := old.cmd("REIN", 220); text != "Ferry FTP server ready." {
		t.Errorf("REIN on the old session answered %q, want the old banner", text)
	}
	old.cmd("USER anonymous", 331)
	old.cmd("PASS x@example.com", 230)
}

// TestSetSiteKeepsItsOwnSlices: changing the caller's slice after SetSite
// does not change the installed settings.
func TestSetSiteKeepsItsOwnSlices(t *testing.T) {
	exempt := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	st := &Site{Settings: testSettings(t.TempDir()), Auth: &memAuth{}}
	st.TLSReuseExempt = exempt
	var srv Server
	if err := srv.SetSite(st); err != nil {
		t.Fatal(err)
	}
	exempt[0] = netip.MustParsePrefix("0.0.0.0/0")
	if got := srv.siteFor(nil).TLSReuseExempt[0]; got != netip.MustParsePrefix("192.0.2.0/24") {
		t.Errorf("installed tls_reuse_exempt changed with the caller's slice: %v", got)
	}
}

package ftp

import (
	"bufio"
	"bytes"
	crand "crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	jftp "github.com/jlaffaye/ftp"
)

// FTPS (RFC 2228, RFC 4217) tests of the engine: explicit and implicit TLS,
// the TLS policy, data connections bound to their control session, TLS 1.3
// uploads, certificate reload and a real Go client. The tests that move
// files run on every backend; those that only negotiate TLS and sequence
// commands open no file and run once, on the default.

var ftpsVersions = []struct {
	name string
	v    uint16
}{{"TLS1.2", tls.VersionTLS12}, {"TLS1.3", tls.VersionTLS13}}

// ftpsPayload returns n random bytes (crypto/rand: fast under -race, where
// a byte loop is not).
func ftpsPayload(n int) []byte {
	b := make([]byte, n)
	crand.Read(b)
	return b
}

func TestFTPSExplicitSequencing(t *testing.T) {
	f := newFTPSFixture(t)
	ts := startFTPS(t, f, nil)
	c := dial(t, ts.addr)

	c.cmd("AUTH KERBEROS_V4", 504)
	c.cmd("AUTH", 501)
	c.cmd("PBSZ 0", 503) // RFC 2228: PBSZ follows a security exchange
	c.cmd("PROT P", 503)
	c.cmd("AUTH TLS", 234)
	if err := c.startTLSFTPS(f.client(0, nil)); err != nil {
		t.Fatalf("handshake after 234: %v", err)
	}
	if p := c.tlsStateFTPS().NegotiatedProtocol; p != "ftp" {
		t.Errorf("ALPN: negotiated %q, want \"ftp\"", p)
	}
	c.cmd("AUTH TLS", 503) // already protected
	c.cmd("PROT P", 503)   // RFC 2228: PBSZ comes before PROT
	c.cmd("PBSZ x", 501)
	if text := c.cmd("PBSZ 0", 200); !strings.Contains(text, "PBSZ=0") {
		t.Errorf("PBSZ 0: reply %q lacks PBSZ=0", text)
	}
	c.cmd("PROT S", 536)
	c.cmd("PROT E", 536)
	c.cmd("PROT Q", 504)
	c.cmd("PROT C", 200)
	c.cmd("PROT P", 200)
	c.login("alice", "secret")
	c.cmd("CCC", 534) // not enabled
	c.cmd("QUIT", 221)
}

func TestFTPSAuthSSLAlias(t *testing.T) {
	f := newFTPSFixture(t)
	ts := startFTPS(t, f, nil)
	c := dial(t, ts.addr)
	c.cmd("AUTH SSL", 234)
	if err := c.startTLSFTPS(f.client(0, nil)); err != nil {
		t.Fatalf("handshake after AUTH SSL: %v", err)
	}
	c.login("alice", "secret")
	c.cmd("NOOP", 200)
}

// TestFTPSAuthDiscardsPipelinedPlaintext: commands sent in clear text after
// AUTH TLS, before the handshake, are discarded, not run inside the
// protected session (RFC 4217, security considerations).
func TestFTPSAuthDiscardsPipelinedPlaintext(t *testing.T) {
	f := newFTPSFixture(t)
	ts := startFTPS(t, f, nil)
	c := dial(t, ts.addr)
	c.send("AUTH TLS\r\nUSER alice")
	c.expect(234)
	if err := c.startTLSFTPS(f.client(0, nil)); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	c.cmd("PASS secret", 503) // the injected USER was not run
	c.login("alice", "secret")
}

func TestFTPSFeat(t *testing.T) {
	f := newFTPSFixture(t)
	ts := startFTPS(t, f, nil)
	feat := dial(t, ts.addr).cmd("FEAT", 211)
	lines := map[string]bool{}
	for _, l := range strings.Split(feat, "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	for _, want := range []string{"AUTH TLS", "PBSZ", "PROT"} {
		if !lines[want] {
			t.Errorf("FEAT lacks %q:\n%s", want, feat)
		}
	}

	plain := startServer(t, nil)
	pc := dial(t, plain.addr)
	if feat := pc.cmd("FEAT", 211); strings.Contains(feat, "AUTH TLS") {
		t.Errorf("FEAT of a server without TLS advertises AUTH TLS:\n%s", feat)
	}
	pc.cmd("AUTH TLS", 502)
}

// TestFTPSCCCAllowed clears the control channel as RFC 4217 describes:
// 200, a close_notify from each side, then plain text. Clients such as curl
// (--ftp-ssl-ccc) send their close_notify before the next command; here both
// go out in one write, as TCP may deliver them anyway, so the server must not
// read past the end of the close_notify record.
func TestFTPSCCCAllowed(t *testing.T) {
	f := newFTPSFixture(t)
	ts := startFTPS(t, f, func(cfg *Site, _ *Server) { cfg.TLSAllowCCC = true })
	c := dial(t, ts.addr)
	hc := &holdConn{Conn: c.conn}
	c.conn, c.r = hc, bufio.NewReader(hc)
	c.cmd("AUTH TLS", 234)
	if err := c.startTLSFTPS(f.client(0, nil)); err != nil {
		t.Fatal(err)
	}
	c.login("alice", "secret")
	c.protectFTPS()
	c.cmd("CCC", 200)
	tc := c.conn.(*tls.Conn)
	tc.SetReadDeadline(time.Now().Add(ftpsDeadline))
	if _, err := c.r.ReadByte(); err != io.EOF {
		t.Fatalf("after CCC: want the server's close_notify (EOF), got %v", err)
	}
	hc.hold()
	if err := tc.CloseWrite(); err != nil {
		t.Fatalf("sending close_notify: %v", err)
	}
	if err := hc.flush([]byte("NOOP\r\n")); err != nil {
		t.Fatal(err)
	}
	c.conn, c.r = hc, bufio.NewReader(hc)
	c.send("PWD")
	if code, text := c.read(); code != 200 {
		t.Fatalf("NOOP sent right behind the close_notify: want 200, got %d %s (the server swallowed it)", code, text)
	}
	c.expect(257)

	// A client that skips its close_notify goes straight to clear text.
	q := dialFTPS(t, ts.addr, f.client(0, nil))
	q.login("alice", "secret")
	q.cmd("CCC", 200)
	qt := q.conn.(*tls.Conn)
	qt.SetReadDeadline(time.Now().Add(ftpsDeadline))
	if _, err := q.r.ReadByte(); err != io.EOF {
		t.Fatalf("after CCC: want the server's close_notify (EOF), got %v", err)
	}
	q.conn = qt.NetConn()
	q.r = bufio.NewReader(q.conn)
	q.cmd("NOOP", 200)

	// With TLS required on the control connection, CCC stays refused.
	ts2 := startFTPS(t, f, func(cfg *Site, _ *Server) {
		cfg.TLSAllowCCC = true
		cfg.TLSRequired = TLSControl
	})
	c2 := dialFTPS(t, ts2.addr, f.client(0, nil))
	c2.login("alice", "secret")
	c2.cmd("CCC", 534)
}

func TestFTPSImplicit(t *testing.T) {
	eachBackend(t, testFTPSImplicit)
}

func testFTPSImplicit(t *testing.T, be backend) {
	f := newFTPSFixture(t)
	ts := startFTPSOn(t, be, f, nil)
	addr := serveImplicit(t, ts)
	want := ftpsPayload(300 << 10)
	ts.put(t, "i.bin", want)

	cache := tls.NewLRUClientSessionCache(8)
	cfg := f.client(0, cache)
	c := dialImplicit(t, addr, cfg)
	c.cmd("AUTH TLS", 503) // already protected
	c.login("alice", "secret")
	c.cmd("TYPE I", 200)
	// Data is protected without PBSZ/PROT, and the data connection resumes
	// the control session as on an explicit connection.
	got, st := c.retrTLS("i.bin", cfg)
	if !bytes.Equal(got, want) {
		t.Fatalf("implicit RETR: got %d bytes, want %d", len(got), len(want))
	}
	if !st.DidResume {
		t.Errorf("implicit data connection did not resume the control session")
	}
	c.storTLS("j.bin", cfg, want)
	if b := ts.get(t, "j.bin"); !bytes.Equal(b, want) {
		t.Errorf("implicit STOR: stored %d bytes, want %d", len(b), len(want))
	}
	// The reuse check applies as on an explicit connection.
	if code, text := c.refusedTLS("RETR i.bin", f.client(0, nil)); code != 522 && code != 425 {
		t.Errorf("implicit, fresh data handshake: want 522, got %d %s", code, text)
	}
	// PROT C is still allowed when the policy does not forbid it.
	c.cmd("PROT C", 200)
	if got := c.retr("i.bin"); !bytes.Equal(got, want) {
		t.Fatalf("implicit PROT C RETR: got %d bytes", len(got))
	}
}

// TestFTPSImplicitHandshakeFailure: a client that fails the implicit
// handshake (here: plain FTP on the implicit port) gets no banner, and its
// session ends and frees its slot; Shutdown does not wait for it.
func TestFTPSImplicitHandshakeFailure(t *testing.T) {
	f := newFTPSFixture(t)
	disconnects := make(chan struct{}, 8)
	srv, addr := startImplicitFTPS(t, f, "msg=disconnect", disconnects)
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.Write([]byte("USER alice\r\n"))
	raw.SetReadDeadline(time.Now().Add(ftpsDeadline))
	b, _ := io.ReadAll(raw)
	if bytes.Contains(b, []byte("220")) || bytes.Contains(b, []byte("331")) {
		t.Errorf("implicit port answered plain text: %q", b)
	}
	select {
	case <-disconnects:
	case <-time.After(ftpsShutdownWait):
		t.Fatalf("the session of a failed implicit handshake never ended (%d sessions open)", srv.Sessions())
	}
	if n := srv.Sessions(); n != 0 {
		t.Errorf("%d sessions still counted after the failed handshake", n)
	}
}

func TestTLSPolicyControlRequired(t *testing.T) {
	eachBackend(t, testTLSPolicyControlRequired)
}

func testTLSPolicyControlRequired(t *testing.T, be backend) {
	f := newFTPSFixture(t)
	ts := startFTPSOn(t, be, f, func(cfg *Site, _ *Server) { cfg.TLSRequired = TLSControl })
	c := dial(t, ts.addr)
	c.cmd("FEAT", 211)
	text := c.cmd("USER alice", 530)
	if !strings.Contains(text, "TLS") || !strings.Contains(text, "AUTH TLS") {
		t.Errorf("USER before AUTH: 530 text %q does not say TLS is required", text)
	}
	c.cmd("PASS secret", 503)
	c.cmd("EPSV", 530)
	c.cmd("AUTH TLS", 234)
	if err := c.startTLSFTPS(f.client(0, nil)); err != nil {
		t.Fatal(err)
	}
	c.login("alice", "secret")
	c.cmd("TYPE I", 200)
	// Control protection alone: clear data is allowed.
	want := []byte("clear data under control-only policy\n")
	ts.put(t, "c.txt", want)
	if got := c.retr("c.txt"); !bytes.Equal(got, want) {
		t.Fatalf("RETR: %q", got)
	}
}

func TestTLSPolicyDataRequired(t *testing.T) {
	eachBackend(t, testTLSPolicyDataRequired)
}

func testTLSPolicyDataRequired(t *testing.T, be backend) {
	f := newFTPSFixture(t)
	ts := startFTPSOn(t, be, f, func(cfg *Site, _ *Server) { cfg.TLSRequired = TLSData })
	want := ftpsPayload(64 << 10)
	ts.put(t, "d.bin", want)

	// Without AUTH: login works, transfers do not.
	p := dial(t, ts.addr)
	p.login("alice", "secret")
	p.cmd("TYPE I", 200)
	p.pasv()
	p.cmd("RETR d.bin", 521)
	p.pasv()
	p.cmd("STOR e.bin", 521)
	p.pasv()
	p.cmd("LIST", 521)
	if ts.has(t, "e.bin") {
		t.Errorf("a refused STOR created its file")
	}

	// With AUTH but the client never sends PROT: protection is Clear, so
	// the transfer is refused too.
	cache := tls.NewLRUClientSessionCache(8)
	cfg := f.client(0, cache)
	c := dialFTPS(t, ts.addr, cfg)
	c.login("alice", "secret")
	c.cmd("TYPE I", 200)
	c.pasv()
	c.cmd("RETR d.bin", 521)
	c.cmd("PBSZ 0", 200)
	c.cmd("PROT C", 534)
	c.pasv()
	c.cmd("RETR d.bin", 521)
	c.cmd("PROT P", 200)
	got, _ := c.retrTLS("d.bin", cfg)
	if !bytes.Equal(got, want) {
		t.Fatalf("RETR under PROT P: got %d bytes", len(got))
	}
}

func TestTLSPolicyAnonymousExempt(t *testing.T) {
	eachBackend(t, testTLSPolicyAnonymousExempt)
}

func testTLSPolicyAnonymousExempt(t *testing.T, be backend) {
	f := newFTPSFixture(t)
	ts := startFTPSOn(t, be, f, func(cfg *Site, _ *Server) {
		cfg.TLSRequired = TLSAll
		cfg.TLSAnonymousExempt = true
	})
	want := []byte("public file\n")
	fsPut(t, ts.fsAt(t, ts.site.AnonymousRoot), "p.txt", want)
	a := dial(t, ts.addr)
	a.cmd("USER anonymous", 331)
	a.cmd("PASS guest@example.com", 230)
	a.cmd("TYPE I", 200)
	if got := a.retr("p.txt"); !bytes.Equal(got, want) {
		t.Fatalf("anonymous clear RETR: %q", got)
	}
	dial(t, ts.addr).cmd("USER alice", 530)

	ts2 := startFTPSOn(t, be, f, func(cfg *Site, _ *Server) { cfg.TLSRequired = TLSAll })
	dial(t, ts2.addr).cmd("USER anonymous", 530)
}

func TestTLSMinimumVersion(t *testing.T) {
	f := newFTPSFixture(t)
	ts := startFTPS(t, f, nil)
	c := dial(t, ts.addr)
	c.cmd("AUTH TLS", 234)
	old := f.client(0, nil)
	old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	if err := c.startTLSFTPS(old); err == nil {
		t.Fatalf("a TLS 1.1 client completed the handshake")
	}
	c.conn.SetReadDeadline(time.Now().Add(ftpsDeadline))
	if n, err := c.conn.(*tls.Conn).NetConn().Read(make([]byte, 1)); err == nil {
		t.Errorf("control connection still open after a failed handshake (read %d bytes)", n)
	}
	if len(ftpsLogLines(ts, "TLS handshake failed")) == 0 {
		t.Errorf("no log line for the failed handshake")
	}
	// TLS 1.2 is the default minimum and works.
	v := dialFTPS(t, ts.addr, f.client(tls.VersionTLS12, nil)).tlsStateFTPS().Version
	if v != tls.VersionTLS12 {
		t.Errorf("negotiated %s, want TLS 1.2", tls.VersionName(v))
	}

	// A TLS 1.3 minimum (what tls_min_version = "1.3" becomes) refuses 1.2.
	ts13 := startFTPS(t, f, func(cfg *Site, _ *Server) { cfg.TLS.MinVersion = tls.VersionTLS13 })
	c12 := dial(t, ts13.addr)
	c12.cmd("AUTH TLS", 234)
	if err := c12.startTLSFTPS(f.client(tls.VersionTLS12, nil)); err == nil {
		t.Errorf("a TLS 1.2 client passed a TLS 1.3 minimum")
	}
	dialFTPS(t, ts13.addr, f.client(0, nil)).cmd("NOOP", 200)
}

// TestFTPSDataResumesControlSession is the normal life of a protected session:
// the client shares one session cache between control and data connections,
// and every data connection resumes the control session.
func TestFTPSDataResumesControlSession(t *testing.T) {
	eachBackend(t, testFTPSDataResumesControlSession)
}

func testFTPSDataResumesControlSession(t *testing.T, be backend) {
	for _, tv := range ftpsVersions {
		t.Run(tv.name, func(t *testing.T) {
			f := newFTPSFixture(t)
			ts := startFTPSOn(t, be, f, nil)
			cfg := f.client(tv.v, tls.NewLRUClientSessionCache(8))
			c := dialFTPS(t, ts.addr, cfg)
			c.login("alice", "secret")
			c.cmd("TYPE I", 200)
			c.protectFTPS()
			want := ftpsPayload(3<<20 + 123)
			sum := sha256.Sum256(want)

			st := c.storTLS("big.bin", cfg, want)
			if !st.DidResume || st.Version != tv.v {
				t.Errorf("upload: resumed=%v version=%s", st.DidResume, tls.VersionName(st.Version))
			}
			b := ts.get(t, "big.bin")
			if sha256.Sum256(b) != sum {
				t.Fatalf("stored file differs: %d bytes, want %d", len(b), len(want))
			}
			// The second and later data connections must resume too: with
			// TLS 1.2 the server re-issues a ticket on each resumption, and
			// the client keeps only the newest.
			got, st := c.retrTLS("big.bin", cfg)
			if sha256.Sum256(got) != sum {
				t.Fatalf("download differs: %d bytes, want %d", len(got), len(want))
			}
			if !st.DidResume {
				t.Errorf("download did not resume")
			}
			d, code, text := c.openTLSData("LIST", cfg)
			if code != 150 {
				t.Fatalf("LIST: %d %s", code, text)
			}
			d.handshake(t)
			ls, _ := io.ReadAll(d.tc)
			c.expect(226)
			if !strings.Contains(string(ls), "big.bin") {
				t.Errorf("LIST: %q", ls)
			}

			ver := `tls_version="` + tls.VersionName(tv.v) + `"`
			if len(ftpsLogLines(ts, `msg="TLS established"`, "conn=control", ver, "cipher=")) == 0 {
				t.Errorf("no control TLS log line with %s and cipher", ver)
			}
			if n := len(ftpsLogLines(ts, `msg="TLS established"`, "conn=data", ver, "cipher=", "resumed=true")); n < 3 {
				t.Errorf("%d data TLS log lines with %s, cipher and resumed=true; want 3", n, ver)
			}
		})
	}
}

// TestFTPSDataForeignSessionRefused: a data connection that resumes another
// control connection's TLS session is not this client's, so it is refused
// with 522 and a reason.
func TestFTPSDataForeignSessionRefused(t *testing.T) {
	eachBackend(t, testFTPSDataForeignSessionRefused)
}

func testFTPSDataForeignSessionRefused(t *testing.T, be backend) {
	for _, tv := range ftpsVersions {
		t.Run(tv.name, func(t *testing.T) {
			f := newFTPSFixture(t)
			ts := startFTPSOn(t, be, f, nil)
			ts.put(t, "f.txt", []byte("secret data\n"))
			cfgA := f.client(tv.v, tls.NewLRUClientSessionCache(8))
			cacheB := tls.NewLRUClientSessionCache(8)
			cfgB := f.client(tv.v, cacheB)
			a := dialFTPS(t, ts.addr, cfgA)
			a.login("alice", "secret")
			a.cmd("TYPE I", 200)
			a.protectFTPS()
			b := dialFTPS(t, ts.addr, cfgB)
			b.login("alice", "secret") // reading 230 stores B's TLS 1.3 ticket
			b.cmd("TYPE I", 200)
			if cs, ok := cacheB.Get("localhost"); !ok || cs == nil {
				t.Fatal("session B's cache holds no ticket: the test would not present one")
			}

			code, text := a.refusedTLS("RETR f.txt", cfgB)
			if code != 522 && code != 425 {
				t.Fatalf("foreign session: want 522, got %d %s", code, text)
			}
			if !strings.Contains(text, "another control connection") || strings.Contains(text, "tls_session_reuse") {
				t.Errorf("refusal text %q does not say why", text)
			}
			ftpsCheckRefusalLog(t, ts, "another control connection")

			// The session still works with its own tickets.
			if got, _ := a.retrTLS("f.txt", cfgA); string(got) != "secret data\n" {
				t.Errorf("own session after a refusal: %q", got)
			}
			if got, _ := b.protectRetrTLS("f.txt", cfgB); string(got) != "secret data\n" {
				t.Errorf("session B with its own ticket: %q", got)
			}
		})
	}
}

func TestFTPSDataFreshHandshakeRefused(t *testing.T) {
	eachBackend(t, testFTPSDataFreshHandshakeRefused)
}

func testFTPSDataFreshHandshakeRefused(t *testing.T, be backend) {
	for _, tv := range ftpsVersions {
		t.Run(tv.name, func(t *testing.T) {
			f := newFTPSFixture(t)
			ts := startFTPSOn(t, be, f, nil)
			ts.put(t, "f.txt", []byte("x\n"))
			c := dialFTPS(t, ts.addr, f.client(tv.v, tls.NewLRUClientSessionCache(8)))
			c.login("alice", "secret")
			c.protectFTPS()
			code, text := c.refusedTLS("RETR f.txt", f.client(tv.v, nil))
			if code != 522 && code != 425 {
				t.Fatalf("fresh data handshake: want 522, got %d %s", code, text)
			}
			if !strings.Contains(text, "resume") {
				t.Errorf("refusal text %q does not say the session must be resumed", text)
			}
			// It names the setting that lets such clients in.
			if want := `tls_session_reuse = "optional" (--tls-session-reuse optional) or tls_reuse_exempt`; !strings.Contains(text, want) {
				t.Errorf("refusal text %q does not name the setting %s", text, want)
			}
			ftpsCheckRefusalLog(t, ts, "must resume")
			c.cmd("NOOP", 200)
		})
	}
}

// TestFTPSDataReuseRelaxed: with reuse optional, or the client's network
// exempt, fresh and foreign data handshakes are accepted.
func TestFTPSDataReuseRelaxed(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Site, *Server)
	}{
		{"optional", func(cfg *Site, _ *Server) { cfg.TLSSessionReuse = ReuseOptional }},
		{"exempt", func(cfg *Site, _ *Server) { cfg.TLSReuseExempt = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")} }},
	} {
		for _, tv := range ftpsVersions {
			t.Run(tc.name+"/"+tv.name, func(t *testing.T) {
				eachBackend(t, func(t *testing.T, be backend) { testReuseRelaxed(t, be, tv.v, tc.mod) })
			})
		}
	}
}

func testReuseRelaxed(t *testing.T, be backend, version uint16, mod func(*Site, *Server)) {
	f := newFTPSFixture(t)
	ts := startFTPSOn(t, be, f, mod)
	want := []byte("relaxed\n")
	ts.put(t, "r.txt", want)
	cacheB := tls.NewLRUClientSessionCache(8)
	b := dialFTPS(t, ts.addr, f.client(version, cacheB))
	b.login("alice", "secret")
	c := dialFTPS(t, ts.addr, f.client(version, tls.NewLRUClientSessionCache(8)))
	c.login("alice", "secret")
	c.cmd("TYPE I", 200)
	c.protectFTPS()
	for _, dc := range []struct {
		name string
		cfg  *tls.Config
	}{{"fresh", f.client(version, nil)}, {"foreign", f.client(version, cacheB)}} {
		got, st := c.retrTLS("r.txt", dc.cfg)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: got %q", dc.name, got)
		}
		if st.DidResume {
			t.Errorf("%s: data connection resumed", dc.name)
		}
	}
}

// TestFTPSDataRefusedHandshakeGrantsNoTicket: a data connection refused for
// a full handshake must not leave its client a ticket that passes the reuse
// check next time; otherwise anyone who reaches the passive port first
// needs only two tries.
func TestFTPSDataRefusedHandshakeGrantsNoTicket(t *testing.T) {
	eachBackend(t, testFTPSDataRefusedHandshakeGrantsNoTicket)
}

func testFTPSDataRefusedHandshakeGrantsNoTicket(t *testing.T, be backend) {
	for _, tv := range ftpsVersions {
		t.Run(tv.name, func(t *testing.T) {
			f := newFTPSFixture(t)
			ts := startFTPSOn(t, be, f, nil)
			ts.put(t, "f.txt", []byte("x\n"))
			c := dialFTPS(t, ts.addr, f.client(tv.v, tls.NewLRUClientSessionCache(8)))
			c.login("alice", "secret")
			c.protectFTPS()
			intruder := f.client(tv.v, newFTPSTicketCache())
			for i := range 2 {
				if code, text := c.refusedTLS("RETR f.txt", intruder); code != 522 && code != 425 {
					t.Fatalf("intruder's try %d: want 522, got %d %s", i+1, code, text)
				}
			}
			if n := intruder.ClientSessionCache.(*ftpsTicketCache).puts.Load(); n != 0 {
				t.Errorf("refused data connections handed the intruder %d tickets", n)
			}
		})
	}
}

// TestFTPSDataNoTicketTLS13: a TLS 1.3 server that sends a NewSessionTicket
// on an upload-only data connection leaves unread bytes in the client's
// socket; the client's close then resets the connection and the end of the
// file is lost. The server must send nothing after the handshake but its
// close_notify.
func TestFTPSDataNoTicketTLS13(t *testing.T) {
	eachBackend(t, testFTPSDataNoTicketTLS13)
}

func testFTPSDataNoTicketTLS13(t *testing.T, be backend) {
	for _, resume := range []bool{true, false} {
		t.Run("resume="+strconv.FormatBool(resume), func(t *testing.T) {
			f := newFTPSFixture(t)
			ts := startFTPSOn(t, be, f, func(cfg *Site, _ *Server) { cfg.TLSSessionReuse = ReuseOptional })
			cache := newFTPSTicketCache()
			cfg := f.client(tls.VersionTLS13, cache)
			c := dialFTPS(t, ts.addr, cfg)
			c.login("alice", "secret") // reads the control connection's ticket
			c.cmd("TYPE I", 200)
			c.protectFTPS()
			dcfg := cfg
			if !resume {
				dcfg = f.client(tls.VersionTLS13, newFTPSTicketCache())
			}
			dcache := dcfg.ClientSessionCache.(*ftpsTicketCache)
			before := dcache.puts.Load()
			want := ftpsPayload(1 << 20)

			d, code, text := c.openTLSData("STOR t.bin", dcfg)
			if code != 150 {
				t.Fatalf("STOR: %d %s", code, text)
			}
			d.handshake(t)
			if got := d.tc.ConnectionState().DidResume; got != resume {
				t.Fatalf("resumed=%v, want %v", got, resume)
			}
			if _, err := d.tc.Write(want); err != nil {
				t.Fatal(err)
			}
			d.tc.CloseWrite()
			if _, err := io.ReadAll(d.tc); err != nil { // up to the server's close_notify
				t.Fatalf("reading to the server's close_notify: %v", err)
			}
			c.expect(226)
			recs := ftpsRecords(t, d.raw.received()[d.mark:])
			// One encrypted alert: 5 header + 2 alert + 1 type + 16 tag.
			if len(recs) != 1 || len(recs[0]) != 24 {
				sizes := make([]int, len(recs))
				for i, r := range recs {
					sizes[i] = len(r)
				}
				t.Errorf("server sent %d records after the data handshake (sizes %v); want only its close_notify (24 bytes)", len(recs), sizes)
			}
			if n := dcache.puts.Load() - before; n != 0 {
				t.Errorf("the data connection delivered %d session tickets", n)
			}
			if b := ts.get(t, "t.bin"); !bytes.Equal(b, want) {
				t.Errorf("stored %d bytes, want %d", len(b), len(want))
			}
		})
	}
}

// TestFTPSManyUploadsTLS13: forty TLS 1.3 uploads whose client writes and
// closes at once, never reading; every file must arrive whole.
func TestFTPSManyUploadsTLS13(t *testing.T) {
	// One backend: 40 MiB of TLS uploads take over 2 s; the subject is TLS.
	f := newFTPSFixture(t)
	ts := startFTPS(t, f, nil)
	cfg := f.client(tls.VersionTLS13, tls.NewLRUClientSessionCache(8))
	c := dialFTPS(t, ts.addr, cfg)
	c.login("alice", "secret")
	c.cmd("TYPE I", 200)
	c.protectFTPS()
	sums := map[string][32]byte{}
	for i := range 40 {
		data := ftpsPayload(1<<20 + i*977)
		name := "u" + strconv.Itoa(i) + ".bin"
		sums[name] = sha256.Sum256(data)
		c.storTLS(name, cfg, data)
	}
	for name, sum := range sums {
		if b := ts.get(t, name); sha256.Sum256(b) != sum {
			t.Errorf("%s: %d bytes: content differs", name, len(b))
		}
	}
}

// TestFTPSCertificateReload: a reload reaches new handshakes only; an open
// session keeps its certificate and its data connections keep working.
func TestFTPSCertificateReload(t *testing.T) {
	eachBackend(t, testFTPSCertificateReload)
}

func testFTPSCertificateReload(t *testing.T, be backend) {
	f := newFTPSFixture(t)
	ts := startFTPSOn(t, be, f, nil)
	cfgA := f.client(0, tls.NewLRUClientSessionCache(8))
	a := dialFTPS(t, ts.addr, cfgA)
	a.login("alice", "secret")
	a.cmd("TYPE I", 200)
	a.protectFTPS()
	oldFP := ftpsFingerprint(a.tlsStateFTPS().PeerCertificates[0])
	if oldFP != f.m.Fingerprint() {
		t.Fatalf("served %s, manager has %s", oldFP, f.m.Fingerprint())
	}

	f.renew(t)
	newFP := f.m.Fingerprint()
	if newFP == oldFP {
		t.Fatal("reload kept the old certificate")
	}

	want := ftpsPayload(512 << 10)
	a.storTLS("r.bin", cfgA, want)
	if got, _ := a.retrTLS("r.bin", cfgA); !bytes.Equal(got, want) {
		t.Fatalf("old session after reload: got %d bytes", len(got))
	}
	a.cmd("NOOP", 200)
	if fp := ftpsFingerprint(a.tlsStateFTPS().PeerCertificates[0]); fp != oldFP {
		t.Errorf("old session's certificate changed to %s", fp)
	}

	cfgB := f.client(0, tls.NewLRUClientSessionCache(8))
	cfgB.RootCAs = f.currentPool(t)
	b := dialFTPS(t, ts.addr, cfgB)
	if fp := ftpsFingerprint(b.tlsStateFTPS().PeerCertificates[0]); fp != newFP {
		t.Errorf("new session got certificate %s, want the reloaded %s", fp, newFP)
	}
	b.login("alice", "secret")
	b.cmd("TYPE I", 200)
	b.protectFTPS()
	if got, _ := b.retrTLS("r.bin", cfgB); !bytes.Equal(got, want) {
		t.Fatalf("new session: got %d bytes", len(got))
	}
}

// TestFTPSData150BeforeHandshake: the scenarios of RFC 4217 answer 150 when
// the data connection is accepted and negotiates TLS after it. Clients such
// as jlaffaye/ftp and curl wait for 150 before they start the data
// handshake; a server that waits for the handshake before 150 deadlocks
// with them until its data timeout.
func TestFTPSData150BeforeHandshake(t *testing.T) {
	eachBackend(t, testFTPSData150BeforeHandshake)
}

func testFTPSData150BeforeHandshake(t *testing.T, be backend) {
	f := newFTPSFixture(t)
	// A short data timeout only bounds the deadlock when the order is wrong.
	ts := startFTPSOn(t, be, f, func(cfg *Site, _ *Server) { cfg.DataTimeout = 5 * time.Second })
	want := []byte("lazy handshake\n")
	ts.put(t, "l.txt", want)
	cfg := f.client(0, tls.NewLRUClientSessionCache(8))
	c := dialFTPS(t, ts.addr, cfg)
	c.login("alice", "secret")
	c.cmd("TYPE I", 200)
	c.protectFTPS()
	raw := c.pasv()
	c.send("RETR l.txt")
	code, text := c.read()
	if code != 150 {
		t.Fatalf("RETR with the data handshake after 150: want 150, got %d %s", code, text)
	}
	d := tls.Client(raw, cfg)
	d.SetDeadline(time.Now().Add(ftpsDeadline))
	got, err := io.ReadAll(d)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("RETR: %q, %v", got, err)
	}
	c.expect(226)
}

// TestFTPSJlaffayeClient runs github.com/jlaffaye/ftp with explicit TLS and a
// session cache shared by control and data connections.
func TestFTPSJlaffayeClient(t *testing.T) {
	eachBackend(t, testFTPSJlaffayeClient)
}

func testFTPSJlaffayeClient(t *testing.T, be backend) {
	f := newFTPSFixture(t)
	ts := startFTPSOn(t, be, f, func(cfg *Site, _ *Server) { cfg.DataTimeout = 5 * time.Second })
	cfg := f.client(0, tls.NewLRUClientSessionCache(8))
	cfg.NextProtos = nil
	c, err := jftp.Dial(ts.addr, jftp.DialWithExplicitTLS(cfg), jftp.DialWithTimeout(ftpsDeadline))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Quit()
	if err := c.Login("alice", "secret"); err != nil {
		t.Fatal(err)
	}
	want := ftpsPayload(2<<20 + 7)
	if err := c.Stor("j.bin", bytes.NewReader(want)); err != nil {
		t.Fatalf("Stor: %v", err)
	}
	r, err := c.Retr("j.bin")
	if err != nil {
		t.Fatalf("Retr: %v", err)
	}
	got, err := io.ReadAll(r)
	if cerr := r.Close(); err == nil {
		err = cerr
	}
	if err != nil || sha256.Sum256(got) != sha256.Sum256(want) {
		t.Fatalf("Retr: %d bytes, want %d, err %v", len(got), len(want), err)
	}
	entries, err := c.List("/")
	var names []string
	for _, e := range entries {
		names = append(names, e.Name)
	}
	if err != nil || !slices.Contains(names, "j.bin") {
		t.Errorf("List: %q %v", names, err)
	}
}

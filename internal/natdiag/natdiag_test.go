package natdiag

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want Class
	}{
		{"8.8.8.8", Public},
		{"203.0.113.7", Public}, // documentation ranges stand for Internet clients
		{"2001:db8::1", Public},
		{"2a00:1450::1", Public},
		{"10.0.0.5", Private},
		{"172.16.3.4", Private},
		{"172.32.0.1", Public},
		{"192.168.1.2", Private},
		{"::ffff:192.168.1.2", Private},
		{"100.64.0.1", CGNAT},
		{"100.127.255.254", CGNAT},
		{"100.128.0.1", Public},
		{"fd00::1", ULA},
		{"fe80::1", LinkLocal},
		{"169.254.10.1", LinkLocal},
		{"127.0.0.1", Loopback},
		{"127.0.0.9", Loopback},
		{"::1", Loopback},
		{"0.0.0.0", Unspecified},
		{"::", Unspecified},
		{"224.0.0.1", Reserved},
		{"198.18.0.1", Reserved},
		{"240.0.0.1", Reserved},
	} {
		if got := Classify(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("Classify(%s) = %s, want %s", tc.addr, got, tc.want)
		}
	}
	if got := Classify(netip.Addr{}); got != Unspecified {
		t.Errorf("Classify(zero) = %s", got)
	}
	c := classifier{public: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	if !c.isPublic(netip.MustParseAddr("127.0.0.9")) || c.isPublic(netip.MustParseAddr("10.1.1.1")) {
		t.Error("PublicNetworks not applied")
	}
}

// stream feeds observations with a clock that advances a second each.
type stream struct {
	a   *Analyzer
	now time.Time
	rep []Finding
	adv string // what passiveRound's PASV advertises
}

func newStream(o Options) *stream {
	s := &stream{now: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
	o.Report = func(f Finding) { s.rep = append(s.rep, f) }
	s.a = New(o)
	return s
}

func (s *stream) obs(o Observation) {
	s.now = s.now.Add(time.Second)
	o.Time = s.now
	s.a.Observe(o)
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
func ip(s string) netip.Addr     { return netip.MustParseAddr(s) }

// session connects a client and returns its session ID.
func (s *stream) session(id, client string) {
	s.obs(Observation{Kind: Connect, Session: id, Client: ip(client), Local: ap("10.0.0.5:21")})
}

func (s *stream) ids() []string {
	var ids []string
	for _, f := range s.a.Findings(s.now) {
		ids = append(ids, f.ID)
	}
	return ids
}

func (s *stream) finding(t *testing.T, id string) Finding {
	t.Helper()
	for _, f := range s.a.Findings(s.now) {
		if f.ID == id {
			return f
		}
	}
	t.Fatalf("no finding %s; have %v", id, s.ids())
	return Finding{}
}

func wantText(t *testing.T, f Finding, field, got string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(got, sub) {
			t.Errorf("%s %s %q lacks %q", f.ID, field, got, sub)
		}
	}
}

func TestPasvPrivate(t *testing.T) {
	s := newStream(Options{PassiveLo: 50000, PassiveHi: 50999})
	// A LAN client told the private address: nothing wrong.
	s.session("1", "192.168.1.20")
	s.obs(Observation{Kind: PassiveOpen, Session: "1", Client: ip("192.168.1.20"), Mode: "PASV", Advertised: ap("10.0.0.5:50001"), InUse: 1})
	// A public client told a public address: nothing wrong.
	s.session("2", "203.0.113.7")
	s.obs(Observation{Kind: PassiveOpen, Session: "2", Client: ip("203.0.113.7"), Mode: "PASV", Advertised: ap("198.51.100.1:50002"), InUse: 1})
	// EPSV carries no address.
	s.obs(Observation{Kind: PassiveOpen, Session: "2", Client: ip("203.0.113.7"), Mode: "EPSV", Advertised: ap("10.0.0.5:50003"), InUse: 1})
	if ids := s.ids(); len(ids) != 0 {
		t.Fatalf("findings from a healthy mix: %v", ids)
	}
	s.obs(Observation{Kind: PassiveOpen, Session: "2", Client: ip("203.0.113.7"), Mode: "PASV", Advertised: ap("10.0.0.5:50004"), InUse: 1})
	f := s.finding(t, IDPasvPrivate)
	if f.Setting != "public_host" || f.Count != 1 || len(f.Clients) != 1 || f.Clients[0] != "203.0.113.7" {
		t.Errorf("finding %+v", f)
	}
	wantText(t, f, "evidence", f.Evidence, "10.0.0.5", "private")
	wantText(t, f, "advice", f.Advice, "public_host is empty", "--public-host")
	if len(s.rep) != 1 {
		t.Errorf("reported %d times, want 1", len(s.rep))
	}
	// CGNAT and loopback count as unreachable too; a configured public_host is named.
	s = newStream(Options{PublicHost: "100.64.1.1"})
	s.session("1", "8.8.4.4")
	s.obs(Observation{Kind: PassiveOpen, Session: "1", Client: ip("8.8.4.4"), Mode: "PASV", Advertised: ap("100.64.1.1:40000")})
	f = s.finding(t, IDPasvPrivate)
	wantText(t, f, "advice", f.Advice, `public_host = "100.64.1.1"`)
	wantText(t, f, "summary", f.Summary, "CGNAT")
}

// passiveRound is one passive data connection: opened or timed out.
func (s *stream) passiveRound(sess, client, mode string, ok bool) {
	adv := s.adv
	if adv == "" {
		adv = "198.51.100.1:50001"
	}
	s.obs(Observation{Kind: PassiveOpen, Session: sess, Client: ip(client), Mode: mode, Advertised: ap(adv), InUse: 1})
	if ok {
		s.obs(Observation{Kind: DataOpened, Session: sess, Client: ip(client), Mode: mode, Peer: ap(client + ":40000")})
	} else {
		s.obs(Observation{Kind: DataTimeout, Session: sess, Client: ip(client), Mode: mode, Local: ap("127.0.0.1:50001")})
	}
}

func TestPasvWrongAddress(t *testing.T) {
	s := newStream(Options{PublicHost: "127.0.0.9", PublicNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	s.adv = "127.0.0.9:50001"
	s.session("1", "127.0.0.1")
	s.passiveRound("1", "127.0.0.1", "EPSV", true)
	s.passiveRound("1", "127.0.0.1", "PASV", false)
	s.passiveRound("1", "127.0.0.1", "PASV", false)
	if ids := s.ids(); len(ids) != 0 {
		t.Fatalf("two timeouts already make %v (threshold 3)", ids)
	}
	s.passiveRound("1", "127.0.0.1", "PASV", false)
	f := s.finding(t, IDPasvWrong)
	if f.Count != 3 || f.Setting != "public_host" {
		t.Errorf("finding %+v", f)
	}
	wantText(t, f, "evidence", f.Evidence, "3 PASV data connections never arrived", "1 EPSV data connections succeeded")
	wantText(t, f, "advice", f.Advice, `public_host is "127.0.0.9"`, "--public-host")
	if ids := s.ids(); len(ids) != 1 {
		t.Errorf("findings %v, want only %s", ids, IDPasvWrong)
	}

	// Not while a PASV connection succeeds in the window (some clients
	// fail for their own reasons), nor without EPSV evidence.
	for _, name := range []string{"a PASV success", "no EPSV"} {
		s := newStream(Options{})
		s.session("1", "203.0.113.7")
		if name == "a PASV success" {
			s.passiveRound("1", "203.0.113.7", "PASV", true)
			s.passiveRound("1", "203.0.113.7", "EPSV", true)
		}
		for range 4 {
			s.passiveRound("1", "203.0.113.7", "PASV", false)
		}
		for _, id := range s.ids() {
			if id == IDPasvWrong {
				t.Errorf("%s: %s made", name, id)
			}
		}
	}
	// Timeouts older than the window are forgotten.
	s = newStream(Options{Window: time.Minute})
	s.session("1", "203.0.113.7")
	s.passiveRound("1", "203.0.113.7", "EPSV", true)
	s.passiveRound("1", "203.0.113.7", "PASV", false)
	s.passiveRound("1", "203.0.113.7", "PASV", false)
	s.now = s.now.Add(2 * time.Minute)
	s.passiveRound("1", "203.0.113.7", "EPSV", true)
	s.passiveRound("1", "203.0.113.7", "PASV", false)
	if ids := s.ids(); len(ids) != 0 {
		t.Errorf("timeouts outside the window counted: %v", ids)
	}
}

func TestPasvUnreachable(t *testing.T) {
	s := newStream(Options{PassiveLo: 50000, PassiveHi: 50009})
	for i := range 5 {
		id := fmt.Sprint(i % 3)
		client := fmt.Sprintf("203.0.113.%d", i%3+1)
		mode := []string{"PASV", "EPSV"}[i%2]
		s.session(id, client)
		s.passiveRound(id, client, mode, false)
	}
	f := s.finding(t, IDPasvUnreachable)
	if f.Setting != "passive_ports" || f.Count != 5 {
		t.Errorf("finding %+v", f)
	}
	wantText(t, f, "evidence", f.Evidence, "5 passive data connections (3 PASV, 2 EPSV) from 3 sessions")
	wantText(t, f, "advice", f.Advice, "50000-50009", "--passive-ports")
	for _, id := range s.ids() {
		if id == IDPasvWrong {
			t.Error("pasv_wrong_address without EPSV success")
		}
	}
	// One session's timeouts alone (a client that gave up) are no firewall.
	s = newStream(Options{})
	s.session("1", "203.0.113.1")
	for range 6 {
		s.passiveRound("1", "203.0.113.1", "EPSV", false)
	}
	if ids := s.ids(); len(ids) != 0 {
		t.Errorf("one session made %v", ids)
	}
}

func TestPassiveExhaustion(t *testing.T) {
	s := newStream(Options{PassiveLo: 50000, PassiveHi: 50009})
	for n := 1; n <= 8; n++ {
		s.obs(Observation{Kind: PassiveOpen, Session: fmt.Sprint(n), Client: ip("192.0.2.1"), Mode: "EPSV", InUse: n})
	}
	if ids := s.ids(); len(ids) != 0 {
		t.Fatalf("8 of 10 in use made %v", ids)
	}
	s.obs(Observation{Kind: PassiveOpen, Session: "9", Client: ip("192.0.2.1"), Mode: "EPSV", InUse: 9})
	f := s.finding(t, IDPassiveExhaust)
	if f.Severity != "warning" || f.Setting != "passive_ports" {
		t.Errorf("finding %+v", f)
	}
	wantText(t, f, "evidence", f.Evidence, "9 of 10")
	wantText(t, f, "advice", f.Advice, "50000-50009 (10 ports)")
	s.obs(Observation{Kind: PassiveFull, Session: "10", Client: ip("192.0.2.1"), Mode: "PASV"})
	f = s.finding(t, IDPassiveExhaust)
	if f.Severity != "error" || !strings.Contains(f.Summary, "exhausted") {
		t.Errorf("after a failure: %+v", f)
	}
	// The OS-chosen range is never "nearly" exhausted, but a failure says so.
	s = newStream(Options{})
	s.obs(Observation{Kind: PassiveOpen, Session: "1", Client: ip("192.0.2.1"), Mode: "EPSV", InUse: 30000})
	if ids := s.ids(); len(ids) != 0 {
		t.Fatalf("OS range made %v", ids)
	}
	s.obs(Observation{Kind: PassiveFull, Session: "1", Client: ip("192.0.2.1"), Mode: "EPSV"})
	wantText(t, s.finding(t, IDPassiveExhaust), "advice", s.finding(t, IDPassiveExhaust).Advice, "ip_local_port_range")
}

func TestPeerMismatch(t *testing.T) {
	s := newStream(Options{})
	s.session("1", "203.0.113.7")
	for i := range 3 {
		if i == 2 && len(s.ids()) != 0 {
			t.Fatalf("two foreign connections made %v", s.ids())
		}
		s.obs(Observation{Kind: DataForeign, Session: "1", Client: ip("203.0.113.7"), Mode: "EPSV", Peer: ap("203.0.113.99:4000")})
	}
	f := s.finding(t, IDPeerMismatch)
	wantText(t, f, "evidence", f.Evidence, "203.0.113.99 for 203.0.113.7 (3)")
	wantText(t, f, "advice", f.Advice, "PROXY protocol", "--allow-fxp")
}

func TestClientNAT(t *testing.T) {
	s := newStream(Options{})
	s.session("1", "203.0.113.7")
	s.obs(Observation{Kind: ActiveMismatch, Session: "1", Client: ip("203.0.113.7"), Mode: "PORT", Peer: ap("192.168.1.2:5000")})
	f := s.finding(t, IDClientNAT)
	wantText(t, f, "evidence", f.Evidence, "PORT 192.168.1.2 (private) from 203.0.113.7")
	wantText(t, f, "advice", f.Advice, "passive mode")
}

func TestReuseRefusedByClient(t *testing.T) {
	s := newStream(Options{})
	s.session("1", "203.0.113.7")
	s.obs(Observation{Kind: ClientName, Session: "1", Client: ip("203.0.113.7"), Name: "OldFTP 1.0"})
	s.obs(Observation{Kind: ReuseRefused, Session: "1", Client: ip("203.0.113.7")})
	s.obs(Observation{Kind: ReuseRefused, Session: "1", Client: ip("203.0.113.7")})
	s.session("2", "198.51.100.4") // no CLNT: named by address
	s.obs(Observation{Kind: ReuseRefused, Session: "2", Client: ip("198.51.100.4")})
	f := s.finding(t, IDReuseRefused)
	wantText(t, f, "evidence", f.Evidence, `"OldFTP 1.0" (2), 198.51.100.4 (1)`)
	wantText(t, f, "advice", f.Advice, "tls_reuse_exempt", "198.51.100.4/32")
	if f.Setting != "tls_reuse_exempt" || f.Count != 3 {
		t.Errorf("finding %+v", f)
	}
	// A session's state goes with it.
	s.obs(Observation{Kind: Disconnect, Session: "1"})
	if len(s.a.sessions) != 1 {
		t.Errorf("sessions kept: %d", len(s.a.sessions))
	}
}

// TestReportRateLimited: a finding is reported when made and then at most
// once per ReportEvery, while its counts keep growing.
func TestReportRateLimited(t *testing.T) {
	s := newStream(Options{ReportEvery: time.Hour})
	s.session("1", "203.0.113.7")
	for range 10 {
		s.obs(Observation{Kind: ActiveMismatch, Session: "1", Client: ip("203.0.113.7"), Mode: "EPRT", Peer: ap("10.1.1.1:5000")})
	}
	if len(s.rep) != 1 {
		t.Fatalf("reported %d times in 10 s", len(s.rep))
	}
	if f := s.finding(t, IDClientNAT); f.Count != 10 {
		t.Errorf("count %d", f.Count)
	}
	s.now = s.now.Add(time.Hour)
	s.obs(Observation{Kind: ActiveMismatch, Session: "1", Client: ip("203.0.113.7"), Mode: "EPRT", Peer: ap("10.1.1.1:5000")})
	if len(s.rep) != 2 {
		t.Errorf("not reported again after an hour: %d", len(s.rep))
	}
	// Findings fade after Keep.
	if got := s.a.Findings(s.now.Add(25 * time.Hour)); len(got) != 0 {
		t.Errorf("findings kept past Keep: %v", got)
	}
}

// TestReconfigure: a reload's public networks and public host apply to
// what comes next.
func TestReconfigure(t *testing.T) {
	s := newStream(Options{})
	s.session("1", "127.0.0.1")
	s.obs(Observation{Kind: PassiveOpen, Session: "1", Client: ip("127.0.0.1"), Mode: "PASV", Advertised: ap("10.0.0.5:50000")})
	if ids := s.ids(); len(ids) != 0 {
		t.Fatalf("a loopback client made %v", ids)
	}
	s.a.Reconfigure(Options{PublicHost: "10.0.0.5", PublicNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	s.obs(Observation{Kind: PassiveOpen, Session: "1", Client: ip("127.0.0.1"), Mode: "PASV", Advertised: ap("10.0.0.5:50001")})
	f := s.finding(t, IDPasvPrivate)
	wantText(t, f, "advice", f.Advice, `public_host = "10.0.0.5"`)
}

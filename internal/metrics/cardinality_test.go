package metrics_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/event"
	"github.com/ferryftp/ferry/internal/ftp"
	"github.com/ferryftp/ferry/internal/metrics"
)

// randomName is a user name or verb a client could send: any printable
// ASCII, any length up to 40.
func randomName(r *rand.Rand) string {
	b := make([]byte, 1+r.IntN(40))
	for i := range b {
		b[i] = byte(0x21 + r.IntN(0x5e))
	}
	return string(b)
}

// session feeds m the events of one session of a random user from a random
// address: connect, a login (any result, any reason text), commands known
// and unknown with any reply, transfers, refused data connections, TLS,
// changes and refusals, sometimes a ban.
func session(m *metrics.Metrics, r *rand.Rand, id int, verbs []string) {
	remote := netip.AddrPortFrom(netip.AddrFrom4([4]byte{byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))}), uint16(r.IntN(65536)))
	user := randomName(r)
	ev := func(e event.Event) {
		e.Session, e.Remote, e.Time = fmt.Sprint(id), remote, time.Now()
		if e.User == "" {
			e.User = user
		}
		m.Observe(e)
	}
	ev(event.Event{Kind: event.KindConnect, Result: "ok"})
	results := []string{"ok", "failed", "refused", "busy", randomName(r)}
	ev(event.Event{Kind: event.KindLogin, Result: results[r.IntN(len(results))], Method: []string{"password", "anonymous", randomName(r)}[r.IntN(3)], Reason: randomName(r)})
	for range 5 {
		verb := randomName(r)
		if r.IntN(2) == 0 {
			verb = verbs[r.IntN(len(verbs))]
		}
		ev(event.Event{Kind: event.KindCommand, Cmd: verb, Arg: randomName(r), Code: r.IntN(700)})
	}
	dirs := []string{"download", "upload", "list", randomName(r)}
	ev(event.Event{Kind: event.KindTransfer, Cmd: "RETR", Path: "/" + randomName(r), Direction: dirs[r.IntN(4)], Bytes: r.Int64N(1 << 30),
		Duration: time.Duration(r.Int64N(int64(time.Hour))), Result: []string{"ok", "aborted", "failed", randomName(r)}[r.IntN(4)], Code: r.IntN(600)})
	ev(event.Event{Kind: event.KindData, Result: "refused", Reason: []string{event.DataForeignAddress, event.DataTimeout, randomName(r)}[r.IntN(3)], Peer: remote})
	ev(event.Event{Kind: event.KindData, Result: "opened"})
	ev(event.Event{Kind: event.KindTLS, Conn: []string{"control", "data", randomName(r)}[r.IntN(3)], Result: []string{"ok", "failed", "refused"}[r.IntN(3)],
		TLS: &tls.ConnectionState{Version: uint16(r.IntN(0x10000))}, Err: errors.New(randomName(r))})
	ev(event.Event{Kind: event.KindChange, Cmd: []string{"DELE", "MKD", randomName(r)}[r.IntN(3)], Path: "/" + randomName(r)})
	ev(event.Event{Kind: event.KindRefused, Cmd: verbs[r.IntN(len(verbs))], Reason: []string{event.RefusedPermission, randomName(r)}[r.IntN(2)]})
	if r.IntN(10) == 0 {
		ev(event.Event{Kind: event.KindBan, Reason: randomName(r)})
	}
	ev(event.Event{Kind: event.KindConnect, Result: "refused", Reason: randomName(r)})
	ev(event.Event{Kind: event.KindDisconnect})
}

// series counts the samples of a scrape: each line that is not a comment,
// histogram buckets included, as Prometheus counts series.
func series(t *testing.T, m *metrics.Metrics, prefix string) int {
	t.Helper()
	hs := httptest.NewServer(m.Handler())
	defer hs.Close()
	resp, err := http.Get(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// TestCardinalityBounded: 1,000 sessions of random users from random
// addresses sending random verbs leave the number of series under a fixed
// bound: every label value comes from a closed set.
func TestCardinalityBounded(t *testing.T) {
	verbs := ftp.Verbs()
	m := metrics.New(metrics.Options{Version: "test", Verbs: verbs, NoRuntime: true})
	before := series(t, m, "ferry_")
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 1000 {
		session(m, r, i, verbs)
	}
	after := series(t, m, "ferry_")
	// The fixed families, and commands: each verb of the table and
	// "other", in six reply classes (1xx to 5xx and none).
	bound := before + (len(verbs)+1)*6
	if after > bound {
		t.Errorf("%d series after 1,000 random sessions, bound %d (%d at start)", after, bound, before)
	}
	if after > 1000 {
		t.Errorf("%d series: more than 1,000", after)
	}
	if after <= before {
		t.Errorf("%d series after 1,000 sessions, %d at start: the sessions were not counted", after, before)
	}
	t.Logf("series: %d at start, %d after 1,000 sessions, bound %d", before, after, bound)
}

// TestPerUserCapped: with per_user = 5, the five users who moved the most
// bytes have their own series and the rest are added up under OtherUser;
// without it there is no per-user series at all.
func TestPerUserCapped(t *testing.T) {
	verbs := ftp.Verbs()
	off := metrics.New(metrics.Options{Verbs: verbs, NoRuntime: true})
	m := metrics.New(metrics.Options{Verbs: verbs, PerUser: 5, NoRuntime: true})
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 1000 {
		session(m, r, i, verbs)
	}
	for i := range 1000 {
		session(off, r, i, verbs)
	}
	if n := series(t, off, "ferry_user_"); n != 0 {
		t.Errorf("per-user series without per_user: %d", n)
	}
	if n := series(t, m, "ferry_user_"); n > (5+1)*2 {
		t.Errorf("%d per-user series with per_user = 5, want at most 12", n)
	}
	// Exact values: 7 users, the two smallest folded into OtherUser.
	m = metrics.New(metrics.Options{Verbs: verbs, PerUser: 5, NoRuntime: true})
	for i, n := range []int64{700, 600, 500, 400, 300, 20, 10} {
		m.Observe(event.Event{Kind: event.KindTransfer, User: fmt.Sprintf("u%d", i), Direction: "upload", Bytes: n, Result: "ok"})
	}
	m.Observe(event.Event{Kind: event.KindTransfer, User: "u0", Direction: "download", Bytes: 5, Result: "ok"})
	out := scrapeOf(t, m)
	for _, line := range []string{
		`ferry_user_transfer_bytes_total{direction="upload",user="u0"} 700`,
		`ferry_user_transfer_bytes_total{direction="download",user="u0"} 5`,
		`ferry_user_transfer_bytes_total{direction="upload",user="u4"} 300`,
		`ferry_user_transfer_bytes_total{direction="upload",user="` + metrics.OtherUser + `"} 30`,
		`ferry_user_transfer_bytes_total{direction="download",user="` + metrics.OtherUser + `"} 0`,
	} {
		if !hasLine(out, line) {
			t.Errorf("scrape lacks %s:\n%s", line, ferryLines(out))
		}
	}
	if strings.Contains(out, `user="u5"`) || strings.Contains(out, `user="u6"`) {
		t.Errorf("users beyond the five busiest have series:\n%s", ferryLines(out))
	}
	promtool(t, out)
}

func scrapeOf(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	hs := httptest.NewServer(m.Handler())
	defer hs.Close()
	resp, err := http.Get(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

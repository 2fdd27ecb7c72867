package xferlog

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/ferryftp/ferry/internal/event"
)

func login(result, method, user, reason string) event.Event {
	return event.Event{Kind: event.KindLogin, Time: when, Session: "2a", Remote: netip.MustParseAddrPort("198.51.100.9:40000"),
		User: user, Result: result, Method: method, Reason: reason}
}

// TestAuthGolden: the lines of both formats for each event the auth log
// takes, and none for those it does not.
func TestAuthGolden(t *testing.T) {
	ban := event.Event{Kind: event.KindBan, Time: when, Session: "2a", Remote: netip.MustParseAddrPort("198.51.100.9:40000"), Reason: "failed logins"}
	anon := login("ok", "anonymous", "anonymous", "")
	anon.Detail = "guest@example.com"
	events := []event.Event{
		login("ok", "password", "alice", ""),
		login("failed", "password", "bob", "ftp: auth failed: unknown user"),
		login("failed", "password", "alice", "ftp: auth failed: wrong password"),
		login("failed", "password", "carol", "ftp: auth failed: account disabled"),
		login("failed", "", "anonymous", "anonymous logins are disabled"),
		login("refused", "", "alice", "too many sessions of this user"),
		anon,
		ban,
		login("busy", "password", "dave", ""),
		{Kind: event.KindTransfer, Time: when, Result: "ok"},
		{Kind: event.KindConnect, Time: when, Result: "refused", Reason: "banned"},
	}
	pid := os.Getpid()
	ferry := []string{
		`2026-12-03T14:02:51Z ferry[%d]: LOGIN OK ip=198.51.100.9 user="alice" method=password session=2a`,
		`2026-12-03T14:02:51Z ferry[%d]: LOGIN FAILED ip=198.51.100.9 user="bob" reason=credentials session=2a`,
		`2026-12-03T14:02:51Z ferry[%d]: LOGIN FAILED ip=198.51.100.9 user="alice" reason=credentials session=2a`,
		`2026-12-03T14:02:51Z ferry[%d]: LOGIN FAILED ip=198.51.100.9 user="carol" reason=credentials session=2a`,
		`2026-12-03T14:02:51Z ferry[%d]: LOGIN FAILED ip=198.51.100.9 user="anonymous" reason=anonymous_disabled session=2a`,
		`2026-12-03T14:02:51Z ferry[%d]: LOGIN REFUSED ip=198.51.100.9 user="alice" reason=session_limit session=2a`,
		`2026-12-03T14:02:51Z ferry[%d]: LOGIN OK ip=198.51.100.9 user="anonymous" method=anonymous session=2a`,
		`2026-12-03T14:02:51Z ferry[%d]: BANNED ip=198.51.100.9 reason=failed_logins session=2a`,
	}
	vsftpd := []string{
		`Thu Dec  3 14:02:51 2026 [pid %d] [alice] OK LOGIN: Client "198.51.100.9"`,
		`Thu Dec  3 14:02:51 2026 [pid %d] [bob] FAIL LOGIN: Client "198.51.100.9"`,
		`Thu Dec  3 14:02:51 2026 [pid %d] [alice] FAIL LOGIN: Client "198.51.100.9"`,
		`Thu Dec  3 14:02:51 2026 [pid %d] [carol] FAIL LOGIN: Client "198.51.100.9"`,
		`Thu Dec  3 14:02:51 2026 [pid %d] [anonymous] FAIL LOGIN: Client "198.51.100.9"`,
		`Thu Dec  3 14:02:51 2026 [pid %d] [alice] FAIL LOGIN: Client "198.51.100.9", "Too many sessions of this user."`,
		`Thu Dec  3 14:02:51 2026 [pid %d] [anonymous] OK LOGIN: Client "198.51.100.9", anon password "guest@example.com"`,
		`Thu Dec  3 14:02:51 2026 [pid %d] BANNED: Client "198.51.100.9", "failed_logins"`,
	}
	for _, tc := range []struct {
		format Format
		want   []string
	}{{FormatFerry, ferry}, {FormatVsftpd, vsftpd}} {
		f := openTemp(t)
		a := NewAuth(f, tc.format, nil, nil)
		for _, e := range events {
			a.Observe(e)
		}
		var want strings.Builder
		for _, l := range tc.want {
			fmt.Fprintf(&want, l+"\n", pid)
		}
		if got := readFile(t, f.Path()); got != want.String() {
			t.Errorf("format %d:\ngot\n%s\nwant\n%s", tc.format, got, want.String())
		}
	}
}

// TestAuthHostileNames: no user name can put another address where the
// filters look for one, or break the line.
func TestAuthHostileNames(t *testing.T) {
	for _, tc := range []struct {
		format Format
		name   string
		want   string
	}{
		{FormatFerry, `x" ip=192.0.2.66 user="y`, `LOGIN FAILED ip=198.51.100.9 user="x\" ip=192.0.2.66 user=\"y" reason=credentials`},
		{FormatFerry, "a\x1b[2J\u009bb", `user="a\x1b[2J\u009bb"`},
		{FormatVsftpd, `x] FAIL LOGIN: Client "192.0.2.66"`, `[x? FAIL LOGIN: Client ?192.0.2.66?] FAIL LOGIN: Client "198.51.100.9"`},
		{FormatVsftpd, "a\rb", `[a?b] FAIL LOGIN`},
		{FormatVsftpd, "", `[?] FAIL LOGIN`},
	} {
		f := openTemp(t)
		NewAuth(f, tc.format, nil, nil).Observe(login("failed", "password", tc.name, "x"))
		got := readFile(t, f.Path())
		if !strings.Contains(got, tc.want) || strings.Count(got, "\n") != 1 {
			t.Errorf("name %q: %q, want it to hold %q on one line", tc.name, got, tc.want)
		}
	}
}

func TestParseFormat(t *testing.T) {
	for s, want := range map[string]Format{"ferry": FormatFerry, "vsftpd": FormatVsftpd} {
		if f, err := ParseFormat(s); f != want || err != nil {
			t.Errorf("ParseFormat(%q) = %v, %v", s, f, err)
		}
	}
	for _, s := range []string{"", "VSFTPD", "syslog"} {
		if _, err := ParseFormat(s); err == nil {
			t.Errorf("ParseFormat(%q) accepted", s)
		}
	}
}

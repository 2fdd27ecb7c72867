package ftp

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ferryftp/ferry/internal/users"
)

// The audit trail (issue 12, item 8): every change a client makes and every
// operation refused by policy is an event, and a log record at the default
// level (info) with the keys of a transfer.

// trail renders the change and refusal events of rec, in order.
func trail(rec *recorder) []string {
	var out []string
	for _, e := range rec.all() {
		switch e.Kind {
		case KindChange:
			s := fmt.Sprintf("change %s %s %s", e.User, e.Cmd, e.Path)
			if e.From != "" {
				s += " from " + e.From
			}
			if e.Detail != "" {
				s += " = " + e.Detail
			}
			out = append(out, s)
		case KindRefused:
			out = append(out, fmt.Sprintf("refused %s %s %q %s %d", e.User, e.Cmd, e.Path, e.Reason, e.Code))
		}
	}
	return out
}

// startAudited starts a server whose log is at the default level (info),
// with bob's rules, a deny-upload pattern, a hidden pattern and a user with
// a file quota of one.
func startAudited(t *testing.T, mod func(*Site, *Server)) (*testServer, *recorder, *syncBuffer) {
	info := &syncBuffer{}
	ts := startServer(t, func(st *Site, srv *Server) {
		srv.Logger = slog.New(slog.NewTextHandler(info, nil))
		st.DenyUpload = mustPatterns(false, "*.exe")
		st.Hidden = mustPatterns(false, "*.secret")
		if mod != nil {
			mod(st, srv)
		}
	})
	hardAddUser(ts, "pw", users.User{Name: "quotaed", Home: filepath.Join(ts.data, "home", "quotaed"), QuotaFiles: 1})
	rec := newRecorder()
	ts.srv.Observe(rec, 0)
	return ts, rec, info
}

func TestAuditTrailChanges(t *testing.T) {
	ts, rec, info := startAudited(t, nil)
	c := dial(t, ts.addr)
	c.login("alice", "secret")
	c.cmd("MKD d", 257)
	c.stor("STOR", "d/f", []byte("x"))
	c.cmd("SITE CHMOD 600 d/f", 200)
	c.cmd("MFMT 20200102030405 d/f", 213)
	c.cmd("MDTM 20210102030405 d/f", 213) // MDTM's set-time form is MFMT
	c.cmd("RNFR d/f", 350)
	c.cmd("RNTO d/g", 250)
	c.cmd("DELE d/g", 250)
	c.cmd("XRMD d", 250)
	c.cmd("DELE nope", 550) // fails, changes nothing, refused by no policy
	c.cmd("QUIT", 221)
	rec.waitGone(t)
	want := []string{
		"change alice MKD /d",
		"change alice SITE CHMOD /d/f = 0600",
		"change alice MFMT /d/f = 20200102030405",
		"change alice MDTM /d/f = 20210102030405",
		"change alice RNTO /d/g from /d/f",
		"change alice DELE /d/g",
		"change alice XRMD /d",
	}
	if got := trail(rec); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("trail:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	ts.logText()
	log := info.String()
	for _, line := range []string{
		`msg=change user=alice cmd=MKD path=/d result=ok`,
		`msg=change user=alice cmd="SITE CHMOD" path=/d/f value=0600 result=ok`,
		`msg=change user=alice cmd=MFMT path=/d/f value=20200102030405 result=ok`,
		`msg=change user=alice cmd=RNTO path=/d/g from=/d/f result=ok`,
		`msg=change user=alice cmd=DELE path=/d/g result=ok`,
		`msg=change user=alice cmd=XRMD path=/d result=ok`,
		`msg=transfer user=alice cmd=STOR path=/d/f direction=upload bytes=1`,
	} {
		if !strings.Contains(records(info), line) {
			t.Errorf("the info-level log lacks %q:\n%s", line, log)
		}
	}
}

func TestAuditTrailRefusals(t *testing.T) {
	ts, rec, info := startAudited(t, nil)
	os.MkdirAll(filepath.Join(ts.data, "home", "bob", "incoming"), 0o755)
	bob := dial(t, ts.addr)
	bob.login("bob", "hunter2")
	bob.cmd("DELE readme", 550)               // permission, before the look-up
	bob.cmd("MKD /newdir", 550)               // permission
	bob.cmd("RNFR /x", 550)                   // permission
	bob.cmd("SITE CHMOD 644 /x", 550)         // permission
	bob.cmd("CWD /incoming", 250)             //
	bob.cmd("TYPE I", 200)                    //
	d := bob.pasv()                           //
	bob.cmd("STOR tool.EXE", 553)             // pattern (any case), and the data channel goes
	d.Close()                                 //
	d = bob.pasv()                            //
	bob.cmd("RETR x.secret", 550)             // pattern: hidden, answered as missing
	d.Close()                                 //
	bob.cmd("QUIT", 221)                      //
	anon := dial(t, ts.addr)                  //
	anon.login("anonymous", "me@example.com") //
	anon.cmd("MKD up", 550)                   // permission: anonymous is read-only
	anon.cmd("SITE CHMOD 4755 f", 550)        // policy: special bits
	anon.cmd("QUIT", 221)                     //
	q := dial(t, ts.addr)                     //
	q.login("quotaed", "pw")                  //
	q.stor("STOR", "one", []byte("1"))        //
	dq := q.pasv()                            //
	q.cmd("STOR two", 552)                    // quota: one file only
	dq.Close()                                //
	q.cmd("QUIT", 221)                        //
	want := []string{
		`refused bob DELE "/readme" permission 550`,
		`refused bob MKD "/newdir" permission 550`,
		`refused bob RNFR "/x" permission 550`,
		`refused bob SITE CHMOD "/x" permission 550`,
		`refused bob STOR "/incoming/tool.EXE" pattern 553`,
		`refused bob RETR "/incoming/x.secret" pattern 550`,
		`refused anonymous MKD "/up" permission 550`,
		`refused anonymous SITE CHMOD "4755 f" policy 550`,
		`refused quotaed STOR "/two" quota 552`,
	}
	waitTrail(t, ts, rec, len(want))
	if got := trail(rec); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("trail:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, line := range []string{
		`level=WARN msg=refused user=bob cmd=DELE path=/readme result=refused reason=permission code=550`,
		`level=WARN msg=refused user=bob cmd=STOR path=/incoming/tool.EXE result=refused reason=pattern code=553`,
		`level=WARN msg=refused user=quotaed cmd=STOR path=/two result=refused reason=quota code=552`,
	} {
		if !strings.Contains(records(info), line) {
			t.Errorf("the info-level log lacks %q:\n%s", line, info.String())
		}
	}
}

// TestAuditTrailTLSRequired: what the TLS policy refuses is in the trail.
func TestAuditTrailTLSRequired(t *testing.T) {
	f := newFTPSFixture(t)
	info := &syncBuffer{}
	ts := startFTPS(t, f, func(st *Site, srv *Server) {
		srv.Logger = slog.New(slog.NewTextHandler(info, nil))
		st.TLSRequired = TLSControl
	})
	rec := newRecorder()
	ts.srv.Observe(rec, 0)
	c := dial(t, ts.addr)
	c.cmd("USER alice", 530)
	c.cmd("SYST", 530) // public, but not before TLS
	c.cmd("CCC", 530)
	c.cmd("QUIT", 221)
	rec.waitGone(t)
	want := []string{
		`refused  USER "" tls_required 530`,
		`refused  SYST "" tls_required 530`,
		`refused  CCC "" tls_required 530`,
	}
	if got := trail(rec); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("trail:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The log is an observer of its own: sync it before reading (the
	// recorder's disconnect says nothing about the logger's queue).
	ts.logText()
	if line := `msg=refused user="" cmd=USER path="" result=refused reason=tls_required code=530`; !strings.Contains(records(info), line) {
		t.Errorf("the info-level log lacks %q:\n%s", line, info.String())
	}
}

// waitTrail waits until rec holds n trail events (the last session's
// disconnect may not have come yet).
func waitTrail(t *testing.T, ts *testServer, rec *recorder, n int) {
	t.Helper()
	ts.logText() // syncs every observer, rec included
	if got := trail(rec); len(got) < n {
		t.Fatalf("%d trail events, want %d:\n%s", len(got), n, strings.Join(got, "\n"))
	}
}

// records returns the log without the session and remote keys that every
// record of a session has.
func records(log *syncBuffer) string {
	return sessionKeys.ReplaceAllString(log.String(), "")
}

var sessionKeys = regexp.MustCompile(` session=\S+ remote=\S+`)

package ftp

import (
	"os"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ferryftp/ferry/internal/storage"
)

// fixtureTime is the modification time of the fixture's file.txt.
var fixtureTime = time.Date(2021, 2, 3, 4, 5, 6, 0, time.UTC)

// fixture fills alice's storage:
//
//	file.txt       "hello\n", modified fixtureTime
//	dir/inner.txt  "inner\n"
//	empty/
func fixture(t testing.TB, ts *testServer) {
	t.Helper()
	ts.put(t, "file.txt", []byte("hello\n"))
	ts.chtimes(t, "file.txt", fixtureTime)
	ts.put(t, "dir/inner.txt", []byte("inner\n"))
	ts.mkdir(t, "empty")
}

// TestCommandReplies runs every command of RFC 959, 2389, 2428, 3659 and
// 7151 with good and malformed arguments and checks the reply codes.
func TestCommandReplies(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ts := startOn(t, be, nil)
		fixture(t, ts)
		// Without CapChmod (S3) every SITE CHMOD answers 550, before its
		// arguments are read.
		chmod := func(want ...int) []int {
			if !ts.hasCap(t, storage.CapChmod) {
				return codes(550)
			}
			return want
		}

		tests := []struct {
			name  string
			steps []step
		}{
			{"USER", []step{
				{"USER", codes(501)},
				{"USER a\x00b", codes(501)},
			}},
			{"PASS", []step{
				{"PASS secret", codes(503)}, // after login, below: 230 or 503
			}},
			{"ACCT", []step{
				{"ACCT", codes(501)},
			}},
			{"NOOP", []step{{"NOOP", codes(200)}, {"NOOP with an argument", codes(200)}}},
			{"SYST", []step{{"SYST", codes(215)}}},
			{"FEAT", []step{{"FEAT", codes(211)}}},
			{"HELP", []step{
				{"HELP", codes(214)},
				{"HELP RETR", codes(214)},
				{"HELP retr", codes(214)},
				{"HELP NOSUCHVERB", codes(501, 502, 504)},
			}},
			{"STAT", []step{{"STAT", codes(211)}}},
			{"OPTS", []step{
				{"OPTS", codes(501)},
				{"OPTS UTF8 ON", codes(200)},
				{"OPTS utf8 on", codes(200)},
				{"OPTS UTF8 SIDEWAYS", codes(501)},
				{"OPTS NOSUCHOPTION", codes(501)},
				{"OPTS MLST type;size;", codes(200)},
			}},
			{"HOST", []step{
				{"HOST", codes(501)},
				{"HOST bad/name", codes(501)},
				{"HOST ftp.example.com", codes(220)},
				{"USER alice", codes(331)},
				{"HOST ftp.example.com", codes(503)},
			}},
			{"SecurityWithoutAUTH", []step{
				{"PBSZ 0", codes(503)},
				{"PROT P", codes(503)},
				{"AUTH TLS", codes(502, 504, 534, 431)}, // no certificate configured
				{"AUTH", codes(501)},
			}},
			{"Unknown", []step{
				{"FOO", codes(500, 502)},
				{"FOO bar", codes(500, 502)},
				{"SMNT /x", codes(530)},
				{"", codes(500)},
				{"RETRX file.txt", codes(500, 502)},
			}},
		}
		for _, tt := range tests {
			t.Run("before-login/"+tt.name, func(t *testing.T) {
				c := dial(t, ts.addr)
				c.t = t
				c.run(tt.steps...)
			})
		}

		loggedInTests := []struct {
			name  string
			steps []step
		}{
			{"USER-PASS", []step{
				{"PASS secret", codes(230, 503)},
				{"ACCT x", codes(202, 230)},
			}},
			{"PWD", []step{
				{"PWD", codes(257)},
				{"PWD extra", codes(257, 501)},
			}},
			{"CWD", []step{
				{"CWD dir", codes(250)},
				{"CWD /", codes(250)},
				{"CWD /nope", codes(550)},
				{"CWD file.txt", codes(550)},
				{"CWD a\x00b", codes(501, 553)},
			}},
			{"CDUP", []step{
				{"CWD dir", codes(250)},
				{"CDUP", codes(200, 250)},
				{"CDUP", codes(200, 250)}, // at the root it stays there
			}},
			{"MKD", []step{
				{"MKD", codes(501)},
				{"MKD mkd-new", codes(257)},
				{"MKD mkd-new", codes(550)},
				{"MKD nope/sub", codes(550)},
				{"MKD /", codes(550)},
				{"MKD file.txt", codes(550)},
			}},
			{"RMD", []step{
				{"RMD", codes(501)},
				{"MKD rmd-dir", codes(257)},
				{"RMD rmd-dir", codes(250)},
				{"RMD rmd-dir", codes(550)},
				{"RMD dir", codes(550)}, // not empty
				{"RMD file.txt", codes(550)},
				{"RMD /", codes(550)},
			}},
			{"DELE", []step{
				{"DELE", codes(501)},
				{"DELE nope", codes(550)},
				{"DELE dir", codes(550)},
				{"DELE /", codes(550)},
			}},
			{"RNFR-RNTO", []step{
				{"RNFR", codes(501)},
				{"RNTO", codes(501)},
				{"RNTO x", codes(503)},
				{"RNFR nope", codes(550)},
				{"RNTO x", codes(503)},
				{"RNFR file.txt", codes(350)},
				{"NOOP", codes(200)},
				{"RNTO x", codes(503)}, // RNFR must be immediately before
				{"RNFR file.txt", codes(350)},
				{"RNTO moved.txt", codes(250)},
				{"RNFR moved.txt", codes(350)},
				{"RNTO file.txt", codes(250)},
				{"RNFR dir", codes(350)},
				{"RNTO dir/sub", codes(550, 553)}, // into itself
				{"RNFR /", codes(550)},
				{"RNFR file.txt", codes(350)},
				{"RNTO nope/x", codes(550)},
			}},
			{"SIZE", []step{
				{"SIZE", codes(501)},
				{"SIZE file.txt", codes(213)},
				{"SIZE nope", codes(550)},
				{"SIZE dir", codes(550)},
			}},
			{"MDTM", []step{
				{"MDTM", codes(501)},
				{"MDTM file.txt", codes(213)},
				{"MDTM nope", codes(550)},
			}},
			{"MFMT", []step{
				{"MFMT", codes(501)},
				{"MFMT 20200102030405", codes(501)},
				{"MFMT 2020 file.txt", codes(501)},
				{"MFMT 20201340000000 file.txt", codes(501)},
				{"MFMT yesterday file.txt", codes(501)},
				{"MFMT 20200102030405 nope", codes(550)},
			}},
			{"TYPE", []step{
				{"TYPE", codes(501)},
				{"TYPE A", codes(200)},
				{"TYPE a", codes(200)},
				{"TYPE A N", codes(200)},
				{"TYPE I", codes(200)},
				{"TYPE i", codes(200)},
				{"TYPE L 8", codes(200)},
				{"TYPE E", codes(504)},
				{"TYPE A T", codes(504)},
				{"TYPE A C", codes(504)},
				{"TYPE L 16", codes(504)},
				{"TYPE X", codes(501)},
				{"TYPE L8", codes(501)},
				{"TYPE I N", codes(501)},
				{"TYPE A N X", codes(501)},
				{"TYPE AI", codes(501)},
			}},
			{"MODE", []step{
				{"MODE", codes(501)},
				{"MODE S", codes(200)},
				{"MODE s", codes(200)},
				{"MODE B", codes(504)},
				{"MODE C", codes(504)},
				{"MODE X", codes(501)},
			}},
			{"STRU", []step{
				{"STRU", codes(501)},
				{"STRU F", codes(200)},
				{"STRU f", codes(200)},
				{"STRU R", codes(504)},
				{"STRU P", codes(504)},
				{"STRU X", codes(501)},
			}},
			{"ALLO", []step{
				{"ALLO", codes(501)},
				{"ALLO 1000", codes(200, 202)},
				{"ALLO 1000 R 100", codes(200, 202)},
				{"ALLO lots", codes(501)},
				{"ALLO -5", codes(501)},
			}},
			{"PORT", []step{
				{"PORT", codes(501)},
				{"PORT 127,0,0,1,200,10", codes(200)},
				{"PORT 1,2,3", codes(501)},
				{"PORT 127,0,0,1,300,1", codes(501)},
				{"PORT 127,0,0,1,200,10,1", codes(501)},
				{"PORT a,b,c,d,e,f", codes(501)},
				{"PORT 127,0,0,1,-1,10", codes(501)},
				{"PORT 127,0,0,2,200,10", codes(504)}, // another host: FTP bounce
				{"PORT 10,0,0,1,200,10", codes(504)},
				{"PORT 127,0,0,1,0,21", codes(504)}, // privileged port
				{"PORT 127,0,0,1,0,0", codes(501, 504)},
			}},
			{"PASV", []step{
				{"PASV", codes(227)},
				{"PASV", codes(227)},
			}},
			{"EPSV", []step{
				{"EPSV", codes(229)},
				{"EPSV 1", codes(229)},
				{"EPSV 2", codes(522)}, // IPv6 on an IPv4 connection
				{"EPSV 3", codes(522)},
				{"EPSV x", codes(501)},
				{"epsv", codes(229)},
			}},
			{"EPSV-ALL", []step{
				{"EPSV ALL", codes(200)},
				{"PASV", codes(503, 500, 501, 522)},
				{"PORT 127,0,0,1,200,10", codes(503, 500, 501, 522)},
				{"EPRT |1|127.0.0.1|51210|", codes(503, 500, 501, 522)},
				{"EPSV", codes(229)},
			}},
			{"EPRT", []step{
				{"EPRT", codes(501)},
				{"EPRT |1|127.0.0.1|51210|", codes(200)},
				{"EPRT !1!127.0.0.1!51210!", codes(200)},
				{"EPRT |3|1.2.3.4|5000|", codes(522)},
				{"EPRT junk", codes(501)},
				{"EPRT |1|::1|5000|", codes(501)},
				{"EPRT |2|127.0.0.1|5000|", codes(501)},
				{"EPRT |1|127.0.0.1|0|", codes(501)},
				{"EPRT |1|127.0.0.1|70000|", codes(501)},
				{"EPRT |1|127.0.0.1|5000", codes(501)},
				{"EPRT |1|127.0.0.2|51210|", codes(504)},
				{"EPRT |1|10.0.0.1|51210|", codes(504)},
				{"EPRT |2|::1|51210|", codes(504, 522)}, // not the client's address
				{"EPRT |1|127.0.0.1|80|", codes(504)},
			}},
			{"DataWithoutPORTorPASV", []step{
				{"RETR file.txt", codes(425, 503)},
				{"STOR x.txt", codes(425, 503)},
				{"STOU", codes(425, 503)},
				{"APPE x.txt", codes(425, 503)},
				{"LIST", codes(425, 503)},
				{"NLST", codes(425, 503)},
				{"MLSD", codes(425, 503)},
			}},
			{"DataMissingArgument", []step{
				{"RETR", codes(501)},
				{"STOR", codes(501)},
				{"APPE", codes(501)},
			}},
			{"MLST", []step{
				{"MLST", codes(250)},
				{"MLST file.txt", codes(250)},
				{"MLST dir", codes(250)},
				{"MLST nope", codes(550)},
			}},
			{"REST", []step{
				{"REST", codes(501)},
				{"REST lots", codes(501)},
				{"REST -1", codes(501)},
				{"REST 1.5", codes(501)},
				{"TYPE I", codes(200)},
				{"REST 10", codes(350)},
				{"REST 0", codes(350)},
			}},
			{"ABOR", []step{
				{"ABOR", codes(225, 226)},
				{"EPSV", codes(229)},
				{"ABOR", codes(225, 226)}, // closes the unused listener
			}},
			{"STAT-path", []step{
				{"STAT /", codes(211, 212, 213)},
				{"STAT file.txt", codes(211, 212, 213)},
				{"STAT -la dir", codes(211, 212, 213)},
				{"STAT /nope", codes(450, 550)},
			}},
			{"SITE", []step{
				{"SITE", codes(501)},
				{"SITE HELP", codes(200, 214)},
				{"SITE help", codes(200, 214)},
				{"SITE NOSUCH", codes(500, 501, 502, 504)},
				{"SITE CHMOD", chmod(501)},
				{"SITE CHMOD 644", chmod(501)},
				{"SITE CHMOD 999 file.txt", chmod(501)},
				{"SITE CHMOD rwx file.txt", chmod(501)},
				{"SITE CHMOD 644 nope", chmod(550)},
				{"SITE CHMOD 4755 file.txt", chmod(550)}, // setuid
				{"SITE CHMOD 2755 file.txt", chmod(550)}, // setgid
				{"SITE CHMOD 1777 dir", chmod(550)},      // sticky
				{"SITE CHMOD 0644 file.txt", chmod(200)},
			}},
			{"HOST-after-login", []step{
				{"HOST ftp.example.com", codes(503)},
			}},
			{"Aliases", []step{
				{"XPWD", codes(257)},
				{"XMKD alias-dir", codes(257)},
				{"XCWD alias-dir", codes(250)},
				{"XCUP", codes(200, 250)},
				{"XRMD alias-dir", codes(250)},
				{"XRMD alias-dir", codes(550)},
				{"XCWD", codes(250, 501, 550)},
			}},
			{"CaseInsensitive", []step{
				{"noop", codes(200)},
				{"NoOp", codes(200)},
				{"syst", codes(215)},
				{"pwd", codes(257)},
				{"Cwd dir", codes(250)},
				{"cdup", codes(200, 250)},
				{"size file.txt", codes(213)},
				{"Type i", codes(200)},
			}},
			{"Unknown", []step{
				{"FOO", codes(500, 502)},
				{"SMNT /x", codes(502)},
				{"\t", codes(500, 502)},
			}},
		}
		for _, tt := range loggedInTests {
			t.Run(tt.name, func(t *testing.T) {
				c := loggedIn(t, ts)
				c.t = t
				c.run(tt.steps...)
				c.cmd("NOOP", 200) // the session is still in step
			})
		}

		if !ts.hasCap(t, storage.CapChmod) {
			c := loggedIn(t, ts)
			for _, l := range []string{"SITE CHMOD", "SITE CHMOD 999 file.txt", "SITE CHMOD 0644 file.txt", "SITE CHMOD 1777 dir"} {
				if got := c.cmd(l, 550); got != lackChmod {
					t.Errorf("%q without CapChmod: %q", l, got)
				}
			}
		}
		// The fixture survived the renames, and the refused CHMODs changed nothing.
		fi, err := ts.stat(t, "file.txt")
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != 0o644 {
			t.Errorf("file.txt mode %v after refused SITE CHMODs, want 0644", fi.Mode())
		}
		fi, _ = ts.stat(t, "dir")
		if fi.Mode()&os.ModeSticky != 0 {
			t.Errorf("dir got the sticky bit: %v", fi.Mode())
		}
	})
}

// TestReplyTexts checks the texts RFC 959, 2389, 3659 and 7151 define.
func TestReplyTexts(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ts := startOn(t, be, nil)
		fixture(t, ts)
		c := dial(t, ts.addr)

		if got := c.cmd("SYST", 215); !strings.HasPrefix(got, "UNIX Type: L8") {
			t.Errorf("SYST: %q", got)
		}

		// FEAT (RFC 2389 §3.2): "211-", feature lines starting with a space, "211 End".
		c.send("FEAT")
		raw := c.rawReply()
		if !strings.HasPrefix(raw[0], "211-") || !strings.HasPrefix(raw[len(raw)-1], "211 ") {
			t.Errorf("FEAT shape: %q", raw)
		}
		feats := map[string]bool{}
		for _, l := range raw[1 : len(raw)-1] {
			if !strings.HasPrefix(l, " ") {
				t.Errorf("FEAT line without leading space: %q", l)
			}
			feats[strings.TrimSpace(l)] = true
		}
		// The facts FEAT offers are those the storage gives: unique,
		// UNIX.owner and UNIX.group need its Unix stat.
		mlst, mlstAfter := "MLST type*;size*;modify*;perm*;UNIX.mode*;", " MLST type*;size*;modify;perm;UNIX.mode;"
		if storage.CapsOf(ts.site.Storage).Has(storage.CapUnixStat) {
			mlst = "MLST type*;size*;modify*;perm*;unique*;UNIX.mode*;UNIX.owner;UNIX.group;"
			mlstAfter = " MLST type*;size*;modify;perm;unique;UNIX.mode;UNIX.owner;UNIX.group;"
		}
		for _, f := range []string{"UTF8", "SIZE", "MDTM", "MFMT", "EPSV", "EPRT", "REST STREAM", "TVFS", "HOST", mlst} {
			if !feats[f] {
				t.Errorf("FEAT lacks %q: %q", f, raw)
			}
		}

		help := c.cmd("HELP", 214)
		for _, v := range []string{"RETR", "STOR", "MLSD", "EPSV", "XPWD"} {
			if !strings.Contains(help, v) {
				t.Errorf("HELP lacks %s: %q", v, help)
			}
		}
		if got := c.cmd("HELP mdtm", 214); !strings.Contains(got, "MDTM") {
			t.Errorf("HELP MDTM: %q", got)
		}

		st := c.cmd("STAT", 211)
		if !strings.Contains(st, "Not logged in") {
			t.Errorf("STAT before login: %q", st)
		}

		// The 331 for anonymous asks for the e-mail address (RFC 1635).
		if got := c.cmd("USER anonymous", 331); !strings.Contains(strings.ToLower(got), "mail") {
			t.Errorf("331 for anonymous does not ask for the e-mail address: %q", got)
		}
		c.cmd("REIN", 220)
		c.login("alice", "secret")

		if got := c.cmd("PWD", 257); !strings.HasPrefix(got, `"/" `) {
			t.Errorf("PWD: %q", got)
		}
		c.cmd("CWD dir", 250)
		if got := c.cmd("XPWD", 257); !strings.HasPrefix(got, `"/dir" `) {
			t.Errorf("XPWD: %q", got)
		}
		if got := c.cmd("MKD sub", 257); !strings.HasPrefix(got, `"/dir/sub" `) {
			t.Errorf("MKD: %q", got)
		}
		c.cmd("CDUP", 250)
		c.cmd("TYPE I", 200)
		if got := c.cmd("SIZE file.txt", 213); got != "6" {
			t.Errorf("SIZE: %q", got)
		}
		if got := c.cmd("MDTM file.txt", 213); got != "20210203040506" {
			t.Errorf("MDTM: %q, want the UTC time-val 20210203040506", got)
		}
		if got := c.cmd("MFMT 20200102030405 file.txt", 213); !strings.HasPrefix(got, "Modify=20200102030405;") {
			t.Errorf("MFMT: %q", got)
		}
		fi, _ := ts.stat(t, "file.txt")
		if want := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC); !fi.ModTime().Equal(want) {
			t.Errorf("MFMT set %v, want %v", fi.ModTime().UTC(), want)
		}
		if got := c.cmd("MDTM file.txt", 213); got != "20200102030405" {
			t.Errorf("MDTM after MFMT: %q", got)
		}
		if got := c.cmd("OPTS MLST type;size;", 200); !strings.Contains(got, "type;size;") {
			t.Errorf("OPTS MLST: %q", got)
		}
		c.send("FEAT")
		if raw := strings.Join(c.rawReply(), "\n"); !strings.Contains(raw, mlstAfter) {
			t.Errorf("FEAT after OPTS MLST: %q", raw)
		}
		if got := c.cmd("REST 3", 350); !strings.Contains(got, "3") {
			t.Errorf("REST: %q", got)
		}
		if got := c.cmd("STAT", 211); !strings.Contains(got, "alice") {
			t.Errorf("STAT after login: %q", got)
		}
		c.cmd("QUIT", 221)
		c.expectEOF()
	})
}

// rawReply reads one reply and returns its lines as sent, without CRLF.
func (c *client) rawReply() []string {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var out []string
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read reply: %v (got %q)", err, out)
		}
		if !strings.HasSuffix(l, "\r\n") {
			c.t.Fatalf("reply line without CRLF: %q", l)
		}
		l = strings.TrimSuffix(l, "\r\n")
		out = append(out, l)
		if len(out) == 1 && (len(l) < 4 || l[3] != '-') {
			return out
		}
		if len(out) > 1 && len(l) >= 4 && l[:3] == out[0][:3] && l[3] == ' ' {
			return out
		}
	}
}

// TestNotLoggedIn checks that every command of the table that needs a login
// is answered 530 before one, whatever its argument.
func TestNotLoggedIn(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ts := startOn(t, be, nil)
		fixture(t, ts)
		c := dial(t, ts.addr)
		var verbs []string
		for v, cmd := range commands {
			if !cmd.public {
				verbs = append(verbs, v)
			}
		}
		sort.Strings(verbs)
		if len(verbs) < 30 {
			t.Fatalf("only %d non-public commands in the table: %v", len(verbs), verbs)
		}
		for _, v := range verbs {
			for _, line := range []string{v, v + " file.txt", strings.ToLower(v) + " dir"} {
				c.send(line)
				if got, text := c.read(); got != 530 {
					t.Errorf("%q before login: got %d %s, want 530", line, got, text)
				}
			}
		}
		// After a failed sequence and REIN the same holds.
		c.login("alice", "secret")
		c.cmd("REIN", 220)
		c.cmd("PWD", 530)
		c.cmd("RETR file.txt", 530)
		c.cmd("PASS secret", 503) // REIN forgot USER too
		c.login("alice", "secret")
		c.cmd("PWD", 257)
		if !ts.has(t, "file.txt") {
			t.Fatal("a command before login touched the fixture")
		}
	})
}

// TestTelnetIAC checks that Telnet commands on the control connection
// (RFC 854) are stripped and never reach a file name.
func TestTelnetIAC(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ts := startOn(t, be, nil)
		c := loggedIn(t, ts)

		// IAC IP between the letters of a name: the name is "ab".
		c.sendRaw("MKD a\xff\xf4b\r\n")
		if got := c.expect(257); !strings.HasPrefix(got, `"/ab" `) {
			t.Errorf("MKD with IAC IP: %q", got)
		}
		// IAC WILL <option> and IAC NOP.
		c.sendRaw("MKD c\xff\xfb\x01d\xff\xf1e\r\n")
		if got := c.expect(257); !strings.HasPrefix(got, `"/cde" `) {
			t.Errorf("MKD with IAC WILL/NOP: %q", got)
		}
		// IAC inside the verb.
		c.sendRaw("NO\xff\xf1OP\r\n")
		c.expect(200)
		// IAC SB ... IAC SE in the middle of a line.
		c.sendRaw("MKD f\xff\xfa\x18\x01xyz\xff\xf0g\r\n")
		if got := c.expect(257); !strings.HasPrefix(got, `"/fg" `) {
			t.Errorf("MKD with IAC SB..SE: %q", got)
		}
		// IAC IAC is a 0xFF data byte: the name is "h\xffi" (names are
		// bytes), and the 257 reply doubles it again.
		c.sendRaw("MKD h\xff\xffi\r\n")
		want := []string{"ab", "cde", "fg", "h\xffi"}
		if ts.hasCap(t, storage.CapByteNames) {
			if got := c.expect(257); !strings.HasPrefix(got, "\"/h\xff\xffi\" ") {
				t.Errorf("MKD with IAC IAC: %q", got)
			}
		} else {
			// S3: the 0xFF byte makes a name that is not UTF-8.
			if got := c.expect(553); got != lackByteNames {
				t.Errorf("MKD with IAC IAC without byte names: %q", got)
			}
			want = want[:3]
		}
		// The Telnet "interrupt, synch" prefix of ABOR (RFC 959 §4.1.3).
		c.sendRaw("\xff\xf4\xff\xf2ABOR\r\n")
		if code, text := c.read(); code != 225 && code != 226 {
			t.Errorf("IAC IP IAC DM ABOR: %d %s", code, text)
		}
		c.cmd("NOOP", 200)

		got := ts.names(t, ".")
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Errorf("names on disk %q, want %q", got, want)
		}
		for _, n := range got[:3] {
			if strings.ContainsFunc(n, func(r rune) bool { return r == utf8.RuneError }) || strings.IndexByte(n, 0xff) >= 0 ||
				strings.IndexByte(n, 0xf4) >= 0 || strings.IndexByte(n, 0xfb) >= 0 || strings.IndexByte(n, 0xf1) >= 0 {
				t.Errorf("Telnet byte in a name on disk: %q", n)
			}
		}
	})
}

// TestNames covers UTF-8 names, spaces, double quotes and the refused
// bytes CR, LF and NUL.
func TestNames(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ts := startOn(t, be, nil)
		c := loggedIn(t, ts)

		t.Run("UTF8", func(t *testing.T) {
			c.t = t
			name := "été 日本語 ñ.txt"
			c.stor("STOR", name, []byte("utf"))
			if got := ts.get(t, name); string(got) != "utf" {
				t.Errorf("disk: %q", got)
			}
			if got := c.retr(name); string(got) != "utf" {
				t.Errorf("RETR: %q", got)
			}
			if got := c.cmd("SIZE "+name, 213); got != "3" {
				t.Errorf("SIZE: %q", got)
			}
			if !slices.Contains(lines(t, c.listing("NLST")), name) {
				t.Errorf("NLST lacks %q", name)
			}
			if ml := c.listing("MLSD"); !strings.Contains(ml, "; "+name+"\r\n") {
				t.Errorf("MLSD lacks %q: %q", name, ml)
			}
			if ls := c.listing("LIST"); !strings.Contains(ls, " "+name+"\r\n") {
				t.Errorf("LIST lacks %q: %q", name, ls)
			}
			c.cmd("MKD Ünïcödé", 257)
			c.cmd("CWD Ünïcödé", 250)
			if got := c.cmd("PWD", 257); !strings.HasPrefix(got, `"/Ünïcödé" `) {
				t.Errorf("PWD: %q", got)
			}
			c.cmd("CWD /", 250)
			c.cmd("RNFR "+name, 350)
			c.cmd("RNTO Ünïcödé/Ωμέγα.txt", 250)
			if got := ts.get(t, path.Join("Ünïcödé", "Ωμέγα.txt")); string(got) != "utf" {
				t.Errorf("after RNTO: %q", got)
			}
		})

		t.Run("Spaces", func(t *testing.T) {
			c.t = t
			// One space separates verb and argument; the rest is the name.
			c.cmd("MKD  two  spaces ", 257)
			if !ts.has(t, " two  spaces ") {
				t.Errorf("MKD kept spaces wrong: %q", ts.names(t, "."))
			}
			c.stor("STOR", "a b c.txt", []byte("abc"))
			if got := c.retr("a b c.txt"); string(got) != "abc" {
				t.Errorf("RETR: %q", got)
			}
			c.cmd("DELE a b c.txt", 250)
			c.cmd("RMD  two  spaces ", 250)
		})

		t.Run("Quotes", func(t *testing.T) {
			c.t = t
			// RFC 959 Appendix II: an embedded quote is doubled in a 257 reply.
			if got := c.cmd(`MKD a"b`, 257); got != `"/a""b" created.` {
				t.Errorf(`MKD a"b: %q`, got)
			}
			if !ts.has(t, `a"b`) {
				t.Errorf("disk: %q", ts.names(t, "."))
			}
			c.cmd(`CWD a"b`, 250)
			if got := c.cmd("PWD", 257); !strings.HasPrefix(got, `"/a""b" `) {
				t.Errorf("PWD: %q", got)
			}
			if got := c.cmd(`MKD "q"`, 257); !strings.HasPrefix(got, `"/a""b/""q""" `) {
				t.Errorf(`MKD "q": %q`, got)
			}
			c.cmd("CWD /", 250)
		})

		t.Run("Refused", func(t *testing.T) {
			c.t = t
			before := ts.names(t, ".")
			for _, line := range []string{
				"MKD bad\rname", // a bare CR: the only way CR gets into an argument
				"MKD bad\x00name",
				"XMKD cr\r",
				"RNFR file\rx",
				"CWD a\x00",
				"DELE x\ry",
				"SIZE a\x00b",
				"MLST a\rb",
			} {
				c.sendRaw(line + "\r\n")
				if code, text := c.read(); code != 501 && code != 553 {
					t.Errorf("%q: got %d %s, want 501 or 553", line, code, text)
				}
			}
			for _, verb := range []string{"STOR", "APPE"} {
				c.pasv()
				c.sendRaw(verb + " up\rload\x00\r\n")
				if code, text := c.read(); code != 501 && code != 553 {
					t.Errorf("%s with CR and NUL: got %d %s", verb, code, text)
				}
			}
			c.cmd("NOOP", 200)
			if after := ts.names(t, "."); !slices.Equal(before, after) {
				t.Errorf("refused names changed the home: %q -> %q", before, after)
			}
			for _, n := range ts.names(t, ".") {
				if strings.ContainsAny(n, "\r\n\x00") {
					t.Errorf("bad byte in name on disk: %q", n)
				}
			}
		})
	})
}

// TestREIN checks that REIN forgets the user and the transfer parameters.
func TestREIN(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ts := startOn(t, be, nil)
		fixture(t, ts)
		c := loggedIn(t, ts)
		c.cmd("CWD dir", 250)
		c.cmd("EPSV ALL", 200)
		c.cmd("REIN", 220)
		c.cmd("PWD", 530)
		c.login("alice", "secret")
		if got := c.cmd("PWD", 257); !strings.HasPrefix(got, `"/" `) {
			t.Errorf("PWD after REIN and login: %q", got)
		}
		c.cmd("PASV", 227) // EPSV ALL ended with the old login
		c.cmd("REIN", 220)
		c.login("bob", "hunter2")
		c.cmd("PWD", 257)
	})
}

// TestWrongPassword checks 530 for a bad password, and that the session
// can log in afterwards.
func TestWrongPassword(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		t.Parallel()
		ts := startOn(t, be, nil)
		c := dial(t, ts.addr)
		c.cmd("USER alice", 331)
		c.cmd("PASS wrong", 530)
		c.cmd("PWD", 530)
		c.cmd("PASS secret", 503) // USER is forgotten after a failure
		c.cmd("USER nosuchuser", 331)
		c.cmd("PASS x", 530)
		c.login("alice", "secret")
		c.cmd("PWD", 257)
	})
}

var reply257 = regexp.MustCompile(`^"(?:[^"]|"")*" `)

// TestPathReplies checks that every 257 reply starts with a correctly quoted path.
func TestPathReplies(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ts := startOn(t, be, nil)
		c := loggedIn(t, ts)
		for _, name := range []string{`x`, `"`, `""`, `a"b"c`, `sp ace`, `end"`} {
			got := c.cmd("MKD "+name, 257)
			m := reply257.FindString(got)
			if m == "" {
				t.Errorf("MKD %q: reply %q is not a quoted path", name, got)
				continue
			}
			path := strings.ReplaceAll(m[1:len(m)-2], `""`, `"`)
			if path != "/"+name {
				t.Errorf("MKD %q: reply names %q", name, path)
			}
		}
	})
}

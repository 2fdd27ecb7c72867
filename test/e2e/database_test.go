package e2e

import (
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/testenv/pgenv"
)

// TestPostgresTwoServers is the interface contract on PostgreSQL with the
// built binary: two servers on one database, one given it by --database
// postgres://USER:PW@…, the other by FERRY_DATABASE; a user added with
// `ferry user add NAME --database postgres://… --password-stdin` logs in on
// both; `ferry ban list --database` and `ferry db status` read the same
// database; no password is printed or logged.
func TestPostgresTwoServers(t *testing.T) {
	url := strings.Replace(pgenv.DB(t), "ferry@", "ferry:pw-s3cret@", 1)
	s1 := startServer(t, serverConfig{NoAnonymous: true, Args: []string{"--database", url}})
	s2 := startServer(t, serverConfig{NoAnonymous: true, Env: []string{"FERRY_DATABASE=" + url}})

	if code, msg := tryLogin(t, s1.Addr, "carol", "pw"); code != 530 {
		t.Fatalf("before the user exists: %d %s", code, msg)
	}
	r := s1.ferry(t, "pw\n", "user", "add", "carol", "--database", url, "--password-stdin", "--data", s1.Data)
	if r.Code != 0 {
		t.Fatalf("user add: %s", r)
	}
	for i, s := range []*server{s1, s2} {
		if code, msg := tryLogin(t, s.Addr, "carol", "pw"); code != 230 {
			t.Errorf("server %d: carol's login: %d %s\n%s", i+1, code, msg, s.LogTail(20))
		}
	}
	if r := s1.ferry(t, "", "ban", "list", "--database", url); r.Code != 0 || !strings.Contains(r.Stdout, "no bans") {
		t.Errorf("ban list: %s", r)
	}
	r = s1.ferry(t, "", "db", "status", "--database", url)
	if r.Code != 0 || !strings.Contains(r.Stdout, "engine:          postgres") || !strings.Contains(r.Stdout, "up to date") {
		t.Errorf("db status: %s", r)
	}
	for i, s := range []*server{s1, s2} {
		out := s.Stdout() + s.LogTail(200) + r.Stdout
		if strings.Contains(out, "pw-s3cret") {
			t.Errorf("server %d shows the database password:\n%s", i+1, out)
		}
		if !strings.Contains(s.LogTail(200), "engine=postgres") {
			t.Errorf("server %d did not log its database:\n%s", i+1, s.LogTail(20))
		}
	}
}

// dialFrom opens a control connection to addr from the loopback address
// from (so that bans of one test address leave the others alone) and reads
// the greeting.
func dialFrom(t testing.TB, addr, from string) (*textproto.Conn, int, string) {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, from, err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	tp := textproto.NewConn(c)
	code, msg, err := tp.ReadResponse(0)
	if err != nil && code == 0 {
		t.Fatalf("greeting from %s: %v", addr, err)
	}
	return tp, code, msg
}

// greetingFrom returns the code of addr's greeting to a connection from.
func greetingFrom(t testing.TB, addr, from string) int {
	t.Helper()
	tp, code, _ := dialFrom(t, addr, from)
	tp.Close()
	return code
}

// loginFrom is tryLogin from the address from; a greeting other than 220
// is returned as the result.
func loginFrom(t testing.TB, addr, from, user, pass string) (int, string) {
	t.Helper()
	tp, code, msg := dialFrom(t, addr, from)
	defer tp.Close()
	if code != 220 {
		return code, msg
	}
	for _, line := range []string{"USER " + user, "PASS " + pass} {
		if err := tp.PrintfLine("%s", line); err != nil {
			t.Fatal(err)
		}
		var err error
		if code, msg, err = tp.ReadResponse(0); err != nil && code == 0 {
			t.Fatalf("%s: %v", strings.Fields(line)[0], err)
		}
		if code != 331 {
			break
		}
	}
	return code, msg
}

// waitGreeting connects from from to each of addrs until every greeting
// is code, and returns how long after start each one first was. bound is
// a safety net only.
func waitGreeting(t *testing.T, from string, code int, start time.Time, bound time.Duration, addrs ...string) []time.Duration {
	t.Helper()
	out := make([]time.Duration, len(addrs))
	for i, addr := range addrs {
		for {
			if greetingFrom(t, addr, from) == code {
				out[i] = time.Since(start)
				break
			}
			if time.Since(start) > bound {
				t.Fatalf("%s never greeted %s with %d within %v", addr, from, code, bound)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	return out
}

// TestPostgresSharedBans: two built servers on one PostgreSQL share the
// ban score (failed logins on both add up to the threshold) and the ban:
// one decided on server 2 refuses the address on server 1, and `ferry ban
// del` lifts it on both. Each server caches a ban lookup for a minute
// (ban.FollowCacheTTL) and server 1 cached "not banned" for the address
// before the ban, so only the ferry_bans notification can explain a refusal
// (or a lift) well within that minute; the latencies are logged.
func TestPostgresSharedBans(t *testing.T) {
	url := pgenv.DB(t)
	args := []string{"--database", url, "--ban-threshold", "4", "--ban-window", "10m", "--ban-duration", "1h"}
	s1 := startServer(t, serverConfig{NoAnonymous: true, Args: args})
	s2 := startServer(t, serverConfig{NoAnonymous: true, Args: args})
	const from, other = "127.0.0.7", "127.0.0.8"
	cacheTTL := time.Minute // ban.FollowCacheTTL

	// Two failures on each server: the fourth, on server 2, bans.
	cached := time.Now() // server 1 caches its first lookup of from now
	for i, want := range []int{530, 530} {
		if code, msg := loginFrom(t, s1.Addr, from, "nobody", "wrong"); code != want {
			t.Fatalf("server 1, failure %d: %d %s", i+1, code, msg)
		}
	}
	if code, msg := loginFrom(t, s2.Addr, from, "nobody", "wrong"); code != 530 {
		t.Fatalf("server 2, failure 3: %d %s", code, msg)
	}
	code, msg := loginFrom(t, s2.Addr, from, "nobody", "wrong")
	banned := time.Now()
	if code != 421 || !strings.Contains(msg, "Too many failures") {
		t.Fatalf("failure 4 (2 on each server, threshold 4): %d %s\n%s", code, msg, s2.LogTail(20))
	}
	lat := waitGreeting(t, from, 421, banned, 20*time.Second, s1.Addr)
	if time.Since(cached) >= cacheTTL {
		t.Fatalf("server 1's cached answer may have expired (%v since it was cached): the test proves nothing; the machine is too slow", time.Since(cached))
	}
	t.Logf("ban decided on server 2 → refused on connect by server 1 after %v", lat[0])
	if code := greetingFrom(t, s1.Addr, other); code != 220 {
		t.Errorf("another address refused too: %d", code)
	}
	if r := s1.ferry(t, "", "ban", "list", "--database", url); r.Code != 0 || !strings.Contains(r.Stdout, from) {
		t.Errorf("ban list: %s", r)
	}

	// Both servers now cache the ban; the CLI lifts it on both.
	r := s1.ferry(t, "", "ban", "del", from, "--database", url)
	deleted := time.Now()
	if r.Code != 0 {
		t.Fatalf("ban del: %s", r)
	}
	lifted := waitGreeting(t, from, 220, deleted, 20*time.Second, s1.Addr, s2.Addr)
	if time.Since(banned) >= cacheTTL {
		t.Fatalf("the cached bans may have expired (%v since the ban): the test proves nothing", time.Since(banned))
	}
	t.Logf("ferry ban del → admitted by server 1 after %v, by server 2 after %v", lifted[0], lifted[1])
	// The deletion forgot the score too: a failure is a first one again.
	if code, msg := loginFrom(t, s1.Addr, from, "nobody", "wrong"); code != 530 {
		t.Errorf("after ban del: %d %s", code, msg)
	}
}

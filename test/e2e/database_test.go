package e2e

import (
	"strings"
	"testing"

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

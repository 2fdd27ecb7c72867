package ftp

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryftp/ferry/internal/config"
	"github.com/ferryftp/ferry/internal/users"
)

// addUser gives the test server another account with its own home and rules.
func addUser(t *testing.T, ts *testServer, name, perms string) string {
	t.Helper()
	home := filepath.Join(ts.data, "home", name)
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	ts.auth.mu.Lock()
	ts.auth.users[name] = memUser{pass: "pw", u: users.User{Name: name, Home: home, Perms: perms}}
	ts.auth.mu.Unlock()
	return home
}

// existenceProbes are the commands that name a path, each as a client sends
// it: a denied path must answer them the same whether it exists or not.
var existenceProbes = []struct {
	line string
	data bool
}{
	{"SIZE %s", false}, {"MDTM %s", false}, {"MDTM 20200101000000 %s", false},
	{"MFMT 20200101000000 %s", false}, {"SITE CHMOD 644 %s", false},
	{"MLST %s", false}, {"STAT %s", false}, {"CWD %s", false}, {"DELE %s", false},
	{"RNFR %s", false}, {"RMD %s", false}, {"MKD %s", false},
	{"RETR %s", true}, {"LIST %s", true}, {"NLST %s", true}, {"MLSD %s", true},
	{"STOR %s", true}, {"APPE %s", true},
}

// probeSame runs every probe on an existing and a missing name and reports
// any command whose replies tell them apart.
func probeSame(t *testing.T, c *client, existing, missing string) {
	t.Helper()
	for _, pr := range existenceProbes {
		var got [2]string
		for i, name := range []string{existing, missing} {
			if pr.data {
				c.cmd("EPSV", 229)
			}
			c.send(strings.Replace(pr.line, "%s", name, 1))
			code, text := c.read()
			if code < 400 {
				t.Errorf("%s: got %d %s, want a refusal", strings.Replace(pr.line, "%s", name, 1), code, text)
			}
			got[i] = strings.ReplaceAll(text, name, "NAME")
			got[i] = string(rune('0'+code/100)) + got[i]
			if pr.data {
				c.cmd("ABOR", 225)
			}
		}
		if got[0] != got[1] {
			t.Errorf("%s: existing %q, missing %q: the reply reveals existence", pr.line, got[0], got[1])
		}
	}
}

// TestPermissionBeforeExistence: every command decides permission before it
// looks at the file, so a path the rules hide answers the same whether it
// exists or not (the set-time MDTM form used to stat first).
func TestPermissionBeforeExistence(t *testing.T) {
	ts := startServer(t, nil)
	home := addUser(t, ts, "carol", "/=all;/priv=none")
	writeFile(t, filepath.Join(home, "priv", "secret.txt"), []byte("x"))
	c := dial(t, ts.addr)
	c.login("carol", "pw")
	probeSame(t, c, "priv/secret.txt", "priv/nothere.txt")
	if got := readFile(t, filepath.Join(home, "priv", "secret.txt")); string(got) != "x" {
		t.Errorf("secret.txt changed: %q", got)
	}
}

// TestDropBoxNoExistenceOracle: in the anonymous drop box only uploads of
// new names succeed; nothing else tells an existing name from a missing one.
func TestDropBoxNoExistenceOracle(t *testing.T) {
	ts := startServer(t, func(c *config.Config, _ *Server) { c.AnonymousUploadDir = "incoming" })
	writeFile(t, filepath.Join(ts.data, "public", "incoming", "secret.txt"), []byte("x"))
	c := dial(t, ts.addr)
	c.login("anonymous", "me@example.com")
	saved := existenceProbes
	defer func() { existenceProbes = saved }()
	// An upload (STOR, APPE) onto an existing name is the one inherent
	// oracle of a drop box without overwrite (docs/security.md): a new name
	// is accepted, so every other command is probed.
	existenceProbes = nil
	for _, pr := range saved {
		if !strings.HasPrefix(pr.line, "STOR") && !strings.HasPrefix(pr.line, "APPE") {
			existenceProbes = append(existenceProbes, pr)
		}
	}
	probeSame(t, c, "incoming/secret.txt", "incoming/nothere.txt")
}

package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// nodeDir holds the Node.js clients and their pinned dependencies.
var nodeDir = filepath.Join("node")

// requireNodeModules makes sure test/e2e/node has its dependencies (.ci/run
// installs them; a developer's first run does it here with npm ci).
func requireNodeModules(t *testing.T) {
	t.Helper()
	requireTool(t, "node", "npm")
	if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "basic-ftp", "package.json")); err == nil {
		return
	}
	r := runCmd(t, 3*time.Minute, cmdOpts{Dir: nodeDir}, "npm", "ci", "--no-audit", "--no-fund")
	if r.Code != 0 {
		t.Fatalf("npm ci in test/e2e/node failed:\n%s", r)
	}
}

// TestBasicFTP drives Ferry with basic-ftp, Node's most used FTP client, in
// plain FTP and explicit FTPS: transfers, resume, listings, and refused
// transfers that must reach the client as 550 replies, not as a reset data
// connection (basic-ftp gives up on ECONNRESET).
func TestBasicFTP(t *testing.T) {
	t.Parallel()
	requireNodeModules(t)
	s := startServer(t, serverConfig{})
	s.addUser(t, testUser, testPass)
	for _, mode := range []struct{ name, secure string }{{"plain", "0"}, {"ftps", "1"}} {
		t.Run(mode.name, func(t *testing.T) {
			r := runCmd(t, 3*time.Minute, cmdOpts{Dir: nodeDir}, "node", "basicftp.mjs", s.Host, strconv.Itoa(s.Port), testUser, testPass, mode.secure)
			if r.Code != 0 || !strings.Contains(r.Stdout, "NODE-OK") {
				t.Errorf("basic-ftp (%s) failed:\n%s\nserver log:\n%s", mode.name, r, s.LogTail(40))
			}
		})
	}
}

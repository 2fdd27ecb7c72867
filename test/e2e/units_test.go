package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/testenv"
)

// TestSystemdUnits: contrib/systemd's units pass `systemd-analyze verify`
// without a warning, checked on copies whose ExecStart names the built
// binary and a real settings file (verify wants the commands to exist).
// The units' promises are checked too: notify type, reload and hardening.
func TestSystemdUnits(t *testing.T) {
	requireTool(t, "systemd-analyze")
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "ferry.toml")
	writeFile(t, conf, []byte("listen = \":21\"\n"))
	for _, name := range []string{"ferry.service", "ferry.socket"} {
		b, err := os.ReadFile(filepath.Join(root, "contrib", "systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		unit := string(b)
		if name == "ferry.service" {
			for _, want := range []string{"\nType=notify\n", "\nNotifyAccess=all\n", "\nExecReload=/usr/bin/ferry reload --data /var/lib/ferry\n",
				"\nUser=ferry\n", "\nNoNewPrivileges=yes\n", "\nProtectSystem=strict\n", "\nReadWritePaths=/var/lib/ferry\n",
				"\nPrivateTmp=yes\n", "\nAmbientCapabilities=CAP_NET_BIND_SERVICE\n", "\nWatchdogSec="} {
				if !strings.Contains(unit, want) {
					t.Errorf("ferry.service lacks %q", strings.TrimSpace(want))
				}
			}
		}
		unit = strings.ReplaceAll(unit, "/usr/bin/ferry", ferryBin)
		unit = strings.ReplaceAll(unit, "/etc/ferry/ferry.toml", conf)
		writeFile(t, filepath.Join(dir, name), []byte(unit))
	}
	r := runCmd(t, time.Minute, cmdOpts{Dir: dir}, "systemd-analyze", "verify", "--man=no", "./ferry.service", "./ferry.socket")
	if r.Code != 0 || strings.TrimSpace(r.Stderr+r.Stdout) != "" {
		t.Fatalf("systemd-analyze verify: want exit 0 and no warning\n%s", r)
	}
	// The check can fail: a unit with an unknown key draws a warning.
	bad := filepath.Join(dir, "bad.service")
	writeFile(t, bad, []byte("[Service]\nTypo=1\nExecStart="+ferryBin+" serve\n"))
	if r := runCmd(t, time.Minute, cmdOpts{Dir: dir}, "systemd-analyze", "verify", "--man=no", "./bad.service"); !strings.Contains(r.Stderr, "Typo") {
		t.Errorf("systemd-analyze verify does not warn about an unknown key\n%s", r)
	}
}

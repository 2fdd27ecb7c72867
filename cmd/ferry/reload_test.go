package main

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/config"
	"github.com/ferryftp/ferry/internal/ftp"
)

// TestRestartOnly: the settings a reload cannot change are named, all of
// them; the others pass.
func TestRestartOnly(t *testing.T) {
	old := config.Defaults()
	old.Data = "/srv/ferry"
	cur := old
	cur.Banner, cur.PassivePorts, cur.ExtraListen, cur.LogLevel = "new", "40000-40010", []string{":2122"}, "debug"
	if err := restartOnly(old, cur); err != nil {
		t.Fatalf("live settings refused: %v", err)
	}
	cur.Data = "/srv/other"
	cur.Storage.Backend = "s3"
	cur.Database.URL = "sqlite:/var/db/u.db"
	cur.AuthHashMemory = 1 << 20
	cur.LogFormat = "json"
	err := restartOnly(old, cur)
	if err == nil {
		t.Fatal("restart-only changes accepted")
	}
	for _, want := range []string{"reload refused, nothing changed", `data: "/srv/ferry" → "/srv/other"`, "[storage]", "[database]", "auth_hash_memory: 0 → 1048576", `log_format: "text" → "json"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal lacks %q: %v", want, err)
		}
	}
}

// TestListenerKeys: the keys a reload compares and an upgrade passes on
// round trip; two listeners on the same address as written stay apart;
// malformed keys are refused.
func TestListenerKeys(t *testing.T) {
	cfg := config.Defaults()
	cfg.Listen = "127.0.0.1:0"
	cfg.ExtraListen = []string{"127.0.0.1:0", "[::1]:2121"}
	cfg.ImplicitTLSListen = "127.0.0.1:0"
	keys := wantedListeners(cfg)
	want := []string{"control 127.0.0.1:0", "control 127.0.0.1:0 1", "control [::1]:2121", "implicit 127.0.0.1:0"}
	if len(keys) != len(want) {
		t.Fatalf("keys %v, want %v", keys, want)
	}
	for i, k := range keys {
		if k.String() != want[i] {
			t.Errorf("key %d: %q, want %q", i, k, want[i])
		}
		if back, ok := parseLnKey(k.String()); !ok || back != k {
			t.Errorf("%q does not round trip: %v %v", k, back, ok)
		}
	}
	for _, bad := range []string{"", "control", "other :21", "control :21 0", "control :21 x", "control :21 1 2", "implicit"} {
		if _, ok := parseLnKey(bad); ok {
			t.Errorf("parseLnKey(%q) accepted", bad)
		}
	}
}

// TestChildEnv: an upgrade's child gets this environment without what named
// this process (socket activation, the watchdog's PID, an earlier upgrade).
func TestChildEnv(t *testing.T) {
	got := childEnv([]string{"PATH=/bin", "LISTEN_PID=7", "LISTEN_FDS=1", "LISTEN_FDNAMES=control", "WATCHDOG_PID=7", "WATCHDOG_USEC=100", "NOTIFY_SOCKET=/run/n", upgradeEnv + "={}", "LISTEN_PIDX=1"})
	want := "PATH=/bin WATCHDOG_USEC=100 NOTIFY_SOCKET=/run/n LISTEN_PIDX=1"
	if strings.Join(got, " ") != want {
		t.Errorf("childEnv: %q, want %q", got, want)
	}
}

// TestTakeInheritanceMalformed: a FERRY_UPGRADE that no upgrading ferry
// wrote is an error, not a crash; without it nothing is inherited.
func TestTakeInheritanceMalformed(t *testing.T) {
	os.Unsetenv(upgradeEnv)
	if in, err := takeInheritance(); in != nil || err != nil {
		t.Fatalf("without %s: %v %v", upgradeEnv, in, err)
	}
	for _, v := range []string{"", "{", `{"ready":0}`, `{"ready":-1}`, `"x"`} {
		t.Setenv(upgradeEnv, v)
		if _, err := takeInheritance(); err == nil {
			t.Errorf("%s=%q accepted", upgradeEnv, v)
		}
		if _, set := os.LookupEnv(upgradeEnv); set {
			t.Errorf("%s=%q left set", upgradeEnv, v)
		}
	}
}

// TestControlSocket: the control socket answers status, refuses unknown
// and over-long commands with an error answer, is private (0600), refuses
// a second server on the same data directory, and replaces a stale socket.
func TestControlSocket(t *testing.T) {
	data := t.TempDir()
	path := filepath.Join(data, controlSocketName)
	if err := os.WriteFile(path, nil, 0o644); err != nil { // a stale file
		t.Fatal(err)
	}
	srv := &ftp.Server{}
	d := &daemon{log: slog.New(slog.DiscardHandler), srv: srv, lns: newListenerSet(srv, io.Discard)}
	c, err := startControl(d, path, nil)
	if err != nil || c == nil {
		t.Fatalf("startControl over a stale file: %v %v", c, err)
	}
	defer c.close(true)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("control socket: %v %v", fi.Mode(), err)
	}
	for _, cmd := range []string{"bogus", "RELOAD", strings.Repeat("x", 300)} {
		a := ask(t, path, cmd)
		if a.OK || !strings.Contains(a.Message, "unknown control command") && len(cmd) < 256 {
			t.Errorf("%.20q: %+v", cmd, a)
		}
	}
	if a := ask(t, path, "reload"); a.OK || a.Message != "this server cannot reload its settings" {
		t.Errorf("reload of a server without a settings source: %+v", a)
	}
	if _, err := startControl(d, path, nil); err == nil || !strings.Contains(err.Error(), "another ferry serves the data directory") {
		t.Errorf("a second control socket on the same data directory: %v", err)
	}
	if c2, err := startControl(d, filepath.Join(data, strings.Repeat("d", 100), controlSocketName), nil); c2 != nil || err != nil {
		t.Errorf("a path too long for a socket: %v %v, want no socket and no error", c2, err)
	}
}

func ask(t *testing.T, path, cmd string) controlAnswer {
	t.Helper()
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	io.WriteString(c, cmd+"\n")
	var a controlAnswer
	line, _ := bufio.NewReader(c).ReadString('\n')
	if err := json.Unmarshal([]byte(line), &a); err != nil && line != "" {
		t.Fatalf("answer %q: %v", line, err)
	}
	return a
}

package e2e

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The logs other tools read and the metrics endpoint, from the built binary
// with real clients (curl) and read by the real tools: webalizer for the
// xferlog, fail2ban-regex for the auth log (with the shipped filter, and
// with fail2ban's stock vsftpd filter in vsftpd mode), promtool for the
// scrape.

// stockVsftpdFilter is fail2ban's own vsftpd filter, as Debian installs it.
const stockVsftpdFilter = "/etc/fail2ban/filter.d/vsftpd.conf"

// failLogin makes one login with a wrong password; curl must fail.
func failLogin(t *testing.T, s *server, user string) {
	t.Helper()
	r := runCmd(t, 60*time.Second, cmdOpts{}, "curl", "-sS", "--max-time", "30", s.URL("ftp", user, "wrong", ""))
	if r.Code == 0 {
		t.Fatalf("a wrong password logged in:\n%s", r)
	}
}

// stopNow stops the server gracefully now, before the test ends: its
// observers write their last lines before it exits.
func stopNow(t *testing.T, s *server) {
	t.Helper()
	s.stop(t)
	s.stopped = true
}

// metricsURL is the endpoint the server printed.
func metricsURL(t *testing.T, s *server) string {
	t.Helper()
	u, ok := addrAfter(s.Stdout(), "Metrics: ")
	if !ok {
		t.Fatalf("no Metrics line in the server's output:\n%s", s.Stdout())
	}
	return u
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}

// waitFor polls until cond holds (the observers write after the replies),
// failing after 15 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func hasLine(text, line string) bool {
	for _, l := range strings.Split(text, "\n") {
		if l == line {
			return true
		}
	}
	return false
}

func readText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestOpsLogsAndMetrics: uploads and downloads by a user and by anonymous,
// a logrotate (rename, then SIGUSR1) and a reload in the middle, and three failed logins
// that get the address banned. The xferlog has one line per transfer across
// the rotation and webalizer's byte total is the bytes moved; fail2ban-regex
// with contrib/fail2ban/filter.d/ferry.conf matches the three failures and
// the ban, all from 127.0.0.1; the scrape has the exact counts and passes
// promtool.
func TestOpsLogsAndMetrics(t *testing.T) {
	requireTool(t, "curl", "promtool", "fail2ban-regex", "webalizer")
	dir := t.TempDir()
	xfer, auth := filepath.Join(dir, "xferlog"), filepath.Join(dir, "auth.log")
	s := startServer(t, serverConfig{Args: []string{"--metrics-listen", "127.0.0.1:0", "--xferlog", xfer, "--auth-log", auth,
		"--ban-threshold", "3", "--log-level", "debug"}})
	murl := metricsURL(t, s)
	s.addUser(t, "alice", "secret")

	a, b := bytes.Repeat([]byte("a"), 100<<10), bytes.Repeat([]byte("b"), 28<<10)
	writeFile(t, filepath.Join(dir, "a.bin"), a)
	writeFile(t, filepath.Join(dir, "my file.bin"), b)
	writeFile(t, filepath.Join(s.Public(), "pub.txt"), bytes.Repeat([]byte("p"), 4<<10))

	curlOK(t, "-T", filepath.Join(dir, "a.bin"), s.URL("ftp", "alice", "secret", "a.bin"))
	curlOK(t, "-T", filepath.Join(dir, "my file.bin"), s.URL("ftp", "alice", "secret", "my%20file.bin"))
	curlOK(t, "-o", filepath.Join(dir, "a.out"), s.URL("ftp", "alice", "secret", "a.bin"))
	curlOK(t, "-o", filepath.Join(dir, "pub.out"), s.URL("ftp", "", "", "pub.txt"))
	waitFor(t, "four xferlog lines", func() bool { return strings.Count(readText(t, xfer), "\n") == 4 })

	// logrotate: move the file away, then SIGUSR1.
	if err := os.Rename(xfer, xfer+".1"); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reopen", func() bool { return strings.Contains(s.LogTail(200), "log files reopened") })
	curlOK(t, "-o", filepath.Join(dir, "b.out"), s.URL("ftp", "alice", "secret", "my%20file.bin"))

	// A reload (SIGHUP) is counted, and reopens the files too.
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reload in the metrics", func() bool {
		return hasLine(get(t, murl), `ferry_config_reloads_total{result="success"} 1`)
	})

	for range 3 {
		failLogin(t, s, "alice")
	}
	waitFor(t, "the ban in the metrics", func() bool {
		return hasLine(get(t, murl), `ferry_bans_total{reason="failed_logins"} 1`)
	})
	out := get(t, murl)
	for _, line := range []string{
		`ferry_sessions_total 8`,
		`ferry_logins_total{method="password",result="ok"} 4`,
		`ferry_logins_total{method="anonymous",result="ok"} 1`,
		`ferry_logins_total{method="password",result="failed"} 3`,
		`ferry_login_failures_total{reason="credentials"} 3`,
		`ferry_transfers_total{direction="upload",result="ok"} 2`,
		`ferry_transfers_total{direction="download",result="ok"} 3`,
		`ferry_transfer_bytes_total{direction="upload"} ` + strconv.Itoa((100+28)<<10),
		`ferry_transfer_bytes_total{direction="download"} ` + strconv.Itoa((100+4+28)<<10),
		`ferry_data_connections_opened_total 5`,
		`ferry_bans_total{reason="failed_logins"} 1`,
		`ferry_bans_active 1`,
		`ferry_passive_ports ` + strconv.Itoa(s.PassiveHi-s.PassiveLo+1),
		`ferry_passive_ports_in_use 0`,
	} {
		if !hasLine(out, line) {
			t.Errorf("scrape lacks %s", line)
		}
	}
	if !strings.Contains(out, "\nferry_tls_certificate_expiry_timestamp_seconds ") || !strings.Contains(out, "\nferry_build_info{") {
		t.Error("scrape lacks the certificate expiry or the build info")
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", out)
	}
	promtoolCheck(t, out)
	stopNow(t, s) // the last lines are written before the process exits

	// The xferlog across the rotation.
	lines := strings.Split(strings.TrimSuffix(readText(t, xfer+".1")+readText(t, xfer), "\n"), "\n")
	if len(lines) != 5 || strings.Count(readText(t, xfer), "\n") != 1 {
		t.Fatalf("xferlog.1 + xferlog: %d lines, want 4 + 1:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	for i, want := range []string{
		"127.0.0.1 102400 /a.bin b _ i r alice ftp 0 * c",
		"127.0.0.1 28672 /my_file.bin b _ i r alice ftp 0 * c",
		"127.0.0.1 102400 /a.bin b _ o r alice ftp 0 * c",
		"127.0.0.1 4096 /pub.txt b _ o a ftp@example.com ftp 0 * c",
		"127.0.0.1 28672 /my_file.bin b _ o r alice ftp 0 * c",
	} {
		f := strings.Split(lines[i], " ")
		if len(f) != 18 || strings.Join(f[6:], " ") != want {
			t.Errorf("xferlog line %d: %q, want 18 fields ending %q", i+1, lines[i], want)
		}
	}
	combined := filepath.Join(dir, "xferlog.all")
	writeFile(t, combined, []byte(strings.Join(lines, "\n")+"\n"))
	if kb := webalizerKB(t, combined); kb != (100 + 28 + 100 + 4 + 28) {
		t.Errorf("webalizer reports %d kB, want %d", kb, 100+28+100+4+28)
	}

	// The auth log, read by fail2ban with the shipped filter.
	filter := filepath.Join(moduleRoot(t), "contrib", "fail2ban", "filter.d", "ferry.conf")
	matched, hosts := fail2banRegex(t, auth, filter)
	if matched != 4 || strings.Join(hosts, " ") != "127.0.0.1 127.0.0.1 127.0.0.1 127.0.0.1" {
		t.Errorf("fail2ban-regex with ferry.conf: %d matched, hosts %q; want 4 (3 failures and the ban), all 127.0.0.1\n%s", matched, hosts, readText(t, auth))
	}
	if n := strings.Count(readText(t, auth), "LOGIN OK"); n != 5 {
		t.Errorf("%d LOGIN OK lines, want 5:\n%s", n, readText(t, auth))
	}
}

// TestVsftpdAuthLog: in vsftpd mode, fail2ban's stock vsftpd filter finds
// each failed login and its host, and not the good one.
func TestVsftpdAuthLog(t *testing.T) {
	requireTool(t, "curl", "fail2ban-regex")
	if _, err := os.Stat(stockVsftpdFilter); err != nil {
		if inCI {
			t.Fatalf("fail2ban's stock vsftpd filter is missing: %v", err)
		}
		t.Skipf("no %s: %v", stockVsftpdFilter, err)
	}
	auth := filepath.Join(t.TempDir(), "vsftpd.log")
	s := startServer(t, serverConfig{Args: []string{"--auth-log", auth, "--auth-log-format", "vsftpd", "--ban-threshold", "0"}})
	s.addUser(t, "alice", "secret")
	curlOK(t, "-l", s.URL("ftp", "alice", "secret", ""))
	failLogin(t, s, "alice")
	failLogin(t, s, "nobody")
	stopNow(t, s)
	text := readText(t, auth)
	if !strings.Contains(text, `[alice] OK LOGIN: Client "127.0.0.1"`) {
		t.Errorf("no OK LOGIN line:\n%s", text)
	}
	matched, hosts := fail2banRegex(t, auth, stockVsftpdFilter)
	if matched != 2 || strings.Join(hosts, " ") != "127.0.0.1 127.0.0.1" {
		t.Errorf("fail2ban-regex with the stock vsftpd filter: %d matched, hosts %q; want 2, both 127.0.0.1\n%s", matched, hosts, text)
	}
}

// fail2banRegex runs fail2ban-regex on a log with a filter and returns the
// number of matched lines and the hosts of the matches.
func fail2banRegex(t *testing.T, log, filter string) (int, []string) {
	t.Helper()
	r := runCmd(t, 60*time.Second, cmdOpts{}, "fail2ban-regex", log, filter)
	if r.Code != 0 {
		t.Fatalf("fail2ban-regex:\n%s", r)
	}
	matched := -1
	for _, l := range strings.Split(r.Stdout, "\n") {
		// "Lines: 9 lines, 0 ignored, 4 matched, 5 missed"
		if rest, ok := strings.CutPrefix(l, "Lines: "); ok {
			for _, part := range strings.Split(rest, ", ") {
				if n, ok := strings.CutSuffix(part, " matched"); ok {
					matched, _ = strconv.Atoi(n)
				}
			}
		}
	}
	if matched < 0 {
		t.Fatalf("no Lines: summary from fail2ban-regex:\n%s", r)
	}
	r = runCmd(t, 60*time.Second, cmdOpts{}, "fail2ban-regex", "-o", "ip", log, filter)
	if r.Code != 0 {
		t.Fatalf("fail2ban-regex -o ip:\n%s", r)
	}
	return matched, strings.Fields(r.Stdout)
}

// webalizerKB runs webalizer on an xferlog (-F ftp) into a temporary
// directory and returns the month's total kB from its history file.
func webalizerKB(t *testing.T, xferlog string) int {
	t.Helper()
	out := t.TempDir()
	r := runCmd(t, 60*time.Second, cmdOpts{Dir: out}, "webalizer", "-F", "ftp", "-p", "-Q", "-n", "ferry.test", "-o", out, xferlog)
	if r.Code != 0 {
		t.Fatalf("webalizer:\n%s", r)
	}
	// webalizer.hist: "month year hits files sites kbytes first last pages visits".
	for _, l := range strings.Split(readText(t, filepath.Join(out, "webalizer.hist")), "\n") {
		f := strings.Fields(l)
		if len(f) >= 6 && f[0] != "#" {
			if hits, _ := strconv.Atoi(f[2]); hits > 0 {
				kb, err := strconv.Atoi(f[5])
				if err != nil {
					t.Fatalf("webalizer.hist line %q", l)
				}
				return kb
			}
		}
	}
	t.Fatalf("webalizer counted no hits:\n%s", readText(t, filepath.Join(out, "webalizer.hist")))
	return 0
}

// promtoolCheck runs `promtool check metrics` on a scrape.
func promtoolCheck(t *testing.T, scrape string) {
	t.Helper()
	cmd := exec.Command("promtool", "check", "metrics")
	cmd.Stdin = strings.NewReader(scrape)
	if res, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(res)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, res)
	}
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(wd, "..", "..")
}

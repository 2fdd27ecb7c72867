package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rcloneFstests is the file name of rclone's FTP backend test binary,
// which .ci/run builds into the tools directory from Debian's rclone source
// (golang-github-rclone-rclone-dev, rclone 1.60) with Debian's Go 1.19.
const rcloneFstests = "rclone-ftp-fstests.test"

// findRcloneFstests returns the path of rclone's FTP test binary, skipping
// the test (failing it under CI) when it is not built.
func findRcloneFstests(t *testing.T) string {
	t.Helper()
	var cands []string
	if d := os.Getenv("FERRY_TOOLS"); d != "" {
		cands = append(cands, filepath.Join(d, rcloneFstests))
	}
	if h, err := os.UserHomeDir(); err == nil {
		cands = append(cands, filepath.Join(h, ".cache", "ferry-tools", rcloneFstests))
	}
	for _, c := range cands {
		if fi, err := os.Stat(c); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return c
		}
	}
	msg := rcloneFstests + " not found in $FERRY_TOOLS or ~/.cache/ferry-tools (.ci/run builds it from Debian's golang-github-rclone-rclone-dev)"
	if inCI {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// TestRcloneFsEncoding runs rclone's own FsEncoding suite (fstests, the
// integration tests of rclone's FTP backend, TestIntegration/FsMkdir/
// FsEncoding) against the binary: a directory and a file under each of
// rclone's unusual names (control characters, dots, punctuation, leading
// and trailing spaces, CR, LF, tabs, invalid UTF-8 "\xfe", URL escapes) are
// created, listed, removed, with rclone's default FTP encoding, which sends
// the invalid UTF-8 as its raw bytes.
func TestRcloneFsEncoding(t *testing.T) {
	t.Parallel()
	bin := findRcloneFstests(t)
	requireTool(t, "rclone") // for rclone obscure
	s := startServer(t, serverConfig{})
	s.addUser(t, testUser, testPass)
	obscured := runCmd(t, time.Minute, cmdOpts{}, "rclone", "obscure", testPass)
	if obscured.Code != 0 {
		t.Fatalf("rclone obscure: %s", obscured)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "rclone.conf")
	writeFile(t, conf, []byte("[TestFerry]\ntype = ftp\nhost = "+s.Host+"\nport = "+strconv.Itoa(s.Port)+
		"\nuser = "+testUser+"\npass = "+strings.TrimSpace(obscured.Stdout)+"\n"))
	// fstests looks for its test-server scripts under the working
	// directory; an empty set means "no server to start".
	if err := os.MkdirAll(filepath.Join(dir, "fstest", "testserver", "init.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := runCmd(t, 5*time.Minute, cmdOpts{Dir: dir, Env: []string{"RCLONE_CONFIG=" + conf}}, bin,
		"-test.run", "^TestIntegration$/^FsMkdir$/^FsEncoding$", "-test.v", "-remote", "TestFerry:")
	if r.Code != 0 || !strings.Contains(r.Stdout, "--- PASS: TestIntegration/FsMkdir/FsEncoding ") {
		t.Fatalf("rclone's FsEncoding suite failed:\n%s", r)
	}
	for _, name := range []string{"invalid_UTF-8", "control_chars", "trailing_LF"} {
		if !strings.Contains(r.Stdout, "--- PASS: TestIntegration/FsMkdir/FsEncoding/"+name+" ") {
			t.Errorf("FsEncoding/%s did not run and pass:\n%s", name, r)
		}
	}
}

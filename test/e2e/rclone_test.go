package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// byteNameTree is a tree of names that are not UTF-8 (Latin-1 and a lone
// 0x80), relative path to content. None holds 0xFF: rclone's FTP client does
// not double IAC on the control connection (docs/commands.md, "Names").
var byteNameTree = map[string]string{
	"caf\xe9.txt":         "one",
	"a\x80b":              "two",
	"d\xe9/\xe9t\xe9":     "three",
	"d\xe9/sub/na\xefve":  "four",
	"utf8-caf\u00e9.txt":  "five",
	"mixed-\u00e9-\xe9.x": "six",
}

// TestRcloneByteNames copies a tree of names that are not UTF-8 to Ferry
// with rclone (an :ftp: remote, with rclone's default FTP encoding and with
// --ftp-encoding None), checks the names on disk byte for byte, lists them
// with lsf, renames one with moveto, copies the tree back, and deletes it.
func TestRcloneByteNames(t *testing.T) {
	t.Parallel()
	requireTool(t, "rclone")
	s := startServer(t, serverConfig{})
	home := s.addUser(t, testUser, testPass)
	obscured := runCmd(t, time.Minute, cmdOpts{}, "rclone", "obscure", testPass)
	if obscured.Code != 0 {
		t.Fatalf("rclone obscure: %s", obscured)
	}
	remote := ":ftp,host=" + s.Host + ",port=" + strconv.Itoa(s.Port) + ",user=" + testUser + ",pass=" + strings.TrimSpace(obscured.Stdout) + ":"
	src := t.TempDir()
	for name, content := range byteNameTree {
		writeFile(t, filepath.Join(src, filepath.FromSlash(name)), []byte(content))
	}
	var want []string
	for name := range byteNameTree {
		want = append(want, name)
	}
	slices.Sort(want)
	env := cmdOpts{Env: []string{"RCLONE_CONFIG=" + filepath.Join(t.TempDir(), "rclone.conf")}}

	for _, enc := range [][]string{nil, {"--ftp-encoding", "None"}} {
		t.Run("encoding="+strings.Join(enc, ""), func(t *testing.T) {
			rc := func(args ...string) cmdResult {
				t.Helper()
				r := runCmd(t, 2*time.Minute, env, "rclone", append(append([]string{"-q"}, enc...), args...)...)
				if r.Code != 0 {
					t.Fatalf("rclone %s:\n%s", strings.Join(args, " "), r)
				}
				return r
			}
			rc("copy", src, remote+"dst")
			for name, content := range byteNameTree {
				checkFileContent(t, filepath.Join(home, "dst", filepath.FromSlash(name)), []byte(content))
			}
			got := strings.Split(strings.TrimSpace(rc("lsf", "-R", "--files-only", remote+"dst").Stdout), "\n")
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("rclone lsf: %q, want %q", got, want)
			}
			rc("moveto", remote+"dst/caf\xe9.txt", remote+"dst/d\xe9/moved-\xe9")
			checkFileContent(t, filepath.Join(home, "dst", "d\xe9", "moved-\xe9"), []byte("one"))
			if _, err := os.Stat(filepath.Join(home, "dst", "caf\xe9.txt")); !os.IsNotExist(err) {
				t.Errorf("moveto left the old name: %v", err)
			}
			out := t.TempDir()
			rc("copy", remote+"dst", out)
			checkFileContent(t, filepath.Join(out, "d\xe9", "moved-\xe9"), []byte("one"))
			checkFileContent(t, filepath.Join(out, "a\x80b"), []byte("two"))
			checkFileContent(t, filepath.Join(out, "d\xe9", "sub", "na\xefve"), []byte("four"))
			rc("delete", remote+"dst")
			rc("rmdirs", remote+"dst")
			if ents, err := os.ReadDir(home); err != nil || len(ents) != 0 {
				t.Errorf("home after delete and rmdirs: %v %v", ents, err)
			}
		})
	}
}

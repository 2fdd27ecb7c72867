package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// curl runs curl with verbose output (server replies appear in stderr as
// "< CODE ...") and bounded times.
func curl(t testing.TB, args ...string) cmdResult {
	t.Helper()
	base := []string{"-sS", "-v", "--connect-timeout", "10", "--max-time", "240"}
	return runCmd(t, 5*time.Minute, cmdOpts{}, "curl", append(base, args...)...)
}

// curlOK runs curl and reports a failure unless it exits 0.
func curlOK(t testing.TB, args ...string) cmdResult {
	t.Helper()
	r := curl(t, args...)
	if r.Code != 0 {
		t.Errorf("curl failed:\n%s", r)
	}
	return r
}

// curlFail runs curl and reports a failure unless it exits with wantCode and
// the server's verbose replies contain every string in replies.
func curlFail(t testing.TB, wantCode int, replies []string, args ...string) cmdResult {
	t.Helper()
	r := curl(t, args...)
	if r.Code != wantCode {
		t.Errorf("curl exit %d, want %d:\n%s", r.Code, wantCode, r)
		return r
	}
	for _, want := range replies {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("curl verbose output lacks %q:\n%s", want, r)
		}
	}
	return r
}

// curlModes are the data-connection set-ups exercised by curl.
var curlModes = []struct {
	name string
	args []string
	big  bool // also move the 100 MiB file
}{
	{"passive-epsv", nil, true},
	{"passive-pasv", []string{"--disable-epsv"}, false},
	{"active-eprt", []string{"-P", "127.0.0.1"}, true},
	{"active-port", []string{"-P", "127.0.0.1", "--disable-eprt"}, false},
}

func TestCurl(t *testing.T) {
	t.Parallel()
	requireTool(t, "curl")
	s := startServer(t, serverConfig{})
	home := s.addUser(t, testUser, testPass)
	local := t.TempDir()
	u := func(path string) string { return s.URL("ftp", testUser, testPass, path) }

	t.Run("transfer", func(t *testing.T) {
		type sample struct {
			name string
			path string
			sum  string
			size int64
		}
		var samples []sample
		for i, n := range []int{0, 1, 1 << 20} {
			b := randBytes(uint64(100+i), n)
			p := filepath.Join(local, fmt.Sprintf("sample-%d.bin", n))
			writeFile(t, p, b)
			samples = append(samples, sample{fmt.Sprintf("%dB", n), p, sha(b), int64(n)})
		}
		for _, m := range curlModes {
			list := samples
			if m.big {
				bp, bs := bigFile(t)
				list = append(slices.Clone(samples), sample{"100MiB", bp, bs, bigSize})
			}
			for _, smp := range list {
				name := m.name + "-" + smp.name + ".bin"
				t.Run(m.name+"/"+smp.name+"/upload", func(t *testing.T) {
					args := append(slices.Clone(m.args), "-T", smp.path, u("up-"+name))
					curlOK(t, args...)
					checkFileSHA(t, filepath.Join(home, "up-"+name), smp.sum, smp.size)
				})
				t.Run(m.name+"/"+smp.name+"/download", func(t *testing.T) {
					linkOrCopy(t, smp.path, filepath.Join(home, "down-"+name))
					out := filepath.Join(t.TempDir(), "out.bin")
					args := append(slices.Clone(m.args), "-o", out, u("down-"+name))
					r := curlOK(t, args...)
					if _, err := os.Stat(out); os.IsNotExist(err) && smp.size == 0 && r.Code == 0 {
						// curl may not create the output file for an empty body.
						return
					}
					checkFileSHA(t, out, smp.sum, smp.size)
				})
			}
		}
	})

	t.Run("listing", func(t *testing.T) {
		dir := filepath.Join(home, "listdir")
		writeFile(t, filepath.Join(dir, "a.txt"), []byte("a\n"))
		writeFile(t, filepath.Join(dir, "b c.txt"), []byte("bc\n"))
		writeFile(t, filepath.Join(dir, "été.txt"), []byte("summer\n"))
		writeFile(t, filepath.Join(dir, "sub", "inner.txt"), []byte("x"))
		want := []string{"a.txt", "b c.txt", "sub", "été.txt"}

		for _, method := range []string{"multicwd", "nocwd", "singlecwd"} {
			t.Run("LIST/"+method, func(t *testing.T) {
				r := curlOK(t, "--ftp-method", method, u("listdir/"))
				lines := slices.DeleteFunc(nonEmptyLines(r.Stdout), func(l string) bool { return strings.HasPrefix(l, "total ") })
				if len(lines) != len(want) {
					t.Errorf("LIST returned %d lines, want %d:\n%s", len(lines), len(want), r.Stdout)
				}
				for _, name := range want {
					line := findSuffix(lines, " "+name)
					switch {
					case line == "":
						t.Errorf("LIST output lacks %q:\n%s", name, r.Stdout)
					case name == "sub" && !strings.HasPrefix(line, "d"):
						t.Errorf("LIST line of directory sub does not start with d: %q", line)
					case name != "sub" && !strings.HasPrefix(line, "-"):
						t.Errorf("LIST line of file %s does not start with -: %q", name, line)
					}
				}
			})
			t.Run("NLST/"+method, func(t *testing.T) {
				r := curlOK(t, "--ftp-method", method, "--list-only", u("listdir/"))
				got := nonEmptyLines(r.Stdout)
				for i, g := range got {
					got[i] = strings.TrimPrefix(g, "listdir/") // NLST with a path argument may echo it
				}
				slices.Sort(got)
				if !slices.Equal(got, want) {
					t.Errorf("NLST names %q, want %q", got, want)
				}
			})
		}
		t.Run("empty-dir", func(t *testing.T) {
			if err := os.MkdirAll(filepath.Join(home, "emptydir"), 0o755); err != nil {
				t.Fatal(err)
			}
			r := curlOK(t, "--list-only", u("emptydir/"))
			if strings.TrimSpace(r.Stdout) != "" {
				t.Errorf("NLST of an empty directory returned %q", r.Stdout)
			}
		})
		t.Run("missing-dir", func(t *testing.T) {
			// curl CWDs into the directory first: 550 → CURLE_REMOTE_ACCESS_DENIED (9).
			curlFail(t, 9, []string{"< 550"}, u("no-such-dir/"))
		})
	})

	t.Run("ascii", func(t *testing.T) {
		lf := []byte("line one\nline two\n\n\tindented line\nlast line\n")
		crlf := bytes.ReplaceAll(lf, []byte("\n"), []byte("\r\n"))
		src := filepath.Join(local, "ascii-lf.txt")
		writeFile(t, src, lf)

		t.Run("upload-lf", func(t *testing.T) {
			// curl sends the file as is under TYPE A; the server stores LF.
			curlOK(t, "--use-ascii", "-T", src, u("ascii-lf.txt"))
			checkFileContent(t, filepath.Join(home, "ascii-lf.txt"), lf)
		})
		t.Run("upload-crlf", func(t *testing.T) {
			// --crlf turns LF into CRLF on the wire; the server must store LF.
			curlOK(t, "--use-ascii", "--crlf", "-T", src, u("ascii-crlf.txt"))
			checkFileContent(t, filepath.Join(home, "ascii-crlf.txt"), lf)
		})
		// In ASCII mode curl turns the CRLF it receives back into LF before
		// writing the file; %{size_download} counts the bytes on the wire.
		t.Run("download-type-a", func(t *testing.T) {
			writeFile(t, filepath.Join(home, "ascii-src.txt"), lf)
			out := filepath.Join(t.TempDir(), "a.txt")
			r := curlOK(t, "-w", "size_download=%{size_download}", "-o", out, u("ascii-src.txt;type=a"))
			if want := fmt.Sprintf("size_download=%d", len(crlf)); !strings.Contains(r.Stdout, want) {
				t.Errorf("ASCII download of %d LF-terminated bytes: curl reports %q, want %q (CRLF on the wire)", len(lf), r.Stdout, want)
			}
			checkFileContent(t, out, lf)
		})
		t.Run("download-use-ascii", func(t *testing.T) {
			writeFile(t, filepath.Join(home, "ascii-src2.txt"), lf)
			out := filepath.Join(t.TempDir(), "a.txt")
			r := curlOK(t, "-w", "size_download=%{size_download}", "--use-ascii", "-o", out, u("ascii-src2.txt"))
			if want := fmt.Sprintf("size_download=%d", len(crlf)); !strings.Contains(r.Stdout, want) {
				t.Errorf("ASCII download of %d LF-terminated bytes: curl reports %q, want %q (CRLF on the wire)", len(lf), r.Stdout, want)
			}
			checkFileContent(t, out, lf)
		})
		t.Run("download-binary-unchanged", func(t *testing.T) {
			writeFile(t, filepath.Join(home, "ascii-src3.txt"), lf)
			out := filepath.Join(t.TempDir(), "a.txt")
			curlOK(t, "-o", out, u("ascii-src3.txt"))
			checkFileContent(t, out, lf)
		})
	})

	t.Run("resume", func(t *testing.T) {
		data := randBytes(7, 3<<20+123)
		writeFile(t, filepath.Join(home, "resume-src.bin"), data)

		t.Run("download-continue", func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "r.bin")
			writeFile(t, out, data[:1234567])
			r := curlOK(t, "-C", "-", "-o", out, u("resume-src.bin"))
			if !strings.Contains(r.Stderr, "> REST 1234567") {
				t.Errorf("curl did not send REST 1234567:\n%s", r)
			}
			checkFileContent(t, out, data)
		})
		t.Run("download-continue-at", func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "r.bin")
			writeFile(t, out, data[:1000])
			curlOK(t, "--continue-at", "1000", "-o", out, u("resume-src.bin"))
			checkFileContent(t, out, data)
		})
		t.Run("download-range", func(t *testing.T) {
			// A closed range makes curl stop reading early and abort the transfer.
			out := filepath.Join(t.TempDir(), "r.bin")
			curlOK(t, "-r", "1000-1999", "-o", out, u("resume-src.bin"))
			checkFileContent(t, out, data[1000:2000])
			// The session that aborted must not have hurt the server.
			out2 := filepath.Join(t.TempDir(), "r2.bin")
			curlOK(t, "-r", "2000000-", "-o", out2, u("resume-src.bin"))
			checkFileContent(t, out2, data[2000000:])
		})
		t.Run("upload-continue", func(t *testing.T) {
			src := filepath.Join(t.TempDir(), "full.bin")
			writeFile(t, src, data)
			writeFile(t, filepath.Join(home, "resume-up.bin"), data[:777777])
			curlOK(t, "-C", "-", "-T", src, u("resume-up.bin"))
			checkFileContent(t, filepath.Join(home, "resume-up.bin"), data)
		})
		t.Run("upload-append", func(t *testing.T) {
			src := filepath.Join(t.TempDir(), "tail.bin")
			writeFile(t, src, data[500000:])
			writeFile(t, filepath.Join(home, "append.bin"), data[:500000])
			r := curlOK(t, "--append", "-T", src, u("append.bin"))
			if !strings.Contains(r.Stderr, "> APPE") {
				t.Errorf("curl did not send APPE:\n%s", r)
			}
			checkFileContent(t, filepath.Join(home, "append.bin"), data)
		})
		t.Run("upload-append-new", func(t *testing.T) {
			src := filepath.Join(t.TempDir(), "tail.bin")
			writeFile(t, src, data[:4096])
			curlOK(t, "--append", "-T", src, u("append-new.bin"))
			checkFileContent(t, filepath.Join(home, "append-new.bin"), data[:4096])
		})
	})

	t.Run("quote", func(t *testing.T) {
		t.Run("MKD", func(t *testing.T) {
			curlOK(t, "-Q", "MKD qdir", "-Q", "MKD q dir 2", "--list-only", u(""))
			for _, d := range []string{"qdir", "q dir 2"} {
				if fi, err := os.Stat(filepath.Join(home, d)); err != nil || !fi.IsDir() {
					t.Errorf("MKD %s: no directory on disk: %v", d, err)
				}
			}
		})
		t.Run("DELE", func(t *testing.T) {
			writeFile(t, filepath.Join(home, "qfile"), []byte("x"))
			curlOK(t, "-Q", "DELE qfile", "--list-only", u(""))
			mustNotExist(t, filepath.Join(home, "qfile"))
		})
		t.Run("RNFR-RNTO", func(t *testing.T) {
			writeFile(t, filepath.Join(home, "before.txt"), []byte("rename me"))
			curlOK(t, "-Q", "RNFR before.txt", "-Q", "RNTO after name.txt", "--list-only", u(""))
			mustNotExist(t, filepath.Join(home, "before.txt"))
			checkFileContent(t, filepath.Join(home, "after name.txt"), []byte("rename me"))
		})
		t.Run("RMD", func(t *testing.T) {
			if err := os.MkdirAll(filepath.Join(home, "rmdir-me"), 0o755); err != nil {
				t.Fatal(err)
			}
			curlOK(t, "-Q", "RMD rmdir-me", "--list-only", u(""))
			mustNotExist(t, filepath.Join(home, "rmdir-me"))
		})
		t.Run("post-transfer-DELE", func(t *testing.T) {
			writeFile(t, filepath.Join(home, "fetch-then-delete.txt"), []byte("once"))
			out := filepath.Join(t.TempDir(), "o.txt")
			curlOK(t, "-Q", "-DELE fetch-then-delete.txt", "-o", out, u("fetch-then-delete.txt"))
			checkFileContent(t, out, []byte("once"))
			mustNotExist(t, filepath.Join(home, "fetch-then-delete.txt"))
		})
		t.Run("DELE-missing", func(t *testing.T) {
			curlFail(t, 21, []string{"< 550"}, "-Q", "DELE no-such-file", "--list-only", u(""))
		})
		t.Run("RMD-not-empty", func(t *testing.T) {
			writeFile(t, filepath.Join(home, "full-dir", "f"), []byte("x"))
			curlFail(t, 21, []string{"< 550"}, "-Q", "RMD full-dir", "--list-only", u(""))
			checkFileContent(t, filepath.Join(home, "full-dir", "f"), []byte("x"))
		})
	})

	t.Run("names", func(t *testing.T) {
		content := []byte("unicode and spaces\n")
		src := filepath.Join(local, "names.txt")
		writeFile(t, src, content)
		for _, c := range []struct{ escaped, onDisk string }{
			{"%C3%A9t%C3%A9.txt", "été.txt"},
			{"my%20file.txt", "my file.txt"},
			{"%E6%97%A5%E6%9C%AC%E8%AA%9E%20%F0%9F%9A%A2.txt", "日本語 🚢.txt"},
			{"dir%20with%20space/sub%C3%A9/file%20name.txt", "dir with space/subé/file name.txt"},
		} {
			t.Run(c.onDisk, func(t *testing.T) {
				curlOK(t, "--ftp-create-dirs", "-T", src, u(c.escaped))
				checkFileContent(t, filepath.Join(home, filepath.FromSlash(c.onDisk)), content)
				out := filepath.Join(t.TempDir(), "o.txt")
				curlOK(t, "-o", out, u(c.escaped))
				checkFileContent(t, out, content)
				dir, base := filepath.Split(c.escaped)
				r := curlOK(t, "--list-only", u(dir))
				if !slices.Contains(nonEmptyLines(r.Stdout), filepath.Base(c.onDisk)) {
					t.Errorf("NLST of %q lacks %q (%s):\n%s", dir, filepath.Base(c.onDisk), base, r.Stdout)
				}
			})
		}
	})

	t.Run("login-denied", func(t *testing.T) {
		curlFail(t, 67, []string{"< 530"}, "--list-only", s.URL("ftp", testUser, "wrong", ""))
	})

	t.Run("missing-file", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "o")
		curlFail(t, 78, []string{"< 550"}, "-o", out, u("no-such-file.bin"))
	})
}

func TestCurlAnonymous(t *testing.T) {
	t.Parallel()
	requireTool(t, "curl")
	s := startServer(t, serverConfig{})
	pub := s.Public()
	if fi, err := os.Stat(pub); err != nil || !fi.IsDir() {
		t.Fatalf("DATA/public not created at start: %v", err)
	}
	writeFile(t, filepath.Join(pub, "readme.txt"), []byte("hello anonymous\n"))
	writeFile(t, filepath.Join(s.Data, "outside.txt"), []byte("not for anonymous\n"))
	writeFile(t, filepath.Join(pub, "pub dir", "inner.bin"), randBytes(3, 70000))
	src := filepath.Join(t.TempDir(), "up.txt")
	writeFile(t, src, []byte("should not land\n"))

	for _, login := range []struct{ user, pass string }{
		{"", ""}, // curl's default: anonymous / ftp@example.com
		{"anonymous", "guest@example.org"},
		{"ftp", "x"},
	} {
		name := login.user
		if name == "" {
			name = "default"
		}
		u := func(path string) string { return s.URL("ftp", login.user, login.pass, path) }
		t.Run(name, func(t *testing.T) {
			t.Run("read", func(t *testing.T) {
				out := filepath.Join(t.TempDir(), "o")
				curlOK(t, "-o", out, u("readme.txt"))
				checkFileContent(t, out, []byte("hello anonymous\n"))
				curlOK(t, "-o", out, u("pub%20dir/inner.bin"))
				checkFileContent(t, out, randBytes(3, 70000))
				r := curlOK(t, "--list-only", u(""))
				got := nonEmptyLines(r.Stdout)
				slices.Sort(got)
				if want := []string{"pub dir", "readme.txt"}; !slices.Equal(got, want) {
					t.Errorf("anonymous NLST %q, want %q", got, want)
				}
			})
			t.Run("upload-refused", func(t *testing.T) {
				curlFail(t, 25, []string{"< 550"}, "-T", src, u("up.txt"))
				mustNotExist(t, filepath.Join(pub, "up.txt"))
				curlFail(t, 25, []string{"< 550"}, "-T", src, u("readme.txt"))
				checkFileContent(t, filepath.Join(pub, "readme.txt"), []byte("hello anonymous\n"))
			})
			t.Run("append-refused", func(t *testing.T) {
				curlFail(t, 25, []string{"< 550"}, "--append", "-T", src, u("readme.txt"))
				checkFileContent(t, filepath.Join(pub, "readme.txt"), []byte("hello anonymous\n"))
			})
			t.Run("MKD-refused", func(t *testing.T) {
				curlFail(t, 21, []string{"< 550"}, "-Q", "MKD newdir", "--list-only", u(""))
				mustNotExist(t, filepath.Join(pub, "newdir"))
			})
			t.Run("DELE-refused", func(t *testing.T) {
				curlFail(t, 21, []string{"< 550"}, "-Q", "DELE readme.txt", "--list-only", u(""))
				checkFileContent(t, filepath.Join(pub, "readme.txt"), []byte("hello anonymous\n"))
			})
			t.Run("RMD-refused", func(t *testing.T) {
				curlFail(t, 21, []string{"< 550"}, "-Q", "RMD pub dir", "--list-only", u(""))
				if _, err := os.Stat(filepath.Join(pub, "pub dir")); err != nil {
					t.Errorf("pub dir removed: %v", err)
				}
			})
			t.Run("rename-refused", func(t *testing.T) {
				// Either RNFR or RNTO may carry the 550.
				curlFail(t, 21, []string{"< 550"}, "-Q", "RNFR readme.txt", "-Q", "RNTO moved.txt", "--list-only", u(""))
				checkFileContent(t, filepath.Join(pub, "readme.txt"), []byte("hello anonymous\n"))
				mustNotExist(t, filepath.Join(pub, "moved.txt"))
			})
			t.Run("escape-refused", func(t *testing.T) {
				// The anonymous root is public/: DATA/outside.txt is above it.
				out := filepath.Join(t.TempDir(), "o")
				for _, p := range []string{"..%2Foutside.txt", "%2F..%2Foutside.txt", "..%2F..%2Foutside.txt"} {
					curlFail(t, 78, []string{"< 550"}, "--ftp-method", "nocwd", "-o", out, u(p))
				}
			})
		})
	}

	t.Run("anonymous-disabled", func(t *testing.T) {
		s2 := startServer(t, serverConfig{NoAnonymous: true})
		curlFail(t, 67, []string{"< 530"}, "--list-only", s2.URL("ftp", "", "", ""))
	})
}

func nonEmptyLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimRight(l, "\r")
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

func findSuffix(lines []string, suffix string) string {
	for _, l := range lines {
		if strings.HasSuffix(l, suffix) {
			return l
		}
	}
	return ""
}

package e2e

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// lftpBase are the settings every lftp run starts with: fail on the first
// error, no retries (a retry could hide a server fault), no TLS unless asked,
// UTF-8 file names.
var lftpBase = []string{
	"set cmd:fail-exit yes",
	"set cmd:interactive no",
	"set net:max-retries 1",
	"set net:timeout 30",
	"set net:reconnect-interval-base 1",
	"set net:reconnect-interval-max 1",
	"set net:persist-retries 0",
	"set ftp:ssl-allow no",
	"set file:charset UTF-8",
	"set xfer:clobber on",
}

// lftp runs a script of lftp commands against openURL (ftp://host:port or
// ftps://host:port) as user: the "set" lines go before the open command, the
// rest after it.
func lftp(t testing.TB, openURL, user, pass string, lines ...string) cmdResult {
	t.Helper()
	dir := t.TempDir()
	script := slices.Clone(lftpBase)
	var cmds []string
	for _, l := range lines {
		if strings.HasPrefix(l, "set ") {
			script = append(script, l)
		} else {
			cmds = append(cmds, l)
		}
	}
	script = append(script, fmt.Sprintf("open -u %s,%s %s", user, pass, openURL))
	script = append(script, cmds...)
	path := filepath.Join(dir, "script.lftp")
	if err := os.WriteFile(path, []byte(strings.Join(script, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runCmd(t, 5*time.Minute, cmdOpts{
		Env: []string{"HOME=" + dir, "LC_ALL=C.UTF-8", "LANG=C.UTF-8"},
	}, "lftp", "-f", path)
	r.Cmd += "\n" + strings.Join(script, "\n")
	return r
}

// ftpURL is the ftp://host:port of a server's control listener.
func (s *server) ftpURL() string {
	return "ftp://" + net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
}

func lftpOK(t testing.TB, s *server, lines ...string) cmdResult {
	t.Helper()
	r := lftp(t, s.ftpURL(), testUser, testPass, lines...)
	if r.Code != 0 {
		t.Errorf("lftp failed:\n%s", r)
	}
	return r
}

// makeTree writes n files with random sizes (0 to 64 KiB) into nested
// directories under root, some names with spaces and non-ASCII letters, plus
// one empty directory, and returns the tree.
func makeTree(t testing.TB, root string, n int, seed uint64) tree {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 42))
	dirs := []string{
		"",
		"alpha",
		"alpha/beta",
		"alpha/beta/gamma deep",
		"with space",
		"ünïcödé",
		"ünïcödé/日本",
		"many/a/b/c/d",
		"many/a/b2",
		"x",
	}
	patterns := []string{
		"file-%03d.bin",
		"name with space %03d.txt",
		"été %03d.dat",
		"data_%03d",
		"日本語-%03d.txt",
		".hidden-%03d",
		"UPPER.case.%03d.TXT",
	}
	for i := range n {
		d := dirs[r.IntN(len(dirs))]
		name := fmt.Sprintf(patterns[i%len(patterns)], i)
		size := r.IntN(64<<10 + 1)
		if i%50 == 0 {
			size = 0
		}
		writeFile(t, filepath.Join(root, filepath.FromSlash(d), name), randBytes(seed+uint64(i), size))
	}
	if err := os.MkdirAll(filepath.Join(root, "empty dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	return readTree(t, root)
}

func TestLftp(t *testing.T) {
	t.Parallel()
	requireTool(t, "lftp")
	s := startServer(t, serverConfig{})
	home := s.addUser(t, testUser, testPass)
	src := filepath.Join(t.TempDir(), "src")
	want := makeTree(t, src, 500, 2024)

	for _, m := range []struct {
		name     string
		settings []string
	}{
		{"passive-mlsd-parallel", []string{"set ftp:passive-mode on", "set ftp:use-mlsd on"}},
		{"passive-list", []string{"set ftp:passive-mode on", "set ftp:use-mlsd off", "set ftp:prefer-epsv yes"}},
		{"active", []string{"set ftp:passive-mode off", "set ftp:use-mlsd off"}},
	} {
		t.Run("mirror/"+m.name, func(t *testing.T) {
			parallel := "1"
			if strings.Contains(m.name, "parallel") {
				parallel = "4"
			}
			remote := "up-" + m.name
			dst := filepath.Join(t.TempDir(), "dst")
			lftpOK(t, s, append(slices.Clone(m.settings),
				fmt.Sprintf("mirror -R --no-perms --parallel=%s %q %q", parallel, src, remote))...)
			diffTrees(t, "server copy after mirror -R", want, readTree(t, filepath.Join(home, remote)))

			lftpOK(t, s, append(slices.Clone(m.settings),
				fmt.Sprintf("mirror --no-perms --parallel=%s %q %q", parallel, remote, dst))...)
			diffTrees(t, "local copy after mirror", want, readTree(t, dst))

			// A second mirror -R finds nothing to do and must still succeed.
			lftpOK(t, s, append(slices.Clone(m.settings),
				fmt.Sprintf("mirror -R --no-perms %q %q", src, remote))...)
			diffTrees(t, "server copy after a repeated mirror -R", want, readTree(t, filepath.Join(home, remote)))
		})
	}

	// The listings below look at a small fixed directory.
	lsDir := filepath.Join(home, "lsdir")
	writeFile(t, filepath.Join(lsDir, "one.txt"), []byte("1"))
	writeFile(t, filepath.Join(lsDir, "two words.txt"), []byte("22"))
	writeFile(t, filepath.Join(lsDir, "ünï.txt"), []byte("333"))
	writeFile(t, filepath.Join(lsDir, "sub dir", "deep.txt"), []byte("4444"))
	lsWant := []string{"one.txt", "sub dir", "two words.txt", "ünï.txt"}

	t.Run("cls-mlsd", func(t *testing.T) {
		r := lftpOK(t, s, "set ftp:use-mlsd on", `cls -1 "lsdir/"`)
		got := clsNames(r.Stdout, "lsdir/")
		if !slices.Equal(got, lsWant) {
			t.Errorf("cls over MLSD: %q, want %q\n%s", got, lsWant, r)
		}
		r = lftpOK(t, s, "set ftp:use-mlsd on", `cls -l "lsdir/"`)
		for _, l := range nonEmptyLines(r.Stdout) {
			if strings.HasSuffix(l, "ünï.txt") && !strings.Contains(l, " 3 ") {
				t.Errorf("cls -l over MLSD: size of ünï.txt is not 3: %q", l)
			}
			if strings.HasSuffix(l, "sub dir/") || strings.HasSuffix(l, "sub dir") {
				if !strings.HasPrefix(l, "d") {
					t.Errorf("cls -l over MLSD: sub dir is not a directory: %q", l)
				}
			}
		}
	})
	t.Run("cls-list", func(t *testing.T) {
		r := lftpOK(t, s, "set ftp:use-mlsd off", `cls -1 "lsdir/"`)
		got := clsNames(r.Stdout, "lsdir/")
		if !slices.Equal(got, lsWant) {
			t.Errorf("cls over LIST: %q, want %q\n%s", got, lsWant, r)
		}
	})
	t.Run("ls", func(t *testing.T) {
		r := lftpOK(t, s, `cd "lsdir"`, "ls")
		lines := nonEmptyLines(r.Stdout)
		for _, name := range lsWant {
			if findSuffix(lines, " "+name) == "" {
				t.Errorf("ls (LIST) lacks %q:\n%s", name, r.Stdout)
			}
		}
	})
	t.Run("nlist", func(t *testing.T) {
		r := lftpOK(t, s, `cd "lsdir"`, "nlist")
		got := nonEmptyLines(r.Stdout)
		slices.Sort(got)
		if !slices.Equal(got, lsWant) {
			t.Errorf("nlist: %q, want %q", got, lsWant)
		}
	})

	t.Run("file-ops", func(t *testing.T) {
		local := filepath.Join(t.TempDir(), "f.txt")
		writeFile(t, local, []byte("file ops\n"))
		ops := filepath.Join(home, "ops")

		lftpOK(t, s,
			`mkdir -p "ops/a b/c"`,
			fmt.Sprintf(`put %q -o "ops/f1"`, local),
			`mv "ops/f1" "ops/f 2"`,
			`mkdir "ops/été"`,
			`mv "ops/f 2" "ops/été/f3"`,
		)
		if fi, err := os.Stat(filepath.Join(ops, "a b", "c")); err != nil || !fi.IsDir() {
			t.Errorf("mkdir -p: %v", err)
		}
		mustNotExist(t, filepath.Join(ops, "f1"))
		mustNotExist(t, filepath.Join(ops, "f 2"))
		checkFileContent(t, filepath.Join(ops, "été", "f3"), []byte("file ops\n"))

		lftpOK(t, s,
			`rm "ops/été/f3"`,
			`rmdir "ops/a b/c"`,
			`mv "ops/a b" "ops/ab"`,
		)
		mustNotExist(t, filepath.Join(ops, "été", "f3"))
		mustNotExist(t, filepath.Join(ops, "a b"))
		if fi, err := os.Stat(filepath.Join(ops, "ab")); err != nil || !fi.IsDir() {
			t.Errorf("mv of a directory: %v", err)
		}

		// Failures must be reported as failures.
		r := lftp(t, s.ftpURL(), testUser, testPass, `rm "ops/no such file"`)
		if r.Code == 0 {
			t.Errorf("rm of a missing file succeeded:\n%s", r)
		}
		r = lftp(t, s.ftpURL(), testUser, testPass, `rmdir "ops"`)
		if r.Code == 0 {
			t.Errorf("rmdir of a non-empty directory succeeded:\n%s", r)
		}

		writeFile(t, filepath.Join(ops, "ab", "deep", "x.bin"), randBytes(9, 5000))
		lftpOK(t, s, `rm -r "ops"`)
		mustNotExist(t, ops)
	})

	t.Run("resume", func(t *testing.T) {
		data := randBytes(11, 2<<20+17)
		t.Run("get-c", func(t *testing.T) {
			writeFile(t, filepath.Join(home, "resume-get.bin"), data)
			local := filepath.Join(t.TempDir(), "part.bin")
			writeFile(t, local, data[:600001])
			dbg := filepath.Join(t.TempDir(), "debug.log")
			r := lftpOK(t, s, fmt.Sprintf("debug -o %q 9", dbg), fmt.Sprintf(`get -c "resume-get.bin" -o %q`, local))
			if b, _ := os.ReadFile(dbg); !strings.Contains(string(b), "REST 600001") {
				t.Errorf("lftp get -c did not send REST 600001:\n%s\n--- debug log:\n%s", r, b)
			}
			checkFileContent(t, local, data)
		})
		t.Run("put-c", func(t *testing.T) {
			writeFile(t, filepath.Join(home, "resume-put.bin"), data[:900000])
			local := filepath.Join(t.TempDir(), "full.bin")
			writeFile(t, local, data)
			lftpOK(t, s, fmt.Sprintf(`put -c %q -o "resume-put.bin"`, local))
			checkFileContent(t, filepath.Join(home, "resume-put.bin"), data)
		})
	})
}

// clsNames turns `cls -1 DIR/` output into sorted bare names.
func clsNames(out, prefix string) []string {
	var got []string
	for _, l := range nonEmptyLines(out) {
		l = strings.TrimPrefix(l, prefix)
		l = strings.TrimSuffix(l, "/")
		got = append(got, l)
	}
	slices.Sort(got)
	return got
}

package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// commonsNetJar is where Debian's libcommons-net-java puts Apache Commons
// Net.
const commonsNetJar = "/usr/share/java/commons-net.jar"

// javaClasses compiles java/FerryFtps.java once per test run.
var javaClasses struct {
	once sync.Once
	dir  string
	err  string
}

// requireJava returns the directory of the compiled FerryFtps classes,
// skipping (failing under CI) without javac, java or Commons Net.
func requireJava(t *testing.T) string {
	t.Helper()
	requireTool(t, "java", "javac")
	if _, err := os.Stat(commonsNetJar); err != nil {
		if inCI {
			t.Fatalf("%s is required under CI=true (apt-get install libcommons-net-java): %v", commonsNetJar, err)
		}
		t.Skipf("Commons Net not installed (apt-get install libcommons-net-java): %v", err)
	}
	javaClasses.once.Do(func() {
		dir := filepath.Join(runDir, "java")
		r := runCmd(t, 3*time.Minute, cmdOpts{}, "javac", "-d", dir, "-cp", commonsNetJar, filepath.Join("java", "FerryFtps.java"))
		if r.Code != 0 {
			javaClasses.err = r.String()
		}
		javaClasses.dir = dir
	})
	if javaClasses.err != "" {
		t.Fatalf("javac FerryFtps.java failed:\n%s", javaClasses.err)
	}
	return javaClasses.dir
}

// runJava runs FerryFtps against s: mode "plain" or "hack" (see
// FerryFtps.java), on TLS version tlsv ("TLSv1.3", "TLSv1.2"). The hack
// reaches JDK internals by reflection, which needs the --add-opens flags
// its users add.
func runJava(t *testing.T, classes string, s *server, mode, tlsv string) cmdResult {
	t.Helper()
	return runCmd(t, 2*time.Minute, cmdOpts{}, "java",
		"--add-opens", "java.base/sun.security.ssl=ALL-UNNAMED",
		"--add-opens", "java.base/sun.security.util=ALL-UNNAMED",
		"-Djdk.tls.client.protocols="+tlsv,
		"-cp", classes+string(os.PathListSeparator)+commonsNetJar,
		"FerryFtps", s.Host, strconv.Itoa(s.Port), testUser, testPass, mode)
}

// TestTLSJavaCommonsNet runs Apache Commons Net's FTPSClient (PROT P)
// through STOR, RETR, APPE, REST+RETR, REST+STOR, LIST, NLST, MLSD, RNFR/RNTO
// and DELE. It never resumes the control session on data connections, so
// under the default reuse policy its first transfer gets the 522 that names
// the setting; with tls_session_reuse = optional everything works, on TLS
// 1.3 and 1.2, plain and with the session-reuse reflection hack, except the
// hack on TLS 1.2 (see docs/tls.md: the JDK discards Go's TLS 1.2 tickets,
// whose lifetime hint is 0, and invalidates the session the server did not
// resume, which the hack then refuses as "Invalid SSL Session").
func TestTLSJavaCommonsNet(t *testing.T) {
	t.Parallel()
	classes := requireJava(t)

	t.Run("required-refused", func(t *testing.T) {
		s := startServer(t, serverConfig{})
		s.addUser(t, testUser, testPass)
		for _, mode := range []string{"plain", "hack"} {
			r := runJava(t, classes, s, mode, "TLSv1.3")
			if r.Code == 0 || !strings.Contains(r.Stdout, "FAIL STOR: ") || !strings.Contains(r.Stdout, "last reply 522 Data connection refused: ") ||
				!strings.Contains(r.Stdout, `tls_session_reuse = "optional" (--tls-session-reuse optional)`) {
				t.Errorf("%s under the default reuse policy: want the first transfer refused with the 522 naming the setting:\n%s", mode, r)
			}
		}
	})
	t.Run("optional", func(t *testing.T) {
		s := startServer(t, serverConfig{Args: []string{"--tls-session-reuse", "optional"}})
		home := s.addUser(t, testUser, testPass)
		for _, tc := range []struct{ mode, tlsv string }{
			{"plain", "TLSv1.3"}, {"plain", "TLSv1.2"}, {"hack", "TLSv1.3"},
		} {
			r := runJava(t, classes, s, tc.mode, tc.tlsv)
			if r.Code != 0 || !strings.Contains(r.Stdout, "JAVA-OK") || !strings.Contains(r.Stdout, "tls "+tc.tlsv) {
				t.Errorf("Commons Net %s on %s with reuse optional:\n%s", tc.mode, tc.tlsv, r)
			}
		}
		if ents, _ := os.ReadDir(home); len(ents) != 0 {
			t.Errorf("files left in the home: %v", ents)
		}
		// The known limit: the hack on TLS 1.2 gets through its first
		// transfer, then refuses its own control session. If this ever
		// passes, Go sends TLS 1.2 ticket lifetimes (or resumes by session
		// ID): update docs/tls.md.
		r := runJava(t, classes, s, "hack", "TLSv1.2")
		if r.Code == 0 || !strings.Contains(r.Stdout, "ok STOR") || !strings.Contains(r.Stdout+r.Stderr, "Invalid SSL Session") {
			t.Errorf("the hack on TLS 1.2: want its documented failure (Invalid SSL Session on the second transfer):\n%s", r)
		}
	})
}

package ftp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzSession feeds arbitrary bytes as command lines to a logged-in session
// over a real connection. The server must never panic, must answer only
// with well-formed replies (RFC 959 §4.2: three digits, space or hyphen,
// text, CRLF; multi-line replies closed by the same code and a space; no
// control bytes; IAC doubled) and must end the session with 221 or 421.
// Whatever the path rules resolve (MDTM's set-time form, MFMT, SITE CHMOD,
// renames, uploads), nothing outside the user's root may change: the tree
// of the data directory around it, a file and another user's home beside
// it included, must stay as it was.
//
// The seed corpus is small so that it runs as an ordinary test.
func FuzzSession(f *testing.F) {
	// local only: it checks that nothing outside the root changes on the host disk.
	ts := startServer(f, func(c *Site, _ *Server) {
		c.DataTimeout = 250 * time.Millisecond
	})
	fixture(f, ts)
	writeFile(f, filepath.Join(ts.data, "home", "outside.txt"), []byte("outside\n"))
	writeFile(f, filepath.Join(ts.data, "home", "bob", "file.txt"), []byte("bob\n"))
	outside := treeOutside(f, ts.data, ts.home)
	f.Cleanup(func() {
		// SITE CHMOD may have left directories the cleanup cannot enter.
		filepath.WalkDir(ts.data, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				os.Chmod(p, 0o755)
			}
			return nil
		})
	})

	for _, seed := range []string{
		"NOOP",
		"PWD\r\nCWD dir\r\nLIST\r\nCDUP",
		"EPSV\r\nRETR file.txt",
		"PASV\r\nSTOR x\r\nSTAT\r\nABOR",
		"MKD a\xff\xf4b\r\nRMD ab\r\nHELP \xff\xff",
		"STAT\r\nSTAT /\r\nFEAT\r\nHELP\r\nHELP SITE\r\nSITE HELP",
		"TYPE A T\r\nMODE Z\r\nSTRU R\r\nPORT 1,2,3\r\nEPRT |9|x|1|\r\nEPSV 7",
		"RNFR file.txt\r\nRNTO a\rb\r\nRNTO x",
		"MKD \"q\"\r\nMLST \"q\"\r\nXRMD \"q\"",
		"OPTS MLST type;\r\nMLST file.txt\r\nOPTS UTF8 ON\r\nOPTS x",
		"SITE CHMOD 4755 file.txt\r\nSITE CHMOD 0644 file.txt\r\nSITE X",
		"REST 5\r\nABOR\r\nALLO 5\r\nREST x",
		"NOOP " + strings.Repeat("x", 5000) + "\r\nNOOP",
		"\x00\x01\x02\r\n\r\n   \r\nX\r\n\xff\xfa\x01\r\n\xff",
		"REIN\r\nPWD\r\nUSER\r\nHOST a\r\nACCT x",
		"EPSV ALL\r\nPASV\r\nPORT 127,0,0,1,4,1\r\nEPSV\r\nMLSD",
		"MDTM 20200101000000 file.txt\r\nMFMT 2020 x\r\nSIZE dir\r\nnlst\r\nPBSZ 0\r\nPROT P\r\nAUTH TLS",
		// MDTM's two forms are told apart by syntax: 14 digits, an optional
		// fraction, a space and a path set the time; anything else is a path.
		"MDTM 20200101000000.123 file.txt\r\nMDTM 20200101000000. file.txt\r\nMDTM 20200101000000x file.txt\r\n" +
			"MDTM 2020010100000 file.txt\r\nMDTM 20201301000000 file.txt\r\nMDTM 20200101000000\r\nMDTM 20200101000000 \r\n" +
			"MDTM ２０２００１０１００００００ file.txt\r\nMDTM 20200101000000 dir/../file.txt\r\nMDTM 20200101000000 /",
		// Path rules must never leave the root, whatever climbs the argument holds.
		"MDTM 20200101000000 ../outside.txt\r\nMDTM 19700101000000 ../../home/outside.txt\r\nMDTM 20200101000000 ../bob/file.txt",
		"MFMT 20200101000000 ../outside.txt\r\nMFMT 20200101000000 /../../bob/file.txt\r\nMFMT 20200101000000 /\r\n" +
			"MFMT 20200101000000.999999 file.txt\r\nMFMT x file.txt\r\nMFMT 20200101000000\r\nMFMT  20200101000000 file.txt",
		"SITE CHMOD 0777 ../outside.txt\r\nSITE CHMOD 000 ../../home/bob\r\nSITE CHMOD 0755 /..\r\nSITE CHMOD 0700 /\r\n" +
			"SITE CHMOD 755\r\nSITE CHMOD 7777 file.txt\r\nSITE CHMOD 1755 dir\r\nSITE CHMOD 644  file.txt\r\n" +
			"SITE CHMOD u+x file.txt\r\nSITE CHMOD 99999 file.txt\r\nSITE CHMOD -1 file.txt\r\nsite chmod 0644 file.txt",
		// Digests: the path rules of HASH and the X* commands, RANG's
		// one-command lifetime, a digest running when the input ends.
		"HASH ../outside.txt\r\nXCRC ../../home/bob/file.txt 0 1\r\nXSHA1 \"../outside.txt\"\r\nRANG 0 3\r\nHASH file.txt\r\n" +
			"RANG 0 3\r\nRETR file.txt\r\nRANG 9 1\r\nOPTS HASH MD5\r\nHASH dir\r\nXMD5 file.txt 3 3\r\nXSHA512 file.txt\r\nABOR\r\nHASH file.txt",
		"DELE ../outside.txt\r\nRNFR ../outside.txt\r\nRNTO mine.txt\r\nRNFR file.txt\r\nRNTO ../../stolen.txt\r\n" +
			"MKD ../../evil\r\nRMD ../bob\r\nPASV\r\nSTOR /../../evil.txt\r\nSTOU ../x\r\nAPPE ../../home/outside.txt",
	} {
		f.Add([]byte(seed))
	}

	f.Fuzz(func(t *testing.T, input []byte) {
		conn, err := net.DialTimeout("tcp", ts.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		script := append([]byte("USER alice\r\nPASS secret\r\n"), input...)
		script = append(script, "\r\nQUIT\r\n"...)
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		done := make(chan error, 1)
		go func() {
			_, err := conn.Write(script)
			done <- err
		}()
		out, err := io.ReadAll(conn)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the session did not end: %v; replies so far:\n%s", err, out)
		}
		<-done
		checkReplyStream(t, out)
		if now := treeOutside(t, ts.data, ts.home); now != outside {
			t.Fatalf("the tree outside the root changed:\nbefore:\n%s\nafter:\n%s", outside, now)
		}
		if log := ts.logText(); strings.Contains(log, `msg="session panic"`) {
			t.Fatalf("the server panicked:\n%s", tail(log[strings.Index(log, `msg="session panic"`):]))
		}
	})
}

// checkReplyStream checks that b is a sequence of well-formed replies that
// starts with 220 and ends with 221 or 421.
func checkReplyStream(t *testing.T, b []byte) {
	t.Helper()
	var codes []string
	multi := "" // the code of an open multi-line reply
	for len(b) > 0 {
		i := bytes.Index(b, []byte("\r\n"))
		if i < 0 {
			t.Fatalf("unterminated reply line %q", b)
		}
		line := b[:i]
		b = b[i+2:]
		for j := 0; j < len(line); j++ {
			c := line[j]
			if c < 0x20 || c == 0x7f {
				t.Fatalf("control byte %#x in reply line %q", c, line)
			}
			if c == 0xff {
				if j+1 >= len(line) || line[j+1] != 0xff {
					t.Fatalf("undoubled IAC in reply line %q", line)
				}
				j++
			}
		}
		isCode := len(line) >= 4 && line[0] >= '1' && line[0] <= '5' &&
			line[1] >= '0' && line[1] <= '9' && line[2] >= '0' && line[2] <= '9'
		if multi != "" {
			if isCode && string(line[:3]) == multi && line[3] == ' ' {
				multi = ""
			}
			continue
		}
		if !isCode || (line[3] != ' ' && line[3] != '-') {
			t.Fatalf("reply line %q does not start with a code and a space or hyphen", line)
		}
		codes = append(codes, string(line[:3]))
		if line[3] == '-' {
			multi = string(line[:3])
		}
	}
	if multi != "" {
		t.Fatalf("multi-line %s reply not closed", multi)
	}
	if len(codes) < 2 || codes[0] != "220" {
		t.Fatalf("replies %v do not start with the 220 greeting", codes)
	}
	if last := codes[len(codes)-1]; last != "221" && last != "421" {
		t.Fatalf("the session ended without 221 or 421: %v", codes)
	}
}

// treeOutside describes every entry under data but outside root (and not
// root itself): path, mode, size and modification time, one a line.
func treeOutside(t testing.TB, data, root string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(data, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return filepath.SkipDir
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %v %d %d\n", p[len(data):], fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

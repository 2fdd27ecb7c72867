package ftp

import (
	"bytes"
	"errors"
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
//
// The seed corpus is small so that it runs as an ordinary test.
func FuzzSession(f *testing.F) {
	ts := startServer(f, func(c *Site, _ *Server) {
		c.DataTimeout = 250 * time.Millisecond
	})
	fixture(f, ts)
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

package ftp

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/testenv"
)

// allBytes is n bytes cycling through every byte value.
func allBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

func TestBinaryRoundTrip(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ts := startOn(t, be, nil)
		c := loggedIn(t, ts)
		data := allBytes(1<<20 + 7)
		c.stor("STOR", "bin.dat", data)
		if got := ts.get(t, "bin.dat"); !bytes.Equal(got, data) {
			t.Fatalf("disk has %d bytes, want %d identical", len(got), len(data))
		}
		if got := c.retr("bin.dat"); !bytes.Equal(got, data) {
			t.Fatalf("RETR got %d bytes, want %d identical", len(got), len(data))
		}
		if got := c.cmd("SIZE bin.dat", 213); got != strconv.Itoa(len(data)) {
			t.Errorf("SIZE %s", got)
		}
		// TYPE L 8 is binary too.
		c.cmd("TYPE L 8", 200)
		if got := c.retr("bin.dat"); !bytes.Equal(got, data) {
			t.Fatal("TYPE L 8 changed the data")
		}
		// An empty upload creates an empty file.
		c.stor("STOR", "empty.dat", nil)
		if fi, err := ts.stat(t, "empty.dat"); err != nil || fi.Size() != 0 {
			t.Fatalf("empty upload: %v %v", fi, err)
		}
		// The 150 of RETR announces the size.
		d := c.pasv()
		if got := c.cmd("RETR bin.dat", 150); !strings.Contains(got, strconv.Itoa(len(data))) {
			t.Errorf("150 without the size: %q", got)
		}
		readAll(t, d)
		c.expect(226)
	})
}

func TestASCIIMode(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ts := startOn(t, be, nil)
		c := loggedIn(t, ts)
		c.cmd("TYPE A", 200)

		// Upload: CRLF becomes the local LF; a bare LF stays LF, a lone CR stays.
		c.stor("STOR", "crlf.txt", []byte("a\r\nb\r\n"))
		if got := ts.get(t, "crlf.txt"); string(got) != "a\nb\n" {
			t.Errorf("TYPE A upload stored %q, want %q", got, "a\nb\n")
		}
		c.stor("STOR", "mixed.txt", []byte("c\nd\re\r\n"))
		if got := ts.get(t, "mixed.txt"); string(got) != "c\nd\re\n" {
			t.Errorf("TYPE A upload stored %q, want %q", got, "c\nd\re\n")
		}
		// A CRLF split across TCP segments is still one line end.
		d := c.dataCmd("STOR split.txt")
		d.Write([]byte("x\r"))
		d.Write([]byte("\ny\r"))
		d.Close()
		c.expect(226)
		if got := ts.get(t, "split.txt"); string(got) != "x\ny\r" {
			t.Errorf("split CRLF stored %q, want %q", got, "x\ny\r")
		}

		// Download: LF goes out as CRLF.
		ts.put(t, "lf.txt", []byte("x\ny\n\nz"))
		if got := c.retr("lf.txt"); string(got) != "x\r\ny\r\n\r\nz" {
			t.Errorf("TYPE A download %q, want %q", got, "x\r\ny\r\n\r\nz")
		}
		// Binary mode gives the bytes as stored.
		c.cmd("TYPE I", 200)
		if got := c.retr("lf.txt"); string(got) != "x\ny\n\nz" {
			t.Errorf("TYPE I download %q", got)
		}
		// APPE in TYPE A converts too.
		c.cmd("TYPE A", 200)
		c.stor("APPE", "crlf.txt", []byte("c\r\n"))
		if got := ts.get(t, "crlf.txt"); string(got) != "a\nb\nc\n" {
			t.Errorf("TYPE A APPE: %q", got)
		}
		// A large text file survives the round trip through TYPE A.
		var b bytes.Buffer
		for i := 0; b.Len() < 300<<10; i++ {
			b.WriteString(strings.Repeat("t", i%97))
			b.WriteString("\r\n")
		}
		c.stor("STOR", "big.txt", b.Bytes())
		want := bytes.ReplaceAll(b.Bytes(), []byte("\r\n"), []byte("\n"))
		if got := ts.get(t, "big.txt"); !bytes.Equal(got, want) {
			t.Errorf("large TYPE A upload: %d bytes on disk, want %d", len(got), len(want))
		}
	})
}

// TestASCIIDownloadKeepsCRLF: a file that already has CRLF line ends must
// not get CR CR LF in TYPE A (wire.NewASCIIReader's contract; what vsftpd
// and ProFTPD do).
func TestASCIIDownloadKeepsCRLF(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ts := startOn(t, be, nil)
		c := loggedIn(t, ts)
		ts.put(t, "dos.txt", []byte("a\r\nb\nc\r\n"))
		c.cmd("TYPE A", 200)
		if got := c.retr("dos.txt"); string(got) != "a\r\nb\r\nc\r\n" {
			t.Errorf("TYPE A download of a CRLF file: %q, want %q", got, "a\r\nb\r\nc\r\n")
		}
	})
}

// TestASCIIDownloadLarge downloads text files larger than the 256 KiB copy
// chunk in TYPE A. It runs in a child process because a panic in the
// transfer goroutine ends the whole process.
func TestASCIIDownloadLarge(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		if !isolated(t) {
			return
		}
		ts := startOn(t, be, nil)
		c := loggedIn(t, ts)
		c.cmd("TYPE A", 200)

		// Line ends at every position near the chunk boundaries, where the
		// LF→CRLF conversion gets small buffers.
		files := map[string][]byte{}
		long := bytes.Repeat([]byte("x"), 300<<10)
		for _, at := range []int{0, 262140, 262141, 262142, 262143} {
			long[at] = '\n'
		}
		files["crafted.txt"] = long
		for _, period := range []int{2, 3, 80} {
			var b bytes.Buffer
			for b.Len() < 300<<10 {
				b.WriteString(strings.Repeat("y", period-1))
				b.WriteByte('\n')
			}
			files["period"+strconv.Itoa(period)+".txt"] = b.Bytes()
		}
		for name, data := range files {
			ts.put(t, name, data)
			want := bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n"))
			if got := c.retr(name); !bytes.Equal(got, want) {
				t.Errorf("%s: TYPE A download of %d bytes gave %d, want %d", name, len(data), len(got), len(want))
			}
		}
	})
}

func TestRESTDownload(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ts := startOn(t, be, nil)
		c := loggedIn(t, ts)
		data := allBytes(100000)
		ts.put(t, "f.dat", data)

		c.cmd("REST 1000", 350)
		if got := c.retr("f.dat"); !bytes.Equal(got, data[1000:]) {
			t.Fatalf("REST 1000 RETR gave %d bytes, want %d", len(got), len(data)-1000)
		}
		// REST applies to one transfer only.
		if got := c.retr("f.dat"); !bytes.Equal(got, data) {
			t.Fatalf("RETR after a restarted one gave %d bytes", len(got))
		}
		c.cmd("REST "+strconv.Itoa(len(data)), 350)
		if got := c.retr("f.dat"); len(got) != 0 {
			t.Fatalf("REST at the end gave %d bytes", len(got))
		}
		// A failed RETR also clears REST.
		c.cmd("REST 5", 350)
		c.pasv()
		c.cmd("RETR nope", 550)
		if got := c.retr("f.dat"); !bytes.Equal(got, data) {
			t.Fatalf("RETR after a failed restarted one gave %d bytes", len(got))
		}
	})
}

func TestRESTUpload(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ts := startOn(t, be, nil)
		c := loggedIn(t, ts)
		data := allBytes(300000)
		// An interrupted upload left the first part; the client resumes it.
		ts.put(t, "part.dat", data[:123456])
		c.cmd("REST 123456", 350)
		c.stor("STOR", "part.dat", data[123456:])
		if got := ts.get(t, "part.dat"); !bytes.Equal(got, data) {
			t.Fatalf("resumed upload: %d bytes on disk, want %d identical", len(got), len(data))
		}
		// REST+STOR writes in place at the offset: what is before it stays.
		ts.put(t, "inplace.txt", []byte("0123456789"))
		c.cmd("REST 4", 350)
		c.stor("STOR", "inplace.txt", []byte("ab"))
		if got := ts.get(t, "inplace.txt"); !bytes.HasPrefix(got, []byte("0123ab")) {
			t.Fatalf("REST 4 STOR ab: disk has %q", got)
		}
		// A plain STOR afterwards replaces the whole file.
		c.stor("STOR", "inplace.txt", []byte("new"))
		if got := ts.get(t, "inplace.txt"); string(got) != "new" {
			t.Fatalf("STOR after REST STOR: %q", got)
		}
	})
}

func TestAPPE(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ts := startOn(t, be, nil)
		c := loggedIn(t, ts)
		ts.put(t, "log.txt", []byte("abc"))
		c.stor("APPE", "log.txt", []byte("def"))
		c.stor("APPE", "log.txt", []byte("ghi"))
		if got := ts.get(t, "log.txt"); string(got) != "abcdefghi" {
			t.Fatalf("APPE: %q", got)
		}
		c.stor("APPE", "new.txt", []byte("xyz"))
		if got := ts.get(t, "new.txt"); string(got) != "xyz" {
			t.Fatalf("APPE to a new file: %q", got)
		}
		c.cmd("MKD d", 257)
		c.pasv()
		c.cmd("APPE d", 550)
		c.cmd("NOOP", 200)
	})
}

var stouFile = regexp.MustCompile(`^FILE: (\S+)$`)

func TestSTOU(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ts := startOn(t, be, nil)
		c := loggedIn(t, ts)
		seen := map[string]bool{}
		for i, arg := range []string{"", "", "report.txt"} {
			d := c.pasv()
			line := strings.TrimSpace("STOU " + arg)
			text := c.cmd(line, 150)
			m := stouFile.FindStringSubmatch(text)
			if m == nil {
				t.Fatalf("%s: 150 text %q is not \"FILE: name\" (RFC 1123 §4.1.2.9)", line, text)
			}
			name := m[1]
			if seen[name] {
				t.Fatalf("STOU reused %q", name)
			}
			seen[name] = true
			if arg != "" && !strings.HasPrefix(name, "report.txt") {
				t.Errorf("STOU %s chose %q", arg, name)
			}
			payload := []byte("unique " + strconv.Itoa(i))
			d.Write(payload)
			d.Close()
			c.expect(226)
			if got := ts.get(t, name); !bytes.Equal(got, payload) {
				t.Errorf("%s: file %s has %q", line, name, got)
			}
		}
	})
}

// TestSTOUAfterREST: STOU makes a new file, so a restart offset cannot apply
// to it; the server may refuse the pair, but must not pad the new file.
func TestSTOUAfterREST(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ts := startOn(t, be, nil)
		c := loggedIn(t, ts)
		c.cmd("REST 5", 350)
		d := c.pasv()
		c.send("STOU")
		code, text := c.read()
		if code != 150 {
			if code < 400 {
				t.Fatalf("STOU after REST: %d %s", code, text)
			}
			return // refused: fine
		}
		d.Write([]byte("abc"))
		d.Close()
		c.expect(226)
		m := stouFile.FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("150 text %q", text)
		}
		if got := ts.get(t, m[1]); string(got) != "abc" {
			t.Errorf("STOU after REST 5 stored %q, want %q", got, "abc")
		}
	})
}

func TestActiveMode(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ts := startOn(t, be, nil)
		c := loggedIn(t, ts)
		data := allBytes(200000)
		ts.put(t, "f.dat", data)

		portArg := func(ln *net.TCPListener) string {
			p := ln.Addr().(*net.TCPAddr).Port
			return "127,0,0,1," + strconv.Itoa(p/256) + "," + strconv.Itoa(p%256)
		}

		t.Run("PORT-RETR", func(t *testing.T) {
			c.t = t
			ln := c.activeListener()
			c.cmd("PORT "+portArg(ln), 200)
			c.send("RETR f.dat")
			d := accept(t, ln)
			c.expect(150)
			if got := readAll(t, d); !bytes.Equal(got, data) {
				t.Fatalf("active RETR: %d bytes", len(got))
			}
			c.expect(226)
		})
		t.Run("PORT-STOR", func(t *testing.T) {
			c.t = t
			ln := c.activeListener()
			c.cmd("PORT "+portArg(ln), 200)
			c.send("STOR up.dat")
			d := accept(t, ln)
			c.expect(150)
			d.Write(data)
			d.Close()
			c.expect(226)
			if got := ts.get(t, "up.dat"); !bytes.Equal(got, data) {
				t.Fatalf("active STOR: %d bytes", len(got))
			}
		})
		t.Run("EPRT-LIST", func(t *testing.T) {
			c.t = t
			ln := c.activeListener()
			c.cmd("EPRT |1|127.0.0.1|"+strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)+"|", 200)
			c.send("NLST")
			d := accept(t, ln)
			c.expect(150)
			if got := string(readAll(t, d)); !strings.Contains(got, "f.dat\r\n") {
				t.Fatalf("active NLST: %q", got)
			}
			c.expect(226)
		})
		t.Run("PASV", func(t *testing.T) {
			c.t = t
			d := c.pasv227()
			c.cmd("RETR f.dat", 150)
			if got := readAll(t, d); !bytes.Equal(got, data) {
				t.Fatalf("PASV RETR: %d bytes", len(got))
			}
			c.expect(226)
		})
		t.Run("NobodyListening", func(t *testing.T) {
			c.t = t
			ln := c.activeListener()
			arg := portArg(ln)
			ln.Close()
			c.cmd("PORT "+arg, 200)
			c.cmd("RETR f.dat", 425)
			c.cmd("NOOP", 200)
		})
	})
}

// TestActiveModeRefused: PORT and EPRT to another host or a privileged port
// are FTP bounce attempts and get 504.
func TestActiveModeRefused(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ts := startOn(t, be, nil)
		c := loggedIn(t, ts)
		for _, line := range []string{
			"PORT 127,0,0,2,200,10",
			"PORT 10,0,0,1,200,10",
			"PORT 192,168,1,1,0,25",
			"PORT 127,0,0,1,0,21",
			"PORT 127,0,0,1,3,255", // 1023
			"EPRT |1|127.0.0.2|51210|",
			"EPRT |1|10.0.0.1|51210|",
			"EPRT |1|127.0.0.1|1023|",
		} {
			c.cmd(line, 504)
			// No data channel was set up by the refused command.
			c.cmd("RETR nothing", 425)
		}
	})
}

// TestPassiveForeignPeer: a passive data connection from another address
// than the control connection's is closed without a byte; when the client's
// own never comes, the transfer ends with 425 at the data timeout.
func TestPassiveForeignPeer(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ts := startOn(t, be, func(cfg *Site, _ *Server) { cfg.DataTimeout = 300 * time.Millisecond })
		c := loggedIn(t, ts)
		ts.put(t, "secret.txt", []byte("secret"))
		port := c.epsvPort()
		dl := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
		d, err := dl.Dial("tcp", net.JoinHostPort("127.0.0.1", port))
		if err != nil {
			if testenv.InCI() {
				t.Fatalf("cannot dial from 127.0.0.2 (Linux routes 127/8 to lo): %v", err)
			}
			t.Skipf("cannot dial from 127.0.0.2: %v", err)
		}
		defer d.Close()
		c.send("RETR secret.txt")
		if code, text := c.read(); code != 425 {
			t.Fatalf("RETR with only a foreign data connection: %d %s, want 425", code, text)
		}
		d.SetReadDeadline(time.Now().Add(10 * time.Second))
		if b, _ := io.ReadAll(d); len(b) != 0 {
			t.Fatalf("foreign data connection received %q", b)
		}
		c.cmd("NOOP", 200)
		if got := c.retr("secret.txt"); string(got) != "secret" {
			t.Fatalf("RETR afterwards: %q", got)
		}
	})
}

func TestIPv6(t *testing.T) {
	ts := startServerOn(t, "[::1]:0", nil)
	ts.put(t, "six.txt", []byte("over IPv6"))
	c := loggedIn(t, ts)

	if got := c.retr("six.txt"); string(got) != "over IPv6" {
		t.Fatalf("EPSV RETR over IPv6: %q", got)
	}
	c.cmd("EPSV 2", 229)
	c.cmd("EPSV 1", 522)
	c.cmdAny("PASV", 522, 500, 501, 502)

	ln := c.activeListener()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	c.cmd("EPRT |2|::1|"+port+"|", 200)
	c.send("RETR six.txt")
	d := accept(t, ln)
	c.expect(150)
	if got := readAll(t, d); string(got) != "over IPv6" {
		t.Fatalf("EPRT RETR over IPv6: %q", got)
	}
	c.expect(226)

	c.cmdAny("EPRT |1|127.0.0.1|"+port+"|", 504, 522)
	c.cmdAny("PORT 127,0,0,1,200,10", 504, 522, 501)
	c.cmd("EPRT |2|::2|"+port+"|", 504)
	c.cmd("EPRT |2|::1|80|", 504)

	c.stor("STOR", "up6.txt", []byte("up"))
	if got := ts.get(t, "up6.txt"); string(got) != "up" {
		t.Fatalf("STOR over IPv6: %q", got)
	}
}

// Local disk only: the tests that use bigFile (ABOR, head-of-line
// blocking, QUIT during a transfer) need a 256 MiB file, sparse on disk but
// whole in memory; the other local-only tests here (IPv6, passive listener
// timeout) are about the network, not storage.

// bigFile creates a sparse file larger than any socket buffer, so that a
// transfer of it cannot finish while the client does not read.
func bigFile(t testing.TB, path string) int64 {
	t.Helper()
	const size = 256 << 20
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return size
}

// TestABOR aborts a running download: 426 for the transfer, then 226 for
// ABOR (RFC 959 §4.1.3), and the session stays usable.
func TestABOR(t *testing.T) {
	ts := startServer(t, nil)
	c := loggedIn(t, ts)
	bigFile(t, filepath.Join(ts.home, "big"))
	ts.put(t, "small.txt", []byte("small"))

	for _, abor := range []string{"ABOR", "abor", "\xff\xf4\xff\xf2ABOR"} {
		d := c.dataCmd("RETR big")
		buf := make([]byte, 64<<10)
		d.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(d, buf); err != nil {
			t.Fatalf("reading the start of the transfer: %v", err)
		}
		c.sendRaw(abor + "\r\n")
		c.expect(426)
		c.expect(226)
		c.cmd("NOOP", 200)
		if got := c.retr("small.txt"); string(got) != "small" {
			t.Fatalf("RETR after ABOR: %q", got)
		}
	}
	// ABOR of an upload: the partial file does not replace the old one.
	ts.put(t, "keep.txt", []byte("old"))
	d := c.dataCmd("STOR keep.txt")
	d.Write(allBytes(100000))
	c.cmd("ABOR", 426)
	c.expect(226)
	d.Close()
	if got := ts.get(t, "keep.txt"); string(got) != "old" {
		t.Errorf("aborted STOR replaced the file: %d bytes", len(got))
	}
	c.cmd("NOOP", 200)
}

// TestNoHeadOfLineBlocking: while a download is stuck on a client that does
// not read, the control connection still answers STAT and NOOP at once,
// and other commands wait for the transfer and are answered in order.
func TestNoHeadOfLineBlocking(t *testing.T) {
	ts := startServer(t, nil)
	c := loggedIn(t, ts)
	bigFile(t, filepath.Join(ts.home, "big"))

	d := c.dataCmd("RETR big")
	st := c.cmd("STAT", 211)
	if !strings.Contains(st, "RETR") || !strings.Contains(st, "/big") {
		t.Errorf("STAT during RETR does not mention the transfer: %q", st)
	}
	c.cmd("NOOP", 200)
	c.cmd("NOOP", 200)
	// PWD is not allowed mid-transfer: it waits, and its reply follows ABOR's.
	c.send("PWD")
	c.send("ABOR")
	c.expect(426)
	c.expect(226)
	if got := c.expect(257); !strings.HasPrefix(got, `"/"`) {
		t.Errorf("queued PWD: %q", got)
	}
	d.Close()
	c.cmd("STAT", 211)
}

// TestQUITDuringTransfer: QUIT lets the transfer finish and answer first
// (RFC 959 §4.1.1), then 221 and the connection closes.
func TestQUITDuringTransfer(t *testing.T) {
	ts := startServer(t, nil)
	c := loggedIn(t, ts)
	data := allBytes(1 << 20)
	ts.put(t, "f.dat", data)

	d := c.dataCmd("RETR f.dat")
	c.send("QUIT")
	if got := readAll(t, d); !bytes.Equal(got, data) {
		t.Errorf("transfer cut by QUIT: %d bytes", len(got))
	}
	c.expect(226)
	c.expect(221)
	c.expectEOF()

	// QUIT while the client abandons the transfer: the session still ends.
	c = loggedIn(t, ts)
	bigFile(t, filepath.Join(ts.home, "big"))
	d = c.dataCmd("RETR big")
	c.send("QUIT")
	d.Close()
	code, text := c.read()
	if code != 426 && code != 451 && code != 226 {
		t.Errorf("transfer reply after the client closed data: %d %s", code, text)
	}
	c.expect(221)
	c.expectEOF()
}

// TestPassiveListenerTimeout: a passive listener nobody uses is closed after
// the data timeout; RETR then answers 425.
func TestPassiveListenerTimeout(t *testing.T) {
	ts := startServer(t, func(c *Site, _ *Server) {
		c.DataTimeout = 300 * time.Millisecond
	})
	ts.put(t, "f.txt", []byte("f"))
	c := loggedIn(t, ts)
	port := c.epsvPort()
	addr := net.JoinHostPort("127.0.0.1", port)

	// A connection waiting in the listener's backlog is closed once the
	// server has closed the listener: that is the signal to wait for. (On
	// a slow machine the listener may already be gone.)
	if probe, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
		probe.SetReadDeadline(time.Now().Add(20 * time.Second))
		if _, err := probe.Read(make([]byte, 1)); err == nil {
			t.Fatal("the unused passive connection received data")
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("the passive listener was never closed")
		}
		probe.Close()
	}
	if d, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
		d.Close()
		t.Fatal("the passive port still accepts connections after the data timeout")
	}
	c.cmd("RETR f.txt", 425)
	c.cmd("NOOP", 200)
	c.cmd("PWD", 257)
}

// TestTransferErrors: data commands on bad targets fail before any 150 and
// leave the session in step.
func TestTransferErrors(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ts := startOn(t, be, nil)
		fixture(t, ts)
		c := loggedIn(t, ts)
		for _, tt := range []struct {
			line string
			code int
		}{
			{"RETR nope", 550},
			{"RETR dir", 550},
			{"RETR ../../../etc/passwd", 550},
			{"STOR dir", 550},
			{"STOR nope/x", 550},
			{"APPE dir", 550},
			{"LIST nope", 550},
			{"NLST nope", 550},
			{"MLSD nope", 550},
			{"MLSD file.txt", 501},
		} {
			c.pasv()
			c.cmd(tt.line, tt.code)
			// The failed command closed the prepared data channel.
			c.cmdAny("RETR file.txt", 425, 503)
		}
		c.cmd("NOOP", 200)
	})
}

// TestPipelinedReplyOrder: replies come in the order of the commands. A
// client that sends NOOP or STAT right behind RETR (without waiting for the
// 150) must get RETR's 150 first: the server may answer those commands
// during the transfer, but not before the transfer's preliminary reply.
func TestPipelinedReplyOrder(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		ts := startOn(t, be, nil)
		ts.put(t, "f.txt", []byte("hello"))
		c := loggedIn(t, ts)
		for i := range 20 {
			for _, next := range []string{"NOOP", "STAT"} {
				d := c.pasv()
				c.sendRaw("RETR f.txt\r\n" + next + "\r\n")
				first, text := c.read()
				if first != 150 {
					t.Fatalf("round %d: RETR then %s in one write: first reply %d %s, want RETR's 150", i, next, first, text)
				}
				readAll(t, d)
				got := []int{}
				for range 2 {
					code, _ := c.read()
					got = append(got, code)
				}
				if !slices.Contains(got, 226) {
					t.Fatalf("round %d: replies after 150: %v", i, got)
				}
			}
		}
		// Commands that wait for the transfer are answered after its 226.
		d := c.pasv()
		c.sendRaw("RETR f.txt\r\nPWD\r\nSYST\r\n")
		c.expect(150)
		readAll(t, d)
		c.expect(226)
		c.expect(257)
		c.expect(215)
	})
}

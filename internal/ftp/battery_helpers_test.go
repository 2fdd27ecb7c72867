package ftp

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Helpers shared by the protocol battery (commands_test.go, transfer_test.go,
// listing_test.go, abuse_test.go, jlaffaye_test.go, fuzz_session_test.go).

// step is one line of a scripted exchange and the reply codes it may get.
type step struct {
	line string
	want []int
}

// codes is shorthand for a step's acceptable replies.
func codes(c ...int) []int { return c }

// run sends each step and checks that the reply code is one of its wants.
func (c *client) run(steps ...step) {
	c.t.Helper()
	for _, s := range steps {
		c.sendRaw(s.line + "\r\n")
		got, text := c.read()
		if !slices.Contains(s.want, got) {
			c.t.Errorf("%q: want %v, got %d %s", s.line, s.want, got, text)
		}
	}
}

// sendRaw writes bytes to the control connection exactly as given.
func (c *client) sendRaw(b string) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c.conn, b); err != nil {
		c.t.Fatalf("send %q: %v", b, err)
	}
}

// cmdAny sends a line and checks that the reply code is one of want.
func (c *client) cmdAny(line string, want ...int) (int, string) {
	c.t.Helper()
	c.send(line)
	got, text := c.read()
	if !slices.Contains(want, got) {
		c.t.Fatalf("%q: want one of %v, got %d %s", line, want, got, text)
	}
	return got, text
}

// expectEOF checks that the server closes the control connection.
func (c *client) expectEOF() {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := c.r.ReadString('\n')
	if err == nil {
		c.t.Fatalf("want the connection closed, got %q", b)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.t.Fatalf("want the connection closed, it stayed open")
	}
}

// loggedIn dials ts and logs in as alice in binary mode.
func loggedIn(t testing.TB, ts *testServer) *client {
	t.Helper()
	c := dial(t, ts.addr)
	c.login("alice", "secret")
	c.cmd("TYPE I", 200)
	return c
}

// dataCmd opens a passive connection, sends line and expects 150; the
// caller reads or writes the returned data connection and then expects 226.
func (c *client) dataCmd(line string) net.Conn {
	c.t.Helper()
	d := c.pasv()
	c.cmd(line, 150)
	return d
}

// pasv227 opens a passive data connection with PASV (not EPSV).
func (c *client) pasv227() net.Conn {
	c.t.Helper()
	text := c.cmd("PASV", 227)
	m := regexp.MustCompile(`\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)`).FindStringSubmatch(text)
	if m == nil {
		c.t.Fatalf("PASV reply %q has no h1,h2,h3,h4,p1,p2", text)
	}
	n := make([]int, 6)
	for i := range n {
		n[i], _ = strconv.Atoi(m[i+1])
	}
	addr := net.JoinHostPort(strings.Join(m[1:5], "."), strconv.Itoa(n[4]*256+n[5]))
	d, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { d.Close() })
	return d
}

// epsvPort sends EPSV and returns the port of the 229 reply.
func (c *client) epsvPort() string {
	c.t.Helper()
	text := c.cmd("EPSV", 229)
	m := regexp.MustCompile(`\(\|\|\|(\d+)\|\)`).FindStringSubmatch(text)
	if m == nil {
		c.t.Fatalf("EPSV reply %q has no (|||port|)", text)
	}
	return m[1]
}

// activeListener opens a listener for PORT/EPRT on the address the client
// uses for its control connection.
func (c *client) activeListener() *net.TCPListener {
	c.t.Helper()
	host, _, _ := net.SplitHostPort(c.conn.LocalAddr().String())
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { ln.Close() })
	return ln.(*net.TCPListener)
}

// accept takes the server's active data connection.
func accept(t testing.TB, ln *net.TCPListener) net.Conn {
	t.Helper()
	ln.SetDeadline(time.Now().Add(10 * time.Second))
	d, err := ln.Accept()
	if err != nil {
		t.Fatalf("server did not connect: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func readAll(t testing.TB, d net.Conn) []byte {
	t.Helper()
	d.SetReadDeadline(time.Now().Add(20 * time.Second))
	b, err := io.ReadAll(d)
	if err != nil {
		t.Fatalf("read data: %v", err)
	}
	return b
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// dirNames lists the names in a host directory.
func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// lines splits a CRLF listing into its lines, checking every line ends in
// CRLF and none holds a bare CR or LF.
func lines(t testing.TB, listing string) []string {
	t.Helper()
	if listing == "" {
		return nil
	}
	if !strings.HasSuffix(listing, "\r\n") {
		t.Fatalf("listing does not end in CRLF: %q", tail(listing))
	}
	ls := strings.Split(strings.TrimSuffix(listing, "\r\n"), "\r\n")
	for _, l := range ls {
		if strings.ContainsAny(l, "\r\n") {
			t.Fatalf("listing line with a bare CR or LF: %q", l)
		}
	}
	return ls
}

func tail(s string) string {
	if len(s) > 200 {
		return "…" + s[len(s)-200:]
	}
	return s
}

// isolated runs the calling test in a child process when it may crash the
// whole test binary (a panic in a goroutine the server does not recover).
// In the parent it runs the child and reports its failure; it returns true
// in the child, which then runs the test body.
func isolated(t *testing.T) bool {
	t.Helper()
	if os.Getenv("FERRY_ISOLATED_TEST") == t.Name() {
		return true
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "FERRY_ISOLATED_TEST="+t.Name())
	out, err := cmd.CombinedOutput()
	if err != nil {
		msg := string(out)
		if i := strings.Index(msg, "panic:"); i >= 0 {
			msg = msg[i:]
			if ls := strings.SplitN(msg, "\n", 9); len(ls) == 9 {
				msg = strings.Join(ls[:8], "\n")
			}
			t.Fatalf("the server process crashed:\n%s", msg)
		}
		t.Fatalf("child test failed (%v):\n%s", err, tail(msg))
	}
	if !bytes.Contains(out, []byte("--- PASS: "+t.Name())) {
		t.Fatalf("child test did not run:\n%s", tail(string(out)))
	}
	return false
}

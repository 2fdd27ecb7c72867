package ftp

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/testenv"

	"github.com/ferryftp/ferry/internal/access"
	"github.com/ferryftp/ferry/internal/users"
	"github.com/ferryftp/ferry/internal/vpath"
)

// memAuth is an in-memory Authenticator for engine tests.
type memAuth struct {
	mu    sync.Mutex
	users map[string]memUser
}

type memUser struct {
	pass string
	u    users.User
}

func (a *memAuth) Authenticate(_ context.Context, req users.LoginRequest) (*users.User, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	m, ok := a.users[req.Name]
	if !ok || m.pass != req.Password || m.u.Disabled {
		return nil, users.ErrAuth
	}
	u := m.u
	return &u, nil
}

// testServer is an in-process Ferry on 127.0.0.1:0.
type testServer struct {
	srv  *Server
	addr string
	data string
	home string // alice's home (a host directory, or the key of a mem FS)
	site *Site  // the site as started: its Storage reaches the files
	auth *memAuth
	logs *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testSettings are the engine settings of the default configuration, with
// data as the data directory, any passive port and no bans.
func testSettings(data string) Settings {
	return Settings{
		Banner:           "Ferry FTP server ready.",
		Anonymous:        true,
		AnonymousRoot:    filepath.Join(data, "public"),
		LoginTimeout:     60 * time.Second,
		IdleTimeout:      5 * time.Minute,
		DataTimeout:      30 * time.Second,
		MaxLineBytes:     4096,
		MaxSessions:      2000,
		MaxSessionsPerIP: 50,
		MaxLoginFailures: 3,
		FileUmask:        0o022,
		DirUmask:         0o022,
		TLSRequired:      TLSNone,
		TLSMinVersion:    tls.VersionTLS12,
		TLSSessionReuse:  ReuseRequired,
	}
}

// mustPatterns compiles globs or panics.
func mustPatterns(caseSensitive bool, globs ...string) access.Patterns {
	ps, err := access.NewPatterns(globs, caseSensitive)
	if err != nil {
		panic(err)
	}
	return ps
}

// mustPath resolves an absolute virtual path or panics.
func mustPath(p string) vpath.Path {
	v, err := vpath.Resolve(vpath.Root(), p)
	if err != nil {
		panic(err)
	}
	return v
}

// startServer starts a server; mod may change the site (its settings,
// authenticator, storage and TLS) and the server first.
func startServer(t testing.TB, mod func(*Site, *Server)) *testServer {
	t.Helper()
	return startServerOn(t, "127.0.0.1:0", mod)
}

// startServerOn is startServer listening on addr ("[::1]:0" for IPv6 tests);
// the test is skipped when addr cannot be bound on this host.
func startServerOn(t testing.TB, addr string, mod func(*Site, *Server)) *testServer {
	t.Helper()
	return startServerData(t, addr, t.TempDir(), mod)
}

// startServerData is startServerOn with the data directory given, for tests
// that need a particular file system (tmpfs for huge directories).
func startServerData(t testing.TB, addr, data string, mod func(*Site, *Server)) *testServer {
	t.Helper()
	if err := PrepareData(data); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(data, "home", "alice")
	auth := &memAuth{users: map[string]memUser{
		"alice": {pass: "secret", u: users.User{Name: "alice", Home: home}},
		"bob":   {pass: "hunter2", u: users.User{Name: "bob", Home: filepath.Join(data, "home", "bob"), Perms: "/=read;/incoming=read,upload"}},
	}}
	logs := &syncBuffer{}
	srv := &Server{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	site := &Site{Settings: testSettings(data), Auth: auth}
	if mod != nil {
		mod(site, srv)
	}
	if err := srv.SetSite(site); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(home, 0o755)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if addr != "127.0.0.1:0" && !testenv.InCI() {
			t.Skipf("cannot listen on %s: %v", addr, err)
		}
		t.Fatal(err)
	}
	go srv.Serve(ln, false)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if t.Failed() {
			srv.syncObservers(ctx)
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return &testServer{srv: srv, addr: ln.Addr().String(), data: data, home: home, site: site, auth: auth, logs: logs}
}

// logText returns the server's log once every event so far is in it: the
// log is an observer that writes on its own goroutine.
func (ts *testServer) logText() string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ts.srv.syncObservers(ctx)
	return ts.logs.String()
}

// client speaks raw protocol lines.
type client struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cl := &client{t: t, conn: c, r: bufio.NewReader(c)}
	cl.expect(220)
	return cl
}

// read returns the next full reply: its code and all its text lines.
func (c *client) read() (int, string) {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read reply: %v (got %q)", err, line)
	}
	if len(line) < 4 || !strings.HasSuffix(line, "\r\n") {
		c.t.Fatalf("malformed reply line %q", line)
	}
	code, err := strconv.Atoi(line[:3])
	if err != nil {
		c.t.Fatalf("malformed reply %q", line)
	}
	text := line[4 : len(line)-2]
	if line[3] == '-' {
		for {
			l, err := c.r.ReadString('\n')
			if err != nil {
				c.t.Fatalf("read multi-line reply: %v", err)
			}
			text += "\n" + strings.TrimRight(l, "\r\n")
			if strings.HasPrefix(l, line[:3]+" ") {
				break
			}
		}
	}
	return code, text
}

func (c *client) send(line string) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c.conn, line+"\r\n"); err != nil {
		c.t.Fatalf("send %q: %v", line, err)
	}
}

func (c *client) expect(code int) string {
	c.t.Helper()
	got, text := c.read()
	if got != code {
		c.t.Fatalf("want %d, got %d %s", code, got, text)
	}
	return text
}

// cmd sends a line and checks the reply code.
func (c *client) cmd(line string, code int) string {
	c.t.Helper()
	c.send(line)
	got, text := c.read()
	if got != code {
		c.t.Fatalf("%s: want %d, got %d %s", line, code, got, text)
	}
	return text
}

func (c *client) login(user, pass string) {
	c.t.Helper()
	c.cmd("USER "+user, 331)
	c.cmd("PASS "+pass, 230)
}

// pasv opens a passive data connection via EPSV.
func (c *client) pasv() net.Conn {
	c.t.Helper()
	text := c.cmd("EPSV", 229)
	i := strings.Index(text, "(|||")
	j := strings.Index(text, "|)")
	host, _, _ := net.SplitHostPort(c.conn.RemoteAddr().String())
	d, err := net.DialTimeout("tcp", net.JoinHostPort(host, text[i+4:j]), 5*time.Second)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { d.Close() })
	return d
}

// retr downloads name in the current TYPE.
func (c *client) retr(name string) []byte {
	c.t.Helper()
	d := c.pasv()
	c.cmd("RETR "+name, 150)
	b, err := io.ReadAll(d)
	if err != nil {
		c.t.Fatal(err)
	}
	c.expect(226)
	return b
}

// stor uploads data under name.
func (c *client) stor(verb, name string, data []byte) {
	c.t.Helper()
	d := c.pasv()
	c.cmd(verb+" "+name, 150)
	d.Write(data)
	d.Close()
	c.expect(226)
}

// listing runs a listing command and returns the data.
func (c *client) listing(line string) string {
	c.t.Helper()
	d := c.pasv()
	c.cmd(line, 150)
	b, _ := io.ReadAll(d)
	c.expect(226)
	return string(b)
}

var _ = tls.VersionTLS12

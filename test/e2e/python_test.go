package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// pyPrelude is prepended to every python script. argv: host port user pass
// [args...]. A script ends by printing PY-OK; any exception fails the test
// with its traceback.
const pyPrelude = `
import ftplib, hashlib, io, os, re, socket, sys, time, datetime
HOST, PORT, USER, PASS = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ARGS = sys.argv[5:]
SENT, RECV = [], []
FTP_ERRORS = (ftplib.error_perm, ftplib.error_temp, ftplib.error_reply, ftplib.error_proto)

class LogMixin:
    def putcmd(self, line):
        SENT.append(line)
        super().putcmd(line)
    def getmultiline(self):
        line = super().getmultiline()
        RECV.append(line)
        return line

class FTP(LogMixin, ftplib.FTP):
    pass

class FTPS(LogMixin, ftplib.FTP_TLS):
    pass

def check(cond, *msg):
    if not cond:
        raise AssertionError(' '.join(str(m) for m in msg) + '\n  sent: %r\n  recv: %r' % (SENT[-8:], RECV[-8:]))

def sha(b):
    return hashlib.sha256(b).hexdigest()

def data(seed, n):
    import random
    return random.Random(seed).randbytes(n)

def connect(user=USER, pw=PASS, passive=True, host=None, cls=FTP):
    ftp = cls(timeout=30)
    ftp.connect(host or HOST, PORT)
    ftp.login(user, pw)
    ftp.set_pasv(passive)
    return ftp

def expect_error(code, fn, *a, **kw):
    try:
        fn(*a, **kw)
    except FTP_ERRORS as e:
        check(str(e).startswith(code), 'want a', code, 'reply, got', repr(e))
        return str(e)
    check(False, 'want a', code, 'reply from', getattr(fn, '__name__', fn), a, 'but it succeeded')

def retr(ftp, name, rest=None):
    buf = bytearray()
    ftp.retrbinary('RETR ' + name, buf.extend, rest=rest)
    return bytes(buf)

def stor(ftp, name, b, rest=None, cmd='STOR'):
    ftp.storbinary(cmd + ' ' + name, io.BytesIO(b), rest=rest)

def recv_all(conn):
    out = bytearray()
    while True:
        b = conn.recv(65536)
        if not b:
            return bytes(out)
        out.extend(b)
`

// python runs a python3 ftplib script against host:port.
func python(t testing.TB, host string, port int, user, pass, script string, args ...string) cmdResult {
	t.Helper()
	argv := append([]string{"-c", pyPrelude + script, host, strconv.Itoa(port), user, pass}, args...)
	return runCmd(t, 3*time.Minute, cmdOpts{Env: []string{"PYTHONIOENCODING=utf-8", "LC_ALL=C.UTF-8", "PYTHONDONTWRITEBYTECODE=1"}}, "python3", argv...)
}

// pythonOK runs a script that must end by printing PY-OK.
func pythonOK(t testing.TB, s *server, user, pass, script string, args ...string) cmdResult {
	t.Helper()
	r := python(t, s.Host, s.Port, user, pass, script, args...)
	if r.Code != 0 || !strings.Contains(r.Stdout, "PY-OK") {
		t.Errorf("python ftplib script failed:\n%s", r)
	} else if out := strings.TrimSpace(strings.ReplaceAll(r.Stdout, "PY-OK", "")); out != "" {
		t.Logf("python: %s", out)
	}
	return r
}

func TestPython(t *testing.T) {
	t.Parallel()
	requireTool(t, "python3")
	s := startServer(t, serverConfig{})
	home := s.addUser(t, testUser, testPass)
	py := func(t *testing.T, script string, args ...string) cmdResult {
		return pythonOK(t, s, testUser, testPass, script, args...)
	}

	t.Run("navigation-and-files", func(t *testing.T) {
		writeFile(t, filepath.Join(home, "fixed-time.txt"), []byte("t"))
		mt := time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)
		if err := os.Chtimes(filepath.Join(home, "fixed-time.txt"), mt, mt); err != nil {
			t.Fatal(err)
		}
		py(t, `
ftp = connect()
check(ftp.pwd() == '/', 'pwd', ftp.pwd())
d = ftp.mkd('pdir')
check(d.rstrip('/').endswith('pdir'), 'MKD returned', d)
ftp.cwd('pdir')
check(ftp.pwd() == '/pdir', 'pwd', ftp.pwd())
ftp.mkd('inner sub')
ftp.cwd('inner sub')
check(ftp.pwd() == '/pdir/inner sub', 'pwd', ftp.pwd())
ftp.cwd('..')
check(ftp.pwd() == '/pdir', 'pwd after cwd ..', ftp.pwd())
ftp.sendcmd('CDUP')
check(ftp.pwd() == '/', 'pwd after CDUP', ftp.pwd())
ftp.cwd('/pdir/inner sub')
ftp.cwd('/')
ftp.cwd('..')
check(ftp.pwd() == '/', 'cwd .. at the root must stay at the root', ftp.pwd())
ftp.rename('pdir', 'pdir renamed')
expect_error('550', ftp.cwd, 'pdir')
expect_error('550', ftp.rmd, 'pdir renamed')  # not empty
ftp.rmd('pdir renamed/inner sub')
ftp.rmd('pdir renamed')
expect_error('550', ftp.cwd, 'pdir renamed')

b = data(1, 123457)
stor(ftp, 'f.bin', b)
check(ftp.size('f.bin') == len(b), 'SIZE', ftp.size('f.bin'))
r = ftp.sendcmd('MDTM f.bin')
m = re.fullmatch(r'213 (\d{14})(\.\d+)?', r)
check(m, 'MDTM reply', r)
when = datetime.datetime.strptime(m.group(1), '%Y%m%d%H%M%S').replace(tzinfo=datetime.timezone.utc)
skew = abs((datetime.datetime.now(datetime.timezone.utc) - when).total_seconds())
check(skew < 300, 'MDTM of a new file is not now in UTC:', r)
r = ftp.sendcmd('MDTM fixed-time.txt')
check(r == '213 20210304050607', 'MDTM fixed-time.txt', r)
ftp.rename('f.bin', 'g h.bin')
check(retr(ftp, 'g h.bin') == b, 'content after rename')
ftp.delete('g h.bin')
expect_error('550', ftp.size, 'g h.bin')
expect_error('550', ftp.delete, 'g h.bin')
expect_error('550', ftp.cwd, 'no-such-dir')
expect_error('550', retr, ftp, 'no-such-file')
expect_error('550', ftp.rename, 'no-such-file', 'x')
expect_error('550', ftp.sendcmd, 'MDTM no-such-file')

feat = ftp.sendcmd('FEAT')
for f in ('UTF8', 'MLST', 'EPSV', 'REST STREAM', 'SIZE', 'MDTM'):
    check(re.search(r'(?m)^ ' + f, feat), 'FEAT lacks', f, feat)
ftp.sendcmd('NOOP')
check(ftp.sendcmd('SYST').startswith('215 '), 'SYST')
expect_error('500', ftp.sendcmd, 'XYZZY')
ftp.quit()
print('PY-OK')
`)
		mustNotExist(t, filepath.Join(home, "pdir"))
		mustNotExist(t, filepath.Join(home, "g h.bin"))
	})

	t.Run("round-trip", func(t *testing.T) {
		py(t, `
ftp = connect()
for i, n in enumerate([0, 1, 4096, 3*1024*1024+5]):
    b = data(10+i, n)
    name = 'rt-%d.bin' % n
    stor(ftp, name, b)
    got = retr(ftp, name)
    check(sha(got) == sha(b), 'round trip of', n, 'bytes: got', len(got))
    check(ftp.size(name) == n, 'SIZE', name)
ftp.quit()
print('PY-OK')
`)
		for i, n := range []int{0, 1, 4096, 3<<20 + 5} {
			checkFileContent(t, filepath.Join(home, "rt-"+strconv.Itoa(n)+".bin"), pyRandom(t, 10+i, n))
		}
	})

	t.Run("listings", func(t *testing.T) {
		dir := filepath.Join(home, "ldir")
		writeFile(t, filepath.Join(dir, "a.txt"), []byte("abc"))
		writeFile(t, filepath.Join(dir, "b c.txt"), []byte("bc"))
		writeFile(t, filepath.Join(dir, "été.txt"), []byte("é"))
		writeFile(t, filepath.Join(dir, "sub", "x"), nil)
		mt := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
		if err := os.Chtimes(filepath.Join(dir, "a.txt"), mt, mt); err != nil {
			t.Fatal(err)
		}
		py(t, `
WANT = sorted(['a.txt', 'b c.txt', 'été.txt', 'sub'])
ftp = connect()
lines = []
ftp.retrlines('LIST ldir', lines.append)
names = sorted(l.split(None, 8)[8] for l in lines if not l.startswith('total '))
check(names == WANT, 'LIST ldir names', names, lines)
for l in lines:
    if l.endswith(' sub'):
        check(l.startswith('d'), 'LIST dir line', l)
    if l.endswith(' a.txt'):
        check(l.startswith('-') and ' 3 ' in l, 'LIST file line', l)
nl = sorted(n.split('/')[-1] for n in ftp.nlst('ldir'))
check(nl == WANT, 'NLST ldir', nl)
ftp.cwd('ldir')
check(sorted(ftp.nlst()) == WANT, 'NLST', ftp.nlst())
lines = []
ftp.retrlines('LIST', lines.append)
check(len([l for l in lines if not l.startswith('total ')]) == 4, 'LIST', lines)
lines = []
ftp.retrlines('LIST -a', lines.append)
check(any(l.endswith(' a.txt') for l in lines), 'LIST -a', lines)
entries = {n: f for n, f in ftp.mlsd() if f.get('type') not in ('cdir', 'pdir')}
check(sorted(entries) == WANT, 'MLSD names', sorted(entries))
check(entries['a.txt'].get('type') == 'file', 'MLSD a.txt type', entries['a.txt'])
check(entries['a.txt'].get('size') == '3', 'MLSD a.txt size', entries['a.txt'])
check(entries['a.txt'].get('modify', '').startswith('20200102030405'), 'MLSD a.txt modify (UTC)', entries['a.txt'])
check(entries['sub'].get('type') == 'dir', 'MLSD sub type', entries['sub'])
check(entries['été.txt'].get('size') == '2', 'MLSD été.txt size', entries['été.txt'])
entries = {n: f for n, f in ftp.mlsd('/ldir/sub')}
check('x' in entries and entries['x'].get('size') == '0', 'MLSD of a path', entries)
r = ftp.sendcmd('MLST a.txt')
check(r.startswith('250') and 'type=file' in r.lower() and 'a.txt' in r, 'MLST', r)
expect_error('550', ftp.sendcmd, 'MLST no-such-file')
ftp.quit()
print('PY-OK')
`)
	})

	t.Run("ascii", func(t *testing.T) {
		py(t, `
ftp = connect()
ftp.storlines('STOR lines.txt', io.BytesIO(b'alpha\nbeta\n\ngamma\n'))
got = []
ftp.retrlines('RETR lines.txt', got.append)
check(got == ['alpha', 'beta', '', 'gamma'], 'retrlines', got)
ftp.voidcmd('TYPE A')
with ftp.transfercmd('RETR lines.txt') as conn:
    raw = recv_all(conn)
ftp.voidresp()
check(raw == b'alpha\r\nbeta\r\n\r\ngamma\r\n', 'RETR in TYPE A', raw)
ftp.voidcmd('TYPE A')
with ftp.transfercmd('STOR crlf.txt') as conn:
    conn.sendall(b'one\r\ntwo\r\n\r\nthree')
ftp.voidresp()
check(retr(ftp, 'lines.txt') == b'alpha\nbeta\n\ngamma\n', 'RETR in TYPE I')
ftp.quit()
print('PY-OK')
`)
		checkFileContent(t, filepath.Join(home, "lines.txt"), []byte("alpha\nbeta\n\ngamma\n"))
		checkFileContent(t, filepath.Join(home, "crlf.txt"), []byte("one\ntwo\n\nthree"))
	})

	t.Run("active", func(t *testing.T) {
		py(t, `
ftp = connect(passive=False)
b = data(5, 1024*1024+3)
stor(ftp, 'active.bin', b)
check(retr(ftp, 'active.bin') == b, 'active round trip')
check('active.bin' in ftp.nlst(), 'NLST in active mode')
lines = []
ftp.retrlines('LIST', lines.append)
check(any(l.endswith(' active.bin') for l in lines), 'LIST in active mode', lines)
check(any(c.startswith('PORT ') for c in SENT), 'ftplib did not use PORT', SENT)
ftp.quit()
print('PY-OK')
`)
		checkFileContent(t, filepath.Join(home, "active.bin"), pyRandom(t, 5, 1<<20+3))
	})

	t.Run("abort", func(t *testing.T) {
		bp, _ := bigFile(t)
		linkOrCopy(t, bp, filepath.Join(home, "big.bin"))
		writeFile(t, filepath.Join(home, "small.bin"), pyRandom(t, 77, 5000))
		// After an abort the same session must still answer PWD, SIZE and
		// transfer a small file.
		const after = `
check(ftp.pwd() == '/', 'PWD after abort')
check(ftp.size('small.bin') == 5000, 'SIZE after abort')
check(retr(ftp, 'small.bin') == data(77, 5000), 'RETR after abort')
ftp.quit()
print('PY-OK')
`
		const start = `
ftp = connect()
ftp.voidcmd('TYPE I')
conn = ftp.transfercmd('RETR big.bin')
got = 0
while got < 256*1024:
    b = conn.recv(65536)
    check(b, 'data connection closed after', got, 'bytes')
    got += len(b)
`
		t.Run("ftplib-abort-urgent", func(t *testing.T) {
			// ftplib.abort() sends "ABOR\r\n" with MSG_OOB: the last byte is
			// urgent data.
			py(t, start+`
ftp.sock.settimeout(10)
resp = ftp.abort()
check(resp[:3] in ('426', '225', '226'), 'ABOR reply', resp)
if resp[:3] == '426':
    resp2 = ftp.getresp()
    check(resp2[:3] in ('225', '226'), 'second ABOR reply', resp2)
conn.close()
`+after)
		})
		t.Run("plain-abor", func(t *testing.T) {
			py(t, start+`
ftp.putcmd('ABOR')
resp = ftp.getmultiline()
check(resp[:3] == '426', 'first reply after ABOR mid-transfer', resp)
resp2 = ftp.getmultiline()
check(resp2[:3] in ('225', '226'), 'second ABOR reply', resp2)
conn.close()
`+after)
		})
		t.Run("client-closes-data", func(t *testing.T) {
			py(t, start+`
conn.close()
resp = ftp.getmultiline()
check(resp[:1] == '4', 'reply to RETR after the client closed the data connection', resp)
`+after)
		})
		t.Run("abor-idle", func(t *testing.T) {
			py(t, `
ftp = connect()
r = ftp.sendcmd('ABOR')
check(r[:3] in ('225', '226'), 'ABOR with no transfer', r)
check(ftp.pwd() == '/', 'PWD')
ftp.quit()
print('PY-OK')
`)
		})
	})

	t.Run("rest", func(t *testing.T) {
		py(t, `
ftp = connect()
full = data(21, 2*1024*1024+99)
stor(ftp, 'rest.bin', full)
for n in (0, 1, 65536, 1000001, len(full) - 1, len(full)):
    got = retr(ftp, 'rest.bin', rest=n)
    check(got == full[n:], 'RETR with REST', n, 'got', len(got), 'bytes')
stor(ftp, 'rest-up.bin', full[:700000])
stor(ftp, 'rest-up.bin', full[700000:], rest=700000)
check(retr(ftp, 'rest-up.bin') == full, 'STOR with REST 700000')
stor(ftp, 'appe.bin', full[:10])
stor(ftp, 'appe.bin', full[10:20], cmd='APPE')
check(retr(ftp, 'appe.bin') == full[:20], 'APPE')
ftp.quit()
print('PY-OK')
`)
		full := pyRandom(t, 21, 2<<20+99)
		checkFileContent(t, filepath.Join(home, "rest-up.bin"), full)
		checkFileContent(t, filepath.Join(home, "appe.bin"), full[:20])
	})

	t.Run("stou", func(t *testing.T) {
		if err := os.MkdirAll(filepath.Join(home, "stoudir"), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(home, "stoudir", "taken.txt"), []byte("old"))
		py(t, `
ftp = connect()
ftp.cwd('stoudir')
ftp.voidcmd('TYPE I')
blobs = [data(31, 1000), data(32, 2000)]
mark = len(RECV)
for b in blobs:
    conn, _ = ftp.ntransfercmd('STOU')
    conn.sendall(b)
    conn.close()
    ftp.voidresp()
replies = RECV[mark:]
names = [n for n in ftp.nlst() if n != 'taken.txt']
check(len(names) == 2, 'two STOU uploads made', names)
check(sorted(sha(retr(ftp, n)) for n in names) == sorted(sha(b) for b in blobs), 'STOU contents')
for n in names:
    check(any(n in r for r in replies), 'RFC 1123 4.1.2.9: the STOU reply must name the file', n, replies)
check(retr(ftp, 'taken.txt') == b'old', 'STOU left other files alone')
ftp.quit()
print('PY-OK')
`)
	})

	t.Run("utf8-names", func(t *testing.T) {
		py(t, `
ftp = connect()
check(ftp.sendcmd('OPTS UTF8 ON').startswith('2'), 'OPTS UTF8 ON')
ftp.mkd('répertoire 日本')
ftp.cwd('répertoire 日本')
check(ftp.pwd() == '/répertoire 日本', 'pwd', ftp.pwd())
stor(ftp, 'naïve file ✓.txt', b'utf8')
check('naïve file ✓.txt' in ftp.nlst(), 'NLST', ftp.nlst())
check(retr(ftp, 'naïve file ✓.txt') == b'utf8', 'RETR')
ftp.quit()
print('PY-OK')
`)
		checkFileContent(t, filepath.Join(home, "répertoire 日本", "naïve file ✓.txt"), []byte("utf8"))
	})

	t.Run("pasv-address", func(t *testing.T) {
		// ftplib ignores the PASV address; check it is the server's own.
		py(t, `
ftp = connect()
r = ftp.sendcmd('PASV')
check(r.startswith('227 '), 'PASV', r)
host, port = ftplib.parse227(r)
check(host == '127.0.0.1', 'PASV advertises', host)
lo, hi = int(ARGS[0]), int(ARGS[1])
check(lo <= port <= hi, 'PASV port', port, 'outside', lo, hi)
r = ftp.sendcmd('EPSV')
port = ftplib.parse229(r, ftp.sock.getpeername())[1]
check(lo <= port <= hi, 'EPSV port', port, 'outside', lo, hi)
ftp.quit()
print('PY-OK')
`, strconv.Itoa(s.PassiveLo), strconv.Itoa(s.PassiveHi))
	})
}

func TestPythonAnonymous(t *testing.T) {
	t.Parallel()
	requireTool(t, "python3")
	s := startServer(t, serverConfig{})
	writeFile(t, filepath.Join(s.Public(), "readme.txt"), []byte("hello\n"))
	writeFile(t, filepath.Join(s.Public(), "pubdir", "f"), []byte("f"))
	for _, user := range []string{"anonymous", "ftp"} {
		t.Run(user, func(t *testing.T) {
			pythonOK(t, s, user, "guest@example.org", `
ftp = connect()
check(ftp.pwd() == '/', 'anonymous pwd', ftp.pwd())
check(retr(ftp, 'readme.txt') == b'hello\n', 'anonymous read')
check(sorted(ftp.nlst()) == ['pubdir', 'readme.txt'], 'anonymous NLST', ftp.nlst())
expect_error('550', stor, ftp, 'x.txt', b'x')
expect_error('550', stor, ftp, 'readme.txt', b'x')
expect_error('550', stor, ftp, 'readme.txt', b'x', cmd='APPE')
expect_error('550', stor, ftp, 'readme.txt', b'x', rest=3)
expect_error('550', ftp.mkd, 'newdir')
expect_error('550', ftp.delete, 'readme.txt')
expect_error('550', ftp.rename, 'readme.txt', 'moved.txt')
expect_error('550', ftp.rmd, 'pubdir')
ftp.cwd('pubdir')
expect_error('550', stor, ftp, 'y.txt', b'y')
ftp.cwd('..')
ftp.cwd('..')
check(ftp.pwd() == '/', 'anonymous cannot leave its root', ftp.pwd())
check(retr(ftp, 'readme.txt') == b'hello\n', 'read after refusals')
ftp.quit()
print('PY-OK')
`)
		})
	}
	checkFileContent(t, filepath.Join(s.Public(), "readme.txt"), []byte("hello\n"))
	for _, p := range []string{"x.txt", "newdir", "moved.txt", "pubdir/y.txt"} {
		mustNotExist(t, filepath.Join(s.Public(), p))
	}
}

func TestPythonIPv6(t *testing.T) {
	t.Parallel()
	requireTool(t, "python3")
	s := startServer(t, serverConfig{Listen: "[::1]:0"})
	home := s.addUser(t, testUser, testPass)
	if s.Host != "::1" {
		t.Fatalf("listening on %q, want ::1", s.Addr)
	}
	pythonOK(t, s, testUser, testPass, `
for passive in (True, False):
    ftp = connect(passive=passive)
    check(ftp.af == socket.AF_INET6, 'not an IPv6 session')
    b = data(40 + passive, 2*1024*1024 + passive)
    name = 'v6-%s.bin' % ('pasv' if passive else 'active')
    stor(ftp, name, b)
    check(retr(ftp, name) == b, 'IPv6 round trip, passive =', passive)
    check(name in ftp.nlst(), 'NLST over IPv6')
    entries = dict(ftp.mlsd())
    check(entries[name]['size'] == str(len(b)), 'MLSD over IPv6')
    ftp.quit()
check(any(c == 'EPSV' for c in SENT), 'ftplib did not use EPSV', SENT)
check(any(c.startswith('EPRT |2|::1|') for c in SENT), 'ftplib did not use EPRT', SENT)
print('PY-OK')
`)
	checkFileContent(t, filepath.Join(home, "v6-pasv.bin"), pyRandom(t, 41, 2<<20+1))
	checkFileContent(t, filepath.Join(home, "v6-active.bin"), pyRandom(t, 40, 2<<20))
}

// pyRandom returns the bytes of python's random.Random(seed).randbytes(n),
// so Go can check on disk what a script uploaded.
func pyRandom(t testing.TB, seed, n int) []byte {
	t.Helper()
	r := runCmd(t, time.Minute, cmdOpts{}, "python3", "-c",
		"import random, sys; sys.stdout.buffer.write(random.Random(int(sys.argv[1])).randbytes(int(sys.argv[2])))",
		strconv.Itoa(seed), strconv.Itoa(n))
	if r.Code != 0 || len(r.Stdout) != n {
		t.Fatalf("python random bytes: %s", r)
	}
	return bytes.Clone([]byte(r.Stdout))
}

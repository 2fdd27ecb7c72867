package e2e

import (
	"fmt"
	"hash/crc32"
	"path/filepath"
	"strings"
	"testing"
)

// TestPythonHash checks the digest commands as a client script sees them:
// ftplib's sendcmd against Python's hashlib and zlib, over the built binary
// and its local disk (user extended attributes for stored digests).
func TestPythonHash(t *testing.T) {
	t.Parallel()
	requireTool(t, "python3")
	s := startServer(t, serverConfig{})
	home := s.addUser(t, testUser, testPass)
	pythonOK(t, s, testUser, testPass, `
import zlib
ftp = connect()
feat = ftp.sendcmd('FEAT')
check('HASH SHA-256*;SHA-512;SHA-1;MD5;CRC32' in feat, 'FEAT', feat)
b = data(7, 300000)
stor(ftp, 'h.bin', b)
r = ftp.sendcmd('HASH h.bin')
check(r == '213 SHA-256 0-%d %s h.bin' % (len(b) - 1, sha(b)), 'HASH', r)
check(ftp.sendcmd('XCRC h.bin') == '250 %08X' % zlib.crc32(b), 'XCRC', RECV[-1])
check(ftp.sendcmd('OPTS HASH MD5') == '200 MD5', 'OPTS HASH MD5', RECV[-1])
r = ftp.sendcmd('HASH h.bin')
check(r.split()[3] == hashlib.md5(b).hexdigest(), 'HASH MD5', r)
ftp.sendcmd('OPTS HASH SHA-512')
check(ftp.sendcmd('RANG 10 99').startswith('350'), 'RANG', RECV[-1])
r = ftp.sendcmd('HASH h.bin')
check(r == '213 SHA-512 10-99 %s h.bin' % hashlib.sha512(b[10:100]).hexdigest(), 'RANG+HASH', r)
r = ftp.sendcmd('XSHA1 "h.bin" 5 20')
check(r == '250 ' + hashlib.sha1(b[5:20]).hexdigest().upper(), 'XSHA1 range', r)
expect_error('501', ftp.sendcmd, 'OPTS HASH CRC-37')
expect_error('501', ftp.sendcmd, 'XSHA256 h.bin 9 3')
expect_error('553', ftp.sendcmd, 'HASH .')
expect_error('550', ftp.sendcmd, 'HASH missing.bin')
# An outside write: the stored digest is stale, the file is read again.
with open(ARGS[0], 'ab') as f:
    f.write(b'!')
ftp.sendcmd('OPTS HASH SHA-256')
r = ftp.sendcmd('HASH h.bin')
check(r.split()[3] == sha(b + b'!'), 'HASH after an outside write', r)
ftp.quit()
print('PY-OK')
`, filepath.Join(home, "h.bin"))
}

// TestCurlHash: curl sends HASH and XCRC as quote commands after an upload
// and prints the replies with -v.
func TestCurlHash(t *testing.T) {
	t.Parallel()
	requireTool(t, "curl")
	s := startServer(t, serverConfig{})
	s.addUser(t, testUser, testPass)
	b := randBytes(21, 70000)
	src := filepath.Join(t.TempDir(), "c.bin")
	writeFile(t, src, b)
	curlOK(t, "-T", src, s.URL("ftp", testUser, testPass, "c.bin"))
	r := curlOK(t, "-Q", "HASH c.bin", "-Q", "XCRC c.bin", s.URL("ftp", testUser, testPass, ""))
	want := fmt.Sprintf("< 213 SHA-256 0-%d %s c.bin", len(b)-1, sha(b))
	if !strings.Contains(r.Stderr, want) {
		t.Errorf("curl -v shows no %q:\n%s", want, r.Stderr)
	}
	if want := fmt.Sprintf("< 250 %08X", crc32.ChecksumIEEE(b)); !strings.Contains(r.Stderr, want) {
		t.Errorf("curl -v shows no %q:\n%s", want, r.Stderr)
	}
}

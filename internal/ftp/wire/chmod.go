package wire

import (
	"io/fs"
	"strings"
)

// ParseChmod parses a SITE CHMOD argument "755 path": one to four octal
// digits, exactly one space, then the path, which keeps any further spaces.
// Non-octal or over-long modes and a missing path give ErrSyntax; a mode with
// setuid, setgid or sticky bits (0o7000) gives ErrSpecialBits, which the
// engine refuses with 550 rather than silently dropping the bits. The
// returned mode holds permission bits only.
func ParseChmod(arg string) (fs.FileMode, string, error) {
	m, path, ok := strings.Cut(arg, " ")
	if !ok || path == "" || m == "" || len(m) > 4 {
		return 0, "", ErrSyntax
	}
	var v uint32
	for i := 0; i < len(m); i++ {
		c := m[i]
		if c < '0' || c > '7' {
			return 0, "", ErrSyntax
		}
		v = v<<3 | uint32(c-'0')
	}
	if v&0o7000 != 0 {
		return 0, "", ErrSpecialBits
	}
	return fs.FileMode(v), path, nil
}

package wire

import (
	"errors"
	"strings"
)

// ErrRangeOrder is a byte range whose start comes after its end.
var ErrRangeOrder = errors.New("wire: range start after its end")

// ParseRang parses the argument of RANG (draft-bryan-ftp-range §3): two
// decimal byte offsets separated by one space, the end inclusive. "1 0" is
// the reset form (reset true). Anything but digits, a missing or extra
// field, or an offset beyond 2^63-1 gives ErrSyntax; a start after the end
// (other than the reset) gives ErrRangeOrder.
func ParseRang(arg string) (start, end int64, reset bool, err error) {
	a, b, ok := strings.Cut(arg, " ")
	if !ok {
		return 0, 0, false, ErrSyntax
	}
	start, ok1 := parseOffset(a)
	end, ok2 := parseOffset(b)
	switch {
	case !ok1 || !ok2:
		return 0, 0, false, ErrSyntax
	case start == 1 && end == 0:
		return 0, 0, true, nil
	case start > end:
		return 0, 0, false, ErrRangeOrder
	}
	return start, end, false, nil
}

// ParseDigestArgs parses the argument of the legacy digest commands XCRC,
// XMD5, XSHA1, XSHA256 and XSHA512: "path" or "path start end", with end
// exclusive (bytes start to end-1, as ProFTPD's mod_digest reads them). The
// path may be in double quotes, a quote inside it doubled ("a ""b"" c"); an
// unquoted path keeps its spaces, and its last two space-separated fields
// are taken as the range only when both are decimal numbers. A quoted path
// followed by anything but two numbers, an empty path and offsets beyond
// 2^63-1 give ErrSyntax; start >= end gives ErrRangeOrder.
func ParseDigestArgs(arg string) (path string, start, end int64, ranged bool, err error) {
	rest := ""
	if strings.HasPrefix(arg, `"`) {
		var b strings.Builder
		i := 1
		for ; i < len(arg); i++ {
			if arg[i] == '"' {
				if i+1 < len(arg) && arg[i+1] == '"' {
					b.WriteByte('"')
					i++
					continue
				}
				break
			}
			b.WriteByte(arg[i])
		}
		if i >= len(arg) { // no closing quote
			return "", 0, 0, false, ErrSyntax
		}
		path, rest = b.String(), arg[i+1:]
		if rest != "" {
			if rest[0] != ' ' {
				return "", 0, 0, false, ErrSyntax
			}
			rest = rest[1:]
		}
	} else {
		path = arg
		if j := strings.LastIndexByte(arg, ' '); j > 0 {
			if k := strings.LastIndexByte(arg[:j], ' '); k > 0 {
				_, ok1 := parseOffset(arg[k+1 : j])
				_, ok2 := parseOffset(arg[j+1:])
				if ok1 && ok2 {
					path, rest = arg[:k], arg[k+1:]
				}
			}
		}
	}
	if path == "" {
		return "", 0, 0, false, ErrSyntax
	}
	if rest == "" {
		return path, 0, 0, false, nil
	}
	a, b, ok := strings.Cut(rest, " ")
	start, ok1 := parseOffset(a)
	end, ok2 := parseOffset(b)
	switch {
	case !ok || !ok1 || !ok2:
		return "", 0, 0, false, ErrSyntax
	case start >= end:
		return "", 0, 0, false, ErrRangeOrder
	}
	return path, start, end, true, nil
}

// parseOffset reads a non-empty run of decimal digits that fits an int64.
func parseOffset(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var v int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if v > (1<<63-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

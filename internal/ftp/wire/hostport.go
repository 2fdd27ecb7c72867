package wire

import (
	"net/netip"
	"strconv"
	"strings"
)

// ParsePORT parses a PORT argument "h1,h2,h3,h4,p1,p2" (RFC 959 §4.1.2):
// six decimal fields of one to three digits, each 0..255, the address
// h1.h2.h3.h4 and the port p1*256+p2. Spaces around the whole argument are
// ignored; anything else (signs, inner spaces, other field counts) is
// ErrSyntax. Port 0 and foreign hosts are syntactically valid: the engine
// decides whether to connect.
func ParsePORT(arg string) (netip.AddrPort, error) {
	s := strings.Trim(arg, " ")
	var v [6]byte
	for i := range v {
		field := s
		if i < len(v)-1 {
			var ok bool
			field, s, ok = strings.Cut(s, ",")
			if !ok {
				return netip.AddrPort{}, ErrSyntax
			}
		}
		n, ok := parseDec(field, 3)
		if !ok || n > 255 {
			return netip.AddrPort{}, ErrSyntax
		}
		v[i] = byte(n)
	}
	addr := netip.AddrFrom4([4]byte{v[0], v[1], v[2], v[3]})
	return netip.AddrPortFrom(addr, uint16(v[4])<<8|uint16(v[5])), nil
}

// FormatPASV renders ap as "h1,h2,h3,h4,p1,p2" for a 227 reply (RFC 959
// §4.1.2); the engine adds the parentheses and text. An IPv4-mapped IPv6
// address is unmapped first. FormatPASV panics if the address is not IPv4:
// PASV cannot describe IPv6, and the engine must answer such clients
// otherwise (EPSV, RFC 2428 §3).
func FormatPASV(ap netip.AddrPort) string {
	a := ap.Addr().Unmap()
	if !a.Is4() {
		panic("wire: FormatPASV: not an IPv4 address")
	}
	b := a.As4()
	p := ap.Port()
	out := make([]byte, 0, len("255,255,255,255,255,255"))
	for _, n := range [6]byte{b[0], b[1], b[2], b[3], byte(p >> 8), byte(p)} {
		if len(out) > 0 {
			out = append(out, ',')
		}
		out = strconv.AppendUint(out, uint64(n), 10)
	}
	return string(out)
}

// ParseEPRT parses an EPRT argument (RFC 2428 §2):
// "<d><net-prt><d><net-addr><d><tcp-port><d>", where the delimiter d is any
// ASCII character 33..126 except a digit ('|' in practice). net-prt 1 needs a
// dotted IPv4 address, 2 an IPv6 address (an IPv4-mapped one is returned as
// is; the caller should Unmap before comparing with the control peer); zone
// identifiers are refused. The port must be 1..65535. A well-formed protocol
// number other than 1 or 2 gives ErrUnsupportedProto (522); everything else
// wrong gives ErrSyntax. Spaces around the whole argument are ignored.
func ParseEPRT(arg string) (netip.AddrPort, error) {
	s := strings.Trim(arg, " ")
	if len(s) < 2 {
		return netip.AddrPort{}, ErrSyntax
	}
	d := s[0]
	if d < 33 || d > 126 || ('0' <= d && d <= '9') || s[len(s)-1] != d {
		return netip.AddrPort{}, ErrSyntax
	}
	body := s[1 : len(s)-1]
	i := strings.IndexByte(body, d)
	if i < 0 {
		return netip.AddrPort{}, ErrSyntax
	}
	proto, body := body[:i], body[i+1:]
	i = strings.IndexByte(body, d)
	if i < 0 {
		return netip.AddrPort{}, ErrSyntax
	}
	host, port := body[:i], body[i+1:]
	if strings.IndexByte(port, d) >= 0 {
		return netip.AddrPort{}, ErrSyntax
	}

	want4 := false
	switch {
	case proto == "1":
		want4 = true
	case proto == "2":
	case isDigits(proto):
		return netip.AddrPort{}, ErrUnsupportedProto
	default:
		return netip.AddrPort{}, ErrSyntax
	}
	if strings.IndexByte(host, '%') >= 0 {
		return netip.AddrPort{}, ErrSyntax // a zone names a local interface: meaningless to us
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Is4() != want4 {
		return netip.AddrPort{}, ErrSyntax
	}
	n, ok := parseDec(port, 5)
	if !ok || n < 1 || n > 65535 {
		return netip.AddrPort{}, ErrSyntax
	}
	return netip.AddrPortFrom(a, uint16(n)), nil
}

// FormatEPSV renders port for a 229 reply as "(|||port|)" (RFC 2428 §3).
func FormatEPSV(port uint16) string {
	return "(|||" + strconv.FormatUint(uint64(port), 10) + "|)"
}

// EPSVArg is what an EPSV command asks for (RFC 2428 §3).
type EPSVArg int

const (
	EPSVAny EPSVArg = iota // no argument: the control connection's protocol
	EPSV4                  // "1": IPv4
	EPSV6                  // "2": IPv6
	EPSVAll                // "ALL": only EPSV from now on; PORT, PASV and EPRT must be refused
)

// String returns the argument as the client writes it.
func (a EPSVArg) String() string {
	switch a {
	case EPSVAny:
		return ""
	case EPSV4:
		return "1"
	case EPSV6:
		return "2"
	case EPSVAll:
		return "ALL"
	}
	return "EPSVArg(" + strconv.Itoa(int(a)) + ")"
}

// ParseEPSV parses an EPSV argument (RFC 2428 §3): "" (any), "1", "2" or
// "ALL" (case-insensitive). Another protocol number gives ErrEPSVProto (522);
// anything else gives ErrSyntax (501). Spaces around the argument are
// ignored.
func ParseEPSV(arg string) (EPSVArg, error) {
	s := strings.Trim(arg, " ")
	switch {
	case s == "":
		return EPSVAny, nil
	case s == "1":
		return EPSV4, nil
	case s == "2":
		return EPSV6, nil
	case strings.EqualFold(s, "ALL"):
		return EPSVAll, nil
	case isDigits(s):
		return EPSVAny, ErrEPSVProto
	}
	return EPSVAny, ErrSyntax
}

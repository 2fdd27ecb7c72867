// Package natdiag diagnoses passive-mode, NAT, firewall and TLS-reuse
// problems from what the server sees: it is fed observations (made from the
// engine's events by cmd/ferry) and keeps findings, each with its evidence
// and the exact setting to change. The Analyzer does no I/O of its own and
// reads no clock but the observations' times, so every rule is testable with
// data; WriteReport and ReadReport are the findings file a running server
// keeps for `ferry diagnose`.
package natdiag

import "net/netip"

// Class is the kind of network an address belongs to, as far as reaching
// it from the Internet goes.
type Class uint8

const (
	Public      Class = iota // routable on the Internet
	Private                  // RFC 1918 (IPv4) private networks
	CGNAT                    // RFC 6598 shared address space, 100.64.0.0/10
	ULA                      // RFC 4193 unique local IPv6, fc00::/7
	LinkLocal                // 169.254.0.0/16, fe80::/10
	Loopback                 // 127.0.0.0/8, ::1
	Unspecified              // 0.0.0.0, ::, or no address at all
	Reserved                 // documentation, benchmarking, multicast and other special-purpose ranges
)

var classNames = [...]string{"public", "private", "CGNAT", "unique local", "link-local", "loopback", "unspecified", "reserved"}

func (c Class) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return "unknown"
}

var (
	cgnat     = netip.MustParsePrefix("100.64.0.0/10")
	reserved4 = []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/8"),
		netip.MustParsePrefix("192.0.0.0/24"),
		netip.MustParsePrefix("198.18.0.0/15"),
		netip.MustParsePrefix("240.0.0.0/4"),
	}
	reserved6 = []netip.Prefix{
		netip.MustParsePrefix("64:ff9b:1::/48"),
		netip.MustParsePrefix("100::/64"),
	}
)

// Classify returns the class of a. Documentation ranges (192.0.2.0/24,
// 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32) count as public, so that
// examples and tests can stand for Internet clients; an IPv4-mapped IPv6
// address is classified as its IPv4 address.
func Classify(a netip.Addr) Class {
	a = a.Unmap()
	switch {
	case !a.IsValid(), a.IsUnspecified():
		return Unspecified
	case a.IsLoopback():
		return Loopback
	case a.IsLinkLocalUnicast():
		return LinkLocal
	case a.Is4() && a.IsPrivate():
		return Private
	case a.Is6() && a.IsPrivate():
		return ULA
	case a.Is4() && cgnat.Contains(a):
		return CGNAT
	case a.IsMulticast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast():
		return Reserved
	}
	for _, p := range reserved4 {
		if p.Contains(a) {
			return Reserved
		}
	}
	for _, p := range reserved6 {
		if p.Contains(a) {
			return Reserved
		}
	}
	return Public
}

// classifier decides whether an address is public, with networks the
// operator declares public whatever their class (PublicNetworks: a site
// whose "Internet" is a large private network, and loopback tests).
type classifier struct{ public []netip.Prefix }

func (c classifier) class(a netip.Addr) Class {
	a = a.Unmap()
	for _, p := range c.public {
		if p.Contains(a) {
			return Public
		}
	}
	return Classify(a)
}

func (c classifier) isPublic(a netip.Addr) bool { return c.class(a) == Public }

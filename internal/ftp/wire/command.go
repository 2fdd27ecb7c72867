package wire

import "strings"

// Split separates a command line into its verb, upper-cased (ASCII letters
// only, so that no Unicode case mapping can turn a foreign word into a verb),
// and its argument. The verb ends at the first space and exactly one space is
// removed: the argument keeps any further leading, inner and trailing spaces,
// which file names may contain (RFC 959 §4.1 has one SP between command and
// argument).
//
//	"noop"        -> ("NOOP", "")
//	"RETR  a b "  -> ("RETR", " a b ")
func Split(line string) (verb, arg string) {
	verb, arg, _ = strings.Cut(line, " ")
	return upperASCII(verb), arg
}

// upperASCII upper-cases ASCII letters and leaves every other byte alone. It
// does not allocate when s has no lower-case letter.
func upperASCII(s string) string {
	i := 0
	for i < len(s) && !('a' <= s[i] && s[i] <= 'z') {
		i++
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for ; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}

// ParseListArgs splits a LIST, NLST or STAT argument into ls-style flags and
// a path. Many clients send flags ("LIST -la", "LIST -aL dir") although RFC
// 959 defines none. Leading words made of '-' followed only by ASCII letters
// are flags and are removed, with the spaces after them; a word "--" ends the
// flags and is removed too ("-- -la" names a file "-la"). The path is the
// rest, "" meaning the current directory; without flags the argument is
// returned unchanged. all reports whether a flag word held 'a' or 'A', asking
// for dot files.
func ParseListArgs(arg string) (path string, all bool) {
	rest := arg
	flags := false
	for {
		s := strings.TrimLeft(rest, " ")
		word, after, _ := strings.Cut(s, " ")
		if word == "--" {
			return strings.TrimLeft(after, " "), all
		}
		if !isFlagWord(word) {
			break
		}
		flags = true
		if strings.ContainsAny(word, "aA") {
			all = true
		}
		rest = after
	}
	if !flags {
		return arg, false
	}
	return strings.TrimLeft(rest, " "), all
}

// isFlagWord reports whether w is '-' followed by one or more ASCII letters.
func isFlagWord(w string) bool {
	if len(w) < 2 || w[0] != '-' {
		return false
	}
	for i := 1; i < len(w); i++ {
		if c := w[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// isDigits reports whether s is one or more ASCII digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseDec parses 1 to maxDigits ASCII decimal digits (no sign, no spaces).
func parseDec(s string, maxDigits int) (int, bool) {
	if len(s) > maxDigits || !isDigits(s) {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// Package access decides what a user may do where: FTP commands map to a
// small set of verbs (the vocabulary of mod_ftp's <Limit>), granted or denied
// per path and inherited down the tree. It does no I/O.
package access

import (
	"fmt"
	"path"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Verb is one kind of operation; FTP commands map onto these.
type Verb uint16

const (
	List      Verb = 1 << iota // LIST NLST MLSD MLST STAT SIZE MDTM CWD
	Download                   // RETR
	Upload                     // STOR STOU to a new name
	Overwrite                  // STOR over an existing file, RNTO onto one
	Append                     // APPE, REST+STOR
	Delete                     // DELE
	Rename                     // RNFR RNTO
	Mkdir                      // MKD
	Rmdir                      // RMD
	Chmod                      // SITE CHMOD, MFMT

	// All is every verb; Read is what anonymous users get.
	All  = List | Download | Upload | Overwrite | Append | Delete | Rename | Mkdir | Rmdir | Chmod
	Read = List | Download
)

var verbNames = map[string]Verb{
	"list": List, "download": Download, "upload": Upload, "overwrite": Overwrite,
	"append": Append, "delete": Delete, "rename": Rename, "mkdir": Mkdir,
	"rmdir": Rmdir, "chmod": Chmod, "all": All, "read": Read, "none": 0,
}

// Rule sets the verbs at Path and below it: exactly Verbs, or, when
// Relative, the inherited verbs plus Verbs minus Remove.
type Rule struct {
	Path     string // cleaned absolute virtual path
	Verbs    Verb
	Remove   Verb
	Relative bool
}

// Rules is a user's permission table, ordered from the root down; the most
// specific path wins.
type Rules []Rule

// Parse reads a rule spec: "PATH=verb,verb;PATH=..." with verbs from
// list download upload overwrite append delete rename mkdir rmdir chmod,
// or the groups all, read, none. A verb written "-verb" or "+verb" adjusts
// what the parent path grants instead of replacing it ("/in=-delete").
// The empty spec gives no rules.
func Parse(spec string) (Rules, error) {
	var rules Rules
	for _, part := range strings.Split(spec, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		p, verbs, ok := strings.Cut(part, "=")
		if !ok || !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("access: rule %q: want /path=verbs", part)
		}
		if strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return nil, fmt.Errorf("access: rule %q: control character in path", part)
		}
		r := Rule{Path: path.Clean(p)}
		for _, v := range strings.Split(verbs, ",") {
			v = strings.ToLower(strings.TrimSpace(v))
			sign := ""
			if strings.HasPrefix(v, "-") || strings.HasPrefix(v, "+") {
				sign, v = v[:1], v[1:]
			}
			bit, ok := verbNames[v]
			if !ok {
				return nil, fmt.Errorf("access: rule %q: unknown verb %q", part, v)
			}
			switch sign {
			case "-":
				r.Remove |= bit
				r.Relative = true
			case "+":
				r.Verbs |= bit
				r.Relative = true
			default:
				r.Verbs |= bit
			}
		}
		rules = append(rules, r)
	}
	sort.SliceStable(rules, func(i, j int) bool { return depth(rules[i].Path) < depth(rules[j].Path) })
	return rules, nil
}

func depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

// Allowed reports whether v is granted at p, starting from base (what the
// user has at the root when no rule says otherwise).
func (rs Rules) Allowed(base Verb, p string, v Verb) bool {
	return rs.Verbs(base, p)&v == v
}

// Verbs computes the verbs granted at p: the rules that cover p are applied
// from the root down, each replacing or adjusting the inherited set.
func (rs Rules) Verbs(base Verb, p string) Verb {
	got := base
	for _, r := range rs {
		if !within(p, r.Path) {
			continue
		}
		if r.Relative {
			got = (got | r.Verbs) &^ r.Remove
		} else {
			got = r.Verbs
		}
	}
	return got
}

func within(p, dir string) bool {
	return dir == "/" || p == dir || strings.HasPrefix(p, dir+"/")
}

// Patterns is a list of shell globs (path.Match syntax) matched against
// single names, ready to match: made by NewPatterns. The zero value matches
// nothing.
//
// Unless exact, a name matches in any case: letters are compared by Unicode
// simple case folding, so "*.exe" matches "EVIL.EXE", "evil.Exe" and
// "evil.exe"; and a name matches with its trailing dots and spaces removed
// too ("evil.exe." and "evil.exe " match "*.exe"). A range in a class should then have letters of one case at
// both ends ("[a-z]" matches every letter in either case).
type Patterns struct {
	globs []string // folded unless exact
	exact bool
}

// NewPatterns compiles globs; caseSensitive makes them match exactly. It
// reports the first malformed pattern.
func NewPatterns(globs []string, caseSensitive bool) (Patterns, error) {
	ps := Patterns{exact: caseSensitive}
	for _, g := range globs {
		if _, err := path.Match(g, ""); err != nil {
			return Patterns{}, fmt.Errorf("access: bad pattern %q: %w", g, err)
		}
		if !caseSensitive {
			g = fold(g)
		}
		ps.globs = append(ps.globs, g)
	}
	return ps, nil
}

// Len returns the number of patterns.
func (ps Patterns) Len() int { return len(ps.globs) }

// Match reports whether name matches any pattern.
func (ps Patterns) Match(name string) bool {
	if len(ps.globs) == 0 {
		return false
	}
	if !ps.exact {
		name = fold(name)
		// Windows drops trailing dots and spaces from names, so a client
		// could store "evil.exe." past "*.exe" and have it become evil.exe
		// on the next copy: match the trimmed name too.
		if t := strings.TrimRight(name, ". "); t != name && t != "" && ps.match(t) {
			return true
		}
	}
	return ps.match(name)
}

func (ps Patterns) match(name string) bool {
	for _, g := range ps.globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

// fold maps every rune of s to the smallest rune of its simple case-folding
// orbit (k, K and the Kelvin sign all become K), so two strings fold alike
// exactly when they are equal ignoring case (strings.EqualFold). It keeps
// the number of runes, so "?" still matches one character, and it keeps
// bytes that are not UTF-8 as they are (strings.Map would make each one
// U+FFFD, and a legacy name "caf\xe9" would fold like "caf\xe8").
func fold(s string) string {
	var b []byte
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		m := r
		if r != utf8.RuneError || n > 1 {
			for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
				m = min(m, f)
			}
		}
		if m != r && b == nil {
			b = append(make([]byte, 0, len(s)), s[:i]...)
		}
		if b != nil {
			if m != r {
				b = utf8.AppendRune(b, m)
			} else {
				b = append(b, s[i:i+n]...)
			}
		}
		i += n
	}
	if b == nil {
		return s
	}
	return string(b)
}

// Under returns the paths of the rules at p or below it, from the root down:
// the places where what is granted inside p can differ from p's own verbs.
func (rs Rules) Under(p string) []string {
	var out []string
	for _, r := range rs {
		if r.Path != "/" && within(r.Path, p) {
			out = append(out, r.Path)
		}
	}
	return out
}

package access

import (
	"path"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// verbsAt is a table row: the verbs a spec grants at a path, from base All.
type verbsAt struct {
	path string
	want Verb
}

func checkVerbs(t *testing.T, spec string, base Verb, rows []verbsAt) {
	t.Helper()
	rs, err := Parse(spec)
	if err != nil {
		t.Fatalf("Parse(%q): %v", spec, err)
	}
	for _, r := range rows {
		if got := rs.Verbs(base, r.path); got != r.want {
			t.Errorf("Parse(%q).Verbs(base %s, %q) = %s, want %s", spec, verbString(base), r.path, verbString(got), verbString(r.want))
			continue
		}
		for v := Verb(1); v <= Chmod; v <<= 1 {
			if got := rs.Allowed(base, r.path, v); got != (r.want&v != 0) {
				t.Errorf("Parse(%q).Allowed(%q, %s) = %v", spec, r.path, verbString(v), got)
			}
		}
	}
}

// verbString names the verbs of v, for failure messages.
func verbString(v Verb) string {
	switch v {
	case 0:
		return "none"
	case All:
		return "all"
	}
	var names []string
	for _, n := range []string{"list", "download", "upload", "overwrite", "append", "delete", "rename", "mkdir", "rmdir", "chmod"} {
		if b := verbNames[n]; v&b != 0 {
			names = append(names, n)
		}
	}
	return strings.Join(names, ",")
}

// TestParseAbsoluteRules: bob's rules from the engine's harness. A rule
// replaces what is inherited, at its path and below, and nowhere else.
func TestParseAbsoluteRules(t *testing.T) {
	checkVerbs(t, "/=read;/incoming=read,upload", All, []verbsAt{
		{"/", Read},
		{"/docs", Read},
		{"/docs/a/b.txt", Read},
		{"/incoming", Read | Upload},
		{"/incoming/new.txt", Read | Upload},
		{"/incoming/sub/deeper", Read | Upload},
		{"/incomingx", Read}, // a prefix of the name is not the directory
		{"/incoming.txt", Read},
	})
}

func TestParseMostSpecificWins(t *testing.T) {
	rows := []verbsAt{
		{"/", Read},
		{"/a", All},
		{"/a/b", 0},
		{"/a/b/c", Download},
		{"/a/bc", All},
	}
	// The order of the rules in the spec does not matter.
	checkVerbs(t, "/=read;/a=all;/a/b=none;/a/b/c=download", All, rows)
	checkVerbs(t, "/a/b/c=download;/a/b=none;/a=all;/=read", All, rows)
	checkVerbs(t, "/a=all;/a/b/c=download;/=read;/a/b=none", All, rows)
}

func TestParseNoRules(t *testing.T) {
	for _, spec := range []string{"", " ", ";", " ; ;; "} {
		rs, err := Parse(spec)
		if err != nil || len(rs) != 0 {
			t.Fatalf("Parse(%q) = %v, %v; want no rules", spec, rs, err)
		}
		for _, base := range []Verb{0, Read, All} {
			if got := rs.Verbs(base, "/any/where"); got != base {
				t.Errorf("no rules: Verbs(%s) = %s", verbString(base), verbString(got))
			}
		}
	}
}

func TestParseVerbNames(t *testing.T) {
	for name, bit := range verbNames {
		for _, spelled := range []string{name, strings.ToUpper(name), " " + name + " "} {
			checkVerbs(t, "/d="+spelled, All, []verbsAt{{"/d", bit}, {"/", All}})
		}
	}
	checkVerbs(t, "/d=list,download,upload,overwrite,append,delete,rename,mkdir,rmdir,chmod", 0, []verbsAt{{"/d/x", All}, {"/", 0}})
	checkVerbs(t, "/d=read,upload,none", All, []verbsAt{{"/d", Read | Upload}})
}

// TestParseDeltas: "+verb" and "-verb" adjust what the parent grants
// instead of replacing it, and the result is inherited further down.
func TestParseDeltas(t *testing.T) {
	checkVerbs(t, "/=all;/in=-delete,-rename", 0, []verbsAt{
		{"/", All},
		{"/in", All &^ (Delete | Rename)},
		{"/in/x/y", All &^ (Delete | Rename)},
		{"/inbox", All},
	})
	checkVerbs(t, "/=read;/in=+upload", All, []verbsAt{
		{"/", Read},
		{"/in", Read | Upload},
		{"/in/sub", Read | Upload},
	})
	// Deltas stack down the tree, each on top of its parent's result.
	checkVerbs(t, "/=read;/a=+upload,+mkdir;/a/b=-download;/a/b/c=+download,-mkdir", All, []verbsAt{
		{"/", Read},
		{"/a", Read | Upload | Mkdir},
		{"/a/b", List | Upload | Mkdir},
		{"/a/b/c", Read | Upload},
		{"/a/b/c/d", Read | Upload},
	})
	// A delta under an absolute rule starts from that rule, not from base.
	checkVerbs(t, "/a=none;/a/b=+list", All, []verbsAt{{"/a/b", List}, {"/a", 0}, {"/", All}})
	// Without a rule above, a delta applies to the base.
	checkVerbs(t, "/a=-delete", All, []verbsAt{{"/a", All &^ Delete}, {"/", All}})
	checkVerbs(t, "/a=-delete", Read, []verbsAt{{"/a", Read}})
	checkVerbs(t, "/a=+upload", Read, []verbsAt{{"/a", Read | Upload}, {"/b", Read}})
	// In one rule, removals apply after additions.
	checkVerbs(t, "/ro=-all,+read", All, []verbsAt{{"/ro", 0}})
	checkVerbs(t, "/ro=+read,-upload,-overwrite,-append,-delete,-rename,-mkdir,-rmdir,-chmod", All, []verbsAt{{"/ro", Read}})
}

// TestParseRootDelta: a delta rule on "/" is the root's rule wherever it is
// written in the spec.
func TestParseRootDelta(t *testing.T) {
	rows := []verbsAt{
		{"/", All &^ Delete},
		{"/x", All &^ Delete},
		{"/a", Read},
		{"/a/b", Read},
	}
	checkVerbs(t, "/=-delete;/a=read", All, rows)
	checkVerbs(t, "/a=read;/=-delete", All, rows)
	checkVerbs(t, "/a=read;/=+list,-delete", All, rows)
}

func TestParseCleansPaths(t *testing.T) {
	for _, spec := range []string{"/in/=read", "//in=read", "/x/../in=read", "/./in/.=read", " /in=read ", " /in=READ ; "} {
		checkVerbs(t, spec, All, []verbsAt{{"/in", Read}, {"/in/f", Read}, {"/", All}, {"/x", All}})
	}
	// ".." cannot climb above the root: "/../in" is "/in".
	checkVerbs(t, "/../in=none", All, []verbsAt{{"/in", 0}, {"/", All}})
}

func TestParseErrors(t *testing.T) {
	for _, spec := range []string{
		"in=read",        // relative path
		"=read",          // no path
		"/in",            // no verbs
		"/in=",           // empty verb list
		"/in=fly",        // unknown verb
		"/in=read,,list", // empty verb
		"/in=+",          // sign without a verb
		"/in=-",          // ditto
		"/in=read;bad",   // one bad rule spoils the spec
		"/in=re ad",      // a verb is one word
		"/a\x00-=read",   // NUL cannot be part of a path
		"/a\n/b=read",    // nor a line break
		"~/in=read",      // no home shorthand
		"C:\\in=read",    // no drive letters
	} {
		if rs, err := Parse(spec); err == nil {
			t.Errorf("Parse(%q) = %v, want an error", spec, rs)
		}
	}
}

func mustPatterns(t *testing.T, caseSensitive bool, globs ...string) Patterns {
	t.Helper()
	ps, err := NewPatterns(globs, caseSensitive)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func TestPatterns(t *testing.T) {
	exact := mustPatterns(t, true, "*.secret", ".ht*", "core", "...")
	for name, want := range map[string]bool{
		"core.": false, // exact patterns match exactly
		"...":   true, "..": false,
		"a.secret": true, ".secret": true, "a.secret.txt": false, "A.SECRET": false,
		".htaccess": true, "x.htaccess": false, "core": true, "core.1": false, "": false, "CORE": false,
	} {
		if got := exact.Match(name); got != want {
			t.Errorf("exact Match(%q) = %v, want %v", name, got, want)
		}
	}
	if (Patterns{}).Match("x") || mustPatterns(t, false).Match("") || mustPatterns(t, false).Len() != 0 {
		t.Error("empty patterns match")
	}
	for _, bad := range [][]string{{"ok", "[z-a"}, {"[unclosed"}, {"a\\"}} {
		if _, err := NewPatterns(bad, false); err == nil {
			t.Errorf("NewPatterns(%q) accepted a malformed pattern", bad)
		}
	}
}

// TestPatternsIgnoreCase: by default a pattern matches a name in any case,
// for the upload and hiding patterns an attacker would otherwise dodge with
// EVIL.EXE.
func TestPatternsIgnoreCase(t *testing.T) {
	ps := mustPatterns(t, false, "*.exe", "*.SECRET", "[a-c]?.txt", "\\*x", "\u212a*")
	for name, want := range map[string]bool{
		"evil.exe": true, "EVIL.EXE": true, "evil.Exe": true, "key.secret": true, "KEY.SECRET": true,
		"Key.Secret": true, "evil.exe.txt": false, "evil.ex": false,
		"B1.TXT": true, "b1.txt": true, "D1.txt": false, "\u0130\u0131.txt": false, "a\u0130.txt": true,
		"*x": true, "*X": true, "ax": false,
		"kelvin": true, "Kelvin": true, "\u212aelvin": true, "lelvin": false,
		// Windows drops trailing dots and spaces: these become evil.exe there.
		"evil.exe.": true, "EVIL.EXE. .": true, "evil.exe ": true, "evil.ex.e": false, "evil.exe.txt.": false,
	} {
		if got := ps.Match(name); got != want {
			t.Errorf("Match(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestPatternsByteNames: names that are not UTF-8 match bytewise: a
// literal byte matches only itself, '?' and '*' take each byte that is not
// UTF-8 as one character, a class lists no such byte ([^…] matches it),
// and a pattern with one inside a class is refused. Nothing panics.
func TestPatternsByteNames(t *testing.T) {
	for _, sensitive := range []bool{true, false} {
		ps := mustPatterns(t, sensitive, "caf?.txt", "\xff*", "x[^a]y", "z[a-c]", "lit\xe9")
		for name, want := range map[string]bool{
			"caf\xe9.txt": true, "caf\xe9\xe9.txt": false, "cafe.txt": true, "caf\xc3\xa9.txt": true,
			"\xff\xfe": true, "\xff": true, "\xfe\xff": false,
			"x\x80y": true, "xay": false, "z\xe9": false, "zb": true,
			"lit\xe9": true, "lit\xe8": false, "LIT\xe9": !sensitive, "lit\xc3\xa9": false,
		} {
			if got := ps.Match(name); got != want {
				t.Errorf("sensitive=%v: Match(%q) = %v, want %v", sensitive, name, got, want)
			}
		}
		if _, err := NewPatterns([]string{"[\xe9]"}, sensitive); err == nil {
			t.Error("a class holding a byte that is not UTF-8 was accepted")
		}
	}
}

// TestPatternsRegressions holds inputs found by FuzzPatterns.
func TestPatternsRegressions(t *testing.T) {
	// Folding turned each byte that is not UTF-8 into U+FFFD: "\xce*"
	// stopped matching "\u0382" (bytes ce 82), and a legacy name
	// "caf\xe9" folded like "caf\xe8" and like a pattern's U+FFFD.
	for _, tt := range []struct {
		glob, name string
		want       bool
	}{
		{"\xce*", "\u0382", true},
		{"caf\xe9", "caf\xe9", true},
		{"caf\xe9", "CAF\xe9", true},
		{"caf\xe9", "caf\xe8", false},
		{"caf\ufffd", "caf\xe9", false},
		{"caf?", "caf\xe9", true},
	} {
		if got := mustPatterns(t, false, tt.glob).Match(tt.name); got != tt.want {
			t.Errorf("ignoring case, %q Match(%q) = %v, want %v", tt.glob, tt.name, got, tt.want)
		}
	}
}

// TestParseRegressions holds inputs found by FuzzParse.
func TestParseRegressions(t *testing.T) {
	// A root delta written after a deeper rule was sorted away from its
	// "-" half and became "/=none".
	checkVerbs(t, "/a=read;/=-delete", All, []verbsAt{{"/b", All &^ Delete}})
}

// FuzzParse checks that Parse never panics and that the rules it returns are
// self-consistent: verbs stay within All, Allowed agrees with Verbs, and the
// order of rules on distinct paths does not change any answer.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "/=read", "/=read;/incoming=read,upload", "/=all;/in=-delete,-rename", "/=read;/in=+upload",
		"/a=read;/=-delete", "/a/b=none;/a=all;/=read", "/x/../y=list", "/=+all,-all", "/a=-read;/a/b=+download",
		"bad", "/a=fly", "/a=;/b=read", "/é/ü=read", "/a=READ,-LIST",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		rs, err := Parse(spec)
		if err != nil {
			return
		}
		var parts []string
		var probes []string
		seen := map[string]bool{}
		distinct := true
		for _, part := range strings.Split(spec, ";") {
			if strings.TrimSpace(part) == "" {
				continue
			}
			parts = append(parts, part)
			p, _, _ := strings.Cut(strings.TrimSpace(part), "=")
			p = path.Clean(p)
			if seen[p] {
				distinct = false
			}
			seen[p] = true
			probes = append(probes, p, path.Join(p, "child"), path.Dir(p))
		}
		probes = append(probes, "/", "/elsewhere")
		for _, r := range rs {
			if !strings.HasPrefix(r.Path, "/") {
				t.Fatalf("Parse(%q): rule path %q is not absolute", spec, r.Path)
			}
		}
		for _, p := range probes {
			for _, base := range []Verb{0, Read, All} {
				v := rs.Verbs(base, p)
				if v&^All != 0 {
					t.Fatalf("Parse(%q).Verbs(%q) = %b: bits outside All", spec, p, v)
				}
				for bit := Verb(1); bit <= Chmod; bit <<= 1 {
					if rs.Allowed(base, p, bit) != (v&bit != 0) {
						t.Fatalf("Parse(%q): Allowed and Verbs disagree at %q", spec, p)
					}
				}
			}
		}
		if !distinct || len(parts) < 2 {
			return
		}
		// Reversed, the same rules must give the same answers.
		rev := make([]string, len(parts))
		for i, p := range parts {
			rev[len(parts)-1-i] = p
		}
		rs2, err := Parse(strings.Join(rev, ";"))
		if err != nil {
			t.Fatalf("Parse(%q) ok but reversed %q: %v", spec, strings.Join(rev, ";"), err)
		}
		for _, p := range probes {
			for _, base := range []Verb{0, Read, All} {
				if a, b := rs.Verbs(base, p), rs2.Verbs(base, p); a != b {
					t.Fatalf("rule order matters: Parse(%q).Verbs(%q) = %s but reversed gives %s", spec, p, verbString(a), verbString(b))
				}
			}
		}
	})
}

func TestUnder(t *testing.T) {
	rs, err := Parse("/=all;/pub=read;/pub/archive=read;/pubx=none;/other/pub=all")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(rs.Under("/pub"), " ")
	if got != "/pub /pub/archive" {
		t.Errorf("Under(/pub) = %q, want the rule at /pub and below it only", got)
	}
	if got := rs.Under("/nothing"); len(got) != 0 {
		t.Errorf("Under(/nothing) = %q", got)
	}
}

// caseVariant returns s with the runes picked by mask (bit i for the i-th
// rune, cycling) replaced by the next rune of their case-folding orbit:
// a string equal to s ignoring case. Bytes that are not UTF-8 stay.
func caseVariant(s string, mask uint64) string {
	var b strings.Builder
	for i := 0; len(s) > 0; i++ {
		r, n := utf8.DecodeRuneInString(s)
		if r == utf8.RuneError && n == 1 || mask>>(i%64)&1 == 0 {
			b.WriteString(s[:n]) // bytes that are not UTF-8 stay
		} else {
			b.WriteRune(unicode.SimpleFold(r))
		}
		s = s[n:]
	}
	return b.String()
}

// FuzzPatterns: NewPatterns accepts exactly the globs path.Match accepts,
// in either mode; a case-sensitive pattern matches exactly as path.Match
// does; an ignoring-case one gives the same answer for every case variant
// of the name and of the pattern, matches whatever the exact one matches
// when the pattern has no class, and matches a literal pattern exactly
// when strings.EqualFold says the name equals it.
func FuzzPatterns(f *testing.F) {
	for _, s := range [][2]string{
		{"*.exe", "EVIL.EXE"}, {"*.exe", "evil.exe.txt"}, {"[a-c]?.txt", "B1.TXT"}, {"[a-Z]", "_"},
		{"\\*x", "*X"}, {"\u212a*", "kelvin"}, {"k", "\u212a"}, {"ſ", "S"}, {"\u0130", "i"}, {"ß", "ẞ"},
		{"[^a-z]*", "Q"}, {"[unclosed", "u"}, {"a\\", "a"}, {"[z-a]", "m"}, {"readme", "README"},
		{"?", "é"}, {"?", "\xff"}, {"\xce*", "\u0382"}, {"caf\xe9", "caf\xe8"}, {"*", ""}, {"", ""}, {"\xff*", "\xffX"}, {"[\\]]", "]"}, {"Σ*", "ς"},
	} {
		f.Add(s[0], s[1], uint64(0x5555))
	}
	f.Fuzz(func(t *testing.T, glob, name string, mask uint64) {
		_, bad := path.Match(glob, "")
		exact, errExact := NewPatterns([]string{glob}, true)
		folded, errFolded := NewPatterns([]string{glob}, false)
		if (errExact != nil) != (bad != nil) || (errFolded != nil) != (bad != nil) {
			t.Fatalf("NewPatterns(%q): %v / %v, path.Match: %v", glob, errExact, errFolded, bad)
		}
		if bad != nil {
			return
		}
		want, _ := path.Match(glob, name)
		if got := exact.Match(name); got != want {
			t.Fatalf("case-sensitive %q Match(%q) = %v, path.Match says %v", glob, name, got, want)
		}
		got := folded.Match(name)
		if v := caseVariant(name, mask); folded.Match(v) != got {
			t.Fatalf("%q matches %q: %v but its case variant %q: %v", glob, name, got, v, !got)
		}
		if gv := caseVariant(glob, mask); gv != glob {
			ps, err := NewPatterns([]string{gv}, false)
			if err != nil {
				t.Fatalf("case variant %q of %q: %v", gv, glob, err)
			}
			if ps.Match(name) != got {
				t.Fatalf("%q matches %q: %v but the case variant %q of the pattern: %v", glob, name, got, gv, !got)
			}
		}
		if want && !got && !strings.Contains(glob, "[") {
			t.Fatalf("%q matches %q exactly but not ignoring case", glob, name)
		}
		if !strings.ContainsAny(glob, "*?[\\") && utf8.ValidString(glob) && utf8.ValidString(name) {
			trimmed := strings.TrimRight(name, ". ")
			if w := strings.EqualFold(glob, name) || trimmed != "" && strings.EqualFold(glob, trimmed); got != w {
				t.Fatalf("literal %q Match(%q) = %v ignoring case, EqualFold (of the name or its trimmed form) says %v", glob, name, got, w)
			}
			if exact.Match(name) != (glob == name) {
				t.Fatalf("literal %q Match(%q) = %v case-sensitively", glob, name, !(glob == name))
			}
		}
	})
}

// FuzzUnder: Under(p) lists exactly the non-root rules at p or below it,
// from the root down, and a path inside p that none of them but p's own
// covers gets p's verbs.
func FuzzUnder(f *testing.F) {
	for _, s := range [][2]string{
		{"/=all;/pub=read;/pub/archive=read;/pubx=none;/other/pub=all", "/pub"},
		{"/=all;/pub=read", "/"}, {"/a=-delete;/a/b=+delete;/a/b/c=none", "/a"}, {"/a/b=none", "/a/b/c"},
		{"/a=read", "a"}, {"/a=read", "/a/"}, {"/a=read", "/../a"}, {"", "/x"}, {"/ab=none;/a=read", "/a"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, spec, p string) {
		rs, err := Parse(spec)
		if err != nil {
			return
		}
		p = path.Clean("/" + p)
		under := rs.Under(p)
		n := 0
		for _, r := range rs {
			if r.Path != "/" && within(r.Path, p) {
				n++
			}
		}
		if len(under) != n {
			t.Fatalf("Parse(%q).Under(%q) = %q, want the %d rules at or below it", spec, p, under, n)
		}
		for i, u := range under {
			if u == "/" || !within(u, p) {
				t.Fatalf("Parse(%q).Under(%q) lists %q", spec, p, u)
			}
			if i > 0 && depth(u) < depth(under[i-1]) {
				t.Fatalf("Parse(%q).Under(%q) = %q: not from the root down", spec, p, under)
			}
		}
		probes := []string{path.Join(p, "child"), path.Join(p, "child", "x")}
		for _, u := range under {
			probes = append(probes, u, path.Join(u, "c"), u+"x", path.Dir(u))
		}
		for _, q := range probes {
			if !within(q, p) {
				continue
			}
			covered := false
			for _, u := range under {
				covered = covered || u != p && within(q, u)
			}
			if covered {
				continue
			}
			for _, base := range []Verb{0, Read, All} {
				if a, b := rs.Verbs(base, q), rs.Verbs(base, p); a != b {
					t.Fatalf("Parse(%q): %q has %s, its ancestor %q %s, and Under(%q) = %q shows no rule between",
						spec, q, verbString(a), p, verbString(b), p, under)
				}
			}
		}
	})
}

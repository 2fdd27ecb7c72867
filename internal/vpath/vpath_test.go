package vpath

import (
	"errors"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	cwd, _ := Resolve(Root(), "/home/a")
	tests := []struct {
		arg, want string
		bad       bool
	}{
		{"", "/home/a", false},
		{".", "/home/a", false},
		{"x", "/home/a/x", false},
		{"x/", "/home/a/x", false},
		{"..", "/home", false},
		{"../../../../etc/passwd", "/etc/passwd", false},
		{"/../../etc", "/etc", false},
		{"/", "/", false},
		{"//x//y/./z/..", "/x/y", false},
		{"%2e%2e/x", "/home/a/%2e%2e/x", false},
		{"a\\..\\b", "/home/a/a\\..\\b", false},
		{"a b \"q\"", "/home/a/a b \"q\"", false},
		{"été/ñ", "/home/a/été/ñ", false},
		{"a\x00b", "", true},
		{"a\rb", "", true},
		{"a\nb", "", true},
		{"\xff\xfe", "/home/a/\xff\xfe", false}, // names are bytes
		{"caf\xe9/a\x80b", "/home/a/caf\xe9/a\x80b", false},
	}
	for _, tt := range tests {
		got, err := Resolve(cwd, tt.arg)
		if (err != nil) != tt.bad {
			t.Errorf("Resolve(%q) err = %v, want bad=%v", tt.arg, err, tt.bad)
			continue
		}
		if !tt.bad && got.String() != tt.want {
			t.Errorf("Resolve(%q) = %q, want %q", tt.arg, got, tt.want)
		}
	}
}

func TestIsUTF8(t *testing.T) {
	for arg, want := range map[string]bool{"/": true, "/a/été": true, "/caf\xe9": false, "/ok/\xff/x": false, "/a\x80b": false} {
		p, err := Resolve(Root(), arg)
		if err != nil || p.IsUTF8() != want {
			t.Errorf("Resolve(%q).IsUTF8() = %v (err %v), want %v", arg, p.IsUTF8(), err, want)
		}
	}
}

func TestPathParts(t *testing.T) {
	p, _ := Resolve(Root(), "/a/b/c")
	if p.Rel() != "a/b/c" || p.Base() != "c" || p.Dir().String() != "/a/b" {
		t.Fatalf("parts of %v: rel %q base %q dir %q", p, p.Rel(), p.Base(), p.Dir())
	}
	if Root().Rel() != "." || Root().Dir() != Root() || !Root().IsRoot() || Root().Base() != "/" {
		t.Fatal("root parts wrong")
	}
	a, _ := Resolve(Root(), "/a")
	ab, _ := Resolve(Root(), "/ab")
	if !p.Within(a) || ab.Within(a) || !a.Within(Root()) || !a.Within(a) {
		t.Fatal("Within wrong")
	}
	if a.Child("x").String() != "/a/x" || Root().Child("x").String() != "/x" {
		t.Fatal("Child wrong")
	}
}

// FuzzResolve checks the jail invariant: whatever the argument, the result
// is rooted, clean, and its storage form never climbs out.
func FuzzResolve(f *testing.F) {
	for _, s := range []string{"", "..", "../..", "/../x", "a/../../b", "./.", "a\x00", "//", "a/b/../c/"} {
		f.Add("/cwd/dir", s)
	}
	f.Fuzz(func(t *testing.T, cwdArg, arg string) {
		cwd, err := Resolve(Root(), cwdArg)
		if err != nil {
			return
		}
		p, err := Resolve(cwd, arg)
		if err != nil {
			return
		}
		rel := p.Rel()
		if rel == ".." || len(rel) >= 3 && rel[:3] == "../" || rel[0] == '/' {
			t.Fatalf("escape: %q + %q -> %q", cwdArg, arg, rel)
		}
		for _, seg := range splitSlash(rel) {
			if seg == ".." || seg == "" || (seg == "." && rel != ".") {
				t.Fatalf("unclean: %q", rel)
			}
		}
		if p2, err := Resolve(Root(), p.String()); err != nil || p2 != p {
			t.Fatalf("not idempotent: %q -> %q", p, p2)
		}
	})
}

func splitSlash(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '/' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

func TestCheckNewName(t *testing.T) {
	for _, name := range []string{"report.pdf", "日本語.txt", "café", `back\slash`, "nbsp\u00a0", "a?b*c"} {
		if err := CheckNewName(name); err != nil {
			t.Errorf("CheckNewName(%q) = %v, want nil", name, err)
		}
	}
	// Names that are not UTF-8 are names: Latin-1, lone continuation
	// bytes, raw 0x80–0x9F (not characters of any one encoding).
	for _, name := range []string{"caf\xe9.txt", "\xff\xfe", "a\x80b", "\x9b", "\xc2"} {
		if err := CheckNewName(name); err != nil {
			t.Errorf("CheckNewName(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range []string{"\x1b]0;pwned\x07", "a\x1b[2J", "tab\t", "del\x7f", "csi\u009b", "nel\u0085", "bel\x07",
		// A UTF-8 C1 inside a name that is not UTF-8, and C0/DEL there.
		"caf\xe9\u0085", "\xff\u009b2J", "\xe9\x1b", "\xe9\x7f"} {
		if err := CheckNewName(name); !errors.Is(err, ErrControlName) || !errors.Is(err, ErrBadName) {
			t.Errorf("CheckNewName(%q) = %v, want ErrControlName (an ErrBadName)", name, err)
		}
	}
	for _, name := range []string{"nul\x00", "cr\r", "lf\n"} {
		if err := CheckNewName(name); !errors.Is(err, ErrBadName) {
			t.Errorf("CheckNewName(%q) = %v, want ErrBadName", name, err)
		}
	}
}

// FuzzCheckNewName: a name CheckNewName accepts passes Check and holds no
// control character: no byte below 0x20, no DEL, no UTF-8 form of
// U+0080–U+009F anywhere (so, when it is UTF-8, no rune of U+007F–U+009F);
// a name it refuses is an ErrBadName, and an ErrControlName exactly when
// Check alone would have let it through.
func FuzzCheckNewName(f *testing.F) {
	for _, s := range []string{
		"report.pdf", "日本語.txt", "café", `back\slash`, "nbsp\u00a0", "a?b*c", "", ".", "..", "a/b",
		"\x1b]0;pwned\x07", "a\x1b[2J", "tab\t", "del\x7f", "csi\u009b", "nel\u0085", "\u00a0\u009f",
		"nul\x00", "cr\r", "lf\n", "\xff\xfe", "\xc2\x9b", "caf\xe9\x9b", "\xc2", "\U0010ffff", "\ufeff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := CheckNewName(name)
		if err != nil {
			if !errors.Is(err, ErrBadName) {
				t.Fatalf("CheckNewName(%q) = %v, not an ErrBadName", name, err)
			}
			if errors.Is(err, ErrControlName) != (Check(name) == nil) {
				t.Fatalf("CheckNewName(%q) = %v but Check gives %v", name, err, Check(name))
			}
			return
		}
		if Check(name) != nil {
			t.Fatalf("CheckNewName accepted %q, which Check refuses", name)
		}
		for _, r := range name {
			if r < 0x20 || r >= 0x7f && r <= 0x9f {
				t.Fatalf("CheckNewName accepted %q, which holds %U", name, r)
			}
		}
		if strings.ContainsFunc(name, func(r rune) bool { return r >= 0x80 && r <= 0x9f }) || strings.Contains(name, "\x7f") {
			t.Fatalf("CheckNewName accepted %q, which holds a C1 control or DEL", name)
		}
	})
}

// TestFromRel: FromRel inverts Rel and refuses what Resolve would change.
func TestFromRel(t *testing.T) {
	for _, rel := range []string{".", "a", "a/b c/d.txt", "...", "%2e%2e", "é/日本", "\xff", "caf\xe9/a\x80b"} {
		p, err := FromRel(rel)
		if err != nil || p.Rel() != rel {
			t.Errorf("FromRel(%q) = %q, %v", rel, p.Rel(), err)
		}
	}
	for _, rel := range []string{"", "/a", "a/", "a//b", "./a", "a/../b", "..", "a/.", "a\x00b", "a\nb"} {
		if p, err := FromRel(rel); !errors.Is(err, ErrBadName) {
			t.Errorf("FromRel(%q) = %q, %v; want ErrBadName", rel, p.Rel(), err)
		}
	}
}

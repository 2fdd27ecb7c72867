package escape

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestListingAndDisplay(t *testing.T) {
	tests := []struct{ in, listing, display string }{
		{"plain.txt", "plain.txt", "plain.txt"},
		{"日本語", "日本語", "日本語"},
		{`back\slash`, `back\slash`, `back\slash`},
		{"\x1b]0;pwned\x07", "?]0;pwned?", `\x1b]0;pwned\x07`},
		{"a\x1b[2Jb", "a?[2Jb", `a\x1b[2Jb`},
		{"tab\there", "tab?here", `tab\x09here`},
		{"del\x7f", "del?", `del\x7f`},
		{"nul\x00cr\rlf\n", "nul?cr?lf?", `nul\x00cr\x0dlf\x0a`},
		// C1 controls in UTF-8: CSI (U+009B), NEL (U+0085).
		{"csi\u009b2J", "csi?2J", `csi\u009b2J`},
		{"é\u0085", "é?", `é\u0085`},
		// U+00A0 and up are not controls.
		{"nbsp\u00a0x", "nbsp\u00a0x", "nbsp\u00a0x"},
		// Not UTF-8: the raw bytes 0x80–0x9F of a legacy name stay in
		// listings, byte-exact; C0 bytes are still controls. Display
		// writes each byte that is not UTF-8 as \xNN and a UTF-8 C1
		// anywhere as \u00NN.
		{"caf\xe9\x9b", "caf\xe9\x9b", `caf\xe9\x9b`},
		{"\xc2\x9b\xff", "\xc2\x9b\xff", `\u009b\xff`},
		{"\xff\x1b", "\xff?", `\xff\x1b`},
		{"\xff\xfe", "\xff\xfe", `\xff\xfe`},
		{"a\x80b", "a\x80b", `a\x80b`},
		{"été\xe9", "été\xe9", `été\xe9`},
	}
	for _, tt := range tests {
		if got := Listing(tt.in); got != tt.listing {
			t.Errorf("Listing(%q) = %q, want %q", tt.in, got, tt.listing)
		}
		if got := Display(tt.in); got != tt.display {
			t.Errorf("Display(%q) = %q, want %q", tt.in, got, tt.display)
		}
		if got, want := HasControl(tt.in), tt.listing != tt.in; got != want {
			t.Errorf("HasControl(%q) = %v, want %v", tt.in, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { Listing("a clean name.txt") }); n != 0 {
		t.Errorf("Listing of a clean name allocates %v times", n)
	}
}

// FuzzEscape: the escaped forms never hold a control character, and a
// string without one is returned unchanged.
func FuzzEscape(f *testing.F) {
	for _, s := range []string{"", "a", "\x1b[2J", "\u009b", "\xc2\x9b\xff", "é\u0085\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, out := range []string{Listing(s), Display(s)} {
			if HasControl(out) {
				t.Fatalf("escaped %q to %q, which holds a control", s, out)
			}
		}
		if l := Listing(s); !HasControl(s) && l != s || utf8.ValidString(s) != utf8.ValidString(l) {
			t.Fatalf("Listing(%q) = %q: changed a clean name or its UTF-8 validity", s, l)
		}
		d := Display(s)
		if !utf8.ValidString(d) || strings.ContainsFunc(d, func(r rune) bool { return r >= 0x80 && r <= 0x9f }) {
			t.Fatalf("Display(%q) = %q: not UTF-8, or holds a C1 control", s, d)
		}
		if !HasControl(s) && utf8.ValidString(s) && d != s {
			t.Fatalf("Display changed %q, which needs nothing, to %q", s, d)
		}
		if HasControl(s) && utf8.ValidString(s) {
			for _, r := range s {
				if (r < 0x20 || r >= 0x7f && r <= 0x9f) && strings.ContainsRune(Listing(s), r) {
					t.Fatalf("Listing(%q) keeps %U", s, r)
				}
			}
		}
	})
}

type stringer string

func (s stringer) String() string { return string(s) }

func TestHandler(t *testing.T) {
	for _, json := range []bool{false, true} {
		var buf bytes.Buffer
		var h slog.Handler = slog.NewTextHandler(&buf, nil)
		if json {
			h = slog.NewJSONHandler(&buf, nil)
		}
		log := slog.New(Handler(h)).With("user", "eve\x1b]0;x\x07")
		log.WithGroup("g").Info("transfer",
			"path", "/a\x1b[2J\u009b.txt",
			"err", errors.New("open:a\x1b:denied"),
			"name", stringer("b\x07"),
			slog.Group("sub", "file", "c\x1b"),
			"bytes", 42, "ok", "clean")
		out := buf.String()
		for _, bad := range []string{"\x1b", "\x07", "\u009b", `\u001b`, `\u0007`} {
			if strings.Contains(out, bad) {
				t.Errorf("json=%v: log holds %q: %s", json, bad, out)
			}
		}
		for _, want := range []string{`\\x1b[2J\\u009b`, `eve\\x1b]0;x\\x07`, `open:a\\x1b:denied`, `b\\x07`, `c\\x1b`, "42", "clean"} {
			if !json {
				want = strings.ReplaceAll(want, `\\`, `\`)
			}
			if !strings.Contains(out, want) {
				t.Errorf("json=%v: log lacks %q: %s", json, want, out)
			}
		}
	}
	// Wrapping twice is wrapping once.
	h := Handler(slog.DiscardHandler)
	if Handler(h) != h {
		t.Error("Handler wraps an escaping handler again")
	}
}

// recorder is a slog.Handler that keeps every attribute it is given, with
// the groups it was opened under, so a test can look at the values the
// escaping handler passes on rather than at a formatter's own quoting.
type recorder struct {
	attrs  *[]slog.Attr
	groups []string
}

func (r recorder) Enabled(context.Context, slog.Level) bool { return true }

func (r recorder) Handle(_ context.Context, rec slog.Record) error {
	rec.Attrs(func(a slog.Attr) bool {
		*r.attrs = append(*r.attrs, a)
		return true
	})
	return nil
}

func (r recorder) WithAttrs(as []slog.Attr) slog.Handler {
	*r.attrs = append(*r.attrs, as...)
	return r
}

func (r recorder) WithGroup(name string) slog.Handler {
	r.groups = append(r.groups[:len(r.groups):len(r.groups)], name)
	*r.attrs = append(*r.attrs, slog.String("group", name))
	return r
}

// controlIn returns the first key or string value under a that holds a
// control character, and whether there is one.
func controlIn(a slog.Attr) (string, bool) {
	if HasControl(a.Key) {
		return a.Key, true
	}
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return v.String(), HasControl(v.String())
	case slog.KindGroup:
		for _, g := range v.Group() {
			if s, ok := controlIn(g); ok {
				return s, true
			}
		}
	case slog.KindAny:
		var s string
		switch x := v.Any().(type) {
		case error:
			s = x.Error()
		case fmt.Stringer:
			s = x.String()
		case []byte:
			s = string(x)
		default:
			s = fmt.Sprintf("%+v", x)
		}
		return s, HasControl(s)
	}
	return "", false
}

// FuzzHandler: whatever keys, strings, errors, Stringers, byte slices,
// groups and With attributes a record carries, the handler below the
// escaping one sees no control character in any key, group name or text
// value, and a value without one reaches it unchanged.
func FuzzHandler(f *testing.F) {
	for _, s := range [][3]string{
		{"path", "/a.txt", "user"},
		{"path", "/a\x1b[2J\u009b.txt", "eve\x1b]0;x\x07"},
		{"k\x1b", "v", "g\x07"},
		{"", "", ""},
		{"err", "open:\xc2\x9b\xff", "nel\u0085"},
		{"name", "\x00\r\n\t\x7f", "é\u009f"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, key, val, other string) {
		var got []slog.Attr
		log := slog.New(Handler(recorder{attrs: &got})).With(key, val).WithGroup(other)
		log.Info("msg",
			key, val,
			"err", errors.New(val),
			"str", stringer(other),
			"raw", []byte(val),
			slog.Group(other, key, val, slog.Group("in", other, other)),
			"n", len(val),
			"names", []string{val, other},
			"entry", struct{ Name string }{val},
			slog.Any("lazy", slog.StringValue(other)))
		if len(got) == 0 {
			t.Fatal("no attributes reached the handler")
		}
		for _, a := range got {
			if s, ok := controlIn(a); ok {
				t.Fatalf("attribute %q passed on %q, which holds a control", a.Key, s)
			}
		}
		if !needsDisplay(key) && !needsDisplay(val) {
			if got[0].Key != key || got[0].Value.String() != val {
				t.Fatalf("clean attribute %q=%q passed on as %q=%q", key, val, got[0].Key, got[0].Value)
			}
		}
		// And what the standard handlers write holds none either.
		for _, json := range []bool{false, true} {
			var buf bytes.Buffer
			var h slog.Handler = slog.NewTextHandler(&buf, nil)
			if json {
				h = slog.NewJSONHandler(&buf, nil)
			}
			slog.New(Handler(h)).With(key, val).WithGroup(other).Info("msg",
				key, val, "names", []string{val, other}, "entry", struct{ Name string }{val},
				"m", map[string]string{other: val}, "err", errors.New(other))
			out := strings.TrimSuffix(buf.String(), "\n")
			if strings.ContainsFunc(out, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				t.Fatalf("json=%v: the log line %q holds a C0 control or DEL", json, out)
			}
			// Display writes the bytes of a value that is not UTF-8 as
			// \xNN and its C2 9B as \u009b, so no C1 control and no
			// U+FFFD comes out whatever the input.
			if HasControl(out) || !utf8.ValidString(out) || strings.ContainsRune(out, utf8.RuneError) && !strings.ContainsRune(key+val+other, utf8.RuneError) {
				t.Fatalf("json=%v: the log line %q holds a C1 control", json, out)
			}
		}
	})
}

// TestHandlerRegressions holds inputs found by FuzzHandler.
func TestHandlerRegressions(t *testing.T) {
	// A slice, map or struct of names passed through untouched, and the
	// JSON handler writes DEL and C1 controls in its strings as they are.
	var buf bytes.Buffer
	slog.New(Handler(slog.NewJSONHandler(&buf, nil))).Info("m",
		"names", []string{"a\u009b2J", "b\x7f"}, "entry", struct{ Name string }{"c\u009b"}, "m", map[string]string{"k\u0085": "v"})
	if out := strings.TrimSuffix(buf.String(), "\n"); HasControl(out) {
		t.Errorf("log line %q holds a control character", out)
	}
	for _, want := range []string{`[a\\u009b2J b\\x7f]`, `{Name:c\\u009b}`, `map[k\\u0085:v]`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log line %q lacks %s", buf.String(), want)
		}
	}
}

package escape

import (
	"bytes"
	"errors"
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
		// Not UTF-8: the raw bytes 0x80–0x9F of a legacy name stay;
		// C0 bytes are still controls.
		{"caf\xe9\x9b", "caf\xe9\x9b", "caf\xe9\x9b"},
		{"\xc2\x9b\xff", "\xc2\x9b\xff", "\xc2\x9b\xff"},
		{"\xff\x1b", "\xff?", `` + "\xff" + `\x1b`},
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
			if !HasControl(s) && out != s {
				t.Fatalf("changed %q, which holds no control, to %q", s, out)
			}
			if utf8.ValidString(s) != utf8.ValidString(out) {
				t.Fatalf("escaping %q to %q changed its UTF-8 validity", s, out)
			}
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

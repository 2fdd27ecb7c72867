// Package escape keeps control characters in names away from terminals. A
// name Ferry did not create (a file found on disk, a user name or a home in
// the database) can hold escape sequences (ESC ] 0 ; … BEL, ESC [ 2 J, the
// C1 CSI) that would drive the terminal of whoever reads a listing, a log
// or the CLI's output.
//
// A control character is a C0 byte (0x00–0x1F) or DEL (0x7F) anywhere, or a
// C1 control (U+0080–U+009F) in a string that is valid UTF-8. The raw bytes
// 0x80–0x9F of a name that is not UTF-8 (a legacy 8-bit name) are left
// alone by Listing, which must keep names byte-exact: they are not
// characters of any one encoding. Display, for logs, writes every byte
// that is not UTF-8 as \xNN.
package escape

import (
	"context"
	"fmt"
	"log/slog"
	"unicode/utf8"
)

// HasControl reports whether s holds a control character.
func HasControl(s string) bool {
	c1 := false
	for i := 0; i < len(s); i++ {
		switch b := s[i]; {
		case b < 0x20 || b == 0x7f:
			return true
		case b == 0xc2 && i+1 < len(s) && s[i+1] >= 0x80 && s[i+1] <= 0x9f:
			c1 = true // U+0080–U+009F, if s is UTF-8 at all
		}
	}
	return c1 && utf8.ValidString(s)
}

// Listing returns s with each control character replaced by '?', the way
// `ls -q` and vsftpd show such names: the form in which Ferry lists names.
// It returns s itself when s holds none.
func Listing(s string) string {
	return replace(s, func(b []byte, _ rune) []byte { return append(b, '?') })
}

// Display returns s in a form fit for logs and the CLI's output: each
// control character written as a Go escape, \x1b for a C0 byte or DEL and
// \u009b for a C1 control (its UTF-8 form C2 80–C2 9F anywhere, even in a
// string that is not UTF-8 as a whole), and each byte that is not part of
// valid UTF-8 written as \xNN, so a legacy name "caf\xe9" shows its exact
// bytes and the result is always valid UTF-8. Other bytes, backslashes
// included, are unchanged. It returns s itself when there is nothing to
// rewrite.
func Display(s string) string {
	if !needsDisplay(s) {
		return s
	}
	b := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1, r < 0x20, r == 0x7f:
			c := s[i]
			b = append(b, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
		case r >= 0x80 && r <= 0x9f:
			b = append(b, '\\', 'u', '0', '0', hexDigits[r>>4], hexDigits[r&0xf])
		default:
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return string(b)
}

// needsDisplay reports whether Display changes s: it holds a control
// character or is not valid UTF-8 (which a C1 form in it then is, too).
func needsDisplay(s string) bool { return HasControl(s) || !utf8.ValidString(s) }

// replace rewrites each control character of s with rep.
func replace(s string, rep func(b []byte, r rune) []byte) string {
	if !HasControl(s) {
		return s
	}
	c1 := utf8.ValidString(s)
	b := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c == 0x7f:
			b = rep(b, rune(c))
		case c1 && c == 0xc2 && i+1 < len(s) && s[i+1] >= 0x80 && s[i+1] <= 0x9f:
			b = rep(b, rune(s[i+1]))
			i++
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

// Handler returns a slog.Handler that passes every record to h with its
// keys and string values (and the text of error and Stringer values, and
// the %+v form of any other value, such as a slice of names) that hold
// control characters or bytes that are not UTF-8 rewritten by Display, in
// groups too, so that no name reaches a log with its escape sequences
// intact or its bytes replaced by U+FFFD. Records without such values pass
// unchanged.
func Handler(h slog.Handler) slog.Handler {
	if _, ok := h.(handler); ok {
		return h
	}
	return handler{h}
}

type handler struct{ h slog.Handler }

func (e handler) Enabled(ctx context.Context, l slog.Level) bool { return e.h.Enabled(ctx, l) }

func (e handler) Handle(ctx context.Context, r slog.Record) error {
	dirty := false
	r.Attrs(func(a slog.Attr) bool {
		_, dirty = attr(a)
		return !dirty
	})
	if !dirty {
		return e.h.Handle(ctx, r)
	}
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		a, _ = attr(a)
		out.AddAttrs(a)
		return true
	})
	return e.h.Handle(ctx, out)
}

func (e handler) WithAttrs(as []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(as))
	for i, a := range as {
		clean[i], _ = attr(a)
	}
	return handler{e.h.WithAttrs(clean)}
}

func (e handler) WithGroup(name string) slog.Handler {
	return handler{e.h.WithGroup(Display(name))}
}

// attr returns a with its value escaped, and whether that changed it.
func attr(a slog.Attr) (slog.Attr, bool) {
	v := a.Value.Resolve()
	key := a.Key
	changed := needsDisplay(key)
	if changed {
		key = Display(key)
	}
	switch v.Kind() {
	case slog.KindString:
		if s := v.String(); needsDisplay(s) {
			return slog.String(key, Display(s)), true
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
			// Slices, maps and structs of names: the JSON handler writes
			// their strings with DEL and C1 controls intact.
			s = fmt.Sprintf("%+v", x)
		}
		if needsDisplay(s) {
			return slog.String(key, Display(s)), true
		}
	case slog.KindGroup:
		as := v.Group()
		var out []slog.Attr
		for i, g := range as {
			if c, ok := attr(g); ok {
				if out == nil {
					out = append(make([]slog.Attr, 0, len(as)), as[:i]...)
				}
				out = append(out, c)
			} else if out != nil {
				out = append(out, g)
			}
		}
		if out != nil {
			return slog.Attr{Key: key, Value: slog.GroupValue(out...)}, true
		}
	}
	return slog.Attr{Key: key, Value: v}, changed
}

const hexDigits = "0123456789abcdef"

package wire

import (
	"strings"
	"unicode/utf8"
)

// AppendReply appends a complete reply (RFC 959 §4.2) to buf and returns the
// extended buffer.
//
// text holds the reply's lines separated by '\n'. One line gives
// "ddd text\r\n". Several give "ddd-first\r\n", then each middle line
// indented by one space, then "ddd last\r\n": the indent keeps a middle line
// from ever starting with a code, and is exactly the FEAT shape of RFC 2389
// §3.2, so FEAT text is passed without its own indent.
//
// The reply cannot be forged from its text: CR, NUL and every other control
// byte except '\n' (0x00–0x1F, 0x7F) become '?', so a file name cannot end a
// line early or inject one; so do the C1 controls (U+0080–U+009F, such as
// the CSI U+009B) when the text is valid UTF-8, so a name cannot drive the
// client's terminal either. 0xFF is doubled (IAC IAC, RFC 854) so a Telnet
// client reads it as data.
//
// AppendReply panics if code is outside 100..599.
func AppendReply(buf []byte, code int, text string) []byte {
	if code < 100 || code > 599 {
		panic("wire: AppendReply: reply code out of range")
	}
	line, rest, multi := strings.Cut(text, "\n")
	if !multi {
		buf = appendCode(buf, code, ' ')
		buf = appendReplyText(buf, line)
		return append(buf, '\r', '\n')
	}
	buf = appendCode(buf, code, '-')
	buf = appendReplyText(buf, line)
	buf = append(buf, '\r', '\n')
	for {
		line, rest, multi = strings.Cut(rest, "\n")
		if !multi {
			break
		}
		buf = append(buf, ' ')
		buf = appendReplyText(buf, line)
		buf = append(buf, '\r', '\n')
	}
	buf = appendCode(buf, code, ' ')
	buf = appendReplyText(buf, line)
	return append(buf, '\r', '\n')
}

// AppendReplyStart, AppendReplyMiddle and AppendReplyEnd append the parts
// of a multi-line reply that is written piecemeal, such as a long STAT
// listing (RFC 959 §4.2): "ddd-first\r\n", then " line\r\n" for each middle
// line, then "ddd last\r\n". Together they produce exactly what AppendReply
// does for the same lines, with the same neutralising of control bytes;
// here '\n' is one of them, so no part can hold more than one line.
func AppendReplyStart(buf []byte, code int, first string) []byte {
	checkCode(code)
	buf = appendCode(buf, code, '-')
	buf = appendReplyText(buf, first)
	return append(buf, '\r', '\n')
}

// AppendReplyMiddle appends one middle line of a multi-line reply; see
// AppendReplyStart.
func AppendReplyMiddle[T string | []byte](buf []byte, line T) []byte {
	buf = append(buf, ' ')
	buf = appendReplyText(buf, line)
	return append(buf, '\r', '\n')
}

// AppendReplyEnd appends the last line of a multi-line reply; see
// AppendReplyStart.
func AppendReplyEnd(buf []byte, code int, last string) []byte {
	checkCode(code)
	buf = appendCode(buf, code, ' ')
	buf = appendReplyText(buf, last)
	return append(buf, '\r', '\n')
}

func checkCode(code int) {
	if code < 100 || code > 599 {
		panic("wire: reply code out of range")
	}
}

func appendCode(buf []byte, code int, sep byte) []byte {
	return append(buf, byte('0'+code/100), byte('0'+code/10%10), byte('0'+code%10), sep)
}

// appendReplyText appends one line of reply text, neutralising control bytes
// (and the C1 controls U+0080–U+009F when the text is UTF-8) and escaping IAC.
func appendReplyText[T string | []byte](buf []byte, s T) []byte {
	start := 0
	utf := 0 // 1: s is valid UTF-8, -1: it is not, 0: not known yet
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c < 0x20 || c == 0x7f:
			buf = append(buf, s[start:i]...)
			buf = append(buf, '?')
			start = i + 1
		case c == 0xc2 && i+1 < len(s) && s[i+1] >= 0x80 && s[i+1] <= 0x9f:
			if utf == 0 {
				utf = -1
				if utf8.Valid([]byte(s)) {
					utf = 1
				}
			}
			if utf > 0 {
				buf = append(buf, s[start:i]...)
				buf = append(buf, '?')
				i++
				start = i + 1
			}
		case c == telnetIAC:
			buf = append(buf, s[start:i]...)
			buf = append(buf, telnetIAC, telnetIAC)
			start = i + 1
		}
	}
	return append(buf, s[start:]...)
}

// QuotePath renders a path for a 257 reply: wrapped in double quotes, with
// each inner quote doubled (RFC 959 Appendix II), so that
// `a"b` becomes `"a""b"`. Control characters are left for AppendReply to
// neutralise.
func QuotePath(p string) string {
	return `"` + strings.ReplaceAll(p, `"`, `""`) + `"`
}

package wire

import (
	"strings"
	"testing"
)

// appendReplyParts builds a multi-line reply from its parts.
func appendReplyParts(code int, text string) []byte {
	lines := strings.Split(text, "\n")
	buf := AppendReplyStart(nil, code, lines[0])
	for i, l := range lines[1 : len(lines)-1] {
		if i%2 == 0 {
			buf = AppendReplyMiddle(buf, l)
		} else {
			buf = AppendReplyMiddle(buf, []byte(l))
		}
	}
	return AppendReplyEnd(buf, code, lines[len(lines)-1])
}

// TestAppendReplyParts: a reply written in parts is the reply AppendReply
// writes, and no part can hold a line break.
func TestAppendReplyParts(t *testing.T) {
	for _, text := range []string{"a\nb", "Features:\nMDTM\nSIZE\nEnd", "\n", "a\n\nb", "x\r\n230 Logged in\n\xff\x1b[2J\nEnd"} {
		if got, want := string(appendReplyParts(213, text)), string(AppendReply(nil, 213, text)); got != want {
			t.Errorf("parts of %q = %q, want %q", text, got, want)
		}
	}
	if got := string(AppendReplyMiddle(nil, "a\r\n213 b")); got != " a??213 b\r\n" {
		t.Errorf("AppendReplyMiddle with CRLF = %q", got)
	}
	if got := string(AppendReplyEnd(nil, 213, "a\nb")); got != "213 a?b\r\n" {
		t.Errorf("AppendReplyEnd with LF = %q", got)
	}
	buf := make([]byte, 0, 256)
	line := []byte("-rw-r--r--    1 ftp      ftp             0 Jan  2 15:04 name")
	if n := testing.AllocsPerRun(100, func() { buf = AppendReplyMiddle(buf[:0], line) }); n != 0 {
		t.Errorf("AppendReplyMiddle allocates %v times, want 0", n)
	}
}

func TestAppendReply(t *testing.T) {
	tests := []struct {
		code int
		text string
		want string
	}{
		{200, "OK", "200 OK\r\n"},
		{200, "", "200 \r\n"},
		{550, "No such file.", "550 No such file.\r\n"},
		{211, "Features:\nMDTM\nSIZE\nEnd", "211-Features:\r\n MDTM\r\n SIZE\r\n211 End\r\n"},
		{214, "a\nb", "214-a\r\n214 b\r\n"},
		{214, "a\n", "214-a\r\n214 \r\n"},
		{214, "\n", "214-\r\n214 \r\n"},
		{214, "a\n\nb", "214-a\r\n \r\n214 b\r\n"},
		{214, "a\n123 fake\nb", "214-a\r\n 123 fake\r\n214 b\r\n"},
		// Forged lines: CR, NUL and other controls become '?'.
		// "x\r\n230 …" cannot become a line of its own: CR is '?', and the text after
		// LF is the last line, so it follows the code.
		{550, "x\r\n230 Logged in", "550-x?\r\n550 230 Logged in\r\n"},
		{550, "a\rb", "550 a?b\r\n"},
		{550, "a\x00b", "550 a?b\r\n"},
		{550, "\t\x1b\x7f", "550 ???\r\n"},
		// C1 controls in UTF-8 text (CSI, NEL); raw bytes of other text stay.
		{550, "a\u009b2Jé\u0085", "550 a?2Jé?\r\n"},
		{550, "caf\xe9\xc2\x9b", "550 caf\xe9\xc2\x9b\r\n"},
		{257, "\"a\r226 x\"", "257 \"a?226 x\"\r\n"},
		// IAC doubled (RFC 854).
		{257, "a\xffb", "257 a\xff\xffb\r\n"},
		{257, "\xff\xff", "257 \xff\xff\xff\xff\r\n"},
		// UTF-8 passes through.
		{257, `"/tmp/日本"`, "257 \"/tmp/日本\"\r\n"},
		{100, "x", "100 x\r\n"},
		{599, "x", "599 x\r\n"},
	}
	for _, tt := range tests {
		got := string(AppendReply(nil, tt.code, tt.text))
		if got != tt.want {
			t.Errorf("AppendReply(%d, %q) = %q, want %q", tt.code, tt.text, got, tt.want)
		}
	}
	// It appends.
	if got := string(AppendReply([]byte("x"), 200, "y")); got != "x200 y\r\n" {
		t.Errorf("AppendReply with prefix = %q", got)
	}
}

func TestAppendReplyPanics(t *testing.T) {
	for _, code := range []int{-1, 0, 99, 600, 1000} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("AppendReply(%d) did not panic", code)
				}
			}()
			AppendReply(nil, code, "x")
		}()
	}
}

func TestAppendReplyAllocs(t *testing.T) {
	buf := make([]byte, 0, 256)
	n := testing.AllocsPerRun(100, func() { buf = AppendReply(buf[:0], 211, "Features:\nMDTM\nSIZE\nEnd") })
	if n != 0 {
		t.Errorf("AppendReply allocates %v times, want 0", n)
	}
}

func TestQuotePath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `""`},
		{"/", `"/"`},
		{"/a b", `"/a b"`},
		{`/a"b`, `"/a""b"`},
		{`""`, `""""""`},
		{`/日本"`, `"/日本"""`},
	}
	for _, tt := range tests {
		if got := QuotePath(tt.in); got != tt.want {
			t.Errorf("QuotePath(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

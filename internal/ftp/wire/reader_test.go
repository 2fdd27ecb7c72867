package wire

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// result is one ReadLine outcome.
type result struct {
	line string
	err  error
}

func (r result) String() string {
	if r.err != nil {
		return fmt.Sprintf("(%q, %v)", r.line, r.err)
	}
	return fmt.Sprintf("%q", r.line)
}

// readAll calls ReadLine until io.EOF or a non-line error, recording each
// outcome (the last one included).
func readAll(r *Reader) []result {
	var out []result
	for range 10000 {
		line, err := r.ReadLine()
		out = append(out, result{line, err})
		if err != nil && err != ErrLineTooLong {
			return out
		}
	}
	panic("readAll: no end")
}

// chunkReader returns its input in pieces of the given sizes, cycling.
type chunkReader struct {
	data  []byte
	sizes []int
	i     int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := 1
	if len(c.sizes) > 0 {
		n = c.sizes[c.i%len(c.sizes)]
		c.i++
	}
	n = min(n, len(p), len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

func TestReadLine(t *testing.T) {
	eof := result{"", io.EOF}
	tooLong := result{"", ErrLineTooLong}
	tests := []struct {
		name string
		in   string
		max  int
		want []result
	}{
		{"empty input", "", 10, []result{eof}},
		{"crlf", "NOOP\r\n", 10, []result{{"NOOP", nil}, eof}},
		{"bare lf", "NOOP\n", 10, []result{{"NOOP", nil}, eof}},
		{"two lines", "USER a\r\nPASS b c\r\n", 10, []result{{"USER a", nil}, {"PASS b c", nil}, eof}},
		{"empty line", "\r\n\n", 10, []result{{"", nil}, {"", nil}, eof}},
		{"bare cr kept", "a\rb\r\n", 10, []result{{"a\rb", nil}, eof}},
		{"cr cr lf keeps one", "a\r\r\n", 10, []result{{"a\r", nil}, eof}},
		{"only last cr stripped", "\r\r\n", 10, []result{{"\r", nil}, eof}},
		{"unterminated", "NOOP", 10, []result{{"", io.ErrUnexpectedEOF}}},
		{"unterminated after line", "NOOP\r\nQU", 10, []result{{"NOOP", nil}, {"", io.ErrUnexpectedEOF}}},
		{"lone cr at eof", "\r", 10, []result{{"", io.ErrUnexpectedEOF}}},
		{"spaces kept", "  a  b  \r\n", 10, []result{{"  a  b  ", nil}, eof}},
		{"nul kept", "a\x00b\n", 10, []result{{"a\x00b", nil}, eof}},

		// Telnet (RFC 854).
		{"iac iac is 0xff", "MKD a\xff\xffb\r\n", 10, []result{{"MKD a\xffb", nil}, eof}},
		{"four iac give two 0xff", "\xff\xff\xff\xff\n", 10, []result{{"\xff\xff", nil}, eof}},
		{"ip dm before abor", "\xff\xf4\xff\xf2ABOR\r\n", 10, []result{{"ABOR", nil}, eof}},
		{"nop ayt ao dropped", "N\xff\xf1O\xff\xf6O\xff\xf5P\r\n", 10, []result{{"NOOP", nil}, eof}},
		{"will dropped", "NO\xff\xfb\x01OP\r\n", 10, []result{{"NOOP", nil}, eof}},
		{"wont do dont dropped", "\xff\xfc\x01N\xff\xfd\x03O\xff\xfe\x18OP\n", 10, []result{{"NOOP", nil}, eof}},
		{"option byte 0xff dropped", "A\xff\xfb\xffB\n", 10, []result{{"AB", nil}, eof}},
		{"option byte LF is an option", "A\xff\xfd\nB\r\n", 10, []result{{"AB", nil}, eof}},
		{"option byte CR is an option", "A\xff\xfd\r\n", 10, []result{{"A", nil}, eof}},
		{"se ga el ec brk dropped", "\xff\xf0A\xff\xf9B\xff\xf8C\xff\xf7D\xff\xf3\n", 10, []result{{"ABCD", nil}, eof}},
		{"subnegotiation dropped", "A\xff\xfa\x18xyz\xff\xf0B\r\n", 10, []result{{"AB", nil}, eof}},
		{"subnegotiation escaped iac", "A\xff\xfax\xff\xffy\xff\xf0B\n", 10, []result{{"AB", nil}, eof}},
		{"subnegotiation junk after iac", "A\xff\xfax\xff\x01y\xff\xf0B\n", 10, []result{{"AB", nil}, eof}},
		{"lf ends subnegotiation", "A\xff\xfaxyz\nB\n", 10, []result{{"A", nil}, {"B", nil}, eof}},
		{"lf after iac in subnegotiation", "A\xff\xfax\xff\nB\n", 10, []result{{"A", nil}, {"B", nil}, eof}},
		{"iac non-command drops iac", "A\xffBC\n", 10, []result{{"ABC", nil}, eof}},
		{"iac lf ends line", "A\xff\nB\n", 10, []result{{"A", nil}, {"B", nil}, eof}},
		{"iac cr lf", "A\xff\r\n", 10, []result{{"A", nil}, eof}},
		{"telnet-only line", "\xff\xf1\r\n", 10, []result{{"", nil}, eof}},
		{"iac at eof", "\xff", 10, []result{{"", io.ErrUnexpectedEOF}}},
		{"will at eof", "\xff\xfb", 10, []result{{"", io.ErrUnexpectedEOF}}},

		// Length limit.
		{"exactly max", "abcd\r\n", 4, []result{{"abcd", nil}, eof}},
		{"exactly max bare lf", "abcd\n", 4, []result{{"abcd", nil}, eof}},
		{"max plus one", "abcde\n", 4, []result{tooLong, eof}},
		{"max plus one with crlf", "abcde\r\n", 4, []result{tooLong, eof}},
		{"bare cr counts", "abcd\r\r\n", 4, []result{tooLong, eof}},
		{"much too long then ok", "abcdefghijklmnop\r\nok\r\n", 4, []result{tooLong, {"ok", nil}, eof}},
		{"two too long", "abcdefg\nhijklmn\nxy\n", 4, []result{tooLong, tooLong, {"xy", nil}, eof}},
		{"telnet does not count", "ab\xff\xf1\xff\xfb\x01cd\n", 4, []result{{"abcd", nil}, eof}},
		{"iac iac counts once", "ab\xff\xffc\n", 4, []result{{"ab\xffc", nil}, eof}},
		{"iac iac over", "ab\xff\xffcd\n", 4, []result{tooLong, eof}},
		{"option lf while discarding", "abcdefg\xff\xfb\nxy\n", 4, []result{tooLong, eof}},
		{"too long at eof", "abcdefgh", 4, []result{{"", io.ErrUnexpectedEOF}}},
		{"max 1", "\r\na\r\nab\nb\n", 1, []result{{"", nil}, {"a", nil}, tooLong, {"b", nil}, eof}},
	}
	chunkings := map[string]func(string) io.Reader{
		"whole":    func(s string) io.Reader { return strings.NewReader(s) },
		"bytewise": func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) },
		"data+eof": func(s string) io.Reader { return iotest.DataErrReader(strings.NewReader(s)) },
		"2,3,1":    func(s string) io.Reader { return &chunkReader{data: []byte(s), sizes: []int{2, 3, 1}} },
	}
	for _, tt := range tests {
		for cname, mk := range chunkings {
			t.Run(tt.name+"/"+cname, func(t *testing.T) {
				got := readAll(NewReader(mk(tt.in), tt.max))
				if !equalResults(got, tt.want) {
					t.Errorf("ReadLine(%q, max %d) = %v, want %v", tt.in, tt.max, got, tt.want)
				}
			})
		}
	}
}

func equalResults(a, b []result) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].line != b[i].line || a[i].err != b[i].err {
			return false
		}
	}
	return true
}

func TestReadLineEOFSticky(t *testing.T) {
	r := NewReader(strings.NewReader("x"), 10)
	if _, err := r.ReadLine(); err != io.ErrUnexpectedEOF {
		t.Fatalf("first: %v, want ErrUnexpectedEOF", err)
	}
	for range 3 {
		if _, err := r.ReadLine(); err != io.EOF {
			t.Fatalf("later: %v, want EOF", err)
		}
	}
}

// scriptReader replays a fixed list of Read results.
type scriptReader []struct {
	data string
	err  error
}

func (s *scriptReader) Read(p []byte) (int, error) {
	if len(*s) == 0 {
		return 0, io.EOF
	}
	step := (*s)[0]
	*s = (*s)[1:]
	return copy(p, step.data), step.err
}

func TestReadLineErrorResumes(t *testing.T) {
	errTimeout := errors.New("timeout")
	sr := &scriptReader{{"NO", nil}, {"", errTimeout}, {"OP\r\n", nil}}
	r := NewReader(sr, 10)
	if _, err := r.ReadLine(); err != errTimeout {
		t.Fatalf("ReadLine = %v, want the read error", err)
	}
	if line, err := r.ReadLine(); line != "NOOP" || err != nil {
		t.Fatalf("ReadLine after error = %q, %v; want NOOP", line, err)
	}
	if _, err := r.ReadLine(); err != io.EOF {
		t.Fatalf("ReadLine at end = %v, want EOF", err)
	}
}

func TestReadLineDataWithError(t *testing.T) {
	errBoom := errors.New("boom")
	r := NewReader(&scriptReader{{"A\nB\n", errBoom}}, 10)
	got := readAll(r)
	want := []result{{"A", nil}, {"B", nil}, {"", errBoom}}
	if !equalResults(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

func TestReadLineNoProgress(t *testing.T) {
	if _, err := NewReader(zeroReader{}, 10).ReadLine(); err != io.ErrNoProgress {
		t.Errorf("ReadLine = %v, want io.ErrNoProgress", err)
	}
}

func TestNewReaderPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewReader(r, 0) did not panic")
		}
	}()
	NewReader(strings.NewReader(""), 0)
}

// loopReader serves data over and over, never allocating.
type loopReader struct {
	data []byte
	off  int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := copy(p, l.data[l.off:])
	l.off = (l.off + n) % len(l.data)
	return n, nil
}

func TestReadLineAllocs(t *testing.T) {
	r := NewReader(&loopReader{data: []byte("RETR some file.txt\r\n\r\n")}, 512)
	// Two ReadLines per run: one line (its string) and one empty line (nothing).
	allocs := testing.AllocsPerRun(1000, func() {
		r.ReadLine()
		r.ReadLine()
	})
	if allocs > 1 {
		t.Errorf("ReadLine allocs per line pair = %v, want at most 1 (the returned string)", allocs)
	}
}

// TestReaderIdleFootprint checks what a Reader keeps while it waits for the
// next line, as every idle session's does: a small read buffer, and no long
// line's buffer once the line is returned.
func TestReaderIdleFootprint(t *testing.T) {
	long := strings.Repeat("x", 3000)
	r := NewReader(strings.NewReader("NOOP\r\nSTOR "+long+"\r\nNOOP\r\nSTOR "+long+strings.Repeat("y", 2000)+"\r\nNOOP\r\n"), 4096)
	want := []string{"NOOP", "STOR " + long, "NOOP", "", "NOOP"}
	for i, w := range want {
		line, err := r.ReadLine()
		if line != w || (i == 3) != (err == ErrLineTooLong) {
			t.Fatalf("line %d: got (%.20q…, %v), want %.20q…", i, line, err, w)
		}
		if len(r.buf) > 256 || cap(r.line) > keepLineCap {
			t.Fatalf("after line %d: read buffer %d bytes, line buffer %d: want at most 256 and %d", i, len(r.buf), cap(r.line), keepLineCap)
		}
	}
}

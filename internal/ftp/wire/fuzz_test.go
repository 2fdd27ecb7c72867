package wire

import (
	"bytes"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// Native fuzz targets. Their seeds run as ordinary tests; fuzz with
//
//	go test ./internal/ftp/wire -run '^$' -fuzz '^FuzzReadLine$' -fuzztime 30s
//
// A crash found here becomes a named regression test in the matching
// _test.go file.

// refReadLines is the plain definition of ReadLine over a whole input: a byte
// at a time, unbounded line, length checked only at the end.
func refReadLines(in []byte, max int) []result {
	const (
		data = iota
		iac
		option
		sub
		subIAC
	)
	var out []result
	var line []byte
	state, partial := data, false
	endLine := func() {
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) > max {
			out = append(out, result{"", ErrLineTooLong})
		} else {
			out = append(out, result{string(line), nil})
		}
		line, state, partial = line[:0], data, false
	}
	for _, c := range in {
		partial = true
		switch state {
		case iac:
			state = data
			switch {
			case c == 0xFF:
				line = append(line, c)
				continue
			case c >= 251:
				state = option
				continue
			case c == 250:
				state = sub
				continue
			case c >= 240:
				continue
			}
			// Not a command: c is data, handled below.
		case option:
			state = data
			continue
		case sub:
			if c == 0xFF {
				state = subIAC
			} else if c == '\n' {
				endLine()
			}
			continue
		case subIAC:
			switch c {
			case '\n':
				endLine()
			case 240:
				state = data
			default:
				state = sub
			}
			continue
		}
		switch c {
		case '\n':
			endLine()
		case 0xFF:
			state = iac
		default:
			line = append(line, c)
		}
	}
	if partial {
		return append(out, result{"", io.ErrUnexpectedEOF})
	}
	return append(out, result{"", io.EOF})
}

func FuzzReadLine(f *testing.F) {
	seeds := []string{
		"", "NOOP\r\n", "a\rb\r\n", "NOOP", "\r\n\n",
		"MKD a\xff\xffb\r\n", "\xff\xf4\xff\xf2ABOR\r\n", "NO\xff\xfb\x01OP\r\n", "A\xff\xfd\nB\r\n",
		"A\xff\xfa\x18xyz\xff\xf0B\r\n", "A\xff\xfax\xff\xffy\xff\xf0B\n", "A\xff\xfaxyz\nB\n", "A\xff\xfax\xff\nB\n",
		"A\xffBC\n", "A\xff\nB\n", "\xff", "\xff\xfb", "abcdefghijklmnop\r\nok\r\n", "ab\xff\xffcd\n",
		"abcd\r\r\n", "abcdefg\xff\xfb\nxy\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s), uint8(4), []byte{1})
		f.Add([]byte(s), uint8(10), []byte{2, 3, 1})
	}
	f.Fuzz(func(t *testing.T, in []byte, maxByte uint8, chunks []byte) {
		max := 1 + int(maxByte%32)
		var sizes []int
		for _, c := range chunks {
			sizes = append(sizes, 1+int(c%16))
		}
		if len(sizes) == 0 {
			sizes = []int{len(in) + 1}
		}
		r := NewReader(&chunkReader{data: in, sizes: sizes}, max)
		got := readAll(r)
		want := refReadLines(in, max)
		if !equalResults(got, want) {
			t.Fatalf("ReadLine(%q, max %d, chunks %v) = %v, want %v", in, max, sizes, got, want)
		}
		iacIAC := bytes.Count(in, []byte{0xFF, 0xFF})
		seen := 0
		for _, res := range got {
			if len(res.line) > max {
				t.Fatalf("line %q longer than max %d", res.line, max)
			}
			if strings.IndexByte(res.line, '\n') >= 0 {
				t.Fatalf("line %q holds LF", res.line)
			}
			seen += strings.Count(res.line, "\xff")
		}
		if seen > iacIAC {
			t.Fatalf("%d 0xFF bytes returned from %d IAC IAC pairs", seen, iacIAC)
		}
	})
}

func FuzzSplit(f *testing.F) {
	for _, s := range []string{"", "noop", "RETR  a b ", " NOOP", "l\u0131st", "r\xffetr x", "Stor x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		verb, arg := Split(line)
		if strings.IndexByte(verb, ' ') >= 0 {
			t.Fatalf("verb %q holds a space", verb)
		}
		want := line
		if i := strings.IndexByte(line, ' '); i >= 0 {
			want = line[:i]
			if arg != line[i+1:] {
				t.Fatalf("Split(%q) arg = %q, want %q", line, arg, line[i+1:])
			}
		} else if arg != "" {
			t.Fatalf("Split(%q) arg = %q, want empty", line, arg)
		}
		if len(verb) != len(want) {
			t.Fatalf("Split(%q) verb = %q", line, verb)
		}
		for i := 0; i < len(want); i++ {
			c := want[i]
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			if verb[i] != c {
				t.Fatalf("Split(%q) verb = %q", line, verb)
			}
		}
	})
}

func FuzzParsePORT(f *testing.F) {
	for _, s := range []string{"192,168,1,2,4,1", " 0,0,0,0,0,0 ", "1,2,3,4,5", "1,2,3,4,5,6,7", "1,2,3,4,5,256",
		"1,2,3,4,5,-6", "1, 2,3,4,5,6", "", "010,001,000,001,000,021"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		ap, err := ParsePORT(arg)
		if err != nil {
			if err != ErrSyntax {
				t.Fatalf("ParsePORT(%q) error %v", arg, err)
			}
			return
		}
		if !ap.Addr().Is4() {
			t.Fatalf("ParsePORT(%q) = %v, not IPv4", arg, ap)
		}
		if back, err := ParsePORT(FormatPASV(ap)); back != ap || err != nil {
			t.Fatalf("ParsePORT(FormatPASV(%v)) = %v, %v", ap, back, err)
		}
	})
}

func FuzzParseEPRT(f *testing.F) {
	for _, s := range []string{"|1|132.235.1.2|6275|", "|2|1080::8:800:200C:417A|5282|", "!1!10.0.0.1!65535!",
		"|1|::1|80|", "|2|10.0.0.1|80|", "|2|fe80::1%eth0|80|", "|1|10.0.0.1|0|", "|1|10.0.0.1|65536|",
		"|3|10.0.0.1|80|", "||||", "|", "5150.0.0.15805", "|2|::ffff:1.2.3.4|21|"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		ap, err := ParseEPRT(arg)
		if err != nil {
			if err != ErrSyntax && err != ErrUnsupportedProto {
				t.Fatalf("ParseEPRT(%q) error %v", arg, err)
			}
			return
		}
		if ap.Port() == 0 || ap.Addr().Zone() != "" || !ap.Addr().IsValid() {
			t.Fatalf("ParseEPRT(%q) = %v", arg, ap)
		}
		proto := "2"
		if ap.Addr().Is4() {
			proto = "1"
		}
		again := "|" + proto + "|" + ap.Addr().String() + "|" + strconv.Itoa(int(ap.Port())) + "|"
		if back, err := ParseEPRT(again); back != ap || err != nil {
			t.Fatalf("ParseEPRT(%q) = %v, %v; want %v", again, back, err, ap)
		}
	})
}

func FuzzParseEPSV(f *testing.F) {
	for _, s := range []string{"", "1", "2", "ALL", "all", "3", "01", "AL", "-1", " 2 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		a, err := ParseEPSV(arg)
		if err != nil {
			if err != ErrSyntax && err != ErrEPSVProto {
				t.Fatalf("ParseEPSV(%q) error %v", arg, err)
			}
			return
		}
		if back, err := ParseEPSV(a.String()); back != a || err != nil {
			t.Fatalf("ParseEPSV(%q) = %v, %v", a.String(), back, err)
		}
	})
}

func FuzzParseType(f *testing.F) {
	for _, s := range []string{"A", "a n", "I", "L 8", "L8", "E", "A T", "L 7", "", "I N", "L 0", "\u0130"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		ty, err := ParseType(arg)
		switch err {
		case nil:
			if ty != TypeASCII && ty != TypeImage {
				t.Fatalf("ParseType(%q) = %v", arg, ty)
			}
		case ErrSyntax, ErrNotImplemented:
		default:
			t.Fatalf("ParseType(%q) error %v", arg, err)
		}
		// Case-insensitive (ASCII only).
		ty2, err2 := ParseType(upperASCII(arg))
		if ty2 != ty || err2 != err {
			t.Fatalf("ParseType(%q) = %v, %v but upper-cased = %v, %v", arg, ty, err, ty2, err2)
		}
	})
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"20260101120000", "20260101120000.5", "20161231235960", "20250229120000",
		"20260101120000.", "2026010112000", "20260101120000.1234567891234"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := ParseTime(s)
		if err != nil {
			if err != ErrSyntax {
				t.Fatalf("ParseTime(%q) error %v", s, err)
			}
			return
		}
		if tm.Location() != time.UTC {
			t.Fatalf("ParseTime(%q) not in UTC", s)
		}
		if s[12:14] != "60" {
			if got := string(AppendTime(nil, tm)); got != s[:14] {
				t.Fatalf("AppendTime(ParseTime(%q)) = %q", s, got)
			}
		}
		frac := ""
		if len(s) > 15 {
			frac = s[15:]
		}
		frac = (frac + "000000000")[:9]
		if ns, _ := strconv.Atoi(frac); ns != tm.Nanosecond() {
			t.Fatalf("ParseTime(%q) nanoseconds = %d, want %d", s, tm.Nanosecond(), ns)
		}
	})
}

func FuzzParseListArgs(f *testing.F) {
	for _, s := range []string{"", "-la", "-l dir", "-- -la", "-a -- x", "-foo.txt", " dir ", "-", "-l  -a   my dir "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		path, all := ParseListArgs(arg)
		if !strings.HasSuffix(arg, path) {
			t.Fatalf("ParseListArgs(%q) path %q is not a suffix", arg, path)
		}
		if path != arg && !strings.HasPrefix(strings.TrimLeft(arg, " "), "-") {
			t.Fatalf("ParseListArgs(%q) stripped %q without a flag", arg, path)
		}
		if all && !strings.ContainsAny(arg[:len(arg)-len(path)], "aA") {
			t.Fatalf("ParseListArgs(%q) all without 'a'", arg)
		}
	})
}

func FuzzParseChmod(f *testing.F) {
	for _, s := range []string{"755 file", "0644 a b ", "4755 x", "789 x", "10000 x", "755", "755 ", "0 x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		mode, path, err := ParseChmod(arg)
		if err != nil {
			if err != ErrSyntax && err != ErrSpecialBits {
				t.Fatalf("ParseChmod(%q) error %v", arg, err)
			}
			return
		}
		if mode > 0o777 || path == "" || !strings.HasSuffix(arg, " "+path) {
			t.Fatalf("ParseChmod(%q) = %o, %q", arg, mode, path)
		}
		again := strconv.FormatUint(uint64(mode), 8) + " " + path
		if m2, p2, err := ParseChmod(again); m2 != mode || p2 != path || err != nil {
			t.Fatalf("ParseChmod(%q) = %o, %q, %v", again, m2, p2, err)
		}
	})
}

// cutsFrom turns fuzz bytes into sorted cut offsets into n bytes.
func cutsFrom(b []byte, n int) []int {
	cuts := make([]int, 0, len(b))
	for _, c := range b {
		cuts = append(cuts, int(c)%(n+1))
	}
	return sortInts(cuts)
}

func FuzzASCIIDecoder(f *testing.F) {
	for _, s := range asciiCases {
		f.Add([]byte(s), []byte{1, 2})
	}
	f.Fuzz(func(t *testing.T, in, cutBytes []byte) {
		var whole, chunked bytes.Buffer
		d := NewASCIIDecoder(&whole)
		writeChunks(t, d, in, nil)
		d.Close()
		d = NewASCIIDecoder(&chunked)
		writeChunks(t, d, in, cutsFrom(cutBytes, len(in)))
		d.Close()
		if !bytes.Equal(whole.Bytes(), chunked.Bytes()) {
			t.Fatalf("decode(%q) whole %q, chunked %q", in, whole.Bytes(), chunked.Bytes())
		}
		if want := decodeRef(in); !bytes.Equal(whole.Bytes(), want) {
			t.Fatalf("decode(%q) = %q, want %q", in, whole.Bytes(), want)
		}
	})
}

// FuzzASCIIReader checks the TYPE A download converter against the obvious
// definition whatever the read sizes on both sides, and that decoding undoes
// it for input without CR.
func FuzzASCIIReader(f *testing.F) {
	for _, s := range asciiCases {
		f.Add([]byte(s), uint8(1), uint8(1))
		f.Add([]byte(s), uint8(3), uint8(2))
	}
	f.Fuzz(func(t *testing.T, in []byte, srcChunk, dstBuf uint8) {
		enc := encodeChunks(t, in, int(srcChunk%16)+1, int(dstBuf%8)+1)
		if want := encodeRef(in); !bytes.Equal(enc, want) {
			t.Fatalf("encode(%q) = %q, want %q", in, enc, want)
		}
		if bytes.IndexByte(in, '\r') < 0 {
			var back bytes.Buffer
			d := NewASCIIDecoder(&back)
			d.Write(enc)
			d.Close()
			if !bytes.Equal(back.Bytes(), in) {
				t.Fatalf("decode(encode(%q)) = %q", in, back.Bytes())
			}
		}
	})
}

func FuzzAppendReply(f *testing.F) {
	for _, s := range []string{"", "OK", "a\nb", "a\n", "\n", "x\r\n230 Logged in", "a\x00b", "\xff", "Features:\nMDTM\nEnd"} {
		f.Add(200, s)
	}
	f.Add(99, "x")
	f.Add(-1<<63, "x")
	f.Fuzz(func(t *testing.T, code int, text string) {
		code = 100 + int(uint(code)%500)
		out := string(AppendReply(nil, code, text))
		if !strings.HasSuffix(out, "\r\n") {
			t.Fatalf("reply %q does not end in CRLF", out)
		}
		if strings.Contains(text, "\n") {
			if parts := string(appendReplyParts(code, text)); parts != out {
				t.Fatalf("reply %q in parts is %q", out, parts)
			}
		}
		if utf8.ValidString(text) {
			for _, r := range out {
				if r >= 0x80 && r <= 0x9f {
					t.Fatalf("reply %q holds the C1 control %U", out, r)
				}
			}
		}
		lines := strings.Split(strings.TrimSuffix(out, "\r\n"), "\r\n")
		if len(lines) != strings.Count(text, "\n")+1 {
			t.Fatalf("reply %q has %d lines for text %q", out, len(lines), text)
		}
		c := strconv.Itoa(code)
		for i, l := range lines {
			for j := 0; j < len(l); j++ {
				if l[j] < 0x20 || l[j] == 0x7f {
					t.Fatalf("reply %q line %d holds control byte %#x", out, i, l[j])
				}
			}
			switch {
			case i == len(lines)-1:
				if !strings.HasPrefix(l, c+" ") {
					t.Fatalf("reply %q: last line %q", out, l)
				}
			case i == 0:
				if !strings.HasPrefix(l, c+"-") {
					t.Fatalf("reply %q: first line %q", out, l)
				}
			default:
				if !strings.HasPrefix(l, " ") {
					t.Fatalf("reply %q: middle line %q", out, l)
				}
			}
		}
		if utf8.ValidString(text) && strings.IndexByte(text, 0xFF) < 0 && !utf8.ValidString(out) {
			t.Fatalf("reply %q of UTF-8 text is not UTF-8", out)
		}
	})
}

func FuzzParseOptsMLST(f *testing.F) {
	for _, s := range []string{"", "type;size;modify;", "TYPE;Size", "unix.MODE;", "bogus;", " type ; perm ;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		facts, canon := ParseOptsMLST(arg, AllFacts)
		if facts&^AllFacts != 0 {
			t.Fatalf("ParseOptsMLST(%q) = %b", arg, facts)
		}
		if f2, c2 := ParseOptsMLST(canon, AllFacts); f2 != facts || c2 != canon {
			t.Fatalf("ParseOptsMLST(%q) = %v, %q; canonical %q gives %v, %q", arg, facts, canon, canon, f2, c2)
		}
	})
}

// FuzzAppendReplyParts writes a multi-line reply in parts whose text may
// itself hold CR, LF, NUL or any other byte. Each part must append exactly
// one line, CRLF-terminated, with no control byte inside it and IAC
// doubled, and the whole must be byte for byte what AppendReply writes for
// the same lines once their line breaks are neutralised.
func FuzzAppendReplyParts(f *testing.F) {
	for _, s := range [][3]string{
		{"Features:", "MDTM", "End"}, {"", "", ""}, {"a\r\n213 forged", "b\n", "\nc"}, {"\x00", "\r", "\n"},
		{"x\xff", "\xff\xff", "\xff\xf4"}, {"\x1b[2J", "\u009b2J", "\xc2\x9b\xff"}, {"日本語", "é\u0085", "\x7f"},
		{"-rw-r--r--    1 ftp      ftp             0 Jan  2 15:04 name", " leading", "213 End"},
	} {
		f.Add(213, s[0], s[1], s[2], uint8(3))
	}
	f.Add(99, "a", "b", "c", uint8(0))
	f.Fuzz(func(t *testing.T, code int, first, middle, last string, n uint8) {
		code = 100 + int(uint(code)%500)
		n %= 4
		var buf []byte
		var lens []int
		add := func(b []byte) {
			lens = append(lens, len(b)-len(buf))
			buf = b
		}
		add(AppendReplyStart(buf, code, first))
		for i := range int(n) {
			if i%2 == 0 {
				add(AppendReplyMiddle(buf, middle))
			} else {
				add(AppendReplyMiddle(buf, []byte(middle)))
			}
		}
		add(AppendReplyEnd(buf, code, last))

		out := buf
		for i, l := range lens {
			line := out[:l]
			out = out[l:]
			if !bytes.HasSuffix(line, []byte("\r\n")) {
				t.Fatalf("part %d %q does not end in CRLF", i, line)
			}
			line = line[:len(line)-2]
			for j := 0; j < len(line); j++ {
				if c := line[j]; c < 0x20 || c == 0x7f {
					t.Fatalf("part %d %q holds control byte %#x", i, line, c)
				}
				if line[j] == 0xff {
					if j+1 >= len(line) || line[j+1] != 0xff {
						t.Fatalf("part %d %q holds an undoubled IAC", i, line)
					}
					j++
				}
			}
		}

		flat := func(s string) string { return strings.NewReplacer("\n", "?").Replace(s) }
		lines := []string{flat(first)}
		for range int(n) {
			lines = append(lines, flat(middle))
		}
		lines = append(lines, flat(last))
		if want := AppendReply(nil, code, strings.Join(lines, "\n")); !bytes.Equal(buf, want) {
			t.Fatalf("parts %q, %d × %q, %q give %q; AppendReply gives %q", first, n, middle, last, buf, want)
		}
	})
}

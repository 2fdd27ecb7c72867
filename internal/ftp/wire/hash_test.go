package wire

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestParseRang(t *testing.T) {
	tests := []struct {
		arg        string
		start, end int64
		reset      bool
		err        error
	}{
		{"0 49", 0, 49, false, nil},
		{"0 0", 0, 0, false, nil},
		{"7 7", 7, 7, false, nil},
		{"802816 1000000", 802816, 1000000, false, nil},
		{"1 0", 0, 0, true, nil},
		{"9223372036854775807 9223372036854775807", 1<<63 - 1, 1<<63 - 1, false, nil},
		{"5 4", 0, 0, false, ErrRangeOrder},
		{"2 0", 0, 0, false, ErrRangeOrder},
		{"", 0, 0, false, ErrSyntax},
		{"5", 0, 0, false, ErrSyntax},
		{"1 2 3", 0, 0, false, ErrSyntax},
		{"a 2", 0, 0, false, ErrSyntax},
		{"1 b", 0, 0, false, ErrSyntax},
		{"-1 2", 0, 0, false, ErrSyntax},
		{"+1 2", 0, 0, false, ErrSyntax},
		{"1  2", 0, 0, false, ErrSyntax},
		{" 1 2", 0, 0, false, ErrSyntax},
		{"0x10 20", 0, 0, false, ErrSyntax},
		{"1 9223372036854775808", 0, 0, false, ErrSyntax},
		{"1.5 2", 0, 0, false, ErrSyntax},
		// Found by FuzzParseRang: leading zeros beyond 19 digits are a number.
		{"0 00000000000000000000", 0, 0, false, nil},
	}
	for _, tt := range tests {
		start, end, reset, err := ParseRang(tt.arg)
		if !errors.Is(err, tt.err) || err == nil && (start != tt.start || end != tt.end || reset != tt.reset) {
			t.Errorf("ParseRang(%q) = %d, %d, %v, %v; want %d, %d, %v, %v", tt.arg, start, end, reset, err, tt.start, tt.end, tt.reset, tt.err)
		}
	}
}

func TestParseDigestArgs(t *testing.T) {
	tests := []struct {
		arg        string
		path       string
		start, end int64
		ranged     bool
		err        error
	}{
		{"f", "f", 0, 0, false, nil},
		{"dir/a file.txt", "dir/a file.txt", 0, 0, false, nil},
		{"f 0 10", "f", 0, 10, true, nil},
		{"a b 5 6", "a b", 5, 6, true, nil},
		{"f 10", "f 10", 0, 0, false, nil}, // one number: part of the name
		{"f 0 x", "f 0 x", 0, 0, false, nil},
		{"2023 01 02", "2023", 1, 2, true, nil},
		{"1 2", "1 2", 0, 0, false, nil}, // no path before the numbers
		{`"a b" 0 3`, "a b", 0, 3, true, nil},
		{`"a b"`, "a b", 0, 0, false, nil},
		{`"x ""q"" y"`, `x "q" y`, 0, 0, false, nil},
		{`"f 0 10"`, "f 0 10", 0, 0, false, nil},
		{"f 10 10", "", 0, 0, false, ErrRangeOrder},
		{"f 10 2", "", 0, 0, false, ErrRangeOrder},
		{`"f" 3 3`, "", 0, 0, false, ErrRangeOrder},
		{"", "", 0, 0, false, ErrSyntax},
		{`""`, "", 0, 0, false, ErrSyntax},
		{`"unterminated`, "", 0, 0, false, ErrSyntax},
		{`"f"x`, "", 0, 0, false, ErrSyntax},
		{`"f" 0`, "", 0, 0, false, ErrSyntax},
		{`"f" 0 x`, "", 0, 0, false, ErrSyntax},
		{`"f" 0 1 2`, "", 0, 0, false, ErrSyntax},
		{"f 0 99999999999999999999", "f 0 99999999999999999999", 0, 0, false, nil},
	}
	for _, tt := range tests {
		path, start, end, ranged, err := ParseDigestArgs(tt.arg)
		if !errors.Is(err, tt.err) || err == nil && (path != tt.path || start != tt.start || end != tt.end || ranged != tt.ranged) {
			t.Errorf("ParseDigestArgs(%q) = %q, %d, %d, %v, %v; want %q, %d, %d, %v, %v",
				tt.arg, path, start, end, ranged, err, tt.path, tt.start, tt.end, tt.ranged, tt.err)
		}
	}
}

// FuzzParseRang checks ParseRang against its definition: two decimal
// fields of one space; its seeds are in testdata/fuzz/FuzzParseRang.
func FuzzParseRang(f *testing.F) {
	f.Fuzz(func(t *testing.T, arg string) {
		start, end, reset, err := ParseRang(arg)
		fields := strings.Split(arg, " ")
		var a, b int64
		var e1, e2 error = ErrSyntax, ErrSyntax
		if len(fields) == 2 && digits(fields[0]) && digits(fields[1]) {
			a, e1 = strconv.ParseInt(fields[0], 10, 64)
			b, e2 = strconv.ParseInt(fields[1], 10, 64)
		}
		switch {
		case e1 != nil || e2 != nil:
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("ParseRang(%q) = %v, want ErrSyntax", arg, err)
			}
		case a == 1 && b == 0:
			if err != nil || !reset {
				t.Fatalf("ParseRang(%q): want the reset", arg)
			}
		case a > b:
			if !errors.Is(err, ErrRangeOrder) {
				t.Fatalf("ParseRang(%q) = %v, want ErrRangeOrder", arg, err)
			}
		default:
			if err != nil || reset || start != a || end != b {
				t.Fatalf("ParseRang(%q) = %d, %d, %v, %v", arg, start, end, reset, err)
			}
		}
	})
}

// FuzzParseDigestArgs checks that every accepted argument round-trips: the
// quoted form of the parsed path, followed by the range, parses the same.
// Its seeds are in testdata/fuzz/FuzzParseDigestArgs.
func FuzzParseDigestArgs(f *testing.F) {
	f.Fuzz(func(t *testing.T, arg string) {
		path, start, end, ranged, err := ParseDigestArgs(arg)
		if err != nil {
			return
		}
		if path == "" || ranged && start >= end || !ranged && (start != 0 || end != 0) {
			t.Fatalf("ParseDigestArgs(%q) = %q, %d, %d, %v", arg, path, start, end, ranged)
		}
		q := `"` + strings.ReplaceAll(path, `"`, `""`) + `"`
		if ranged {
			q += " " + strconv.FormatInt(start, 10) + " " + strconv.FormatInt(end, 10)
		}
		p2, s2, e2, r2, err := ParseDigestArgs(q)
		if err != nil || p2 != path || s2 != start || e2 != end || r2 != ranged {
			t.Fatalf("ParseDigestArgs(%q) = %q, %d, %d, %v, %v; from %q", q, p2, s2, e2, r2, err, arg)
		}
	})
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

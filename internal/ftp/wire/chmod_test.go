package wire

import (
	"io/fs"
	"testing"
)

func TestParseChmod(t *testing.T) {
	tests := []struct {
		arg  string
		mode fs.FileMode
		path string
		err  error
	}{
		{"755 file", 0o755, "file", nil},
		{"0644 dir/file name.txt", 0o644, "dir/file name.txt", nil},
		{"0 x", 0, "x", nil},
		{"7 x", 0o7, "x", nil},
		{"777 x", 0o777, "x", nil},
		{"0777 x", 0o777, "x", nil},
		{"644  two spaces ", 0o644, " two spaces ", nil},
		{"600 日本.txt", 0o600, "日本.txt", nil},

		{"4755 x", 0, "", ErrSpecialBits},
		{"2755 x", 0, "", ErrSpecialBits},
		{"1777 x", 0, "", ErrSpecialBits},
		{"7777 x", 0, "", ErrSpecialBits},

		{"", 0, "", ErrSyntax},
		{"755", 0, "", ErrSyntax},
		{"755 ", 0, "", ErrSyntax},
		{" 755 x", 0, "", ErrSyntax},
		{"x 755", 0, "", ErrSyntax},
		{"789 x", 0, "", ErrSyntax},
		{"75a x", 0, "", ErrSyntax},
		{"-755 x", 0, "", ErrSyntax},
		{"+755 x", 0, "", ErrSyntax},
		{"10000 x", 0, "", ErrSyntax},
		{"07777 x", 0, "", ErrSyntax},
		{"00755 x", 0, "", ErrSyntax},
		{"u+x x", 0, "", ErrSyntax},
		{"0x1ff x", 0, "", ErrSyntax},
		{"755\tx", 0, "", ErrSyntax},
	}
	for _, tt := range tests {
		mode, path, err := ParseChmod(tt.arg)
		if mode != tt.mode || path != tt.path || err != tt.err {
			t.Errorf("ParseChmod(%q) = %v, %q, %v; want %v, %q, %v", tt.arg, mode, path, err, tt.mode, tt.path, tt.err)
		}
	}
}

package wire

import "testing"

func TestParseType(t *testing.T) {
	tests := []struct {
		arg  string
		want Type
		err  error
	}{
		{"A", TypeASCII, nil},
		{"a", TypeASCII, nil},
		{"A N", TypeASCII, nil},
		{"a n", TypeASCII, nil},
		{" A  N ", TypeASCII, nil},
		{"I", TypeImage, nil},
		{"i", TypeImage, nil},
		{"L 8", TypeImage, nil},
		{"l 8", TypeImage, nil},
		{"L 008", TypeImage, nil},

		{"A T", TypeASCII, ErrNotImplemented},
		{"A C", TypeASCII, ErrNotImplemented},
		{"a c", TypeASCII, ErrNotImplemented},
		{"E", TypeASCII, ErrNotImplemented},
		{"E N", TypeASCII, ErrNotImplemented},
		{"e t", TypeASCII, ErrNotImplemented},
		{"L 7", TypeASCII, ErrNotImplemented},
		{"L 36", TypeASCII, ErrNotImplemented},
		{"L 1", TypeASCII, ErrNotImplemented},

		{"", TypeASCII, ErrSyntax},
		{"   ", TypeASCII, ErrSyntax},
		{"X", TypeASCII, ErrSyntax},
		{"AN", TypeASCII, ErrSyntax},
		{"A X", TypeASCII, ErrSyntax},
		{"A N N", TypeASCII, ErrSyntax},
		{"E X", TypeASCII, ErrSyntax},
		{"I N", TypeASCII, ErrSyntax},
		{"I 8", TypeASCII, ErrSyntax},
		{"L", TypeASCII, ErrSyntax},
		{"L8", TypeASCII, ErrSyntax},
		{"L 0", TypeASCII, ErrSyntax},
		{"L -8", TypeASCII, ErrSyntax},
		{"L 8 8", TypeASCII, ErrSyntax},
		{"L 1000", TypeASCII, ErrSyntax},
		{"L x", TypeASCII, ErrSyntax},
		{"IMAGE", TypeASCII, ErrSyntax},
		{"A\tN", TypeASCII, ErrSyntax},
		{"!", TypeASCII, ErrSyntax},
		{"\x01", TypeASCII, ErrSyntax},
		{"\u0130", TypeASCII, ErrSyntax}, // İ must not pass as I
	}
	for _, tt := range tests {
		got, err := ParseType(tt.arg)
		if got != tt.want || err != tt.err {
			t.Errorf("ParseType(%q) = %v, %v; want %v, %v", tt.arg, got, err, tt.want, tt.err)
		}
	}
}

func TestTypeString(t *testing.T) {
	if TypeASCII.String() != "A" || TypeImage.String() != "I" {
		t.Errorf("Type strings = %q, %q", TypeASCII, TypeImage)
	}
	var zero Type
	if zero != TypeASCII {
		t.Error("the zero Type is not TypeASCII (RFC 959 default)")
	}
}

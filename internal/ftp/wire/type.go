package wire

import "strings"

// Type is a representation type Ferry supports (RFC 959 §3.1.1). The zero
// value is TypeASCII, the RFC's default.
type Type int

const (
	TypeASCII Type = iota // A (Non-print): lines are CRLF on the wire
	TypeImage             // I, or L 8: bytes as stored
)

// String returns the type code: "A" or "I".
func (t Type) String() string {
	if t == TypeImage {
		return "I"
	}
	return "A"
}

// ParseType parses a TYPE argument (RFC 959 §4.1.2), case-insensitively, with
// words separated by spaces:
//
//	"A", "A N"             -> TypeASCII
//	"I", "L 8"             -> TypeImage
//	"A T", "A C", "E[ x]", "L n" (n != 8)  -> ErrNotImplemented (504)
//	"", "X", "L8", "I N", "L 0", "A N x"   -> ErrSyntax (501)
func ParseType(arg string) (Type, error) {
	f := strings.FieldsFunc(arg, func(r rune) bool { return r == ' ' })
	if len(f) == 0 || len(f) > 2 || len(f[0]) != 1 {
		return TypeASCII, ErrSyntax
	}
	form := ""
	if len(f) == 2 {
		form = strings.ToUpper(f[1])
	}
	switch f[0][0] | 0x20 {
	case 'a':
		switch form {
		case "", "N":
			return TypeASCII, nil
		case "T", "C":
			return TypeASCII, ErrNotImplemented
		}
	case 'e':
		switch form {
		case "", "N", "T", "C":
			return TypeASCII, ErrNotImplemented
		}
	case 'i':
		if form == "" {
			return TypeImage, nil
		}
	case 'l':
		n, ok := parseDec(form, 3)
		switch {
		case !ok || n == 0:
		case n == 8:
			return TypeImage, nil
		default:
			return TypeASCII, ErrNotImplemented
		}
	}
	return TypeASCII, ErrSyntax
}

// Package vpath holds Ferry's one validated path type. A client's argument is
// cleaned and checked once, here, at the edge; storage accepts nothing else.
// Doing it in one place matters: servers that normalise paths in two places
// differently have shipped jail escapes.
package vpath

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/ferryftp/ferry/internal/escape"
)

// ErrBadName is returned for names a client may not use at all: those
// holding NUL, CR or LF.
var ErrBadName = errors.New("vpath: invalid character in path")

// ErrControlName is returned for a new name holding a control character; it
// is an ErrBadName.
var ErrControlName = fmt.Errorf("%w: control character in a new name", ErrBadName)

// CheckNewName reports whether a file or directory may be created under
// name (the last element of its path): by upload, MKD or RNTO. Besides what
// Check refuses, a new name may hold no control character: no C0 byte, no
// DEL, and no C1 control U+0080–U+009F in its UTF-8 form (C2 80–C2 9F),
// even inside a name that is not UTF-8 as a whole, since a UTF-8 terminal
// decodes it all the same (see package escape). So no client can plant a
// name that drives the terminal of whoever lists it. Other bytes of a name
// that is not UTF-8 (a Latin-1 "caf\xe9", a lone 0x80) are allowed where
// the storage keeps byte names (storage.CapByteNames). Existing names are
// not refused: listings escape them.
func CheckNewName(name string) error {
	if err := Check(name); err != nil {
		return err
	}
	if escape.HasControl(name) || hasUTF8C1(name) {
		return ErrControlName
	}
	return nil
}

// hasUTF8C1 reports whether name holds the UTF-8 encoding of a C1 control
// (C2 80–C2 9F) anywhere.
func hasUTF8C1(name string) bool {
	for i := 0; i+1 < len(name); i++ {
		if name[i] == 0xc2 && name[i+1] >= 0x80 && name[i+1] <= 0x9f {
			return true
		}
	}
	return false
}

// Path is a cleaned absolute path in a user's virtual tree, "/" being the
// user's root. The zero Path is the root.
type Path struct {
	s string // always "" (root) or "/a/b": cleaned, no trailing slash
}

// Root is the user's root directory.
func Root() Path { return Path{} }

// Resolve interprets arg (absolute, or relative to cwd) and returns the
// cleaned path. ".." never climbs above the root: like every FTP server
// with a jail, "/.." is "/". Backslashes are ordinary characters.
func Resolve(cwd Path, arg string) (Path, error) {
	if err := Check(arg); err != nil {
		return Path{}, err
	}
	var p string
	if strings.HasPrefix(arg, "/") {
		p = path.Clean(arg)
	} else {
		p = path.Clean(cwd.String() + "/" + arg)
	}
	// path.Clean of a rooted path never leaves ".." at the front.
	if p == "/" {
		return Path{}, nil
	}
	return Path{s: p}, nil
}

// Check reports whether a name may be used at all: it may hold any byte
// but NUL, CR and LF. Names are byte strings; UTF-8 is what Ferry
// advertises (RFC 2640), but a name that is not UTF-8 is still a name, and
// the engine refuses it only on storage that cannot keep it (see
// storage.CapByteNames and Path.IsUTF8).
func Check(name string) error {
	if strings.ContainsAny(name, "\x00\r\n") {
		return ErrBadName
	}
	return nil
}

// IsUTF8 reports whether every element of p is valid UTF-8.
func (p Path) IsUTF8() bool { return utf8.ValidString(p.s) }

// String returns the absolute form, as shown to the client ("/" for the root).
func (p Path) String() string {
	if p.s == "" {
		return "/"
	}
	return p.s
}

// Rel returns the form storage uses: slash-separated, relative to the root,
// "." for the root itself.
func (p Path) Rel() string {
	if p.s == "" {
		return "."
	}
	return p.s[1:]
}

// FromRel returns the path whose Rel form is rel ("." for the root): for
// backends and tests that hold names in storage's form. rel must already be
// clean; anything Resolve would change is ErrBadName.
func FromRel(rel string) (Path, error) {
	if rel == "." {
		return Root(), nil
	}
	p, err := Resolve(Root(), rel)
	if err != nil {
		return Path{}, err
	}
	if p.Rel() != rel {
		return Path{}, ErrBadName
	}
	return p, nil
}

// IsRoot reports whether p is the user's root.
func (p Path) IsRoot() bool { return p.s == "" }

// Base returns the last element ("/" for the root).
func (p Path) Base() string {
	if p.s == "" {
		return "/"
	}
	return p.s[strings.LastIndexByte(p.s, '/')+1:]
}

// Dir returns the parent directory (the root's parent is the root).
func (p Path) Dir() Path {
	if p.s == "" {
		return p
	}
	return Path{s: p.s[:strings.LastIndexByte(p.s, '/')]}
}

// Child returns p/name for a single element name as read from a directory.
func (p Path) Child(name string) Path { return Path{s: p.s + "/" + name} }

// Within reports whether p is dir or below it.
func (p Path) Within(dir Path) bool {
	return dir.s == "" || p.s == dir.s || strings.HasPrefix(p.s, dir.s+"/")
}

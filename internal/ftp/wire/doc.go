// Package wire is Ferry's FTP wire codec: pure functions and small types that
// turn control-connection bytes into commands and replies, and file metadata
// into listing lines. It holds no session state and does no I/O beyond the
// io.Reader and io.Writer it is given; the engine in package ftp decides what
// to do with the results.
//
// The package follows these documents:
//
//   - RFC 959 (FTP): command lines (§4.1), reply format (§4.2), TYPE (§3.1.1),
//     PORT/PASV (§4.1.2), pathname quoting in 257 replies (Appendix II).
//   - RFC 854 (Telnet): IAC sequences stripped from command lines and doubled
//     in replies.
//   - RFC 2428: EPRT and EPSV host-port forms.
//   - RFC 3659: the time-val format (§2.3) and MLST/MLSD facts (§7).
//   - RFC 2389: the FEAT reply shape, which the multi-line reply encoder
//     produces by indenting middle lines with one space.
//
// Parsers return sentinel errors (ErrSyntax, ErrNotImplemented, …) so that one
// place in the engine maps them to reply codes.
package wire

import "errors"

// Sentinel errors. The engine maps each to one reply code; the comments give
// the usual mapping.
var (
	// ErrLineTooLong: a command line exceeded the Reader's limit (500).
	ErrLineTooLong = errors.New("wire: line too long")
	// ErrSyntax: the argument does not parse (501).
	ErrSyntax = errors.New("wire: syntax error")
	// ErrNotImplemented: a well-formed parameter Ferry does not support (504).
	ErrNotImplemented = errors.New("wire: not implemented")
	// ErrUnsupportedProto: an EPRT or EPSV network protocol number other than
	// 1 (IPv4) or 2 (IPv6) (522, RFC 2428 §2 and §3).
	ErrUnsupportedProto = errors.New("wire: network protocol not supported")
	// ErrSpecialBits: SITE CHMOD asked for setuid, setgid or sticky (550).
	ErrSpecialBits = errors.New("wire: setuid, setgid and sticky bits are not allowed")
)

// ErrEPSVProto is ErrUnsupportedProto under the name the EPSV handler uses;
// the two are the same value, so errors.Is matches either.
var ErrEPSVProto = ErrUnsupportedProto

package xferlog

import (
	"net/netip"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ferryftp/ferry/internal/event"
)

// LineWriter takes whole log lines, each ending in a newline; *File is one.
type LineWriter interface {
	WriteLine(line []byte) error
}

// Transfers writes the xferlog: one line per download or upload that
// ended, complete or not (listings are not logged). Its Observe is an
// engine observer.
type Transfers struct {
	out LineWriter
	loc *time.Location
	err func(error)
}

// NewTransfers returns an xferlog writer to out, with times in loc (the
// local time zone when nil, as wu-ftpd writes them); onErr, when set, is
// told of failed writes.
func NewTransfers(out LineWriter, loc *time.Location, onErr func(error)) *Transfers {
	if loc == nil {
		loc = time.Local
	}
	return &Transfers{out: out, loc: loc, err: onErr}
}

// Observe writes the line of a transfer event; other events are ignored.
func (x *Transfers) Observe(e event.Event) {
	if e.Kind != event.KindTransfer || e.Direction != "download" && e.Direction != "upload" {
		return
	}
	if err := x.out.WriteLine(AppendTransfer(nil, e, x.loc)); err != nil && x.err != nil {
		x.err(err)
	}
}

// AppendTransfer appends the xferlog line of a transfer event to b (see
// xferlog(5) of wu-ftpd and ProFTPD), 18 fields separated by single spaces:
//
//	current-time (5 fields: "Thu Dec 03 14:02:51 2026", the day zero-padded
//	as ProFTPD writes it, so that splitting on single spaces also works)
//	transfer-time remote-host file-size filename transfer-type
//	special-action-flag direction access-mode username service-name
//	authentication-method authenticated-user-id completion-status
//
// The transfer time is in whole seconds, rounded, at least 1 (as vsftpd
// writes it); the remote host is the client's IP address; the file size is
// the bytes moved; the file name is the virtual path, each space or control
// character written as '_'; the type is a (TYPE A) or b; the action flag is
// always _; the direction o (download) or i (upload); the access mode a
// (anonymous) or r; the user name is the account's, or for anonymous
// logins the password given (the e-mail address), as wu-ftpd and vsftpd
// write it; the service name is ftps when the control connection was
// protected (ProFTPD's convention), else ftp; no ident lookup is made (0 *);
// the status is c (complete) or i (incomplete: aborted or failed).
func AppendTransfer(b []byte, e event.Event, loc *time.Location) []byte {
	b = e.Time.In(loc).AppendFormat(b, "Mon Jan 02 15:04:05 2006")
	b = append(b, ' ')
	secs := int64(e.Duration.Round(time.Second) / time.Second)
	b = strconv.AppendInt(b, max(secs, 1), 10)
	b = append(b, ' ')
	b = appendHost(b, e.Remote)
	b = append(b, ' ')
	b = strconv.AppendInt(b, e.Bytes, 10)
	b = append(b, ' ')
	b = appendField(b, e.Path, "_")
	typ := " b"
	if e.ASCII {
		typ = " a"
	}
	b = append(b, typ...)
	b = append(b, " _"...)
	dir := " o"
	if e.Direction == "upload" {
		dir = " i"
	}
	b = append(b, dir...)
	if e.Method == "anonymous" {
		b = append(b, " a "...)
		b = appendField(b, e.Detail, "anonymous")
	} else {
		b = append(b, " r "...)
		b = appendField(b, e.User, "*")
	}
	if e.Secure {
		b = append(b, " ftps"...)
	} else {
		b = append(b, " ftp"...)
	}
	b = append(b, " 0 *"...)
	if e.Result == "ok" {
		b = append(b, " c\n"...)
	} else {
		b = append(b, " i\n"...)
	}
	return b
}

// appendHost appends the client's IP address (an IPv4-mapped address as
// IPv4), or "?" when unknown.
func appendHost(b []byte, ap netip.AddrPort) []byte {
	if !ap.IsValid() {
		return append(b, '?')
	}
	return ap.Addr().Unmap().AppendTo(b)
}

// appendField appends s as one field: each space (any Unicode white space)
// and control character (C0, DEL, C1) becomes '_', so the field never
// splits and the line stays one line; an empty s is written as empty.
func appendField(b []byte, s, empty string) []byte {
	if s == "" {
		return append(b, empty...)
	}
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			if c := s[i]; c < 0x20 || c == 0x7f {
				b = append(b, '_')
			} else {
				b = append(b, c) // a byte of a name that is not UTF-8
			}
		case r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0x9f || unicode.IsSpace(r):
			b = append(b, '_')
		default:
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return b
}

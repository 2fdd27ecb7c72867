package xferlog

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/ferryftp/ferry/internal/event"
)

// Format is the layout of the auth log.
type Format uint8

const (
	// FormatFerry is Ferry's layout, one line per login and ban:
	//
	//	2026-12-03T14:02:51Z ferry[PID]: LOGIN OK ip=IP user="NAME" method=password|certificate|anonymous session=ID
	//	2026-12-03T14:02:51Z ferry[PID]: LOGIN FAILED ip=IP user="NAME" reason=credentials|anonymous_disabled session=ID
	//	2026-12-03T14:02:51Z ferry[PID]: LOGIN REFUSED ip=IP user="NAME" reason=session_limit session=ID
	//	2026-12-03T14:02:51Z ferry[PID]: BANNED ip=IP reason=failed_logins|protocol_errors session=ID
	//
	// The address comes before the user name, which is quoted as a Go
	// string, so no name a client sends can pass for an address.
	FormatFerry Format = iota
	// FormatVsftpd is the layout of vsftpd's own log (vsftpd.log with
	// dual_log_enable), which fail2ban's stock vsftpd filter reads:
	//
	//	Thu Dec  3 14:02:51 2026 [pid PID] [NAME] OK LOGIN: Client "IP"
	//	Thu Dec  3 14:02:51 2026 [pid PID] [NAME] OK LOGIN: Client "IP", anon password "ADDRESS"
	//	Thu Dec  3 14:02:51 2026 [pid PID] [NAME] FAIL LOGIN: Client "IP"
	//	Thu Dec  3 14:02:51 2026 [pid PID] [NAME] FAIL LOGIN: Client "IP", "Too many sessions of this user."
	//	Thu Dec  3 14:02:51 2026 [pid PID] BANNED: Client "IP", "failed_logins"
	//
	// In a name, brackets, quotes and control characters are written as
	// '?', so that no name can end the field early.
	FormatVsftpd
)

// ParseFormat reads "ferry" or "vsftpd".
func ParseFormat(s string) (Format, error) {
	switch s {
	case "ferry":
		return FormatFerry, nil
	case "vsftpd":
		return FormatVsftpd, nil
	}
	return 0, fmt.Errorf("xferlog: auth log format %q is not ferry or vsftpd", s)
}

// Auth writes the auth log: one line per login success, failure or refusal
// and per ban. Its Observe is an engine observer.
type Auth struct {
	out    LineWriter
	format Format
	loc    *time.Location
	pid    int
	err    func(error)
}

// NewAuth returns an auth log writer to out in format, with times in loc
// (UTC when nil); onErr, when set, is told of failed writes.
func NewAuth(out LineWriter, format Format, loc *time.Location, onErr func(error)) *Auth {
	if loc == nil {
		loc = time.UTC
	}
	return &Auth{out: out, format: format, loc: loc, pid: os.Getpid(), err: onErr}
}

// Observe writes the line of a login or ban event; other events, and
// logins that waited for the password-check budget ("busy": not the
// client's doing), are ignored.
func (a *Auth) Observe(e event.Event) {
	switch {
	case e.Kind == event.KindLogin && e.Result != "busy", e.Kind == event.KindBan:
	default:
		return
	}
	var line []byte
	if a.format == FormatVsftpd {
		line = a.appendVsftpd(nil, e)
	} else {
		line = a.appendFerry(nil, e)
	}
	if err := a.out.WriteLine(line); err != nil && a.err != nil {
		a.err(err)
	}
}

func (a *Auth) appendFerry(b []byte, e event.Event) []byte {
	b = e.Time.In(a.loc).AppendFormat(b, time.RFC3339)
	b = append(b, " ferry["...)
	b = strconv.AppendInt(b, int64(a.pid), 10)
	b = append(b, "]: "...)
	switch {
	case e.Kind == event.KindBan:
		b = append(b, "BANNED ip="...)
		b = appendHost(b, e.Remote)
		b = append(b, " reason="...)
		b = append(b, event.BanReason(e)...)
	default:
		switch e.Result {
		case "ok":
			b = append(b, "LOGIN OK"...)
		case "refused":
			b = append(b, "LOGIN REFUSED"...)
		default:
			b = append(b, "LOGIN FAILED"...)
		}
		b = append(b, " ip="...)
		b = appendHost(b, e.Remote)
		b = append(b, " user="...)
		b = strconv.AppendQuote(b, e.User)
		if e.Result == "ok" {
			b = append(b, " method="...)
			b = append(b, e.Method...)
		} else {
			b = append(b, " reason="...)
			b = append(b, event.LoginReason(e)...)
		}
	}
	b = append(b, " session="...)
	b = append(b, e.Session...)
	return append(b, '\n')
}

func (a *Auth) appendVsftpd(b []byte, e event.Event) []byte {
	b = e.Time.In(a.loc).AppendFormat(b, "Mon Jan _2 15:04:05 2006")
	b = append(b, " [pid "...)
	b = strconv.AppendInt(b, int64(a.pid), 10)
	b = append(b, "] "...)
	if e.Kind == event.KindBan {
		b = append(b, `BANNED: Client "`...)
		b = appendHost(b, e.Remote)
		b = append(b, `", "`...)
		b = append(b, event.BanReason(e)...)
		return append(b, "\"\n"...)
	}
	b = append(b, '[')
	b = appendVsftpdName(b, e.User)
	b = append(b, "] "...)
	if e.Result == "ok" {
		b = append(b, `OK LOGIN: Client "`...)
	} else {
		b = append(b, `FAIL LOGIN: Client "`...)
	}
	b = appendHost(b, e.Remote)
	b = append(b, '"')
	switch {
	case e.Result == "ok" && e.Method == "anonymous":
		b = append(b, `, anon password "`...)
		b = appendVsftpdName(b, e.Detail)
		b = append(b, '"')
	case e.Result == "refused":
		b = append(b, `, "Too many sessions of this user."`...)
	}
	return append(b, '\n')
}

// appendVsftpdName appends a name for a bracketed or quoted vsftpd field:
// brackets, quotes and control characters become '?'.
func appendVsftpdName(b []byte, s string) []byte {
	if s == "" {
		return append(b, '?')
	}
	for _, r := range s {
		switch {
		case r == '[' || r == ']' || r == '"' || r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0x9f:
			b = append(b, '?')
		default:
			b = append(b, string(r)...)
		}
	}
	return b
}

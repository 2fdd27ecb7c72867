package wire

import (
	"io/fs"
	"strconv"
	"time"
)

// recentWindow is how far back a LIST date shows the time of day instead of
// the year: half a Gregorian year, as GNU ls does.
const recentWindow = 31556952 / 2 * time.Second

// AppendListLine appends one LIST line in the shape Unix servers emit and
// clients parse (vsftpd's ls.c column layout), ending with CRLF:
//
//	drwxr-xr-x    1 owner    group        4096 Jan  2 15:04 name
//
// Columns: the mode string (type, rwx triplets, s/S/t/T for setuid, setgid
// and sticky); the link count, always 1, right-aligned in 4; owner and group
// left-aligned in 8 ("ftp" when empty, so the column count never changes);
// the size right-aligned in 8; the modification time in UTC as
// "Jan _2 15:04" when it lies within six months before now and at most an hour
// after, else "Jan _2  2006"; then the name as is. The engine must not pass
// names containing CR or LF. AppendListLine does not allocate when buf has
// room.
func AppendListLine(buf []byte, fi fs.FileInfo, owner, group string, now time.Time) []byte {
	buf = appendModeString(buf, fi.Mode())
	buf = append(buf, "    1 "...)
	buf = appendPadRight(buf, orFTP(owner), 8)
	buf = append(buf, ' ')
	buf = appendPadRight(buf, orFTP(group), 8)
	buf = append(buf, ' ')
	buf = appendIntPadLeft(buf, fi.Size(), 8)
	buf = append(buf, ' ')
	buf = appendListTime(buf, fi.ModTime(), now)
	buf = append(buf, ' ')
	buf = append(buf, fi.Name()...)
	return append(buf, '\r', '\n')
}

func orFTP(s string) string {
	if s == "" {
		return "ftp"
	}
	return s
}

func appendListTime(buf []byte, t, now time.Time) []byte {
	t, now = t.UTC(), now.UTC()
	recent := t.After(now.Add(-recentWindow)) && !t.After(now.Add(time.Hour))
	y, mo, d := t.Date()
	if !recent && (y < 0 || y > 9999) {
		return t.AppendFormat(buf, "Jan _2  2006")
	}
	// By hand, as AppendTime: AppendFormat parses its layout on every call.
	const months = "JanFebMarAprMayJunJulAugSepOctNovDec"
	m := int(mo-1) * 3
	buf = append(buf, months[m:m+3]...)
	buf = append(buf, ' ', ' ')
	if d >= 10 {
		buf[len(buf)-1] = byte('0' + d/10)
	}
	buf = append(buf, byte('0'+d%10), ' ')
	if recent {
		h, mi, _ := t.Clock()
		return append(buf, byte('0'+h/10), byte('0'+h%10), ':', byte('0'+mi/10), byte('0'+mi%10))
	}
	return append(buf, ' ', byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10))
}

// appendModeString appends the 10-character ls mode of m.
func appendModeString(buf []byte, m fs.FileMode) []byte {
	const rwx = "rwxrwxrwx"
	var b [10]byte
	switch {
	case m&fs.ModeDir != 0:
		b[0] = 'd'
	case m&fs.ModeSymlink != 0:
		b[0] = 'l'
	case m&fs.ModeNamedPipe != 0:
		b[0] = 'p'
	case m&fs.ModeSocket != 0:
		b[0] = 's'
	case m&fs.ModeCharDevice != 0:
		b[0] = 'c'
	case m&fs.ModeDevice != 0:
		b[0] = 'b'
	default:
		b[0] = '-'
	}
	for i := range 9 {
		if m&(1<<(8-i)) != 0 {
			b[i+1] = rwx[i]
		} else {
			b[i+1] = '-'
		}
	}
	special := func(set bool, pos int, lower byte) {
		if !set {
			return
		}
		if b[pos] == 'x' {
			b[pos] = lower
		} else {
			b[pos] = lower - ('a' - 'A')
		}
	}
	special(m&fs.ModeSetuid != 0, 3, 's')
	special(m&fs.ModeSetgid != 0, 6, 's')
	special(m&fs.ModeSticky != 0, 9, 't')
	return append(buf, b[:]...)
}

const spaces = "                " // 16, wider than any pad used here

func appendPadRight(buf []byte, s string, width int) []byte {
	buf = append(buf, s...)
	if n := width - len(s); n > 0 {
		buf = append(buf, spaces[:n]...)
	}
	return buf
}

func appendIntPadLeft(buf []byte, v int64, width int) []byte {
	start := len(buf)
	buf = strconv.AppendInt(buf, v, 10)
	digits := len(buf) - start
	if pad := width - digits; pad > 0 {
		buf = append(buf, spaces[:pad]...)
		copy(buf[start+pad:], buf[start:start+digits])
		copy(buf[start:start+pad], spaces)
	}
	return buf
}

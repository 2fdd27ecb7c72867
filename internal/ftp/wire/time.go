package wire

import "time"

// timeLayout is the time-val of RFC 3659 §2.3 without its fraction.
const timeLayout = "20060102150405"

// AppendTime appends t in UTC as YYYYMMDDHHMMSS, the form of MDTM replies and
// the modify fact (RFC 3659 §2.3, §3.1, §7.5.3).
func AppendTime(buf []byte, t time.Time) []byte {
	t = t.UTC()
	y, mo, d := t.Date()
	if y < 0 || y > 9999 {
		return t.AppendFormat(buf, timeLayout)
	}
	h, mi, s := t.Clock()
	// By hand: AppendFormat parses the layout on every call, a fifth of an
	// MLSD's user CPU.
	return append(buf, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10),
		byte('0'+int(mo)/10), byte('0'+int(mo)%10), byte('0'+d/10), byte('0'+d%10),
		byte('0'+h/10), byte('0'+h%10), byte('0'+mi/10), byte('0'+mi%10), byte('0'+s/10), byte('0'+s%10))
}

// ParseTime parses a time-val (RFC 3659 §2.3): exactly 14 digits
// YYYYMMDDHHMMSS in UTC, optionally followed by '.' and one or more digits of
// fraction (as MFMT and MDTM-set clients send). Digits past nanoseconds are
// ignored. Fields must be in range (second 60, a leap second, is allowed and
// rolls into the next minute); anything else is ErrSyntax.
func ParseTime(s string) (time.Time, error) {
	if len(s) < 14 {
		return time.Time{}, ErrSyntax
	}
	var f [6]int
	pos := 0
	for i, w := range [6]int{4, 2, 2, 2, 2, 2} {
		n, ok := parseDec(s[pos:pos+w], w)
		if !ok {
			return time.Time{}, ErrSyntax
		}
		f[i] = n
		pos += w
	}
	year, month, day, hour, minute, sec := f[0], time.Month(f[1]), f[2], f[3], f[4], f[5]
	if month < 1 || month > 12 || day < 1 || day > daysIn(year, month) ||
		hour > 23 || minute > 59 || sec > 60 {
		return time.Time{}, ErrSyntax
	}
	nsec := 0
	if frac := s[14:]; frac != "" {
		if frac[0] != '.' || !isDigits(frac[1:]) {
			return time.Time{}, ErrSyntax
		}
		frac = frac[1:]
		for i := range 9 {
			nsec *= 10
			if i < len(frac) {
				nsec += int(frac[i] - '0')
			}
		}
	}
	return time.Date(year, month, day, hour, minute, sec, nsec, time.UTC), nil
}

func daysIn(year int, m time.Month) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

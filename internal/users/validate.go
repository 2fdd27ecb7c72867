package users

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/ferryftp/ferry/internal/access"
)

// ErrInvalid is returned (wrapped, with the reason: "users: invalid user name
// ...") by Store.Add, Update and SetPassword for a user or password that
// cannot be stored.
var ErrInvalid = errors.New("users: invalid")

// MaxNameLen is the longest user name, in bytes.
const MaxNameLen = 64

// MaxPasswordLen is the longest password Add and SetPassword accept, in bytes.
const MaxPasswordLen = 1024

// ValidateName reports whether name may be a user's name: 1-64 ASCII letters,
// digits and "._-@", not starting with "-" or ".", and not one of the
// anonymous login names ("anonymous" and "ftp", in any case). Names are
// case-sensitive otherwise.
func ValidateName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("%w user name: must be 1-%d characters", ErrInvalid, MaxNameLen)
	}
	for _, c := range []byte(name) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-', c == '@':
		default:
			return fmt.Errorf("%w user name %q: only letters, digits and . _ - @ are allowed", ErrInvalid, name)
		}
	}
	if name[0] == '-' || name[0] == '.' {
		return fmt.Errorf("%w user name %q: must not start with a dash or a dot", ErrInvalid, name)
	}
	if IsAnonymousName(name) {
		return fmt.Errorf("%w user name %q: reserved for anonymous logins", ErrInvalid, name)
	}
	return nil
}

// IsAnonymousName reports whether name is one of the anonymous logins,
// "anonymous" or "ftp", in any case.
func IsAnonymousName(name string) bool {
	return strings.EqualFold(name, "anonymous") || strings.EqualFold(name, "ftp")
}

// ValidatePassword reports whether password may be stored: not empty and at
// most MaxPasswordLen bytes.
func ValidatePassword(password string) error {
	if password == "" {
		return fmt.Errorf("%w password: empty", ErrInvalid)
	}
	if len(password) > MaxPasswordLen {
		return fmt.Errorf("%w password: longer than %d bytes", ErrInvalid, MaxPasswordLen)
	}
	return nil
}

// MaxLoginMessage bounds a user's login message: this many lines, and 64
// times as many bytes.
const MaxLoginMessage = 100

// ValidateLoginMessage refuses a login message with CR or NUL (a reply's
// lines are separated by '\n' only), more than MaxLoginMessage lines or
// more than 64*MaxLoginMessage bytes.
func ValidateLoginMessage(m string) error {
	switch {
	case strings.ContainsAny(m, "\r\x00"):
		return errors.New("login_message must not contain CR or NUL")
	case strings.Count(m, "\n")+1 > MaxLoginMessage:
		return fmt.Errorf("login_message has more than %d lines", MaxLoginMessage)
	case len(m) > 64*MaxLoginMessage:
		return fmt.Errorf("login_message is longer than %d bytes", 64*MaxLoginMessage)
	}
	return nil
}

// Validate reports the first problem that keeps u from being stored: a bad
// name, a home that is not an absolute clean path, an unknown TLSRequired, a
// permission spec that internal/access cannot parse, or a negative limit.
func (u *User) Validate() error {
	if err := ValidateName(u.Name); err != nil {
		return err
	}
	if !filepath.IsAbs(u.Home) || filepath.Clean(u.Home) != u.Home {
		return fmt.Errorf("%w user %s: home %q must be an absolute, clean path", ErrInvalid, u.Name, u.Home)
	}
	switch u.TLSRequired {
	case "", "none", "control", "data", "all":
	default:
		return fmt.Errorf("%w user %s: tls_required %q must be empty, none, control, data or all", ErrInvalid, u.Name, u.TLSRequired)
	}
	if _, err := access.Parse(u.Perms); err != nil {
		return fmt.Errorf("%w user %s: perms: %v", ErrInvalid, u.Name, err)
	}
	if err := ValidateLoginMessage(u.LoginMessage); err != nil {
		return fmt.Errorf("%w user %s: %v", ErrInvalid, u.Name, err)
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"quota_bytes", u.QuotaBytes},
		{"quota_files", u.QuotaFiles},
		{"max_sessions", int64(u.MaxSessions)},
		{"upload_rate", u.UploadRate},
		{"download_rate", u.DownloadRate},
	} {
		if f.v < 0 {
			return fmt.Errorf("%w user %s: %s must not be negative", ErrInvalid, u.Name, f.name)
		}
	}
	return nil
}

package users

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"alice", true},
		{"Alice", true},
		{"a", true},
		{"0", true},
		{"bob.smith", true},
		{"bob_smith-2", true},
		{"bob@example.com", true},
		{"_svc", true},
		{"@home", true},
		{"ftpuser", true},
		{"anonymous1", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"", false},
		{"-bob", false},
		{".bob", false},
		{"..", false},
		{"bob smith", false},
		{"bob/..", false},
		{"bob\\x", false},
		{"bob:x", false},
		{"bob\n", false},
		{"bob\x00", false},
		{"émile", false},
		{"anonymous", false},
		{"Anonymous", false},
		{"ftp", false},
		{"FTP", false},
	} {
		err := ValidateName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateName(%q) = %v; want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateName(%q) = %v; does not wrap ErrInvalid", tc.name, err)
		}
	}
}

func TestValidatePassword(t *testing.T) {
	for _, tc := range []struct {
		pw string
		ok bool
	}{
		{"x", true},
		{strings.Repeat("x", MaxPasswordLen), true},
		{"", false},
		{strings.Repeat("x", MaxPasswordLen+1), false},
	} {
		if err := ValidatePassword(tc.pw); (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidatePassword(%d bytes) = %v; want ok=%v", len(tc.pw), err, tc.ok)
		}
	}
}

func TestUserValidate(t *testing.T) {
	good := User{Name: "alice", Home: "/srv/ftp/alice"}
	for _, tc := range []struct {
		desc string
		edit func(*User)
		ok   bool
	}{
		{"minimal", func(*User) {}, true},
		{"tls all", func(u *User) { u.TLSRequired = "all" }, true},
		{"limits", func(u *User) { u.QuotaBytes, u.QuotaFiles, u.MaxSessions, u.UploadRate, u.DownloadRate = 1, 2, 3, 4, 5 }, true},
		{"bad name", func(u *User) { u.Name = "-x" }, false},
		{"reserved name", func(u *User) { u.Name = "ftp" }, false},
		{"relative home", func(u *User) { u.Home = "srv/alice" }, false},
		{"empty home", func(u *User) { u.Home = "" }, false},
		{"unclean home", func(u *User) { u.Home = "/srv/../etc" }, false},
		{"trailing slash", func(u *User) { u.Home = "/srv/alice/" }, false},
		{"bad tls", func(u *User) { u.TLSRequired = "always" }, false},
		{"perms", func(u *User) { u.Perms = "/=read;/incoming=read,upload" }, true},
		{"perms without path", func(u *User) { u.Perms = "read,write" }, false},
		{"perms unknown verb", func(u *User) { u.Perms = "/=read,fly" }, false},
		{"negative quota", func(u *User) { u.QuotaBytes = -1 }, false},
		{"negative files", func(u *User) { u.QuotaFiles = -1 }, false},
		{"negative sessions", func(u *User) { u.MaxSessions = -1 }, false},
		{"negative up rate", func(u *User) { u.UploadRate = -1 }, false},
		{"negative down rate", func(u *User) { u.DownloadRate = -1 }, false},
	} {
		u := good
		tc.edit(&u)
		if err := u.Validate(); (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Validate() = %v; want ok=%v", tc.desc, err, tc.ok)
		}
	}
}

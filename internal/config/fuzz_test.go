package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary files to the strict loader: it must never panic,
// and a file it accepts must leave a Config that Validate can judge.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(Example()))
	for _, s := range []string{"", "listen = 1", "listn = \"x\"", "[a]\nb = 1", "ban_allow = [\"::1\", 3]",
		"data_timeout = \"-5s\"", "passive_ports = \"2000-1000\"", "a.b.c = 1", "x = [[1]]", "\"\\u0000\" = 1",
		"[storage]\nbackend = 1\nx = 2", "[[vhost]]\nname = \"a\"\n[[vhost]]\nbanner = 3", "vhost = [{name = \"a\"}]",
		"[metrics.x]\ny = 1", "storage = []",
		"[database]\nurl = \"postgres://u:pw@h/db?password=pw\"", "[database]\nurl = 3", "[database]\nurl = \"sqlite:\"",
		"[database]\nurl = \"sqlite:a\"\n[database]\nurl = \"sqlite:b\"", "database.url = \"sqlite:x\"", "[database]\n[database.x]",
		"[metrics]\nlisten = \"127.0.0.1:9\"", "[metrics]\nlisten = \"nowhere\"", "[storage]\nbackend = \"local\"\n[storage.x]",
		"[[vhost]]\nname = \"a.example\"\nbanner = \"x\\ny\"", "[[vhost]]\nname = \"A.example\"\n[[vhost]]\nname = \"a.example\"",
		"[[vhost]]\nname = \"-bad-\"", "[vhost]\nname = \"a\"", "[[database]]\nurl = \"sqlite:x\"", "listen = \":21\"\n[database]\nurl = \"sqlite:u.db\"\nlisten = 1"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "f.toml")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c := Defaults()
		if err := Load(p, &c); err == nil {
			_ = c.Validate()
		}
	})
}

// FuzzDatabaseURL: SQLitePath accepts exactly "sqlite:" and a non-empty
// path without NUL, and returns that path; and whatever the scheme, no
// message it writes shows a password kept in a url's user part, its
// query, a "scheme:user:pass@host" value or a MySQL or keyword DSN.
func FuzzDatabaseURL(f *testing.F) {
	for _, s := range [][3]string{
		{"sqlite:users.db", "postgres", "hunter22"}, {"sqlite:", "postgresql", "s3cretpw"}, {"sqlite:a\x00b", "mysql", "Pa55word"},
		{"postgres://db/ferry", "Postgres", "xyzzy123"}, {"users.db", "", "abcdef"}, {"sqlite:/abs/u.db", "sqlite", "dbpassword"},
		{"postgres://u:p@[::1", "POSTGRES", "letmein1"}, {"sqlite:../x", "s3", "sqlite"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, raw, scheme, secret string) {
		p, err := Database{URL: raw}.SQLitePath()
		ok := strings.HasPrefix(raw, "sqlite:") && len(raw) > len("sqlite:") && !strings.ContainsRune(raw, 0)
		if (err == nil) != ok || err == nil && p != raw[len("sqlite:"):] {
			t.Fatalf("SQLitePath(%q) = %q, %v", raw, p, err)
		}
		secret = strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, secret)
		if len(secret) < 6 {
			return
		}
		for _, tmpl := range []string{
			scheme + "://u:SECRET@h/db", scheme + "://u:SECRET@h:5432/db?sslmode=require",
			scheme + "://u@h/db?password=SECRET", scheme + "://h/db?sslmode=x&PassWord=SECRET&a=b",
			scheme + ":u:SECRET@h", scheme + "://u:SECRET@" + raw, "u:SECRET@tcp(h)/db", "host=h password=SECRET",
			scheme + "://h/db#SECRET", scheme + "://u:SECRET@h/" + raw,
		} {
			u := strings.Replace(tmpl, "SECRET", secret, 1)
			_, err := Database{URL: u}.SQLitePath()
			if err == nil {
				continue // a sqlite path, shown to nobody
			}
			// The secret may be in the rest of the value or in the message's
			// own words; then its presence proves nothing.
			_, without := Database{URL: strings.Replace(tmpl, "SECRET", "", 1)}.SQLitePath()
			if strings.Contains(strings.Replace(tmpl, "SECRET", "", 1), secret) || without != nil && strings.Contains(without.Error(), secret) {
				continue
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("SQLitePath(%q): the message shows the password: %v", u, err)
			}
		}
	})
}

// FuzzValidHostName: a [[vhost]] name validHostName accepts is ASCII
// letters, digits, hyphens and dots only, at most 253 bytes without its
// final dot, in labels of 1 to 63 bytes that neither start nor end with a
// hyphen; a final dot changes nothing, and case changes nothing.
func FuzzValidHostName(f *testing.F) {
	for _, s := range []string{
		"ftp.example.com", "ftp.example.com.", "A.example.com", "localhost", "xn--nxasmq6b.example", "a", "1.2.3.4",
		"", ".", "..", "a..b", "-a.example", "a-.example", "a_b.example", "not a host", "é.example", "a.example..",
		strings.Repeat("a", 63) + ".b", strings.Repeat("a", 64) + ".b", strings.Repeat("a.", 126) + "a", "a\x00b", "a\nb",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ok := validHostName(s)
		if !strings.HasSuffix(s, ".") && validHostName(s+".") != ok {
			t.Fatalf("validHostName(%q) = %v but with a final dot %v", s, ok, !ok)
		}
		if isASCII(s) && validHostName(strings.ToUpper(s)) != ok {
			t.Fatalf("validHostName(%q) = %v but in upper case %v", s, ok, !ok)
		}
		if !ok {
			return
		}
		name := strings.TrimSuffix(s, ".")
		if name == "" || len(name) > 253 {
			t.Fatalf("validHostName accepted %q: %d bytes", s, len(name))
		}
		for _, l := range strings.Split(name, ".") {
			if len(l) < 1 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
				t.Fatalf("validHostName accepted %q, with the label %q", s, l)
			}
			for i := 0; i < len(l); i++ {
				if c := l[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
					t.Fatalf("validHostName accepted %q, which holds %q", s, c)
				}
			}
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// writeFile writes src to a fresh ferry.toml and returns its path.
func writeFile(t *testing.T, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ferry.toml")
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// others returns a Config in which every field differs from Defaults().
func others() Config {
	c := Defaults()
	for _, f := range fields() {
		v := f.value(&c)
		switch f.kind {
		case kindString:
			v.SetString("v-" + f.key + ` "q" \ ü`)
		case kindBool:
			v.SetBool(!v.Bool())
		case kindInt, kindInt64:
			v.SetInt(v.Int() + 7)
		case kindDuration:
			v.Set(reflect.ValueOf(Duration{v.Interface().(Duration).Duration + 1500*time.Millisecond}))
		case kindStrings:
			v.Set(reflect.ValueOf([]string{"a-" + f.key, "b"}))
		}
	}
	return c
}

func TestFieldsAreConsistent(t *testing.T) {
	fs := fields() // panics on a missing tag or an unsupported type
	if n := len(fs) + len(tables()); n != reflect.TypeFor[Config]().NumField() {
		t.Fatalf("fields() and tables() have %d entries, Config %d fields", n, reflect.TypeFor[Config]().NumField())
	}
	for _, f := range fs {
		// The usage and the example promise --max-line-bytes is max_line_bytes.
		if want := strings.ReplaceAll(f.key, "_", "-"); f.flag != want {
			t.Errorf("key %q has flag %q, want %q", f.key, f.flag, want)
		}
	}
	o, d := others(), Defaults()
	for _, f := range fs {
		if reflect.DeepEqual(f.value(&o).Interface(), f.value(&d).Interface()) {
			t.Errorf("others() does not change %s", f.key)
		}
	}
}

func TestDefaultsAreValid(t *testing.T) {
	d := Defaults()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestEveryKeyRoundTrips writes each key alone, and then all keys together,
// to a file and loads it over Defaults.
func TestEveryKeyRoundTrips(t *testing.T) {
	o := others()
	var all strings.Builder
	for _, f := range fields() {
		line := f.key + " = " + f.toml(&o) + "\n"
		all.WriteString(line)
		t.Run(f.key, func(t *testing.T) {
			c := Defaults()
			if err := Load(writeFile(t, line), &c); err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			want := Defaults()
			f.value(&want).Set(f.value(&o))
			if !reflect.DeepEqual(c, want) {
				t.Errorf("after %s: got %#v, want %#v", line, f.value(&c).Interface(), f.value(&o).Interface())
			}
		})
	}
	c := Defaults()
	if err := Load(writeFile(t, all.String()), &c); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, o) {
		t.Errorf("all keys: got\n%#v\nwant\n%#v", c, o)
	}
}

// TestEveryFlagRoundTrips sets each flag and checks the field.
func TestEveryFlagRoundTrips(t *testing.T) {
	o := others()
	var args []string
	for _, f := range fields() {
		arg := "--" + f.flag + "=" + f.text(f.value(&o))
		args = append(args, arg)
		t.Run(f.flag, func(t *testing.T) {
			c := Defaults()
			fset := flag.NewFlagSet("test", flag.ContinueOnError)
			set := BindFlags(fset, &c)
			if err := fset.Parse([]string{arg}); err != nil {
				t.Fatal(err)
			}
			want := Defaults()
			f.value(&want).Set(f.value(&o))
			if !reflect.DeepEqual(c, want) {
				t.Errorf("after %s: got %#v", arg, f.value(&c).Interface())
			}
			if got := set(); !reflect.DeepEqual(got, []string{f.flag}) {
				t.Errorf("set() = %q, want [%s]", got, f.flag)
			}
		})
	}
	c := Defaults()
	fset := flag.NewFlagSet("test", flag.ContinueOnError)
	set := BindFlags(fset, &c)
	if err := fset.Parse(args); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, o) {
		t.Errorf("all flags: got\n%#v\nwant\n%#v", c, o)
	}
	if len(set()) != len(fields()) {
		t.Errorf("set() has %d names, want %d", len(set()), len(fields()))
	}
}

func TestListAndDurationFlags(t *testing.T) {
	tests := []struct {
		args      []string
		banAllow  []string
		hidden    []string
		idle      time.Duration
		anonymous bool
	}{
		{nil, nil, nil, 5 * time.Minute, true},
		{[]string{"--ban-allow=10.0.0.0/8, 192.0.2.1 ,"}, []string{"10.0.0.0/8", "192.0.2.1"}, nil, 5 * time.Minute, true},
		{[]string{"-ban-allow", "10.0.0.0/8", "--ban-allow=::1"}, []string{"10.0.0.0/8", "::1"}, nil, 5 * time.Minute, true},
		{[]string{"--hidden-patterns=.*,*.tmp", "--idle-timeout=1h30m", "--anonymous=false"}, nil, []string{".*", "*.tmp"}, 90 * time.Minute, false},
		{[]string{"--idle-timeout", "250ms", "--anonymous"}, nil, nil, 250 * time.Millisecond, true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			c := Defaults()
			fset := flag.NewFlagSet("test", flag.ContinueOnError)
			BindFlags(fset, &c)
			if err := fset.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.BanAllow, tt.banAllow) || !reflect.DeepEqual(c.HiddenPattern, tt.hidden) ||
				c.IdleTimeout.Duration != tt.idle || c.Anonymous != tt.anonymous {
				t.Errorf("got ban_allow %q hidden %q idle %v anonymous %v", c.BanAllow, c.HiddenPattern, c.IdleTimeout, c.Anonymous)
			}
		})
	}

	// A list flag replaces a non-empty default, and "" clears it.
	c := Defaults()
	c.BanAllow = []string{"127.0.0.1"}
	fset := flag.NewFlagSet("test", flag.ContinueOnError)
	BindFlags(fset, &c)
	if err := fset.Parse([]string{"--ban-allow=10.0.0.1"}); err != nil || !reflect.DeepEqual(c.BanAllow, []string{"10.0.0.1"}) {
		t.Errorf("replace default: %v %q", err, c.BanAllow)
	}
	c.BanAllow = []string{"127.0.0.1"}
	fset = flag.NewFlagSet("test", flag.ContinueOnError)
	BindFlags(fset, &c)
	if err := fset.Parse([]string{"--ban-allow="}); err != nil || len(c.BanAllow) != 0 {
		t.Errorf("clear: %v %q", err, c.BanAllow)
	}

	for _, bad := range [][]string{{"--idle-timeout=30"}, {"--max-sessions=many"}, {"--anonymous=maybe"}, {"--nope"}} {
		c := Defaults()
		fset := flag.NewFlagSet("test", flag.ContinueOnError)
		fset.SetOutput(io.Discard)
		BindFlags(fset, &c)
		if err := fset.Parse(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestDurationAndListInTOML(t *testing.T) {
	c := Defaults()
	src := "idle_timeout = \"1h30m\"\nlogin_timeout = \"90s\"\nban_allow = [\"10.0.0.0/8\", \"2001:db8::/32\"]\nhidden_patterns = []\n"
	if err := Load(writeFile(t, src), &c); err != nil {
		t.Fatal(err)
	}
	if c.IdleTimeout.Duration != 90*time.Minute || c.LoginTimeout.Duration != 90*time.Second {
		t.Errorf("durations: %v %v", c.IdleTimeout, c.LoginTimeout)
	}
	if !reflect.DeepEqual(c.BanAllow, []string{"10.0.0.0/8", "2001:db8::/32"}) || len(c.HiddenPattern) != 0 {
		t.Errorf("lists: %q %q", c.BanAllow, c.HiddenPattern)
	}
	if got := c.IdleTimeout.String(); got != "1h30m" {
		t.Errorf("String() = %q", got)
	}
	for d, want := range map[time.Duration]string{time.Hour: "1h", time.Minute: "1m", 61 * time.Second: "1m1s", 0: "0s", 1500 * time.Millisecond: "1.5s"} {
		if got := (Duration{d}).String(); got != want {
			t.Errorf("Duration{%v}.String() = %q, want %q", time.Duration(d), got, want)
		}
	}
}

func TestLoadKeepsValuesNotInFile(t *testing.T) {
	c := others()
	if err := Load(writeFile(t, "# only one key\nmax_sessions = 9\n"), &c); err != nil {
		t.Fatal(err)
	}
	want := others()
	want.MaxSessions = 9
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got %#v", c)
	}
}

// TestLoadErrors checks that each problem names the file, the line and the key.
func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string // each must appear in the error, in this order
	}{
		{"unknown", "listen = \":21\"\n\n# typo\nlistn = \":21\"\n", []string{`ferry.toml:4: unknown key "listn" (did you mean "listen"?)`}},
		{"unknown far from any key", "zzzzzz = 1\n", []string{`ferry.toml:1: unknown key "zzzzzz"`}},
		{"flag spelling", "\nmax-line-bytes = 4096\n", []string{`ferry.toml:2: unknown key "max-line-bytes" (did you mean "max_line_bytes"?)`}},
		{"dotted", "anonymous = true\nserver.listen = \":21\"\n", []string{`ferry.toml:2: unknown key "server"`}},
		{"table", "anonymous = true\n\n[server]\nlisten = \":21\"\n", []string{`ferry.toml:3: unknown key "server"`}},
		{"implicit table", "\n[a.b]\nc = 1\n", []string{`ferry.toml:2: unknown key "a"`}},
		{"implicit by dotted key", "\na.b.c = 1\n", []string{`ferry.toml:2: unknown key "a"`}},
		{"several", "a = 1\nlisten = \":21\"\nb = 2\nmax_line_bytes = \"4k\"\n", []string{
			`ferry.toml:1: unknown key "a"`,
			`ferry.toml:3: unknown key "b"`,
			`ferry.toml:4: max_line_bytes: want an integer, got string "4k"`,
		}},
		{"string for int", "\n\nmax_sessions = \"10\"\n", []string{`ferry.toml:3: max_sessions: want an integer, got string "10"`}},
		{"float for int", "upload_rate = 1.5\n", []string{`ferry.toml:1: upload_rate: want an integer, got float 1.5`}},
		{"string for bool", "\nanonymous = \"yes\"\n", []string{`ferry.toml:2: anonymous: want true or false, got string "yes"`}},
		{"int for string", "listen = 21\n", []string{`ferry.toml:1: listen: want a string, got integer 21`}},
		{"int for duration", "\nidle_timeout = 30\n", []string{`ferry.toml:2: idle_timeout: want a duration string like "30s", got integer 30`}},
		{"bad duration", "idle_timeout = \"30\"\n", []string{`ferry.toml:1: idle_timeout: invalid duration "30"`}},
		{"string for list", "\n\n\nban_allow = \"10.0.0.0/8\"\n", []string{`ferry.toml:4: ban_allow: want an array of strings, got string "10.0.0.0/8"`}},
		{"mixed list", "ban_allow = [\n  \"10.0.0.0/8\",\n  1,\n]\n", []string{`ferry.toml:1: ban_allow: element 2: want a string, got integer 1`}},
		{"table for string", "\nlisten.host = \"x\"\n", []string{`ferry.toml:2: listen: want a string, got a table`}},
		{"date for string", "data = 1979-05-27\n", []string{`ferry.toml:1: data: want a string, got a`}},
		{"syntax", "listen = \":21\"\nbanner = \n", []string{`ferry.toml:2: expected value`}},
		{"duplicate", "listen = \":21\"\nlisten = \":22\"\n", []string{`ferry.toml:2: `, `listen`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.src)
			c := others()
			err := Load(path, &c)
			if err == nil {
				t.Fatal("no error")
			}
			msg := strings.ReplaceAll(err.Error(), path, "ferry.toml")
			rest := msg
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("error %q lacks %q", msg, w)
				}
				rest = rest[i+len(w):]
			}
			if n := strings.Count(msg, "\n") + 1; n != len(tt.want) && tt.name == "several" {
				t.Errorf("%d problems, want %d: %s", n, len(tt.want), msg)
			}
			if !reflect.DeepEqual(c, others()) {
				t.Error("Load changed c despite the error")
			}
			var p *Problem
			if !errors.As(err, &p) || p.Line == 0 {
				t.Errorf("no *Problem with a line in %#v", err)
			}
		})
	}

	if err := Load(filepath.Join(t.TempDir(), "missing.toml"), new(Config)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestValidate(t *testing.T) {
	good := []func(c *Config){
		func(c *Config) { c.PassivePorts = "" },
		func(c *Config) { c.PassivePorts = "0" },
		func(c *Config) { c.PassivePorts = "1024-1024" },
		func(c *Config) { c.PassivePorts = "60000-65535" },
		func(c *Config) { c.Listen = "127.0.0.1:0"; c.ImplicitTLSListen = "127.0.0.1:0" },
		func(c *Config) { c.Listen = "[::1]:21"; c.ImplicitTLSListen = ":990" },
		func(c *Config) { c.BanAllow = []string{"10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::1"} },
		func(c *Config) { c.TLSReuseExempt = []string{"10.1.2.3/8"} },
		func(c *Config) { c.FileUmask, c.DirUmask = "000", "0777" },
		func(c *Config) { c.FileUmask, c.DirUmask = "7", "77" },
		func(c *Config) { c.TLSCert, c.TLSKey = "c.pem", "k.pem" },
		func(c *Config) { c.MaxLineBytes = 512 },
		func(c *Config) { c.MaxLineBytes = 65536 },
		func(c *Config) { c.AuthHashMemory = 0 },
		func(c *Config) { c.AuthHashMemory = 1 << 20 },
		func(c *Config) { c.AnonymousUploadDir = "incoming/new" },
		func(c *Config) { c.HiddenPattern = []string{".*", "*.[ch]"} },
		func(c *Config) { c.BanThreshold, c.MaxSessions = 0, 0 },
		// 0: abort running transfers at once.
		func(c *Config) { c.ShutdownGrace, c.DrainTimeout = Duration{}, Duration{} },
	}
	for i, mod := range good {
		c := Defaults()
		mod(&c)
		if err := c.Validate(); err != nil {
			t.Errorf("good %d: %v", i, err)
		}
	}

	bad := []struct {
		mod  func(c *Config)
		key  string
		want string
	}{
		{func(c *Config) { c.Listen = "" }, "listen", "not host:port"},
		{func(c *Config) { c.Listen = "2121" }, "listen", "not host:port"},
		{func(c *Config) { c.Listen = ":ftp" }, "listen", "not a number"},
		{func(c *Config) { c.Listen = ":65536" }, "listen", "not a number"},
		{func(c *Config) { c.ImplicitTLSListen = "990" }, "implicit_tls_listen", "not host:port"},
		{func(c *Config) { c.ImplicitTLSListen = c.Listen }, "implicit_tls_listen", "also listen"},
		{func(c *Config) { c.Data = "" }, "data", "must be set"},
		{func(c *Config) { c.PassivePorts = "1000-2000" }, "passive_ports", "1024 <= LO"},
		{func(c *Config) { c.PassivePorts = "3000-2000" }, "passive_ports", "LO <= HI"},
		{func(c *Config) { c.PassivePorts = "60000-70000" }, "passive_ports", "HI <= 65535"},
		{func(c *Config) { c.PassivePorts = "0-0" }, "passive_ports", "1024 <= LO"},
		{func(c *Config) { c.PassivePorts = "50000" }, "passive_ports", "not LO-HI"},
		{func(c *Config) { c.PassivePorts = "a-b" }, "passive_ports", "not LO-HI"},
		{func(c *Config) { c.AnonymousUploadDir = "../x" }, "anonymous_upload_dir", "relative"},
		{func(c *Config) { c.AnonymousUploadDir = "/incoming" }, "anonymous_upload_dir", "relative"},
		{func(c *Config) { c.Banner = "hi\r\n230 OK" }, "banner", "CR, LF"},
		{func(c *Config) { c.LoginTimeout = Duration{} }, "login_timeout", "positive"},
		{func(c *Config) { c.IdleTimeout = Duration{-time.Second} }, "idle_timeout", "positive"},
		{func(c *Config) { c.DataTimeout = Duration{} }, "data_timeout", "positive"},
		{func(c *Config) { c.ShutdownGrace = Duration{-time.Second} }, "shutdown_grace", "negative"},
		{func(c *Config) { c.DrainTimeout = Duration{-time.Second} }, "drain_timeout", "negative"},
		{func(c *Config) { c.MaxLineBytes = 511 }, "max_line_bytes", "between 512 and 65536"},
		{func(c *Config) { c.MaxLineBytes = 65537 }, "max_line_bytes", "between 512 and 65536"},
		{func(c *Config) { c.AuthHashMemory = 1<<20 - 1 }, "auth_hash_memory", "neither 0 nor at least 1048576"},
		{func(c *Config) { c.AuthHashMemory = -1 }, "auth_hash_memory", "neither 0 nor at least 1048576"},
		{func(c *Config) { c.MaxSessions = -1 }, "max_sessions", "negative"},
		{func(c *Config) { c.DownloadRate = -5 }, "download_rate", "negative"},
		{func(c *Config) { c.HashMaxSize = -1 }, "hash_max_size", "negative"},
		{func(c *Config) { c.HashPerUser = -1 }, "hash_per_user", "negative"},
		{func(c *Config) { c.BanAllow = []string{"10.0.0.0/33"} }, "ban_allow", "CIDR"},
		{func(c *Config) { c.BanAllow = []string{"example.com"} }, "ban_allow", "CIDR"},
		{func(c *Config) { c.TLSReuseExempt = []string{"fe80::1%eth0"} }, "tls_reuse_exempt", "CIDR"},
		{func(c *Config) { c.FileUmask = "8" }, "file_umask", "octal"},
		{func(c *Config) { c.DirUmask = "1000" }, "dir_umask", "octal"},
		{func(c *Config) { c.DirUmask = "" }, "dir_umask", "octal"},
		{func(c *Config) { c.HiddenPattern = []string{"[x"} }, "hidden_patterns", "glob"},
		{func(c *Config) { c.DenyUpload = []string{""} }, "deny_upload_patterns", "empty"},
		{func(c *Config) { c.TLSCert = "c.pem" }, "tls_key", "must be set when tls_cert is"},
		{func(c *Config) { c.TLSKey = "k.pem" }, "tls_cert", "must be set when tls_key is"},
		{func(c *Config) { c.TLSRequired = "yes" }, "tls_required", "none, control, data, all"},
		{func(c *Config) { c.TLSMinVersion = "1.1" }, "tls_min_version", "1.2, 1.3"},
		{func(c *Config) { c.TLSSessionReuse = "no" }, "tls_session_reuse", "required, optional"},
		{func(c *Config) { c.LogLevel = "trace" }, "log_level", "debug, info, warn, error"},
		{func(c *Config) { c.LogFormat = "xml" }, "log_format", "text, json"},
		{func(c *Config) { c.DiagnosePublicNetworks = []string{"127.0.0.0/40"} }, "diagnose_public_networks", "CIDR"},
		{withACME(func(c *Config) { c.ACMEDomains = []string{"ftp..example.com"} }), "acme_domains", "not a domain name"},
		{withACME(func(c *Config) { c.ACMEDomains = []string{"192.0.2.1"} }), "acme_domains", "not a domain name"},
		{withACME(func(c *Config) { c.ACMEDomains = []string{"-x.example.com"} }), "acme_domains", "not a domain name"},
		{withACME(func(c *Config) { c.ACMEDomains = []string{"a_b.example.com"} }), "acme_domains", "not a domain name"},
		{withACME(func(c *Config) { c.ACMEEmail = "nobody" }), "acme_email", "not an e-mail address"},
		{withACME(func(c *Config) { c.ACMEEmail = "a@b.c\nx" }), "acme_email", "not an e-mail address"},
		{withACME(func(c *Config) { c.ACMECA = "http://ca.example/dir" }), "acme_ca", "not an https:// URL"},
		{withACME(func(c *Config) { c.ACMECA = "" }), "acme_ca", "not an https:// URL"},
		{withACME(func(c *Config) { c.ACMEChallenges = nil }), "acme_challenges", "is empty"},
		{withACME(func(c *Config) { c.ACMEChallenges = []string{"dns-01"} }), "acme_challenges", "not http-01 or tls-alpn-01"},
		{withACME(func(c *Config) { c.ACMEHTTPListen = "80" }), "acme_http_listen", "host:port"},
		{withACME(func(c *Config) { c.ACMEChallenges = []string{"tls-alpn-01"}; c.ACMETLSListen = "" }), "acme_tls_listen", "host:port"},
		{withACME(func(c *Config) { c.ACMERenewBefore.Duration = -time.Hour }), "acme_renew_before", "negative"},
	}
	// acme_domains with a certificate file: the first problem is the key's.
	c := Defaults()
	c.ACMEDomains, c.TLSCert, c.TLSKey = []string{"ftp.example.com"}, "c.pem", "k.pem"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "acme_domains: cannot be used with tls_cert") {
		t.Errorf("acme_domains with tls_cert: %v", err)
	}
	// Without acme_domains the acme_ keys are not checked; 0 renew_before is the default.
	c = Defaults()
	c.ACMEChallenges = []string{"dns-01"}
	if err := c.Validate(); err != nil {
		t.Errorf("acme_ keys without acme_domains: %v", err)
	}
	for _, tt := range bad {
		c := Defaults()
		tt.mod(&c)
		err := c.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), tt.key+": ") || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want %q", tt.key, err, tt.want)
			continue
		}
		var p *Problem
		if !errors.As(err, &p) || p.Key != tt.key {
			t.Errorf("%s: problem %#v", tt.key, p)
		}
	}

	// All problems at once, in declaration order.
	c = Defaults()
	for _, tt := range bad[:1] {
		tt.mod(&c)
	}
	c.PassivePorts = "1-2"
	c.MaxLineBytes = 10
	c.LogLevel = "loud"
	c.TLSCert = "c.pem"
	err := c.Validate()
	var keys []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		keys = append(keys, e.(*Problem).Key)
	}
	if want := []string{"listen", "passive_ports", "max_line_bytes", "tls_key", "log_level"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("problems for %q, want %q:\n%v", keys, want, err)
	}
}

func TestAccessors(t *testing.T) {
	c := Defaults()
	if lo, hi := c.PassiveRange(); lo != 50000 || hi != 50999 {
		t.Errorf("PassiveRange() = %d, %d", lo, hi)
	}
	for _, s := range []string{"", "0", "junk"} {
		c.PassivePorts = s
		if lo, hi := c.PassiveRange(); lo != 0 || hi != 0 {
			t.Errorf("PassiveRange(%q) = %d, %d", s, lo, hi)
		}
	}
	c.FileUmask, c.DirUmask = "027", "0002"
	if c.FileUmaskBits() != 0o027 || c.DirUmaskBits() != 0o002 {
		t.Errorf("umasks %o %o", c.FileUmaskBits(), c.DirUmaskBits())
	}
	c.FileUmask = "bad"
	if c.FileUmaskBits() != 0o077 {
		t.Errorf("bad umask gives %o", c.FileUmaskBits())
	}
	c.BanAllow = []string{"10.1.2.3/8", "192.0.2.7", "2001:db8::1", "bad"}
	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("192.0.2.7/32"),
		netip.MustParsePrefix("2001:db8::1/128"),
	}
	if got := c.BanAllowPrefixes(); !reflect.DeepEqual(got, want) {
		t.Errorf("BanAllowPrefixes() = %v", got)
	}
	c.TLSReuseExempt = []string{"::/0"}
	if got := c.TLSReuseExemptPrefixes(); len(got) != 1 || got[0] != netip.MustParsePrefix("::/0") {
		t.Errorf("TLSReuseExemptPrefixes() = %v", got)
	}
}

func TestExampleLoadsToDefaults(t *testing.T) {
	ex := Example()
	for _, f := range fields() {
		if !strings.Contains(ex, "\n"+f.key+" = ") || !strings.Contains(ex, f.help[:min(len(f.help), 20)]) {
			t.Errorf("example lacks %s or its help", f.key)
		}
	}
	path := writeFile(t, ex)
	c := others() // every value differs from its default
	if err := Load(path, &c); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Defaults()) {
		t.Errorf("Example loads to\n%#v\nnot\n%#v", c, Defaults())
	}
	if _, err := Check(path); err != nil {
		t.Error(err)
	}
}

func TestCheck(t *testing.T) {
	path := writeFile(t, "listen = \":21\"\n\npassive_ports = \"10-20\"\nlog_levle = \"debug\"\nmax_sessions = -1\nidle_timeout = 5\n")
	_, err := Check(path)
	if err == nil {
		t.Fatal("no error")
	}
	got := strings.ReplaceAll(err.Error(), path, "ferry.toml")
	want := strings.Join([]string{
		`ferry.toml:4: unknown key "log_levle" (did you mean "log_level"?)`,
		`ferry.toml:6: idle_timeout: want a duration string like "30s", got integer 5`,
		`ferry.toml:3: passive_ports: "10-20": want 1024 <= LO <= HI <= 65535`,
		`ferry.toml:5: max_sessions: -1 is negative`,
	}, "\n")
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestResolve(t *testing.T) {
	file := writeFile(t, "listen = \":21\"\nmax_sessions = 10\nban_allow = [\"10.0.0.0/8\"]\nidle_timeout = \"1m\"\n")
	tests := []struct {
		name string
		args []string
		want func(c *Config)
	}{
		{"defaults", nil, func(c *Config) {}},
		{"flags only", []string{"--listen=:2100", "-anonymous=false"}, func(c *Config) { c.Listen, c.Anonymous = ":2100", false }},
		{"file over defaults", []string{"--config", file}, func(c *Config) {
			c.Listen, c.MaxSessions, c.BanAllow, c.IdleTimeout = ":21", 10, []string{"10.0.0.0/8"}, Duration{time.Minute}
		}},
		{"flags over file", []string{"--max-sessions=20", "--config=" + file, "--ban-allow=192.0.2.0/24,::1", "--idle-timeout=2m", "--log-level=debug"}, func(c *Config) {
			c.Listen, c.MaxSessions, c.BanAllow, c.IdleTimeout, c.LogLevel = ":21", 20, []string{"192.0.2.0/24", "::1"}, Duration{2 * time.Minute}, "debug"
		}},
		{"flag set to the default still overrides", []string{"--config=" + file, "--listen=:2121", "--max-sessions=2000"}, func(c *Config) {
			c.BanAllow, c.IdleTimeout = []string{"10.0.0.0/8"}, Duration{time.Minute}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			got, err := Resolve(tt.args, "ferry serve", &stderr)
			if err != nil {
				t.Fatal(err)
			}
			want := Defaults()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got\n%#v\nwant\n%#v", got, want)
			}
			if stderr.Len() > 0 {
				t.Errorf("stderr: %s", stderr.String())
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	var stderr bytes.Buffer
	_, err := Resolve([]string{"--help"}, "ferry serve", &stderr)
	if !errors.Is(err, flag.ErrHelp) {
		t.Errorf("--help: %v", err)
	}
	usage := stderr.String()
	if !strings.HasPrefix(usage, "Usage: ferry serve [flags]") || !strings.Contains(usage, "--config FILE") {
		t.Errorf("usage:\n%s", usage)
	}
	for _, f := range fields() {
		if !strings.Contains(usage, "  --"+f.flag+" ") && !strings.Contains(usage, "  --"+f.flag+"\n") {
			t.Errorf("usage lacks --%s", f.flag)
		}
	}
	if !strings.Contains(usage, `(default ":2121")`) || !strings.Contains(usage, "(default 5m)") {
		t.Errorf("usage lacks defaults:\n%s", usage)
	}
	stderr.Reset()
	if _, err := Resolve([]string{"-h"}, "ferry serve", &stderr); !errors.Is(err, flag.ErrHelp) || stderr.Len() == 0 {
		t.Errorf("-h: %v", err)
	}

	file := writeFile(t, "listen = \":21\"\n\npassive_ports = \"1-2\"\nlog_level = \"loud\"\n")
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"--nope"}, []string{"flag provided but not defined: -nope"}},
		{[]string{"--max-sessions=x"}, []string{`invalid value "x" for flag -max-sessions`}},
		{[]string{"serve"}, []string{`unexpected argument "serve"`}},
		{[]string{"--config=" + filepath.Join(t.TempDir(), "missing.toml")}, []string{"no such file"}},
		{[]string{"--config=" + file, "--log-level=trace", "--max-line-bytes=1"}, []string{
			`ferry.toml:3: passive_ports: "1-2"`,
			`--max-line-bytes: max_line_bytes: 1 is not between 512 and 65536`,
			`--log-level: log_level: "trace" is not one of`,
		}},
		{[]string{"--config=" + file}, []string{`ferry.toml:4: log_level: "loud"`}},
	}
	for _, tt := range tests {
		stderr.Reset()
		_, err := Resolve(tt.args, "ferry serve", &stderr)
		if err == nil {
			t.Errorf("%q: no error", tt.args)
			continue
		}
		msg := strings.ReplaceAll(err.Error(), file, "ferry.toml")
		for _, w := range tt.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%q: error %q lacks %q", tt.args, msg, w)
			}
		}
		if stderr.Len() > 0 {
			t.Errorf("%q: wrote %q", tt.args, stderr.String())
		}
	}
}

func TestQuoteTOML(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uo\te`, "tab\tnl\ncr\r", "nul\x00bel\a del\x7f", "ünï ☃"} {
		c := Defaults()
		c.Banner = s
		path := writeFile(t, "banner = "+quoteTOML(s)+"\n")
		var got Config
		if err := Load(path, &got); err != nil || got.Banner != s {
			t.Errorf("%q: got %q, %v", s, got.Banner, err)
		}
	}
}

func ExampleProblem() {
	c := Defaults()
	c.PassivePorts = "21-22"
	c.LogFormat = "xml"
	fmt.Println(c.Validate())
	// Output:
	// passive_ports: "21-22": want 1024 <= LO <= HI <= 65535
	// log_format: "xml" is not one of text, json
}

// withACME sets acme_domains before mod, so the acme_ keys are checked.
func withACME(mod func(*Config)) func(*Config) {
	return func(c *Config) {
		c.ACMEDomains = []string{"ftp.example.com"}
		mod(c)
	}
}

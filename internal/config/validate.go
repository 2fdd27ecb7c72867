package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/ferryftp/ferry/internal/db"
)

// Validate checks c and reports every problem at once (joined with
// errors.Join, each a *Problem naming its key):
//
//   - every integer is >= 0 and every duration > 0 (a new field where 0
//     must mean "off" needs an exception here);
//   - listen is host:port with a numeric port; implicit_tls_listen is empty
//     or host:port, and not the same address as listen;
//   - data is set;
//   - passive_ports is "LO-HI" with 1024 <= LO <= HI <= 65535, or "" or "0"
//     for any port the operating system picks;
//   - anonymous_upload_dir is empty or a relative slash path without "." or
//     ".." elements (fs.ValidPath);
//   - banner holds no CR, LF or NUL (it is sent on one reply line);
//   - max_line_bytes is between 512 and 65536;
//   - auth_hash_memory is 0 (the default, from the processor count) or at
//     least 1 MiB (1048576 bytes);
//   - every entry of ban_allow, tls_reuse_exempt and diagnose_public_networks
//     is a CIDR prefix or a bare IP address (meaning /32 or /128);
//   - with acme_domains: each is a DNS name; tls_cert and tls_key are empty;
//     acme_email is empty or an address; acme_ca an https URL;
//     acme_challenges non-empty, of http-01 and tls-alpn-01, each with its
//     listener a host:port; acme_renew_before is >= 0 (0: two thirds of
//     the lifetime);
//   - file_umask and dir_umask are octal from 000 to 777;
//   - hidden_patterns and deny_upload_patterns are valid path.Match globs;
//   - tls_cert and tls_key are both set or both empty;
//   - tls_required is none|control|data|all, tls_min_version 1.2|1.3,
//     tls_session_reuse required|optional, log_level
//     debug|info|warn|error, log_format text|json.
//   - storage.backend is "local" or "s3"; with "s3", s3_bucket is set (no
//     slash, no space), s3_endpoint is empty or an http(s) URL with a
//     host and no query, s3_region is set, s3_prefix is empty or a
//     relative slash path without empty, "." or ".." elements,
//     s3_access_key and s3_secret_key_file are both set or both empty,
//     s3_part_size is from 5 MiB to 5 GiB, s3_buffer_budget at least
//     s3_part_size, s3_upload_concurrency from 1 to 64, s3_checksum when_supported|when_required; with
//     "local", none of s3_bucket, s3_endpoint, s3_prefix,
//     s3_path_style, s3_access_key, s3_secret_key_file is set (a
//     forgotten --storage s3 is refused, not ignored); database.url is
//     sqlite:PATH or a PostgreSQL url or key=value DSN
//     (db.ParseDialect); database.pool_size is at least 1, its
//     statement_timeout and connect_timeout positive and its
//     start_timeout not negative (0: retry until stopped);
//     metrics.listen is empty or host:port, and not an address listen or
//     implicit_tls_listen may take (the same port on the same or a
//     wildcard host); metrics.per_user is between 0 and 1000;
//   - auth_log_format is ferry|vsftpd; auth_log and xferlog are not the
//     same file;
//   - every [[vhost]] has a unique host name and a one-line banner, and
//     any [[vhost]] at all is refused: virtual hosts are not supported yet.
func (c *Config) Validate() error {
	ps := c.problems()
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p
	}
	return errors.Join(errs...)
}

// problems returns what Validate reports, in field declaration order.
func (c *Config) problems() []*Problem {
	var ps []*Problem
	add := func(key, format string, args ...any) {
		ps = append(ps, &Problem{Key: key, Msg: key + ": " + fmt.Sprintf(format, args...)})
	}
	check := func(key string, err error) {
		if err != nil {
			add(key, "%v", err)
		}
	}
	oneOf := func(key, v string, allowed ...string) {
		if !slices.Contains(allowed, v) {
			add(key, "%q is not one of %s", v, strings.Join(allowed, ", "))
		}
	}

	for _, f := range fields() {
		v := f.value(c)
		switch f.kind {
		case kindInt, kindInt64:
			if v.Int() < 0 {
				add(f.key, "%d is negative", v.Int())
			}
		case kindDuration:
			d := v.Interface().(Duration)
			switch {
			case f.key == "acme_renew_before":
			case zeroDurationOK[f.key]:
				if d.Duration < 0 {
					add(f.key, "%s is negative", d)
				}
			case d.Duration <= 0:
				add(f.key, "%s is not a positive duration", d)
			}
		}
	}

	check("listen", checkHostPort(c.Listen))
	if c.ImplicitTLSListen != "" {
		check("implicit_tls_listen", checkHostPort(c.ImplicitTLSListen))
		if c.ImplicitTLSListen == c.Listen && !strings.HasSuffix(c.Listen, ":0") {
			add("implicit_tls_listen", "%q is also listen", c.ImplicitTLSListen)
		}
	}
	for _, a := range c.ExtraListen {
		if err := checkHostPort(a); err != nil {
			check("extra_listen", err)
		} else if (a == c.Listen || a == c.ImplicitTLSListen) && !strings.HasSuffix(a, ":0") {
			add("extra_listen", "%q is also listen or implicit_tls_listen", a)
		}
	}
	if c.Data == "" {
		add("data", "must be set")
	}
	if _, _, err := parsePassive(c.PassivePorts); err != nil {
		check("passive_ports", err)
	}
	if d := c.AnonymousUploadDir; d != "" && (!fs.ValidPath(d) || d == ".") {
		add("anonymous_upload_dir", "%q is not a relative slash path without . or .. elements, like \"incoming\"", d)
	}
	if strings.ContainsAny(c.Banner, "\r\n\x00") {
		add("banner", "must not contain CR, LF or NUL")
	}
	if strings.ContainsAny(c.LoginMessage, "\r\x00") {
		add("login_message", "must not contain CR or NUL")
	} else if n := strings.Count(strings.TrimRight(c.LoginMessage, "\n"), "\n") + 1; n > 100 {
		add("login_message", "has %d lines; at most 100", n)
	}
	if n := c.MaxLineBytes; n < 512 || n > 65536 {
		add("max_line_bytes", "%d is not between 512 and 65536", n)
	}
	if n := c.AuthHashMemory; n != 0 && n < 1<<20 {
		add("auth_hash_memory", "%d is neither 0 nor at least 1048576 bytes (1 MiB)", n)
	}
	for _, s := range c.BanAllow {
		_, err := parsePrefix(s)
		check("ban_allow", err)
	}
	for _, s := range c.TLSReuseExempt {
		_, err := parsePrefix(s)
		check("tls_reuse_exempt", err)
	}
	for _, s := range c.DiagnosePublicNetworks {
		_, err := parsePrefix(s)
		check("diagnose_public_networks", err)
	}
	c.validateACME(add)
	_, err := parseUmask(c.FileUmask)
	check("file_umask", err)
	_, err = parseUmask(c.DirUmask)
	check("dir_umask", err)
	for _, p := range c.HiddenPattern {
		check("hidden_patterns", checkGlob(p))
	}
	for _, p := range c.DenyUpload {
		check("deny_upload_patterns", checkGlob(p))
	}
	switch {
	case c.TLSCert != "" && c.TLSKey == "":
		add("tls_key", "must be set when tls_cert is")
	case c.TLSCert == "" && c.TLSKey != "":
		add("tls_cert", "must be set when tls_key is")
	}
	oneOf("tls_required", c.TLSRequired, "none", "control", "data", "all")
	oneOf("tls_min_version", c.TLSMinVersion, "1.2", "1.3")
	oneOf("tls_session_reuse", c.TLSSessionReuse, "required", "optional")
	oneOf("log_level", c.LogLevel, "debug", "info", "warn", "error")
	oneOf("log_format", c.LogFormat, "text", "json")
	oneOf("auth_log_format", c.AuthLogFormat, "ferry", "vsftpd")
	if c.Xferlog != "" && c.Xferlog == c.AuthLog {
		add("auth_log", "%q is also xferlog: the two logs need files of their own", c.AuthLog)
	}

	oneOf("storage.backend", c.Storage.Backend, "local", "s3")
	c.Storage.problems(add)
	if _, err := db.ParseDialect(c.Database.URL); err != nil {
		add("database.url", "%v", err)
	}
	if c.Database.PoolSize < 1 {
		add("database.pool_size", "must be at least 1")
	}
	if c.Database.StatementTimeout.Duration <= 0 {
		add("database.statement_timeout", "must be positive")
	}
	if c.Database.ConnectTimeout.Duration <= 0 {
		add("database.connect_timeout", "must be positive")
	}
	if c.Database.StartTimeout.Duration < 0 {
		add("database.start_timeout", "must not be negative (0: retry until stopped)")
	}
	if c.Database.NodeHeartbeat.Duration <= 0 {
		add("database.node_heartbeat", "must be positive")
	} else if c.Database.NodeTimeout.Duration <= c.Database.NodeHeartbeat.Duration {
		add("database.node_timeout", "%v must exceed node_heartbeat (%v)", c.Database.NodeTimeout.Duration, c.Database.NodeHeartbeat.Duration)
	}
	if c.Database.QuotaChunk < 0 {
		add("database.quota_chunk", "must not be negative (0: each write's own bytes)")
	}
	if l := c.Metrics.Listen; l != "" {
		if err := checkHostPort(l); err != nil {
			add("metrics.listen", "%v", err)
		}
		for key, ftp := range map[string]string{"listen": c.Listen, "implicit_tls_listen": c.ImplicitTLSListen} {
			if sameListener(l, ftp) {
				add("metrics.listen", "%q is also %s: metrics need a port of their own", l, key)
			}
		}
	}
	if n := c.Metrics.PerUser; n < 0 || n > 1000 {
		add("metrics.per_user", "%d is not between 0 and 1000", n)
	}
	names := map[string]int{}
	for i, v := range c.VHosts {
		key := fmt.Sprintf("vhost[%d]", i+1)
		switch n := strings.ToLower(v.Name); {
		case v.Name == "":
			add(key+".name", "must be set")
		case !validHostName(v.Name):
			add(key+".name", "%q is not a host name like \"ftp.example.com\"", v.Name)
		case names[n] > 0:
			add(key+".name", "%q is also the name of vhost[%d]", v.Name, names[n])
		default:
			names[n] = i + 1
		}
		if strings.ContainsAny(v.Banner, "\r\n\x00") {
			add(key+".banner", "must not contain CR, LF or NUL")
		}
	}
	if len(c.VHosts) > 0 {
		add("vhost[1]", "virtual hosts are not supported yet: remove the [[vhost]] tables")
	}

	order := map[string]int{}
	for _, f := range fields() {
		order[f.key] = f.index
	}
	for _, t := range tables() {
		order[t.key] = t.index
	}
	base := func(key string) string {
		if i := strings.IndexAny(key, ".["); i >= 0 {
			return key[:i]
		}
		return key
	}
	slices.SortStableFunc(ps, func(a, b *Problem) int { return order[base(a.Key)] - order[base(b.Key)] })
	return ps
}

// problems adds the problems of the [storage] table (see Validate).
func (st Storage) problems(add func(key, format string, args ...any)) {
	if st.Backend != "s3" {
		for _, k := range []struct {
			key string
			set bool
		}{
			{"s3_bucket", st.S3Bucket != ""},
			{"s3_endpoint", st.S3Endpoint != ""},
			{"s3_prefix", st.S3Prefix != ""},
			{"s3_path_style", st.S3PathStyle},
			{"s3_access_key", st.S3AccessKey != ""},
			{"s3_secret_key_file", st.S3SecretKeyFile != ""},
		} {
			if k.set {
				add("storage."+k.key, "set, but storage.backend is %q: add backend = \"s3\" (--storage s3) or remove it", st.Backend)
			}
		}
		return
	}
	switch b := st.S3Bucket; {
	case b == "":
		add("storage.s3_bucket", "must be set with backend \"s3\"")
	case strings.ContainsAny(b, "/ \t\r\n\x00") || len(b) > 255:
		add("storage.s3_bucket", "%q is not a bucket name like \"ferry-files\"", b)
	}
	if e := st.S3Endpoint; e != "" {
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			if strings.ContainsAny(e, "@?#") { // a key may hide there
				e = db.Redact(e)
			}
			add("storage.s3_endpoint", "%q is not an http:// or https:// URL like \"https://s3.example.com\" or \"http://127.0.0.1:7070\"", e)
		}
	}
	if st.S3Region == "" {
		add("storage.s3_region", "must be set with backend \"s3\" (\"us-east-1\" when the service does not care)")
	}
	if p := st.S3Prefix; p != "" && (!fs.ValidPath(p) || p == "." || strings.ContainsAny(p, "\x00\r\n")) {
		add("storage.s3_prefix", "%q is not a relative slash path without empty, . or .. elements, like \"ferry\" or \"site/ftp\"", p)
	}
	switch {
	case st.S3AccessKey != "" && st.S3SecretKeyFile == "":
		add("storage.s3_secret_key_file", "must be set when s3_access_key is")
	case st.S3AccessKey == "" && st.S3SecretKeyFile != "":
		add("storage.s3_access_key", "must be set when s3_secret_key_file is")
	}
	if n := st.S3PartSize; n < S3MinPartSize || n > S3MaxPartSize {
		add("storage.s3_part_size", "%d is not between %d (5 MiB) and %d (5 GiB)", n, S3MinPartSize, S3MaxPartSize)
	}
	if st.S3BufferBudget < st.S3PartSize {
		add("storage.s3_buffer_budget", "%d is less than s3_part_size (%d): no upload could get a buffer", st.S3BufferBudget, st.S3PartSize)
	}
	if n := st.S3UploadConcurrency; n < 1 || n > S3MaxUploadConcurrency {
		add("storage.s3_upload_concurrency", "%d is not between 1 and %d", n, S3MaxUploadConcurrency)
	}
	if st.S3OrphanAge.Duration <= 0 {
		add("storage.s3_orphan_age", "%s is not a positive duration", st.S3OrphanAge)
	}
	if !slices.Contains([]string{"when_supported", "when_required"}, st.S3Checksum) {
		add("storage.s3_checksum", "%q is not one of when_supported, when_required", st.S3Checksum)
	}
}

// SQLitePath returns the file of a "sqlite:PATH" url; a relative PATH is
// relative to the data directory. Any other url is an error (without the
// url's password).
func (d Database) SQLitePath() (string, error) {
	p, ok := strings.CutPrefix(d.URL, "sqlite:")
	if !ok || p == "" || strings.ContainsRune(p, 0) {
		return "", fmt.Errorf("%q is not sqlite:PATH, like %q", db.Redact(d.URL), DefaultDatabaseURL)
	}
	return p, nil
}

// validHostName reports a DNS name: dot-separated labels of letters, digits
// and inner hyphens, 1 to 63 bytes each, 253 in all, with an optional final
// dot.
func validHostName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for l := range strings.SplitSeq(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// checkHostPort accepts "host:port" where host may be empty and port is a
// number from 0 to 65535.
func checkHostPort(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port, like \":2121\" or \"192.0.2.1:21\"", s)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%q: port %q is not a number from 0 to 65535", s, port)
	}
	return nil
}

// parsePassive parses passive_ports: "" and "0" give 0, 0 (any port).
func parsePassive(s string) (lo, hi int, err error) {
	if s == "" || s == "0" {
		return 0, 0, nil
	}
	los, his, ok := strings.Cut(s, "-")
	lo, err1 := strconv.Atoi(los)
	hi, err2 := strconv.Atoi(his)
	if !ok || err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("%q is not LO-HI (like \"50000-50999\"), \"0\" or empty", s)
	}
	if lo < 1024 || lo > hi || hi > 65535 {
		return 0, 0, fmt.Errorf("%q: want 1024 <= LO <= HI <= 65535", s)
	}
	return lo, hi, nil
}

// parsePrefix parses a CIDR prefix or a bare IP address (a /32 or /128),
// returning it masked.
func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	return netip.Prefix{}, fmt.Errorf("%q is not a CIDR prefix (like \"192.0.2.0/24\") nor an IP address", s)
}

// parseUmask parses an octal umask from 000 to 777 (a leading 0 beyond
// three digits is allowed: "0022").
func parseUmask(s string) (fs.FileMode, error) {
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o777 || len(s) > 4 || (len(s) == 4 && s[0] != '0') {
		return 0, fmt.Errorf("%q is not an octal umask from 000 to 777", s)
	}
	return fs.FileMode(n), nil
}

// checkGlob reports a malformed path.Match pattern.
func checkGlob(p string) error {
	if p == "" {
		return errors.New("empty pattern")
	}
	if _, err := path.Match(p, ""); err != nil {
		return fmt.Errorf("%q is not a valid glob pattern", p)
	}
	return nil
}

// PassiveRange returns the passive port range; 0, 0 means any port the
// operating system picks (also returned for an invalid value, which Validate
// reports).
func (c Config) PassiveRange() (lo, hi int) {
	lo, hi, _ = parsePassive(c.PassivePorts)
	return lo, hi
}

// FileUmaskBits returns file_umask as permission bits to clear from uploaded
// files. An invalid value (which Validate reports) gives 0o077.
func (c Config) FileUmaskBits() fs.FileMode { return umaskBits(c.FileUmask) }

// DirUmaskBits returns dir_umask as permission bits to clear from created
// directories. An invalid value (which Validate reports) gives 0o077.
func (c Config) DirUmaskBits() fs.FileMode { return umaskBits(c.DirUmask) }

func umaskBits(s string) fs.FileMode {
	m, err := parseUmask(s)
	if err != nil {
		return 0o077
	}
	return m
}

// BanAllowPrefixes returns ban_allow parsed and masked; invalid entries
// (which Validate reports) are left out.
func (c Config) BanAllowPrefixes() []netip.Prefix { return prefixes(c.BanAllow) }

// DiagnosePublicPrefixes returns diagnose_public_networks parsed and masked;
// invalid entries (which Validate reports) are left out.
func (c Config) DiagnosePublicPrefixes() []netip.Prefix { return prefixes(c.DiagnosePublicNetworks) }

// validateACME checks the acme_ settings; they matter only with acme_domains.
func (c Config) validateACME(add func(key, format string, args ...any)) {
	if len(c.ACMEDomains) == 0 {
		return
	}
	for _, d := range c.ACMEDomains {
		if !validDomain(d) {
			add("acme_domains", "%q is not a domain name like ftp.example.com", d)
		}
	}
	if c.TLSCert != "" || c.TLSKey != "" {
		add("acme_domains", "cannot be used with tls_cert and tls_key: the certificate comes from one or the other")
	}
	if strings.ContainsAny(c.ACMEEmail, "\r\n\x00 ,") || (c.ACMEEmail != "" && !strings.Contains(c.ACMEEmail, "@")) {
		add("acme_email", "%q is not an e-mail address", c.ACMEEmail)
	}
	if u, err := url.Parse(c.ACMECA); err != nil || u.Scheme != "https" || u.Host == "" {
		add("acme_ca", "%q is not an https:// URL", c.ACMECA)
	}
	if len(c.ACMEChallenges) == 0 {
		add("acme_challenges", "is empty: name http-01, tls-alpn-01 or both")
	}
	for _, ch := range c.ACMEChallenges {
		switch ch {
		case "http-01":
			if _, _, err := net.SplitHostPort(c.ACMEHTTPListen); err != nil {
				add("acme_http_listen", "%q is not a host:port address", c.ACMEHTTPListen)
			}
		case "tls-alpn-01":
			if _, _, err := net.SplitHostPort(c.ACMETLSListen); err != nil {
				add("acme_tls_listen", "%q is not a host:port address", c.ACMETLSListen)
			}
		default:
			add("acme_challenges", "%q is not http-01 or tls-alpn-01", ch)
		}
	}
	if c.ACMERenewBefore.Duration < 0 {
		add("acme_renew_before", "must not be negative")
	}
}

// validDomain reports a DNS name of letters, digits, hyphens and dots, with
// no empty label; not an IP address.
func validDomain(d string) bool {
	if d == "" || len(d) > 253 || net.ParseIP(d) != nil {
		return false
	}
	for _, l := range strings.Split(d, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// TLSReuseExemptPrefixes returns tls_reuse_exempt parsed and masked; invalid
// entries (which Validate reports) are left out.
func (c Config) TLSReuseExemptPrefixes() []netip.Prefix { return prefixes(c.TLSReuseExempt) }

func prefixes(list []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range list {
		if p, err := parsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// sameListener reports whether listeners on a and b could be the same
// socket: the same port, not 0, on the same host or where either host is a
// wildcard (empty, 0.0.0.0 or ::).
func sameListener(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || pa != pb || pa == "0" {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || wild(ha) || wild(hb)
}

// zeroDurationOK names the durations for which 0 means "at once" rather
// than a mistake: a shutdown or drain that aborts transfers immediately.
var zeroDurationOK = map[string]bool{"shutdown_grace": true, "drain_timeout": true}

package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryftp/ferry/internal/config"
	"github.com/ferryftp/ferry/internal/ftp"
	"github.com/ferryftp/ferry/internal/users/sqlstore"
)

func TestEngineSettings(t *testing.T) {
	cfg := config.Defaults()
	cfg.Data = "/srv/ferry"
	s, err := engineSettings(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.PassivePorts != (ftp.PortRange{Lo: 50000, Hi: 50999}) || s.FileUmask != 0o022 || s.DirUmask != 0o022 ||
		s.TLSRequired != ftp.TLSNone || s.TLSMinVersion != tls.VersionTLS12 || s.TLSSessionReuse != ftp.ReuseRequired ||
		s.LoginTimeout != cfg.LoginTimeout.Duration || s.AnonymousRoot != "/srv/ferry/public" || !s.DropBox.IsRoot() ||
		s.PublicIP.IsValid() || s.HashMaxSize != 4<<30 || s.HashPerUser != 1 {
		t.Errorf("defaults compiled to %+v", s)
	}

	cfg.DenyUpload, cfg.HiddenPattern = []string{"*.exe"}, []string{"*.secret"}
	if s, _ := engineSettings(cfg); !s.DenyUpload.Match("EVIL.EXE") || !s.Hidden.Match("KEY.SECRET") {
		t.Error("patterns compiled by default do not ignore case")
	}
	cfg.PatternsCaseSensitive = true
	if s, _ := engineSettings(cfg); s.DenyUpload.Match("EVIL.EXE") || !s.DenyUpload.Match("evil.exe") || s.Hidden.Match("KEY.SECRET") {
		t.Error("patterns_case_sensitive does not make the patterns exact")
	}

	cfg.PassivePorts = "0"
	cfg.FileUmask, cfg.DirUmask = "077", "0007"
	cfg.TLSRequired, cfg.TLSMinVersion, cfg.TLSSessionReuse = "all", "1.3", "optional"
	cfg.TLSReuseExempt = []string{"192.0.2.7", "2001:db8::/32"}
	cfg.AnonymousUploadDir = "incoming/drop"
	cfg.PublicHost = "::ffff:198.51.100.4"
	s, err = engineSettings(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("2001:db8::/32")}
	switch {
	case !s.PassivePorts.Any():
		t.Errorf("passive_ports 0 compiled to %v", s.PassivePorts)
	case s.FileUmask != 0o077 || s.DirUmask != 0o007:
		t.Errorf("umasks compiled to %o %o", s.FileUmask, s.DirUmask)
	case s.TLSRequired != ftp.TLSAll || s.TLSMinVersion != tls.VersionTLS13 || s.TLSSessionReuse != ftp.ReuseOptional:
		t.Errorf("TLS settings compiled to %v %x %v", s.TLSRequired, s.TLSMinVersion, s.TLSSessionReuse)
	case len(s.TLSReuseExempt) != 2 || s.TLSReuseExempt[0] != want[0] || s.TLSReuseExempt[1] != want[1]:
		t.Errorf("tls_reuse_exempt compiled to %v", s.TLSReuseExempt)
	case s.DropBox.String() != "/incoming/drop":
		t.Errorf("anonymous_upload_dir compiled to %v", s.DropBox)
	case s.PublicIP != netip.MustParseAddr("198.51.100.4"):
		t.Errorf("public_host compiled to %v", s.PublicIP)
	}
}

// TestOpenUserStoreURL: the [database] url names the store; a relative
// sqlite path is inside the data directory, and `ferry user --database`
// reaches the same file.
func TestOpenUserStoreURL(t *testing.T) {
	data := t.TempDir()
	abs := filepath.Join(t.TempDir(), "elsewhere.db")
	for url, file := range map[string]string{
		config.DefaultDatabaseURL: filepath.Join(data, "users.db"),
		"sqlite:db/u.db":          filepath.Join(data, "db", "u.db"),
		"sqlite:" + abs:           abs,
	} {
		st, err := openUserStore(data, url, sqlstore.Options{})
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		st.Close()
		if _, err := os.Stat(file); err != nil {
			t.Errorf("%s did not create %s: %v", url, file, err)
		}
	}
	if _, err := openUserStore(data, "mysql://x", sqlstore.Options{}); err == nil {
		t.Error("openUserStore accepted a mysql url")
	}
	var out, errb bytes.Buffer
	code := runUser([]string{"add", "carol", "--data", data, "--database", "sqlite:" + abs, "--password-stdin"},
		strings.NewReader("pw\n"), &out, &errb)
	if code != 0 {
		t.Fatalf("ferry user add --database: %d %s", code, errb.String())
	}
	st, err := openUserStore(data, "sqlite:"+abs, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Get(context.Background(), "carol"); err != nil {
		t.Errorf("carol is not in %s: %v", abs, err)
	}
}

package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/ferryftp/ferry/internal/access"
	"github.com/ferryftp/ferry/internal/config"
	"github.com/ferryftp/ferry/internal/ftp"
	"github.com/ferryftp/ferry/internal/vpath"
)

// engineSettings compiles a validated configuration into the engine's
// typed settings: enums, port range, umasks and prefixes parsed once, the
// public host resolved once. cfg.Data must be absolute.
func engineSettings(cfg config.Config) (ftp.Settings, error) {
	policy, err := ftp.ParseTLSPolicy(cfg.TLSRequired)
	if err != nil {
		return ftp.Settings{}, err
	}
	hidden, err := access.NewPatterns(cfg.HiddenPattern, cfg.PatternsCaseSensitive)
	if err != nil {
		return ftp.Settings{}, err
	}
	denyUpload, err := access.NewPatterns(cfg.DenyUpload, cfg.PatternsCaseSensitive)
	if err != nil {
		return ftp.Settings{}, err
	}
	lo, hi := cfg.PassiveRange()
	s := ftp.Settings{
		Banner:             cfg.Banner,
		LoginMessage:       strings.TrimRight(cfg.LoginMessage, "\n"),
		Anonymous:          cfg.Anonymous,
		AnonymousRoot:      filepath.Join(cfg.Data, "public"),
		PassivePorts:       ftp.PortRange{Lo: uint16(lo), Hi: uint16(hi)},
		LoginTimeout:       cfg.LoginTimeout.Duration,
		IdleTimeout:        cfg.IdleTimeout.Duration,
		DataTimeout:        cfg.DataTimeout.Duration,
		MaxLineBytes:       cfg.MaxLineBytes,
		ShutdownGrace:      cfg.ShutdownGrace.Duration,
		BackendTimeout:     cfg.BackendTimeout.Duration,
		MaxSessions:        cfg.MaxSessions,
		MaxSessionsPerIP:   cfg.MaxSessionsPerIP,
		MaxSessionsPerUser: cfg.MaxSessionsPerUser,
		MaxLoginFailures:   cfg.MaxLoginFailures,
		FileUmask:          cfg.FileUmaskBits(),
		DirUmask:           cfg.DirUmaskBits(),
		Hidden:             hidden,
		DenyUpload:         denyUpload,
		UploadRate:         cfg.UploadRate,
		DownloadRate:       cfg.DownloadRate,
		HashMaxSize:        cfg.HashMaxSize,
		HashPerUser:        cfg.HashPerUser,
		TLSRequired:        policy,
		TLSAnonymousExempt: cfg.TLSAnonymousExempt,
		TLSMinVersion:      tls.VersionTLS12,
		TLSSessionReuse:    ftp.ReuseRequired,
		TLSReuseExempt:     cfg.TLSReuseExemptPrefixes(),
		TLSAllowCCC:        cfg.TLSAllowCCC,
	}
	if cfg.TLSMinVersion == "1.3" {
		s.TLSMinVersion = tls.VersionTLS13
	}
	if cfg.TLSSessionReuse == "optional" {
		s.TLSSessionReuse = ftp.ReuseOptional
	}
	if d := cfg.AnonymousUploadDir; d != "" {
		p, err := vpath.Resolve(vpath.Root(), d)
		if err != nil || p.IsRoot() {
			return ftp.Settings{}, fmt.Errorf("anonymous_upload_dir %q is not a directory below public/", d)
		}
		s.DropBox = p
	}
	s.PublicIP = publicIP(cfg.PublicHost)
	return s, nil
}

// publicIP resolves public_host to the IPv4 address PASV advertises; an
// empty or unresolvable host gives the zero Addr (the control connection's
// local address is used then).
func publicIP(h string) netip.Addr {
	if h == "" {
		return netip.Addr{}
	}
	if ip, err := netip.ParseAddr(h); err == nil {
		return ip.Unmap()
	}
	ips, err := net.LookupIP(h)
	if err != nil {
		return netip.Addr{}
	}
	for _, ip := range ips {
		if a, ok := netip.AddrFromSlice(ip); ok && a.Unmap().Is4() {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}

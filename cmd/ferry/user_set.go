package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/ferryftp/ferry/internal/access"
	"github.com/ferryftp/ferry/internal/config"
	"github.com/ferryftp/ferry/internal/escape"
	"github.com/ferryftp/ferry/internal/quota"
	"github.com/ferryftp/ferry/internal/storage/local"
	"github.com/ferryftp/ferry/internal/users"
)

// userSettings holds the flags of `ferry user set`; a flag not given leaves
// its setting unchanged.
type userSettings struct {
	home, perms, tlsRequired             string
	quotaBytes, uploadRate, downloadRate byteSize
	quotaFiles                           int64
	maxSessions                          int
	allowFXP, certRequired, certLogin    bool
	loginMessage                         string
}

// byteSize is a flag value with an optional binary suffix: 10GiB, 512KiB, 5M.
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }

func (b *byteSize) Set(s string) error {
	n, err := parseSize(s)
	*b = byteSize(n)
	return err
}

// parseSize reads a byte count with an optional K, M, G or T suffix
// (powers of 1024; "KiB", "KB" and "K" mean the same).
func parseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	mult := int64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			t = t[:n-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("invalid size %q: want a byte count such as 1048576, 512KiB or 10GiB", s)
	}
	return n * mult, nil
}

// configFlag is the --config flag of the commands that count a home: with
// S3 storage the home is a key prefix, found through the file's [storage].
func configFlag(fs *flag.FlagSet, c *userRun) {
	fs.StringVar(&c.config, "config", "", "the server's config `FILE`; needed when its [storage] is S3, to count homes there")
}

func setFlags(fs *flag.FlagSet, c *userRun) {
	u := &userSettings{}
	c.settings = u
	fs.StringVar(&u.home, "home", "", "home `DIR` (the user's root)")
	fs.StringVar(&u.perms, "perms", "", "permission rules, e.g. '/=read;/incoming=read,upload' (docs/security.md); empty: full access in the home")
	fs.StringVar(&u.tlsRequired, "tls-required", "", "none|control|data|all, overriding the server's tls_required; empty: the server's")
	fs.Var(&u.quotaBytes, "quota-bytes", "bytes the user may store (suffixes KiB MiB GiB TiB); 0 unlimited")
	fs.Int64Var(&u.quotaFiles, "quota-files", 0, "files the user may store; 0 unlimited")
	fs.Var(&u.uploadRate, "upload-rate", "upload limit in bytes/s (suffixes allowed); 0 unlimited")
	fs.Var(&u.downloadRate, "download-rate", "download limit in bytes/s (suffixes allowed); 0 unlimited")
	fs.IntVar(&u.maxSessions, "max-sessions", 0, "concurrent sessions of the user; 0: the server's max_sessions_per_user")
	fs.BoolVar(&u.allowFXP, "allow-fxp", false, "allow data connections to and from other addresses (server-to-server transfers)")
	fs.BoolVar(&u.certRequired, "cert-required", false, "a verified client certificate naming the user is needed to log in")
	fs.BoolVar(&u.certLogin, "cert-login", false, "a verified client certificate naming the user logs in without a password")
	fs.StringVar(&u.loginMessage, "login-message", "", "message shown after the user's login, after the server's login_message (lines separated by newlines); empty: none")
}

func (c *userRun) set() error {
	u, err := c.store.Get(c.ctx, c.name)
	if err != nil {
		return err
	}
	old := *u
	given := map[string]bool{}
	c.setFlagsGiven(given)
	if len(given) == 0 {
		return fmt.Errorf("nothing to change: give at least one setting (ferry user set -h)")
	}
	s := c.settings
	for name := range given {
		switch name {
		case "home":
			if filepath.IsAbs(s.home) {
				if err := c.checkHome(s.home); err != nil {
					return err
				}
			}
			u.Home = s.home
		case "perms":
			if _, err := access.Parse(s.perms); err != nil {
				return err
			}
			u.Perms = s.perms
		case "tls-required":
			u.TLSRequired = s.tlsRequired
		case "quota-bytes":
			u.QuotaBytes = int64(s.quotaBytes)
		case "quota-files":
			u.QuotaFiles = s.quotaFiles
		case "upload-rate":
			u.UploadRate = int64(s.uploadRate)
		case "download-rate":
			u.DownloadRate = int64(s.downloadRate)
		case "max-sessions":
			u.MaxSessions = s.maxSessions
		case "allow-fxp":
			u.AllowFXP = s.allowFXP
		case "cert-required":
			u.CertRequired = s.certRequired
		case "cert-login":
			u.CertLogin = s.certLogin
		case "login-message":
			u.LoginMessage = strings.TrimRight(s.loginMessage, "\n")
		}
	}
	if err := u.Validate(); err != nil {
		return err
	}
	// Servers count a user's usage only while the user has a quota: a
	// quota set where there was none, or a new home, counts afresh.
	recount := u.Home != old.Home || !hasQuota(&old) && hasQuota(u)
	if err := c.store.Update(c.ctx, *u); err != nil {
		return err
	}
	if recount {
		if err := c.quotas.Forget(c.ctx, c.name); err != nil {
			return fmt.Errorf("updated, but the old quota usage was kept (run ferry user quota-scan %s): %w", c.name, err)
		}
	}
	fmt.Fprintf(c.stdout, "updated user %s\n", c.name)
	return nil
}

// setFlagsGiven collects the names of the flags given on the command line.
func (c *userRun) setFlagsGiven(given map[string]bool) {
	if c.flagSet != nil {
		c.flagSet.Visit(func(f *flag.Flag) {
			if f.Name != "data" {
				given[f.Name] = true
			}
		})
	}
}

func (c *userRun) show() error {
	u, err := c.store.Get(c.ctx, c.name)
	if err != nil {
		return err
	}
	printUser(c, u)
	return nil
}

func printUser(c *userRun, u *users.User) {
	tw := tabwriter.NewWriter(c.stdout, 0, 8, 2, ' ', 0)
	// Every value may come from the database: control characters in it
	// are shown escaped, never sent to the terminal.
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%s\n", k, escape.Display(fmt.Sprint(v))) }
	row("name", u.Name)
	row("home", u.Home)
	row("disabled", u.Disabled)
	row("perms", orDash(u.Perms))
	row("tls-required", orDash(u.TLSRequired))
	row("quota-bytes", u.QuotaBytes)
	row("quota-files", u.QuotaFiles)
	if b, f, ok, err := c.quotas.Usage(c.ctx, u.Name, u.Home); err != nil {
		row("used", "unknown: "+err.Error())
	} else if ok {
		// What the servers count, uploads in progress included.
		row("used-bytes", b)
		row("used-files", f)
	} else if b, f, err := c.homeUsage(u.Home); err != nil {
		row("used", "unknown: "+err.Error())
	} else {
		row("used-bytes", b)
		row("used-files", f)
	}
	row("upload-rate", u.UploadRate)
	row("download-rate", u.DownloadRate)
	row("max-sessions", u.MaxSessions)
	row("allow-fxp", u.AllowFXP)
	row("cert-required", u.CertRequired)
	row("cert-login", u.CertLogin)
	row("login-message", orDash(u.LoginMessage))
	row("created", u.Created.Format("2006-01-02 15:04:05Z"))
	row("updated", u.Updated.Format("2006-01-02 15:04:05Z"))
	tw.Flush()
}

func hasQuota(u *users.User) bool { return u.QuotaBytes > 0 || u.QuotaFiles > 0 }

// quotaScan counts the user's home as the quota counts it and makes that
// the usage every server enforces (plus what uploads in progress hold).
func (c *userRun) quotaScan() error {
	u, err := c.store.Get(c.ctx, c.name)
	if err != nil {
		return err
	}
	b0, f0, had, err := c.quotas.Usage(c.ctx, u.Name, u.Home)
	if err != nil {
		return err
	}
	b, f, err := c.homeUsage(u.Home)
	if err != nil {
		return fmt.Errorf("counting the home %s: %w", escape.Display(u.Home), err)
	}
	nb, nf, err := c.quotas.Set(c.ctx, u.Name, u.Home, b, f)
	if err != nil {
		return err
	}
	was := "none counted"
	if had {
		was = fmt.Sprintf("%d bytes, %d files", b0, f0)
	}
	fmt.Fprintf(c.stdout, "quota usage of %s: %d bytes, %d files (was %s); the home holds %d bytes, %d files\n", escape.Display(u.Name), nb, nf, was, b, f)
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// homeUsage counts home on the storage of the server's config file
// (--config): on S3 when its [storage] says so, else on local disk.
func (c *userRun) homeUsage(home string) (bytes, files int64, err error) {
	if c.config == "" {
		return homeUsage(c.ctx, home)
	}
	cfg := config.Defaults()
	if err := config.Load(c.config, &cfg); err != nil {
		return 0, 0, err
	}
	if cfg.Storage.Backend != "s3" {
		return homeUsage(c.ctx, home)
	}
	// The data directory that homes are named under is the one the
	// command was given, as for every other user command.
	if cfg.Data, err = filepath.Abs(c.data); err != nil {
		return 0, 0, err
	}
	o, err := openS3(c.ctx, cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		return 0, 0, err
	}
	defer o.b.Close()
	fsys, err := o.Open(c.ctx, home)
	if err != nil {
		return 0, 0, err
	}
	return quota.Scan(c.ctx, fsys)
}

// homeUsage is what home stores, counted as the quota counts it (package
// quota's scan: regular files, without uploads in progress): the numbers
// `ferry user show` prints. A home that does not exist yet holds nothing; a
// home that is no absolute directory (an object-storage key prefix) cannot
// be scanned from here (userRun.homeUsage scans it on S3). A running server's SITE QUOTA also counts uploads
// in progress.
func homeUsage(ctx context.Context, home string) (bytes, files int64, err error) {
	if !filepath.IsAbs(home) {
		return 0, 0, errors.New("the home is not on local disk")
	}
	if _, err := os.Stat(home); errors.Is(err, fs.ErrNotExist) {
		return 0, 0, nil
	}
	fsys, err := local.Open(home)
	if err != nil {
		return 0, 0, err
	}
	var sfs any = fsys
	if c, ok := sfs.(io.Closer); ok {
		defer c.Close()
	}
	return quota.Scan(ctx, fsys)
}

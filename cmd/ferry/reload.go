package main

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/ferryftp/ferry/internal/config"
)

// reload re-reads the settings (the file, and the flags given at start over
// it) and applies them to new sessions: banner, limits, timeouts, passive
// range, TLS settings and certificate files, bans, patterns, rates, the log
// level, and the listeners (new addresses are bound first, removed ones
// closed last; sessions accepted on them go on). Sessions already running
// keep the settings they started with. On any problem nothing changes: the
// error names every problem (file:line for the file's) and is logged. It
// returns a summary of what runs now. SIGHUP and `ferry reload` call it.
func (d *daemon) reload() (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.notify.Reloading()
	msg, err := d.reloadLocked()
	if d.ops != nil {
		d.ops.Reloaded(err)
	}
	if err != nil {
		d.log.Error("reload failed; the running settings stay", "generation", d.gen)
		for _, e := range problemList(err) {
			d.log.Error("reload problem", "err", e.Error())
		}
	} else {
		d.log.Info("reloaded", "generation", d.gen, "listen", strings.Join(d.lns.addrs(false), ","), "passive_ports", d.cfg.PassivePorts)
	}
	d.notify.Ready(d.statusLineLocked())
	return msg, err
}

func (d *daemon) reloadLocked() (string, error) {
	if d.resolve == nil {
		return "", errors.New("this server cannot reload its settings")
	}
	if d.handedOff {
		return "", errors.New("this process is draining after an upgrade; the new one serves and reloads")
	}
	cfg, err := d.resolve()
	if err != nil {
		return "", err
	}
	if cfg.Data, err = filepath.Abs(cfg.Data); err != nil {
		return "", err
	}
	if err := restartOnly(d.cfg, cfg); err != nil {
		return "", err
	}
	site, cm, err := d.buildSite(cfg)
	if err != nil {
		return "", err
	}
	if err := d.openBans(cfg); err != nil {
		return "", err
	}
	plan, err := d.lns.prepare(cfg)
	if err != nil {
		return "", err
	}
	// Nothing below fails: the reload is all or nothing.
	if err := d.srv.SetSite(site); err != nil {
		plan.abort()
		return "", err
	}
	d.configureBans(cfg)
	d.watchCerts(cm)
	d.diag.reconfigure(cfg)
	if d.level != nil {
		var level slog.Level
		level.UnmarshalText([]byte(cfg.LogLevel))
		d.level.Set(level)
	}
	notes := plan.commit()
	d.reopenLogs()
	d.cfg = cfg
	d.gen++
	var b strings.Builder
	fmt.Fprintf(&b, "reloaded: generation %d, pid %d\n", d.gen, pid())
	for _, a := range d.lns.addrs(false) {
		fmt.Fprintf(&b, "listening on %s\n", a)
	}
	for _, a := range d.lns.addrs(true) {
		fmt.Fprintf(&b, "implicit FTPS on %s\n", a)
	}
	fmt.Fprintf(&b, "passive ports: %s\n", cfg.PassivePorts)
	for _, n := range notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// reopenLogs reopens the log files a reload may have renamed or rotated:
// the xferlog and the auth log (the structured log goes to stderr). A file
// that cannot be opened again keeps its old descriptor.
func (d *daemon) reopenLogs() {
	if d.ops == nil {
		return
	}
	if err := d.ops.Reopen(); err != nil {
		d.log.Error("reopening the log files failed", "err", err)
	}
}

// restartOnly refuses a reload that changes a setting the running process
// cannot change: the data directory, the [storage] and [database] tables,
// the acme_ settings, auth_hash_memory (the password checks' budget, fixed
// when the user store opens), log_format, the xferlog and auth log files and
// format, and the [metrics] table (the files are reopened by name at each
// reload, though).
func restartOnly(old, cur config.Config) error {
	var ps []string
	if old.Data != cur.Data {
		ps = append(ps, fmt.Sprintf("data: %q → %q", old.Data, cur.Data))
	}
	if !reflect.DeepEqual(old.Storage, cur.Storage) {
		ps = append(ps, "[storage]: the storage backend settings changed")
	}
	if !reflect.DeepEqual(old.Database, cur.Database) {
		ps = append(ps, "[database]: the user store settings changed")
	}
	if old.AuthHashMemory != cur.AuthHashMemory {
		ps = append(ps, fmt.Sprintf("auth_hash_memory: %d → %d", old.AuthHashMemory, cur.AuthHashMemory))
	}
	if !reflect.DeepEqual(acmeSettings(old), acmeSettings(cur)) {
		ps = append(ps, "acme_*: the ACME settings changed")
	}
	if old.LogFormat != cur.LogFormat {
		ps = append(ps, fmt.Sprintf("log_format: %q → %q", old.LogFormat, cur.LogFormat))
	}
	for _, c := range []struct{ key, old, cur string }{
		{"xferlog", old.Xferlog, cur.Xferlog},
		{"auth_log", old.AuthLog, cur.AuthLog},
		{"auth_log_format", old.AuthLogFormat, cur.AuthLogFormat},
	} {
		if c.old != c.cur {
			ps = append(ps, fmt.Sprintf("%s: %q → %q", c.key, c.old, c.cur))
		}
	}
	if old.Metrics != cur.Metrics {
		ps = append(ps, "[metrics]: the metrics endpoint settings changed")
	}
	if len(ps) == 0 {
		return nil
	}
	return fmt.Errorf("reload refused, nothing changed: these settings apply only when the process starts; restart ferry, or run ferry upgrade (its new process reads them):\n  %s", strings.Join(ps, "\n  "))
}

// acmeSettings are the acme_ settings, which apply at start only.
func acmeSettings(c config.Config) []any {
	return []any{c.ACMEDomains, c.ACMEEmail, c.ACMECA, c.ACMECARoot, c.ACMEChallenges, c.ACMEHTTPListen,
		c.ACMETLSListen, c.ACMERenewBefore}
}

// problemList splits a joined error (config problems) into its elements.
func problemList(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

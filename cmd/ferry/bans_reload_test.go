package main

import (
	"log/slog"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/config"
)

// TestReloadBans: ban settings follow a reload: none with ban_threshold 0,
// a defender once it is set, the same defender
// (and its scores) when nothing about bans changed, a new one when a ban
// setting did.
func TestReloadBans(t *testing.T) {
	cfg := config.Defaults()
	cfg.Data = t.TempDir()
	cfg.BanThreshold = 0
	database, err := openDatabase(t.Context(), cfg.Data, cfg.Database.URL, dbOptions(cfg.Data, cfg.Database))
	if err != nil {
		t.Fatal(err)
	}
	defer database.Close()
	d := &daemon{log: slog.New(slog.DiscardHandler), def: &liveDefender{}, database: database}
	apply := func(c config.Config) {
		t.Helper()
		if err := d.openBans(c); err != nil {
			t.Fatal(err)
		}
		d.configureBans(c)
	}
	apply(cfg)
	if d.def.get() != nil || d.bans != nil {
		t.Fatal("ban_threshold 0: a defender or a ban store")
	}
	cfg.BanThreshold = 5
	apply(cfg)
	first := d.def.get()
	if first == nil || d.bans == nil {
		t.Fatal("ban_threshold 5: no defender")
	}
	cfg.Banner = "unrelated"
	apply(cfg)
	if d.def.get() != first {
		t.Error("a reload that changes no ban setting replaced the defender (and its scores)")
	}
	cfg.BanWindow = config.Duration{Duration: time.Hour}
	apply(cfg)
	if d.def.get() == first || d.def.get() == nil {
		t.Error("a new ban_window did not replace the defender")
	}
	cfg.BanThreshold = 0
	apply(cfg)
	if d.def.get() != nil {
		t.Error("ban_threshold 0 after a reload: the defender stays")
	}
}

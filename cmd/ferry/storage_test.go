package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ferryftp/ferry/internal/config"
)

// TestServeRefusesUnsafeAnonymousRoot: an anonymous root that exposes the
// data directory (here DATA/public is a link to DATA) stops the start.
func TestServeRefusesUnsafeAnonymousRoot(t *testing.T) {
	data := t.TempDir()
	if err := os.Symlink(data, filepath.Join(data, "public")); err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.Data = data
	cfg.Listen = "127.0.0.1:0"
	cfg.BanThreshold = 0
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// A server that starts anyway prints its banner: stop it there, so the
	// test fails instead of hanging.
	err := serve(ctx, cfg, slog.New(slog.DiscardHandler), cancelOnWrite(cancel))
	if err == nil || !strings.Contains(err.Error(), "anonymous root") {
		t.Fatalf("serve with DATA/public -> DATA: %v, want an anonymous root refusal", err)
	}
}

// TestProtectedPaths: the data directory, its tls/, the user database
// wherever [database] url puts it and the directory of a configured key.
func TestProtectedPaths(t *testing.T) {
	got := protectedPaths("/srv/ferry", "sqlite:/var/db/users.db", "/etc/ferry/key.pem")
	want := []string{"/srv/ferry", "/srv/ferry/tls", "/var/db/users.db", "/etc/ferry"}
	if !slices.Equal(got, want) {
		t.Errorf("protectedPaths = %q, want %q", got, want)
	}
	got = protectedPaths("/srv/ferry", config.DefaultDatabaseURL, "")
	if !slices.Contains(got, "/srv/ferry/users.db") {
		t.Errorf("protectedPaths with the default database = %q", got)
	}
}

// cancelOnWrite is a writer that calls cancel on its first write.
type cancelOnWrite context.CancelFunc

func (c cancelOnWrite) Write(p []byte) (int, error) { c(); return len(p), nil }

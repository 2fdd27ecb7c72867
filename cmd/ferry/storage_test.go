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
	"github.com/ferryftp/ferry/internal/users"
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

// TestHashMemory: on S3 the default budget of password checks is at most
// two checks; a set value and the default on local disk pass through.
func TestHashMemory(t *testing.T) {
	cfg := config.Defaults()
	if got, want := hashMemory(cfg), int64(0); got != want {
		t.Errorf("local default: %d, want %d (the Verifier's own default)", got, want)
	}
	cfg.Storage.Backend = "s3"
	if got, want := hashMemory(cfg), users.DefaultHashMemoryBeside(); got != want || got > 2*19456<<10 {
		t.Errorf("S3 default: %d, want %d (at most two checks)", got, want)
	}
	cfg.AuthHashMemory = 100 << 20
	if got := hashMemory(cfg); got != 100<<20 {
		t.Errorf("S3, set to 100 MiB: %d", got)
	}
}

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/ferryftp/ferry/internal/config"
	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/storage/s3"
)

// s3Opener serves the homes of the user store from a bucket: it maps each
// home to its key prefix (s3Location) and passes the calls on to the
// backend, whose capabilities it reports.
type s3Opener struct {
	b    *s3store.Backend
	data string // the absolute data directory
	caps storage.Capabilities
}

var (
	_ storage.Opener    = (*s3Opener)(nil)
	_ storage.HomeMaker = (*s3Opener)(nil)
	_ storage.Sweeper   = (*s3Opener)(nil)
	_ storage.Capable   = (*s3Opener)(nil)
)

func (o *s3Opener) Open(ctx context.Context, home string) (storage.FS, error) {
	loc, err := s3Location(o.data, home)
	if err != nil {
		return nil, err
	}
	return o.b.Open(ctx, loc)
}

func (o *s3Opener) MakeHome(ctx context.Context, home string) error {
	loc, err := s3Location(o.data, home)
	if err != nil {
		return err
	}
	return o.b.MakeHome(ctx, loc)
}

func (o *s3Opener) Sweep(ctx context.Context, cutoff time.Time) (int, error) {
	return o.b.Sweep(ctx, cutoff)
}

// Capabilities are those of the backend's file systems, so that FEAT
// before login says what a session will have.
func (o *s3Opener) Capabilities() storage.Capabilities { return o.caps }

// openS3 makes the S3 backend of cfg (whose Data is absolute) and checks,
// within cfg's backend timeout, that its bucket is reachable and
// writable; the error names the problem.
func openS3(ctx context.Context, cfg config.Config, log *slog.Logger, j s3store.Journal) (*s3Opener, error) {
	st := cfg.Storage
	c := s3store.Config{
		Bucket:               st.S3Bucket,
		Endpoint:             st.S3Endpoint,
		Region:               st.S3Region,
		Prefix:               st.S3Prefix,
		PathStyle:            st.S3PathStyle,
		PartSize:             st.S3PartSize,
		BufferBudget:         st.S3BufferBudget,
		UploadConcurrency:    st.S3UploadConcurrency,
		OrphanAge:            st.S3OrphanAge.Duration,
		CallTimeout:          cfg.BackendTimeout.Duration,
		ChecksumWhenRequired: st.S3Checksum == "when_required",
		Logger:               log,
		Journal:              j,
	}
	switch {
	case st.S3AccessKey != "":
		sk, err := readSecret(st.S3SecretKeyFile)
		if err != nil {
			return nil, fmt.Errorf("s3_secret_key_file: %w", err)
		}
		c.AccessKey, c.SecretKey = st.S3AccessKey, sk
	case os.Getenv("AWS_ACCESS_KEY_ID") == "" || os.Getenv("AWS_SECRET_ACCESS_KEY") == "":
		return nil, errors.New("no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones) in the environment, or s3_access_key and s3_secret_key_file in [storage]")
	}
	b, err := s3store.New(ctx, c)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, cfg.BackendTimeout.Duration)
	defer cancel()
	if err := b.Check(cctx); err != nil {
		b.Close()
		return nil, err
	}
	fsys, err := b.Open(ctx, "public")
	if err != nil {
		b.Close()
		return nil, err
	}
	return &s3Opener{b: b, data: cfg.Data, caps: storage.CapsOf(fsys)}, nil
}

// readSecret returns the first line of the file at path, which must not
// be empty.
func readSecret(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("%s: empty", path)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("%s: the first line is empty", path)
	}
	return line, nil
}

// sweepInterval is how often a server on S3 sweeps after the start:
// min(s3_orphan_age, 1h), so that an upload is aborted at most twice its
// age after it was left.
func sweepInterval(orphanAge time.Duration) time.Duration { return min(orphanAge, time.Hour) }

// sweepS3 aborts Ferry's multipart uploads older than orphanAge (and,
// with the database's journal, those of servers that are gone) now and
// every interval until ctx ends, logging what it removed.
func sweepS3(ctx context.Context, sw storage.Sweeper, orphanAge, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := sw.Sweep(ctx, time.Now().Add(-orphanAge))
		if n > 0 || (err != nil && ctx.Err() == nil) {
			log.Info("swept unfinished S3 uploads", "removed", n, "older_than", orphanAge.String(), "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// s3MemoryLimit is the Go runtime's soft memory limit of a server on S3
// when GOMEMLIMIT does not set one: the part buffers' budget and 64 MiB
// for the rest (sessions, listings, the S3 client, one password check).
// Without it the collector lets the heap grow to twice what is live, and
// the garbage of finished parts and password checks takes the RSS far
// above the budget (issue 10: uploads never above budget + 128 MiB). It is
// soft: the password checks of a login burst (up to auth_hash_memory) are
// still allowed on top, at the cost of more collection while they run.
func s3MemoryLimit(cfg config.Config) int64 {
	return cfg.Storage.S3BufferBudget + 64<<20
}

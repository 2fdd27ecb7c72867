package ftp

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/vpath"
)

// ctxCheckFS is a storage that refuses an upload's Commit or Abort under a
// context that has already ended, as a remote backend (an object store)
// would: the engine must not commit with the context of the command that
// started the upload, which ends when the command returns.
type ctxCheckFS struct{ storage.FS }

func (f ctxCheckFS) Create(ctx context.Context, p vpath.Path, o storage.CreateOptions) (storage.Upload, error) {
	up, err := f.FS.Create(ctx, p, o)
	if err != nil {
		return nil, err
	}
	return ctxCheckUpload{up}, nil
}

type ctxCheckUpload struct{ storage.Upload }

func (u ctxCheckUpload) Commit(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		u.Upload.Abort(context.WithoutCancel(ctx))
		return fmt.Errorf("commit under an ended context: %w", err)
	}
	if _, ok := ctx.Deadline(); !ok {
		u.Upload.Abort(context.WithoutCancel(ctx))
		return fmt.Errorf("commit without a deadline")
	}
	return u.Upload.Commit(ctx)
}

// TestUploadCommitsUnderALiveContext: an upload's commit gets a live
// context with a deadline of its own, whenever the upload ends.
func TestUploadCommitsUnderALiveContext(t *testing.T) {
	ts := startServer(t, func(st *Site, _ *Server) {
		st.BackendTimeout = time.Minute
		st.Storage = wrapLocal(func(fsys storage.FS, location string) storage.FS {
			return ctxCheckFS{fsys}
		})
	})
	c := loggedIn(t, ts)
	data := bytes.Repeat([]byte("ferry "), 10000)
	c.stor("STOR", "up.bin", data)
	c.stor("APPE", "up.bin", data)
	if got := c.retr("up.bin"); !bytes.Equal(got, append(append([]byte{}, data...), data...)) {
		t.Fatalf("stored %d bytes, want %d", len(got), 2*len(data))
	}
}

// TestNoSpaceReplyNamesNoUpload: a full disk answers 452 for every command,
// and speaks of a removed upload only for uploads (MKD said "upload removed").
func TestNoSpaceReplyNamesNoUpload(t *testing.T) {
	s := &session{}
	for op, want := range map[string]string{
		"STOR": "Insufficient storage space; upload removed.",
		"APPE": "Insufficient storage space; upload removed.",
		"MKD":  "Insufficient storage space.",
		"RNTO": "Insufficient storage space.",
	} {
		if code, msg := s.replyFor(fmt.Errorf("wrapped: %w", storage.ErrNoSpace), op); code != 452 || msg != want {
			t.Errorf("%s: %d %q, want 452 %q", op, code, msg, want)
		}
	}
}

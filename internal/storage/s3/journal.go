package s3store

import (
	"context"
	"errors"
	"io/fs"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Journal records, in state shared by every node (PostgreSQL), what an S3
// backend has under way, so that work cut by a crash is found again:
// multipart uploads (to abort) and directory renames (to finish). Keys are
// whole object keys; a rename's are key prefixes ending in "/". A journal
// failure is logged and does not fail the operation.
type Journal interface {
	UploadStarted(ctx context.Context, key, uploadID string) error
	UploadEnded(ctx context.Context, key, uploadID string) error
	// Uploads returns the uploads not ended that are abandoned: those
	// started before the time, and, in a journal that knows which nodes
	// run (dbjournal), those whose node is gone, whatever their age.
	Uploads(ctx context.Context, before time.Time) ([]JournalUpload, error)
	RenameStarted(ctx context.Context, from, to string) error
	RenameEnded(ctx context.Context, from, to string) error
}

// JournalUpload is one multipart upload of a journal.
type JournalUpload struct {
	Key, UploadID string
	Started       time.Time
}

// MemJournal is a Journal in memory, for tests and single-node use.
type MemJournal struct {
	mu      sync.Mutex
	uploads map[[2]string]time.Time // guarded by mu
	renames map[[2]string]bool      // guarded by mu
}

func (j *MemJournal) UploadStarted(_ context.Context, key, id string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.uploads == nil {
		j.uploads = map[[2]string]time.Time{}
	}
	j.uploads[[2]string{key, id}] = time.Now()
	return nil
}

func (j *MemJournal) UploadEnded(_ context.Context, key, id string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.uploads, [2]string{key, id})
	return nil
}

func (j *MemJournal) Uploads(_ context.Context, before time.Time) ([]JournalUpload, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []JournalUpload
	for k, t := range j.uploads {
		if t.Before(before) {
			out = append(out, JournalUpload{Key: k[0], UploadID: k[1], Started: t})
		}
	}
	return out, nil
}

func (j *MemJournal) RenameStarted(_ context.Context, from, to string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.renames == nil {
		j.renames = map[[2]string]bool{}
	}
	j.renames[[2]string{from, to}] = true
	return nil
}

func (j *MemJournal) RenameEnded(_ context.Context, from, to string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.renames, [2]string{from, to})
	return nil
}

// Renames returns the renames started and not ended.
func (j *MemJournal) Renames() [][2]string {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out [][2]string
	for k := range j.renames {
		out = append(out, k)
	}
	return out
}

// Sweep aborts Ferry's multipart uploads initiated before cutoff, or
// before OrphanAge ago when that is earlier (another server on the bucket
// may be running a younger upload): those
// the journal lists as abandoned (Journal.Uploads: with a shared journal
// also the younger uploads of nodes that are gone), or without a journal every multipart upload under the
// backend's prefix (ListMultipartUploads; S3 lists no upload metadata, so
// Ferry counts everything under its prefix as its own: with an empty
// prefix, everything under "public/" and "home/"). It returns how many it
// aborted.
func (b *Backend) Sweep(ctx context.Context, cutoff time.Time) (int, error) {
	if b.orphan > 0 {
		cutoff = minTime(cutoff, time.Now().Add(-b.orphan))
	}
	if b.journal != nil {
		ups, err := b.journal.Uploads(ctx, cutoff)
		if err != nil {
			return 0, err
		}
		n := 0
		for _, u := range ups {
			if err := b.abortOne(ctx, u.Key, u.UploadID); err != nil {
				return n, err
			}
			b.journal.UploadEnded(ctx, u.Key, u.UploadID)
			n++
		}
		return n, nil
	}
	prefixes := []string{b.base}
	if b.base == "" {
		prefixes = []string{"public/", "home/"}
	}
	n := 0
	for _, p := range prefixes {
		var km, im *string
		for {
			cctx, cancel := b.call(ctx)
			out, err := b.client.ListMultipartUploads(cctx, &s3.ListMultipartUploadsInput{
				Bucket: &b.bucket, Prefix: aws.String(p), KeyMarker: km, UploadIdMarker: im,
			})
			cancel()
			if err != nil {
				return n, b.wrap("ListMultipartUploads", p, err)
			}
			for _, u := range out.Uploads {
				if u.Initiated == nil || !u.Initiated.Before(cutoff) {
					continue
				}
				if err := b.abortOne(ctx, aws.ToString(u.Key), aws.ToString(u.UploadId)); err != nil {
					return n, err
				}
				n++
			}
			if !aws.ToBool(out.IsTruncated) {
				break
			}
			km, im = out.NextKeyMarker, out.NextUploadIdMarker
		}
	}
	return n, nil
}

func (b *Backend) abortOne(ctx context.Context, key, id string) error {
	cctx, cancel := b.call(ctx)
	defer cancel()
	_, err := b.client.AbortMultipartUpload(cctx, &s3.AbortMultipartUploadInput{Bucket: &b.bucket, Key: &key, UploadId: &id})
	if err = b.wrap("AbortMultipartUpload", key, err); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	b.log.Info("s3: aborted a leftover multipart upload", "path", key, "upload", id)
	return nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

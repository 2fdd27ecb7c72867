package s3store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"

	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferryftp/ferry/internal/storage"
)

// A directory's times object (a hidden key, never listed: it starts with
// storage.TempPrefix) records the modification times Ferry gave its files
// beyond their LastModified (MFMT, a rename), so that a listing reads one
// object instead of a HEAD per file: ListObjectsV2 returns no metadata.
// Each entry holds the ETag and the LastModified of the object version the
// time belongs to; a listing trusts it only while the listed object still
// has both, so any other change of the object (an upload, a copy from
// another tool) invalidates it and the LastModified shows. The object's own
// metadata (mtime) stays the truth for Stat (MDTM, MLST). Writers update
// the times object with a conditional PUT (If-Match on the ETag they read,
// If-None-Match when there was none) and read again when another writer
// came first, so servers sharing a bucket keep each other's entries.
const timesName = storage.TempPrefix + "times"

// timesAttempts bounds the writes of a times object that another writer
// keeps beating.
const timesAttempts = 32

// maxTimesBytes bounds a times object; beyond it new entries are refused.
const maxTimesBytes = 16 << 20

// timeEntry is one file's recorded time.
type timeEntry struct {
	Mtime   int64  `json:"m"` // Unix nanoseconds
	ETag    string `json:"e"`
	LastMod int64  `json:"l"` // Unix seconds of the version's LastModified
}

// matches reports whether e belongs to the listed object version.
func (e timeEntry) matches(etag *string, lastMod *time.Time) bool {
	return etag != nil && lastMod != nil && e.ETag == aws.ToString(etag) && e.LastMod == lastMod.Unix()
}

// readTimes returns the entries of the times object of dir (a prefix
// ending in "/", or "" for the bucket's root) and its ETag (nil: none).
func (b *Backend) loadTimes(ctx context.Context, dir string) (map[string]timeEntry, *string, error) {
	key := dir + timesName
	cctx, cancel := b.call(ctx)
	defer cancel()
	out, err := b.client.GetObject(cctx, &s3.GetObjectInput{Bucket: &b.bucket, Key: &key})
	if err = b.wrap("GetObject", key, err); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return map[string]timeEntry{}, nil, nil
		}
		return nil, nil, err
	}
	defer out.Body.Close()
	data, err := io.ReadAll(io.LimitReader(out.Body, maxTimesBytes+1))
	if err != nil {
		return nil, nil, b.wrap("GetObject", key, err)
	}
	m := map[string]timeEntry{}
	if len(data) > maxTimesBytes || json.Unmarshal(data, &m) != nil {
		// Unreadable: listings show LastModified; the next write
		// replaces it.
		b.log.Warn("s3: a directory's times object is unreadable; listings show LastModified", "path", key)
		m = map[string]timeEntry{}
	}
	return m, out.ETag, nil
}

// recordTime sets the entry of the file key in its directory's times
// object to e (or removes it when e.ETag is empty), with a conditional PUT
// retried when another writer came first.
func (b *Backend) recordTime(ctx context.Context, key string, e timeEntry) error {
	dir, name := "", key
	if i := strings.LastIndexByte(key, '/'); i >= 0 {
		dir, name = key[:i+1], key[i+1:]
	}
	tkey := dir + timesName
	if len(tkey) > MaxKeyBytes {
		return nil // listings show LastModified there
	}
	for attempt := 0; ; attempt++ {
		m, etag, err := b.loadTimes(ctx, dir)
		if err != nil {
			return err
		}
		if e.ETag == "" {
			if _, ok := m[name]; !ok {
				return nil
			}
			delete(m, name)
		} else {
			m[name] = e
		}
		data, _ := json.Marshal(m)
		if len(data) > maxTimesBytes {
			return fmt.Errorf("s3 times object %s: %w", tkey, storage.ErrNoSpace)
		}
		in := &s3.PutObjectInput{Bucket: &b.bucket, Key: &tkey, Body: strings.NewReader(string(data)),
			ContentType: aws.String("application/json")}
		if etag != nil {
			in.IfMatch = etag
		} else {
			in.IfNoneMatch = aws.String("*")
		}
		cctx, cancel := b.call(ctx)
		_, err = b.client.PutObject(cctx, in)
		cancel()
		err = b.wrap("PutObject", tkey, err)
		if err == nil || !errors.Is(err, fs.ErrExist) || attempt == timesAttempts-1 {
			return err
		}
		// Another writer changed it since we read it: read it again,
		// after a pause that grows and differs between writers.
		select {
		case <-time.After(time.Duration(rand.Int64N(int64(min(attempt+1, 10)) * int64(10*time.Millisecond)))):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// recordHead records the time the object key's metadata holds for the
// version h describes, when it has one.
func (b *Backend) recordHead(ctx context.Context, key string, h *s3.HeadObjectOutput) error {
	v, ok := h.Metadata[metaMtime]
	if !ok || h.ETag == nil || h.LastModified == nil {
		return nil
	}
	t, err := parseMtime(v)
	if err != nil {
		return nil
	}
	return b.recordTime(ctx, key, timeEntry{Mtime: t.UnixNano(), ETag: aws.ToString(h.ETag), LastMod: h.LastModified.Unix()})
}

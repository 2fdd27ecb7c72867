package s3store_test

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"hash/crc32"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferryftp/ferry/internal/storage"
	s3store "github.com/ferryftp/ferry/internal/storage/s3"
	"github.com/ferryftp/ferry/internal/storage/storagetest"
)

// sumsOf returns the SHA-256, MD5 and CRC32 of data by algorithm name.
func sumsOf(data []byte) map[string][]byte {
	s := sha256.Sum256(data)
	m := md5.Sum(data)
	return map[string][]byte{
		storage.HashSHA256: s[:],
		storage.HashMD5:    m[:],
		storage.HashCRC32:  binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(data)),
	}
}

// writeHashed uploads data to name as a whole upload that stores sums.
func writeHashed(t *testing.T, fsys storage.FS, name string, data []byte, sums map[string][]byte) {
	t.Helper()
	up, err := fsys.Create(t.Context(), storagetest.P(name), storage.CreateOptions{Perm: 0o644})
	if err != nil {
		t.Fatalf("Create(%s): %v", name, err)
	}
	for p := data; len(p) > 0; {
		n := min(len(p), 64<<10)
		if _, err := up.Write(p[:n]); err != nil {
			up.Abort(t.Context())
			t.Fatalf("Write: %v", err)
		}
		p = p[n:]
	}
	up.(storage.HashSetter).SetHashes(sums)
	if err := up.Commit(t.Context()); err != nil {
		t.Fatalf("Commit(%s): %v", name, err)
	}
}

// hasHash checks the stored SHA-256 of name: want (nil: none).
func hasHash(t *testing.T, fsys storage.FS, name string, want []byte) {
	t.Helper()
	sum, ok, err := storage.StoredHash(t.Context(), fsys, storagetest.P(name), storage.HashSHA256)
	switch {
	case err != nil:
		t.Errorf("StoredHash(%s): %v", name, err)
	case want == nil && ok:
		t.Errorf("StoredHash(%s) = %x, want none (stale)", name, sum)
	case want != nil && !ok:
		t.Errorf("StoredHash(%s): none, want %x", name, want)
	case want != nil && !bytes.Equal(sum, want):
		t.Errorf("StoredHash(%s) = %x, want %x", name, sum, want)
	}
}

// TestStoredHashReused: the digests of a small and of a multipart upload
// are answered from the object's metadata, without reading the object;
// they survive MFMT and renames and go with APPE, REST+STOR and an outside
// overwrite of the key.
func TestStoredHashReused(t *testing.T) {
	cnt := &counter{}
	b, srv, bucket := backend(t, func(c *s3store.Config) { c.PartSize = s3store.MinPartSize; c.Transport = cnt })
	fsys := openFS(t, b, "public")
	for _, tc := range []struct {
		name  string
		size  int
		multi bool
	}{
		{"small", 1000, false},
		{"multi", 2*int(s3store.MinPartSize) + 3, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := randBytes(tc.size)
			sums := sumsOf(data)
			want := sums[storage.HashSHA256]
			cnt.reset()
			writeHashed(t, fsys, tc.name, data, sums)
			if got := cnt.count("CreateMultipartUpload") > 0; got != tc.multi {
				t.Fatalf("multipart %v, want %v", got, tc.multi)
			}
			// One copy onto itself for a multipart upload, none for a PUT.
			if n, w := cnt.count("CopyObject"), map[bool]int{false: 0, true: 1}[tc.multi]; n != w {
				t.Errorf("%d CopyObject calls at Commit, want %d", n, w)
			}
			cnt.reset()
			hasHash(t, fsys, tc.name, want)
			sum, ok, err := storage.StoredHash(t.Context(), fsys, storagetest.P(tc.name), storage.HashMD5)
			if err != nil || !ok || !bytes.Equal(sum, sums[storage.HashMD5]) {
				t.Errorf("MD5 = %x, %v, %v, want %x", sum, ok, err, sums[storage.HashMD5])
			}
			if _, ok, _ := storage.StoredHash(t.Context(), fsys, storagetest.P(tc.name), storage.HashSHA512); ok {
				t.Error("a SHA-512 that was never given is stored")
			}
			if n := cnt.count("GetObject"); n != 0 {
				t.Errorf("%d GetObject calls for stored digests, want 0", n)
			}
			if n := cnt.count("HeadObject"); n != 3 {
				t.Errorf("%d HeadObject calls for 3 lookups, want 3", n)
			}
			same(t, tc.name, read(t, fsys, tc.name), data)

			// MFMT keeps them, and its time.
			when := time.Date(2003, 4, 5, 6, 7, 8, 0, time.UTC)
			if err := fsys.Chtimes(t.Context(), storagetest.P(tc.name), when); err != nil {
				t.Fatal(err)
			}
			hasHash(t, fsys, tc.name, want)
			if fi, err := fsys.Stat(t.Context(), storagetest.P(tc.name)); err != nil || !fi.ModTime().Equal(when) {
				t.Errorf("Stat after Chtimes = %v, %v, want mtime %v", fi, err, when)
			}
			// A rename moves them.
			moved := tc.name + "-moved"
			if err := fsys.Rename(t.Context(), storagetest.P(tc.name), storagetest.P(moved)); err != nil {
				t.Fatal(err)
			}
			hasHash(t, fsys, moved, want)
			same(t, moved, read(t, fsys, moved), data)

			// APPE drops them.
			write(t, fsys, moved, storage.CreateOptions{Append: true}, []byte("more"))
			hasHash(t, fsys, moved, nil)
			// So does REST+STOR, even of the same bytes.
			writeHashed(t, fsys, moved, data, sums)
			hasHash(t, fsys, moved, want)
			write(t, fsys, moved, storage.CreateOptions{Offset: int64(tc.size - 1)}, data[tc.size-1:])
			hasHash(t, fsys, moved, nil)

			// An outside overwrite of the key drops them.
			writeHashed(t, fsys, moved, data, sums)
			hasHash(t, fsys, moved, want)
			key := "ferry/public/" + moved
			if _, err := srv.Client().PutObject(t.Context(), &s3.PutObjectInput{
				Bucket: &bucket, Key: &key, Body: bytes.NewReader([]byte("outside")),
			}); err != nil {
				t.Fatal(err)
			}
			hasHash(t, fsys, moved, nil)
		})
	}
	noUploads(t, srv.Client(), bucket)
}

// TestStoredHashForeignMetadata: a digest entry that does not match the
// object's size (metadata copied by another tool onto other bytes), or
// that is not "HEX SIZE", is no digest.
func TestStoredHashForeignMetadata(t *testing.T) {
	b, srv, bucket := backend(t)
	fsys := openFS(t, b, "public")
	for name, v := range map[string]string{
		"size":    "00112233 6", // the body is 7 bytes
		"hex":     "0g112233 7",
		"nosize":  "00112233",
		"badsize": "00112233 x",
		"empty":   "",
	} {
		key := "ferry/public/" + name
		if _, err := srv.Client().PutObject(t.Context(), &s3.PutObjectInput{
			Bucket: &bucket, Key: &key, Body: bytes.NewReader([]byte("outside")),
			Metadata: map[string]string{"hash-sha256": v},
		}); err != nil {
			t.Fatal(err)
		}
		hasHash(t, fsys, name, nil)
	}
	// The control: the right form is read.
	key := "ferry/public/good"
	if _, err := srv.Client().PutObject(t.Context(), &s3.PutObjectInput{
		Bucket: &bucket, Key: &key, Body: bytes.NewReader([]byte("outside")),
		Metadata: map[string]string{"hash-sha256": "00112233 7"},
	}); err != nil {
		t.Fatal(err)
	}
	hasHash(t, fsys, "good", []byte{0, 0x11, 0x22, 0x33})
	// A directory has none; a missing name is fs.ErrNotExist.
	if err := fsys.Mkdir(t.Context(), storagetest.P("d"), 0o755); err != nil {
		t.Fatal(err)
	}
	hasHash(t, fsys, "d", nil)
	if _, _, err := storage.StoredHash(t.Context(), fsys, storagetest.P("nope"), storage.HashSHA256); err == nil {
		t.Error("StoredHash(nope): no error")
	}
}

// hook is an HTTP transport that calls before ahead of each request.
type hook struct{ before func(r *http.Request) }

func (h hook) RoundTrip(r *http.Request) (*http.Response, error) {
	h.before(r)
	return http.DefaultTransport.RoundTrip(r)
}

// TestStoredHashMultipartRace: when the key is overwritten between the
// completion of a multipart upload and the copy that stores its digests,
// the copy is refused (it is conditional on the completed ETag) and the
// newcomer has no digests; the Commit still succeeds. A failing copy never
// fails the Commit either.
func TestStoredHashMultipartRace(t *testing.T) {
	var outside func()
	b, srv, bucket := backend(t, func(c *s3store.Config) {
		c.PartSize = s3store.MinPartSize
		c.Transport = hook{before: func(r *http.Request) {
			if awsmiddleware.GetOperationName(r.Context()) == "CopyObject" && outside != nil {
				outside()
			}
		}}
	})
	fsys := openFS(t, b, "public")
	data := randBytes(int(s3store.MinPartSize) + 1)
	newcomer := randBytes(len(data)) // of the same size: only the ETag tells
	key := "ferry/public/f"
	outside = func() {
		outside = nil
		if _, err := srv.Client().PutObject(t.Context(), &s3.PutObjectInput{
			Bucket: &bucket, Key: aws.String(key), Body: bytes.NewReader(newcomer),
		}); err != nil {
			t.Error(err)
		}
	}
	writeHashed(t, fsys, "f", data, sumsOf(data))
	hasHash(t, fsys, "f", nil)
	same(t, "f", read(t, fsys, "f"), newcomer)
}

// TestStoredHashCopyFails: a multipart upload whose copy onto itself fails
// is committed without digests.
func TestStoredHashCopyFails(t *testing.T) {
	cnt := &counter{fail: func(op string, _ int) bool { return op == "CopyObject" }}
	b, srv, bucket := backend(t, func(c *s3store.Config) { c.PartSize = s3store.MinPartSize; c.Transport = cnt; c.MaxAttempts = 1 })
	fsys := openFS(t, b, "public")
	data := randBytes(int(s3store.MinPartSize) + 1)
	writeHashed(t, fsys, "f", data, sumsOf(data))
	if cnt.count("CopyObject") == 0 {
		t.Error("no CopyObject tried")
	}
	hasHash(t, fsys, "f", nil)
	same(t, "f", read(t, fsys, "f"), data)
	noUploads(t, srv.Client(), bucket)
}

package storagetest

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/ferryftp/ferry/internal/storage"
)

// UploadHashed writes data as a whole upload of name that stores sums.
func (s *S) UploadHashed(name, data string, sums map[string][]byte) {
	s.Helper()
	up, err := s.FS.Create(s.Ctx, P(name), storage.CreateOptions{Perm: 0o644})
	s.OK(fmt.Sprintf("Create(%q)", name), err)
	s.WriteAll(up, data)
	hs, ok := up.(storage.HashSetter)
	if !ok {
		s.Fatalf("the upload of a backend with HashStore has no SetHashes")
	}
	hs.SetHashes(sums)
	s.OK(fmt.Sprintf("Commit(%q)", name), up.Commit(s.Ctx))
}

// Hash reports the digest stored with name for algo, if any.
func (s *S) Hash(name, algo string) ([]byte, bool) {
	s.Helper()
	sum, ok, err := storage.StoredHash(s.Ctx, s.FS, P(name), algo)
	s.OK(fmt.Sprintf("StoredHash(%q, %s)", name, algo), err)
	return sum, ok
}

// HasHash checks that name has sum stored for algo (want) or none (!want).
func (s *S) HasHash(name, algo string, sum []byte, want bool) {
	s.Helper()
	got, ok := s.Hash(name, algo)
	switch {
	case want && !ok:
		s.Errorf("%s of %s: no stored digest, want %x", algo, name, sum)
	case want && !bytes.Equal(got, sum):
		s.Errorf("%s of %s = %x, want %x", algo, name, got, sum)
	case !want && ok:
		s.Errorf("%s of %s = %x, want none (stale)", algo, name, got)
	}
}

// testStoredHash checks storage.HashStore: digests given to a whole upload
// are stored with the file, survive metadata changes and renames, and go
// with any change of the content.
func testStoredHash(s *S) {
	if storage.HashStoreOf(s.FS) == nil {
		s.Skip("backend keeps no digests")
	}
	a := map[string][]byte{storage.HashSHA256: []byte("digest-a"), storage.HashCRC32: {1, 2, 3, 4}}
	b := map[string][]byte{storage.HashSHA256: []byte("digest-b")}
	s.UploadHashed("f", "hello", a)
	if _, ok := s.Hash("f", storage.HashSHA256); !ok {
		// local disk on a file system without user extended
		// attributes; its own tests require them where they exist.
		s.Skip("this file system keeps no digests")
	}
	s.HasHash("f", storage.HashSHA256, a[storage.HashSHA256], true)
	s.HasHash("f", storage.HashCRC32, a[storage.HashCRC32], true)
	s.HasHash("f", storage.HashMD5, nil, false)
	s.HasHash("f", "no-such-algorithm", nil, false)
	if _, _, err := storage.StoredHash(s.Ctx, s.FS, P("nope"), storage.HashSHA256); !errors.Is(err, fs.ErrNotExist) {
		s.Errorf("StoredHash(nope) = %v, want fs.ErrNotExist", err)
	}

	// Metadata changes keep it.
	if err := s.FS.Chtimes(s.Ctx, P("f"), time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)); err == nil {
		s.HasHash("f", storage.HashSHA256, a[storage.HashSHA256], true)
	}
	if err := s.FS.Chmod(s.Ctx, P("f"), 0o600); err == nil {
		s.HasHash("f", storage.HashSHA256, a[storage.HashSHA256], true)
	}
	// A rename moves it with the file.
	s.OK("Rename(f, g)", s.FS.Rename(s.Ctx, P("f"), P("g")))
	s.HasHash("g", storage.HashSHA256, a[storage.HashSHA256], true)

	// A rename over a file brings the moved file's digests, or none.
	s.UploadHashed("h", "other", b)
	s.OK("Rename(g, h)", s.FS.Rename(s.Ctx, P("g"), P("h")))
	s.HasHash("h", storage.HashSHA256, a[storage.HashSHA256], true)
	s.Write("plain", "plain")
	s.OK("Rename(plain, h)", s.FS.Rename(s.Ctx, P("plain"), P("h")))
	s.HasHash("h", storage.HashSHA256, nil, false)

	// A whole upload without digests replaces them with none.
	s.UploadHashed("r", "one", a)
	s.Write("r", "two")
	s.HasHash("r", storage.HashSHA256, nil, false)

	// Writes in place drop them, even when aborted, unless an Abort
	// leaves the file exactly as it was (storage.CapAbortRestores).
	caps := storage.CapsOf(s.FS)
	if caps.Has(storage.CapWriteAt) {
		for i, o := range []storage.CreateOptions{{Append: true}, {Offset: 2}} {
			name := fmt.Sprintf("w%d", i)
			s.UploadHashed(name, "0123", a)
			s.Upload(name, o, "xy", true)
			s.HasHash(name, storage.HashSHA256, nil, false)
			s.UploadHashed(name, "0123", a)
			s.Upload(name, o, "xy", false)
			s.HasHash(name, storage.HashSHA256, a[storage.HashSHA256], caps.Has(storage.CapAbortRestores))
		}
	}
}

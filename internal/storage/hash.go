package storage

import (
	"context"

	"github.com/ferryftp/ferry/internal/vpath"
)

// Hash algorithm names, as the IANA "Hash Function Textual Names" registry
// spells them (draft-bryan-ftpext-hash §3.1); CRC32 is the IEEE polynomial
// of XCRC. HashStore and HashSetter take these names and no others.
const (
	HashSHA256 = "SHA-256"
	HashSHA512 = "SHA-512"
	HashSHA1   = "SHA-1"
	HashMD5    = "MD5"
	HashCRC32  = "CRC32"
)

// HashStore is an optional FS capability: digests of whole files, kept with
// the files (local disk: extended attributes; an object store: object
// metadata), so that the engine's HASH answers without reading the file.
//
// StoredHash returns the digest of the whole content of name by algo, when
// one was stored with the file and the file has not changed since; ok is
// false otherwise: nothing stored, stored for content that has changed
// since (by any writer, also one outside the server), or a backend that
// cannot keep one for this file. A backend that cannot tell whether the file
// changed must answer ok false. err is for failures to look (a missing name
// is fs.ErrNotExist).
//
// A backend with HashStore keeps a digest across changes of metadata only
// (permission bits, the modification time set by Chtimes) and across renames
// of the file; it drops it on every change of the content: an in-place
// upload (also an aborted one, unless the backend's Abort leaves the file
// exactly as it was: CapAbortRestores), a replacement by a whole upload
// (which brings the digests of its own data, if any, see HashSetter), a
// rename of another file over it.
type HashStore interface {
	StoredHash(ctx context.Context, name vpath.Path, algo string) (sum []byte, ok bool, err error)
}

// HashSetter is an optional Upload capability. For a whole upload (neither
// Offset nor Append), the engine computes digests of the data while it is
// received and calls SetHashes with them, by algorithm name, before Commit;
// the backend stores them with the file as Commit makes it visible. Failing
// to store them must never fail the Commit: the file then has no stored
// digest. SetHashes on an in-place upload is ignored.
//
// An object store that can set metadata only when an object is created may
// write the digests at Commit by whatever means it has (metadata of a
// single PUT, tags or a copy after a multipart upload), provided StoredHash
// answers only for the object version they were computed from (for
// example by keeping its ETag beside them).
type HashSetter interface {
	SetHashes(sums map[string][]byte)
}

// HashStoreOf returns the HashStore of fsys, or of the FS under its
// wrappers (Unwrap() FS), or nil when there is none.
func HashStoreOf(fsys FS) HashStore {
	hs, _ := capabilityOf[HashStore](fsys)
	return hs
}

// StoredHash asks HashStoreOf(fsys) for a stored digest of name; a backend
// without HashStore has none.
func StoredHash(ctx context.Context, fsys FS, name vpath.Path, algo string) (sum []byte, ok bool, err error) {
	if hs := HashStoreOf(fsys); hs != nil {
		return hs.StoredHash(ctx, name, algo)
	}
	return nil, false, nil
}

package s3store

import (
	"context"
	"encoding/hex"
	"errors"
	"io/fs"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/vpath"
)

// Stored digests live in the object's own user metadata, one entry per
// algorithm: x-amz-meta-hash-sha256, -sha512, -sha1, -md5 and -crc32, whose
// value is "HEX SIZE" (the digest in lower-case hex and the object's size
// in bytes). Metadata belongs to one object version: every write of the key
// (an upload by Ferry or any other tool, an in-place upload, a rename over
// it) makes a new object with its own metadata, so a digest cannot outlive
// the content it was computed from; copies (Chtimes, Rename) carry the
// metadata with the bytes. The size is checked as well, against a tool that
// would copy the metadata onto other bytes.
//
// A small upload sends them with its PutObject. A multipart upload's
// metadata is fixed when it is created, before the data is known, so after
// CompleteMultipartUpload Commit copies the object onto itself with the
// digests added (MetadataDirective REPLACE), on condition that it is still
// the object just completed (x-amz-copy-source-if-match with its ETag).
// Objects over 5 GiB, which one CopyObject cannot copy, get no digests.
const metaHashPrefix = "hash-"

// hashMeta maps algorithm names to their metadata entry.
var hashMeta = map[string]string{
	storage.HashSHA256: metaHashPrefix + "sha256",
	storage.HashSHA512: metaHashPrefix + "sha512",
	storage.HashSHA1:   metaHashPrefix + "sha1",
	storage.HashMD5:    metaHashPrefix + "md5",
	storage.HashCRC32:  metaHashPrefix + "crc32",
}

var (
	_ storage.HashStore  = (*FS)(nil)
	_ storage.HashSetter = (*upload)(nil)
)

// StoredHash reads the digest for algo from the metadata of name's object:
// one HEAD.
func (f *FS) StoredHash(ctx context.Context, p vpath.Path, algo string) ([]byte, bool, error) {
	entry, known := hashMeta[algo]
	if !known {
		return nil, false, nil
	}
	if p.IsRoot() {
		return nil, false, nil
	}
	key, err := f.key(p)
	if err != nil {
		return nil, false, err
	}
	h, err := f.head(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		if ok, derr := f.dirExists(ctx, key+"/"); derr != nil {
			return nil, false, derr
		} else if ok {
			return nil, false, nil // a directory has no digest
		}
	}
	if err != nil {
		return nil, false, err
	}
	sum, size, ok := parseHashValue(h.Metadata[entry])
	if !ok || size != aws.ToInt64(h.ContentLength) {
		return nil, false, nil
	}
	return sum, true, nil
}

// SetHashes keeps the digests of a whole upload for Commit; an in-place
// upload ignores them (they would cover only its part of the object).
func (u *upload) SetHashes(sums map[string][]byte) {
	if !u.inPlace {
		u.sums = sums
	}
}

// hashEntries adds the upload's digests for size bytes to meta.
func (u *upload) hashEntries(meta map[string]string, size int64) {
	for algo, sum := range u.sums {
		if entry, ok := hashMeta[algo]; ok && len(sum) > 0 {
			meta[entry] = hex.EncodeToString(sum) + " " + strconv.FormatInt(size, 10)
		}
	}
}

// storeHashes puts the digests on the multipart upload just completed as
// etag: a copy of the object onto itself. A failure is logged, never
// returned: the object then has no digests and HASH reads it.
func (u *upload) storeHashes(ctx context.Context, etag *string) {
	if len(u.sums) == 0 || etag == nil || u.size > maxCopyObject {
		return
	}
	meta := map[string]string{metaMtime: formatMtime(u.mtime)}
	u.hashEntries(meta, u.size)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), u.b.copyTimeout(u.size))
	defer cancel()
	_, err := u.b.client.CopyObject(cctx, &s3.CopyObjectInput{
		Bucket: &u.b.bucket, Key: &u.key, CopySource: u.b.copySource(u.key),
		MetadataDirective: types.MetadataDirectiveReplace, Metadata: meta,
		CopySourceIfMatch: etag,
	})
	if err = u.b.wrapCopy("CopyObject", u.key, err); err != nil {
		u.b.log.Warn("s3: storing the digests of an upload failed; HASH will read the object", "path", u.key, "err", err)
	}
}

// parseHashValue decodes a metadata entry's "HEX SIZE".
func parseHashValue(v string) (sum []byte, size int64, ok bool) {
	hx, sz, found := strings.Cut(v, " ")
	if !found || hx == "" {
		return nil, 0, false
	}
	sum, err := hex.DecodeString(hx)
	if err != nil {
		return nil, 0, false
	}
	size, err = strconv.ParseInt(sz, 10, 64)
	if err != nil || size < 0 {
		return nil, 0, false
	}
	return sum, size, true
}

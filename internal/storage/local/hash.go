package local

import (
	"context"
	"encoding/hex"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/vpath"
)

// Stored digests live in user extended attributes of the file, one per
// algorithm: user.ferry.hash.sha256, .sha512, .sha1, .md5 and .crc32. The
// value is text, "HEX SIZE MTIME": the digest in lower-case hex, then the
// size in bytes and the modification time in nanoseconds since the epoch
// that the file had when the digest was stored. A digest is trusted only
// while the file still has that size and that modification time, so a write
// by anyone, also outside the server (echo >> file), makes it stale. (The
// inode change time cannot serve: writing the attribute changes it.) Chtimes
// carries valid digests over to the new time. A file system without user
// extended attributes simply keeps no digests.
const xattrPrefix = "user.ferry.hash."

// hashKeys maps algorithm names to the suffix of their attribute.
var hashKeys = map[string]string{
	storage.HashSHA256: "sha256",
	storage.HashSHA512: "sha512",
	storage.HashSHA1:   "sha1",
	storage.HashMD5:    "md5",
	storage.HashCRC32:  "crc32",
}

var _ storage.HashStore = (*FS)(nil)

// StoredHash reads the digest stored in name's attribute for algo, if the
// file has not changed since it was stored.
func (f *FS) StoredHash(_ context.Context, p vpath.Path, algo string) ([]byte, bool, error) {
	key, ok := hashKeys[algo]
	if !ok {
		return nil, false, nil
	}
	// O_NONBLOCK: a FIFO must not block the open; it holds no digest.
	fl, err := f.root.OpenFile(p.Rel(), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, false, mapErr(err)
	}
	defer fl.Close()
	sum, ok := storedHash(int(fl.Fd()), key)
	return sum, ok, nil
}

// storedHash reads the digest of attribute key on fd, valid for the file as
// it is now.
func storedHash(fd int, key string) ([]byte, bool) {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, false
	}
	var buf [256]byte
	n, err := unix.Fgetxattr(fd, xattrPrefix+key, buf[:])
	if err != nil {
		return nil, false // ENODATA, ENOTSUP, ERANGE: nothing usable stored
	}
	sum, size, mtime, ok := parseHashValue(string(buf[:n]))
	if !ok || size != st.Size || mtime != st.Mtim.Nano() {
		return nil, false
	}
	return sum, true
}

// hashValue encodes an attribute's value.
func hashValue(sum []byte, size, mtime int64) []byte {
	return []byte(hex.EncodeToString(sum) + " " + strconv.FormatInt(size, 10) + " " + strconv.FormatInt(mtime, 10))
}

// parseHashValue decodes an attribute's value.
func parseHashValue(v string) (sum []byte, size, mtime int64, ok bool) {
	f := strings.Split(v, " ")
	if len(f) != 3 {
		return nil, 0, 0, false
	}
	sum, err := hex.DecodeString(f[0])
	if err != nil || len(sum) == 0 {
		return nil, 0, 0, false
	}
	size, err1 := strconv.ParseInt(f[1], 10, 64)
	mtime, err2 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil {
		return nil, 0, 0, false
	}
	return sum, size, mtime, true
}

// setHashes stores sums on fd for the file as it is now; failures (a file
// system without user attributes, a read-only file) leave it without.
func setHashes(fd int, sums map[string][]byte) {
	var st unix.Stat_t
	if len(sums) == 0 || unix.Fstat(fd, &st) != nil {
		return
	}
	for algo, sum := range sums {
		key, ok := hashKeys[algo]
		if !ok {
			continue
		}
		err := unix.Fsetxattr(fd, xattrPrefix+key, hashValue(sum, st.Size, st.Mtim.Nano()), 0)
		if errors.Is(err, unix.ENOTSUP) {
			return
		}
	}
}

// dropHashes removes every stored digest of fd: its content is about to
// change.
func dropHashes(fd int) {
	for _, key := range hashKeys {
		if err := unix.Fremovexattr(fd, xattrPrefix+key); errors.Is(err, unix.ENOTSUP) {
			return
		}
	}
}

// validHashes returns the digests of fd that are valid now, by attribute key.
func validHashes(fd int) map[string][]byte {
	var out map[string][]byte
	for _, key := range hashKeys {
		if sum, ok := storedHash(fd, key); ok {
			if out == nil {
				out = map[string][]byte{}
			}
			out[key] = sum
		}
	}
	return out
}

// refreshHashes rewrites the digests that were valid (by key, for a file of
// size bytes) for fd's new modification time. An attribute removed
// meanwhile (an in-place upload started) stays removed, and a file whose
// size changed meanwhile keeps its stale digests.
func refreshHashes(fd int, valid map[string][]byte, size int64) {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Size != size {
		return
	}
	for key, sum := range valid {
		unix.Fsetxattr(fd, xattrPrefix+key, hashValue(sum, st.Size, st.Mtim.Nano()), unix.XATTR_REPLACE)
	}
}

// SetHashes keeps the digests of a whole upload for Commit.
func (u *atomic) SetHashes(sums map[string][]byte) { u.hashes = sums }

// SetHashes is ignored: an in-place upload's digests would cover only its
// part of the file.
func (u *inPlace) SetHashes(map[string][]byte) {}

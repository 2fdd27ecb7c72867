package users

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// ErrBadHash is returned (wrapped) by VerifyPassword for a stored hash it
// cannot use: not argon2id or bcrypt, malformed, or with costs out of range.
var ErrBadHash = errors.New("users: unusable password hash")

// argon2Params are the argon2id costs and sizes of one hash.
type argon2Params struct {
	memory  uint32 // KiB
	time    uint32 // passes
	threads uint8
}

// hashParams are the costs of new hashes: OWASP's minimum for argon2id
// (19 MiB, 2 passes, 1 lane), about 40 ms per hash on a 2-core machine.
var hashParams = argon2Params{memory: 19456, time: 2, threads: 1}

const (
	saltLen = 16 // bytes of random salt in new hashes
	keyLen  = 32 // bytes of derived key in new hashes

	// Bounds on what VerifyPassword accepts from a stored hash, so that a
	// corrupt or hostile row cannot make one login take minutes or gigabytes.
	maxMemory     = 1 << 20 // KiB: 1 GiB
	maxTime       = 16
	minSaltLen    = 8
	maxSaltLen    = 64
	minKeyLen     = 16
	maxKeyLen     = 128
	maxBcryptCost = 16
)

// dummyHash is a well-formed argon2id hash with hashParams whose key is
// arbitrary bytes, so no known password matches it. See VerifyDummy.
const dummyHash = "$argon2id$v=19$m=19456,t=2,p=1$ZmVycnktZHVtbXktc2FsdA$Ur+S0PVYzAIRVs+iu8U4ouVVNI4ZM1VaI7Kbv0tiFq4"

// b64 is the PHC string format's base64: standard alphabet, no padding.
var b64 = base64.RawStdEncoding

// HashPassword returns password hashed with argon2id and a random salt, in
// PHC string form: $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>.
func HashPassword(password string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("users: reading random salt: %w", err)
	}
	return encodeArgon2(hashParams, salt, argon2.IDKey([]byte(password), salt, hashParams.time, hashParams.memory, hashParams.threads, keyLen)), nil
}

func encodeArgon2(p argon2Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.memory, p.time, p.threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// VerifyPassword reports whether password matches the stored hash, comparing
// in constant time. It accepts argon2id hashes in PHC string form and bcrypt
// hashes ($2a$, $2b$, $2y$) so that imported accounts keep working. A hash it
// cannot use gives false and an error wrapping ErrBadHash; it never panics.
func VerifyPassword(hash, password string) (bool, error) {
	switch {
	case strings.HasPrefix(hash, "$argon2id$"):
		p, salt, key, err := decodeArgon2(hash)
		if err != nil {
			return false, err
		}
		other := argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, uint32(len(key)))
		return subtle.ConstantTimeCompare(key, other) == 1, nil
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		cost, err := bcrypt.Cost([]byte(hash))
		if err != nil {
			return false, fmt.Errorf("%w: bcrypt: %v", ErrBadHash, err)
		}
		if cost > maxBcryptCost {
			return false, fmt.Errorf("%w: bcrypt cost %d above %d", ErrBadHash, cost, maxBcryptCost)
		}
		err = bcrypt.CompareHashAndPassword([]byte(hash), []byte(password))
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
			return false, nil
		default:
			return false, fmt.Errorf("%w: bcrypt: %v", ErrBadHash, err)
		}
	default:
		return false, fmt.Errorf("%w: unknown scheme", ErrBadHash)
	}
}

// VerifyDummy spends the time of one VerifyPassword with the costs of new
// hashes, against a fixed hash that no known password matches. A Store calls
// it when the user does not exist, so that timing does not tell whether a
// name is taken.
func VerifyDummy(password string) {
	_, _ = VerifyPassword(dummyHash, password)
}

// decodeArgon2 parses $argon2id$v=19$m=M,t=T,p=P$salt$key.
func decodeArgon2(hash string) (argon2Params, []byte, []byte, error) {
	var p argon2Params
	bad := func(why string) (argon2Params, []byte, []byte, error) {
		return argon2Params{}, nil, nil, fmt.Errorf("%w: argon2id: %s", ErrBadHash, why)
	}
	f := strings.Split(hash, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	if len(f) != 6 || f[0] != "" || f[1] != "argon2id" {
		return bad("want $argon2id$v=19$m=M,t=T,p=P$salt$hash")
	}
	if f[2] != "v="+strconv.Itoa(argon2.Version) {
		return bad("unsupported version " + strconv.Quote(f[2]))
	}
	kv := strings.Split(f[3], ",")
	if len(kv) != 3 {
		return bad("want parameters m=M,t=T,p=P")
	}
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(kv[i], name+"=")
		if !ok {
			return bad("want parameters m=M,t=T,p=P")
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return bad("parameter " + name + " is not a number")
		}
		switch name {
		case "m":
			p.memory = uint32(n)
		case "t":
			p.time = uint32(n)
		case "p":
			if n < 1 || n > 255 {
				return bad("p out of range 1-255")
			}
			p.threads = uint8(n)
		}
	}
	if p.time < 1 || p.time > maxTime {
		return bad(fmt.Sprintf("t out of range 1-%d", maxTime))
	}
	if p.memory < 8*uint32(p.threads) || p.memory > maxMemory {
		return bad(fmt.Sprintf("m out of range 8*p-%d", maxMemory))
	}
	salt, err := b64.DecodeString(f[4])
	if err != nil || len(salt) < minSaltLen || len(salt) > maxSaltLen {
		return bad("salt is not 8-64 bytes of unpadded base64")
	}
	key, err := b64.DecodeString(f[5])
	if err != nil || len(key) < minKeyLen || len(key) > maxKeyLen {
		return bad("hash is not 16-128 bytes of unpadded base64")
	}
	return p, salt, key, nil
}

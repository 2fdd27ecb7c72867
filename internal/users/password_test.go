package users

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

var phcRE = regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestHashPasswordRoundTrip(t *testing.T) {
	for _, pw := range []string{"secret", "pässwörd ünïcode", " spaces  ", strings.Repeat("x", MaxPasswordLen)} {
		h, err := HashPassword(pw)
		if err != nil {
			t.Fatal(err)
		}
		if !phcRE.MatchString(h) {
			t.Errorf("hash %q is not in the expected PHC form", h)
		}
		for _, tc := range []struct {
			try  string
			want bool
		}{
			{pw, true},
			{pw + "x", false},
			{strings.ToUpper(pw), pw == strings.ToUpper(pw)},
			{"", false},
		} {
			ok, err := VerifyPassword(h, tc.try)
			if err != nil || ok != tc.want {
				t.Errorf("VerifyPassword(hash of %.10q, %.10q) = %v, %v; want %v, nil", pw, tc.try, ok, err, tc.want)
			}
		}
	}
	a, _ := HashPassword("same")
	b, _ := HashPassword("same")
	if a == b {
		t.Error("two hashes of one password are equal: salt not random")
	}
}

// TestVerifyForeignHashes checks hashes made by other implementations: the
// argon2 reference CLI, Apache's htpasswd ($2y$) and libxcrypt ($2b$).
func TestVerifyForeignHashes(t *testing.T) {
	for _, tc := range []struct {
		hash, password string
	}{
		// echo -n password | argon2 somesalt -id -t 2 -m 16 -p 4 -l 24 -e
		{"$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$F1jG2CV3/Nr+yRuIsPKw0J9r4s7cJHBU", "password"},
		// echo -n "correct horse" | argon2 ferrysalt123 -id -t 2 -m 10 -p 1 -l 32 -e
		{"$argon2id$v=19$m=1024,t=2,p=1$ZmVycnlzYWx0MTIz$nIHVuuzyDWtfVYaYTYE8RUJRACGov9Sn4fP7zuJRRrc", "correct horse"},
		// htpasswd -bnBC 4 "" 'tr0ub4dor&3'
		{"$2y$04$.eNG5Kjde49SI5iv9LhRdemwpnhxfDZ5bpH1Au60u4ULsl1NE/YKK", "tr0ub4dor&3"},
		// crypt.crypt('s3cret pass', '$2b$05$abcdefghijklmnopqrstuu')
		{"$2b$05$abcdefghijklmnopqrstuu1qdcFaS0PtqFUPzaCxLQ8/0lspH0ZEW", "s3cret pass"},
	} {
		if ok, err := VerifyPassword(tc.hash, tc.password); !ok || err != nil {
			t.Errorf("VerifyPassword(%s, right) = %v, %v; want true, nil", tc.hash, ok, err)
		}
		if ok, err := VerifyPassword(tc.hash, tc.password+"!"); ok || err != nil {
			t.Errorf("VerifyPassword(%s, wrong) = %v, %v; want false, nil", tc.hash, ok, err)
		}
	}
}

func TestVerifyBcrypt(t *testing.T) {
	h, err := bcrypt.GenerateFromPassword([]byte("imported"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"$2a$", "$2b$", "$2y$"} {
		hash := prefix + string(h[4:])
		if ok, err := VerifyPassword(hash, "imported"); !ok || err != nil {
			t.Errorf("%s: right password: %v, %v", prefix, ok, err)
		}
		if ok, err := VerifyPassword(hash, "Imported"); ok || err != nil {
			t.Errorf("%s: wrong password: %v, %v", prefix, ok, err)
		}
	}
}

func TestVerifyMalformed(t *testing.T) {
	good, err := HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Split(good, "$")
	salt, key := f[4], f[5]
	for _, hash := range []string{
		"",
		"$",
		"plain-text-password",
		"pw",
		"$argon2i$v=19$m=19456,t=2,p=1$" + salt + "$" + key,
		"$argon2d$v=19$m=19456,t=2,p=1$" + salt + "$" + key,
		"$argon2id$",
		"$argon2id$v=19",
		"$argon2id$v=19$m=19456,t=2,p=1",
		"$argon2id$v=19$m=19456,t=2,p=1$" + salt,
		"$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + key + "$",
		"$argon2id$v=16$m=19456,t=2,p=1$" + salt + "$" + key,
		"$argon2id$m=19456,t=2,p=1$" + salt + "$" + key,
		"$argon2id$v=19$t=2,m=19456,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=19456,t=2$" + salt + "$" + key,
		"$argon2id$v=19$m=19456,t=2,p=1,k=3$" + salt + "$" + key,
		"$argon2id$v=19$m=,t=2,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=-1,t=2,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=x,t=2,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=99999999999,t=2,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=4294967295,t=2,p=1$" + salt + "$" + key, // 4 TiB
		"$argon2id$v=19$m=7,t=2,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=19456,t=0,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=19456,t=1000000,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=19456,t=2,p=0$" + salt + "$" + key,
		"$argon2id$v=19$m=19456,t=2,p=256$" + salt + "$" + key,
		"$argon2id$v=19$m=19456,t=2,p=1$$" + key,
		"$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$",
		"$argon2id$v=19$m=19456,t=2,p=1$" + salt + "==$" + key,
		"$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + key + "=",
		"$argon2id$v=19$m=19456,t=2,p=1$!!!!$" + key,
		"$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$" + key,        // 4-byte salt
		"$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$c2hvcnQ", // 5-byte hash
		"$2a$",
		"$2b$10$",
		"$2a$10$tooshort",
		"$2a$99$abcdefghijklmnopqrstuu1qdcFaS0PtqFUPzaCxLQ8/0lspH0ZEW",
		"$2a$31$abcdefghijklmnopqrstuu1qdcFaS0PtqFUPzaCxLQ8/0lspH0ZEW", // valid form, hours per login
		"$2x$05$abcdefghijklmnopqrstuu1qdcFaS0PtqFUPzaCxLQ8/0lspH0ZEW",
		"$1$saltsalt$qjXMvbEw8oaL.CzflDugX/", // md5-crypt
	} {
		start := time.Now()
		ok, err := VerifyPassword(hash, "pw")
		if ok || !errors.Is(err, ErrBadHash) {
			t.Errorf("VerifyPassword(%q) = %v, %v; want false, ErrBadHash", hash, ok, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("VerifyPassword(%q) took %v", hash, d)
		}
	}
}

// TestDummyHash checks that the hash VerifyDummy uses is well-formed and has
// the costs of new hashes, so an unknown user's login takes as long as a
// known one's.
func TestDummyHash(t *testing.T) {
	p, _, key, err := decodeArgon2(dummyHash)
	if err != nil {
		t.Fatal(err)
	}
	if p != hashParams || len(key) != keyLen {
		t.Errorf("dummy hash params %+v key %d bytes; want %+v, %d", p, len(key), hashParams, keyLen)
	}
	for _, pw := range []string{"", "password", "anonymous"} {
		if ok, _ := VerifyPassword(dummyHash, pw); ok {
			t.Errorf("dummy hash matches %q", pw)
		}
	}
}

// FuzzDecodeArgon2 checks that the PHC parser never panics and that what it
// accepts is within the bounds VerifyPassword relies on, and that the memory
// budget charges an argon2id check what its m parameter allocates.
func FuzzDecodeArgon2(f *testing.F) {
	f.Add("$argon2id$v=19$m=1024,t=2,p=1$ZmVycnlzYWx0MTIz$nIHVuuzyDWtfVYaYTYE8RUJRACGov9Sn4fP7zuJRRrc")
	f.Add(dummyHash)
	f.Add("$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$F1jG2CV3/Nr+yRuIsPKw0J9r4s7cJHBU")
	const saltKey = "$ZmVycnlzYWx0MTIz$nIHVuuzyDWtfVYaYTYE8RUJRACGov9Sn4fP7zuJRRrc"
	for _, params := range []string{
		"v=19$m=4294967295,t=1,p=1", "v=19$m=1048577,t=1,p=1", "v=19$m=1048576,t=1,p=1", "v=19$m=7,t=1,p=1",
		"v=19$m=01024,t=2,p=1", "v=19$t=2,m=1024,p=1", "v=19$m=1024,t=2,p=1,x=1", "v=18$m=1024,t=2,p=1",
		"v=19$m=1024,t=0,p=1", "v=19$m=1024,t=2,p=0", "v=19$m=-1024,t=2,p=1", "v=19$m=+1024,t=2,p=1", "v=19$m= 1024,t=2,p=1",
	} {
		f.Add("$argon2id$" + params + saltKey)
	}
	for _, s := range []string{"", "$argon2id$", "$argon2i$v=19$m=1024,t=2,p=1" + saltKey, "$argon2id$v=19$m=1024,t=2,p=1$$",
		"$argon2id$v=19$m=1024,t=2,p=1$ZmVycnlzYWx0MTIz$", "$argon2id$v=19$m=1024,t=2,p=1$ZmVycnlzYWx0MTIz=$nIHV",
		"$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, hash string) {
		p, salt, key, err := decodeArgon2(hash)
		if strings.HasPrefix(hash, "$argon2id$") {
			// The memory a check is charged is what it allocates, and
			// nothing for a hash refused before any work.
			want := int64(0)
			if err == nil {
				want = int64(p.memory) << 10
			}
			if got := hashMemory(hash); got != want || got > maxMemory<<10 {
				t.Fatalf("hashMemory(%q) = %d, want %d (at most %d)", hash, got, want, int64(maxMemory)<<10)
			}
		}
		if err != nil {
			if !errors.Is(err, ErrBadHash) {
				t.Fatalf("error %v does not wrap ErrBadHash", err)
			}
			return
		}
		if p.time < 1 || p.time > maxTime || p.threads < 1 || p.memory < 8*uint32(p.threads) || p.memory > maxMemory ||
			len(salt) < minSaltLen || len(salt) > maxSaltLen || len(key) < minKeyLen || len(key) > maxKeyLen {
			t.Fatalf("accepted out-of-bounds hash %q: %+v salt %d key %d", hash, p, len(salt), len(key))
		}
	})
}

// BenchmarkVerifyPassword measures one login's hashing cost with the
// parameters of new hashes; it should stay around 20-50 ms.
func BenchmarkVerifyPassword(b *testing.B) {
	h, err := HashPassword("benchmark")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		VerifyPassword(h, "benchmark")
	}
}

package acme

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ferryftp/ferry/internal/atomicfile"
)

// The names of the values a Store keeps (the file names in DataDir/acme).
const (
	NameAccountKey = "account.key" // the ACME account's private key (PEM, PKCS#8)
	NameAccountURL = "account.url" // the account's URL at the CA
	NameCert       = "cert.pem"    // the certificate and its chain
	NameKey        = "key.pem"     // the certificate's private key
)

// Entry is one named value of a Store.
type Entry struct {
	Name  string
	Value []byte
}

// Store keeps what the Manager must not lose: the account key and URL,
// the certificate and its key. FileStore keeps them in the data directory;
// a SharedStore (package sqlacme) in the database that several servers
// share.
type Store interface {
	// Get returns the value kept under name, or an error wrapping
	// fs.ErrNotExist.
	Get(ctx context.Context, name string) ([]byte, error)
	// Create keeps value under name unless name has a value already, and
	// returns the value kept: of concurrent callers, the first wins.
	Create(ctx context.Context, name string, value []byte) ([]byte, error)
	// Put keeps the entries, replacing their values: in a database all in
	// one transaction; in files one at a time, in order, each atomically.
	Put(ctx context.Context, es ...Entry) error
	// Where names the place of name, for logs.
	Where(name string) string
}

// SharedStore is a Store that several servers use at once: they share one
// account and one certificate. The Manager then orders only while it holds
// the lease, publishes its challenges in the store so that any server can
// answer the CA, and installs the certificates other servers put (Changes,
// and a periodic check).
type SharedStore interface {
	Store
	// TryLease takes the ordering lease for holder until ttl from now, or
	// extends it when holder has it; false while another holder's lease
	// has not expired.
	TryLease(ctx context.Context, holder string, ttl time.Duration) (bool, error)
	// ReleaseLease ends holder's lease, if it has it.
	ReleaseLease(ctx context.Context, holder string) error
	// PutChallenge publishes a challenge's key authorization under key
	// (ChallengeKey) for ttl.
	PutChallenge(ctx context.Context, key, keyAuth string, ttl time.Duration) error
	// DeleteChallenge withdraws it.
	DeleteChallenge(ctx context.Context, key string) error
	// Challenge returns the key authorization published under key, or an
	// error wrapping fs.ErrNotExist (also once it has expired).
	Challenge(ctx context.Context, key string) (string, error)
	// Changes delivers a value after a Put by any server until ctx ends;
	// a hint only: the Manager reloads from the store.
	Changes(ctx context.Context) (<-chan string, error)
}

// ChallengeKey is the key under which a SharedStore publishes a challenge:
// the token of an HTTP-01 challenge, the (lower-case) domain of a
// TLS-ALPN-01 one.
func ChallengeKey(typ, tokenOrDomain string) string { return typ + "/" + tokenOrDomain }

// FileStore keeps the values as files in Dir (DataDir/acme): directory
// 0700, files 0600, each replaced atomically.
type FileStore struct{ Dir string }

var _ Store = FileStore{}

func (s FileStore) path(name string) string { return filepath.Join(s.Dir, name) }

// Where is the file of name.
func (s FileStore) Where(name string) string { return s.path(name) }

// Get reads the file of name.
func (s FileStore) Get(_ context.Context, name string) ([]byte, error) {
	return os.ReadFile(s.path(name))
}

// Create writes the file of name unless it exists.
func (s FileStore) Create(ctx context.Context, name string, value []byte) ([]byte, error) {
	if b, err := s.Get(ctx, name); !errors.Is(err, fs.ErrNotExist) {
		return b, err
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("acme: %w", err)
	}
	return value, atomicfile.WriteFile(s.path(name), value, 0o600)
}

// Put writes the files in order.
func (s FileStore) Put(_ context.Context, es ...Entry) error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("acme: %w", err)
	}
	for _, e := range es {
		if err := atomicfile.WriteFile(s.path(e.Name), e.Value, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// Package users holds Ferry's user accounts: the User record, the narrow
// Authenticator the protocol engine needs, and the full Store the CLI uses.
package users

import (
	"context"
	"errors"
	"time"
)

// ErrAuth is the only error Authenticate returns for a failed login, whatever
// the reason (unknown user, wrong password, disabled account), so that replies
// and timings give no "user exists" oracle. The reason is logged, never sent.
var ErrAuth = errors.New("users: authentication failed")

// ErrNotFound is returned by Store lookups and updates for a missing user.
var ErrNotFound = errors.New("users: no such user")

// ErrExists is returned by Store.Add when the name is taken.
var ErrExists = errors.New("users: user already exists")

// User is one account. Home is an absolute host path; the session is jailed in it.
type User struct {
	Name     string
	Home     string // absolute path on the host; the user's root
	Disabled bool
	// TLSRequired overrides the server-wide TLS policy for this user when not
	// empty: "none", "control", "data" or "all".
	TLSRequired string
	// Perms is a per-user permission spec (see internal/access); empty means
	// the server's default for authenticated users (full access in the home).
	Perms string
	// QuotaBytes and QuotaFiles limit what the user may store; 0 is unlimited.
	QuotaBytes int64
	QuotaFiles int64
	// MaxSessions limits concurrent sessions of this user; 0 uses the server default.
	MaxSessions int
	// UploadRate and DownloadRate are bytes per second; 0 is unlimited.
	UploadRate   int64
	DownloadRate int64
	// AllowFXP lets the user's data connections use addresses other than the
	// control connection's (server-to-server transfers).
	AllowFXP bool
	// CertRequired means a verified client certificate is needed to log in;
	// CertLogin means a verified certificate that maps to this user is enough.
	CertRequired bool
	CertLogin    bool
	Created      time.Time
	Updated      time.Time
}

// Authenticator checks a login. It is all the protocol engine needs.
type Authenticator interface {
	// Authenticate returns the user when name and password match an enabled
	// account, and ErrAuth (possibly wrapped) otherwise.
	Authenticate(ctx context.Context, name, password string) (*User, error)
}

// Store is the full account store used by the CLI and admin tools.
type Store interface {
	Authenticator
	Get(ctx context.Context, name string) (*User, error)
	List(ctx context.Context) ([]User, error)
	// Add creates the user with the given password (hashed before storing).
	Add(ctx context.Context, u User, password string) error
	// Update changes every field but the name, the password and Created.
	Update(ctx context.Context, u User) error
	SetPassword(ctx context.Context, name, password string) error
	Delete(ctx context.Context, name string) error
	Close() error
}

// Package users holds Ferry's user accounts: the User record, the narrow
// Authenticator the protocol engine needs, and the full Store the CLI uses.
package users

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/netip"
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
	// LoginMessage, when set, is shown after the user's login, after the
	// server's login_message: lines separated by '\n' (MaxLoginMessage
	// lines and bytes at most, no CR or NUL).
	LoginMessage string
	Created      time.Time
	Updated      time.Time
}

// LoginRequest is one login attempt as the protocol engine sees it: the
// account's name and password and what is known of the connection, so that
// an Authenticator can refuse a login by its account's rules (TLS required,
// certificate required) before it checks the password.
type LoginRequest struct {
	Name     string
	Password string
	// Host is the argument of HOST (RFC 7151), empty without one.
	Host string
	// Remote is the client's address on the control connection.
	Remote netip.AddrPort
	// TLS is the control connection's TLS state; nil while it is plaintext.
	TLS *tls.ConnectionState
	// Cert is the client's certificate when it was verified against the
	// server's client CAs (the leaf of the first verified chain); nil
	// otherwise.
	Cert *x509.Certificate
}

// Authenticator checks a login. It is all the protocol engine needs.
type Authenticator interface {
	// Authenticate returns the user when req names an enabled account whose
	// password is req.Password and whose TLS and certificate requirements
	// req meets, and an error wrapping ErrAuth otherwise, the same for every
	// reason (see ErrAuth; Verifier.Login implements the rules). A password
	// check that could not start before ctx ended wraps ErrBusy; any other
	// error is the store's own failure.
	Authenticate(ctx context.Context, req LoginRequest) (*User, error)
}

// Lookup is an optional capability of an Authenticator: finding an account
// by name alone. The engine uses it for certificate logins (see CertLogin);
// with an Authenticator that lacks it, a certificate never logs anyone in
// without a password. Every Store has it.
type Lookup interface {
	// Get returns the user called name, or an error wrapping ErrNotFound.
	Get(ctx context.Context, name string) (*User, error)
}

// Store is the full account store used by the CLI and admin tools. The
// conformance suite in package userstest checks every implementation.
type Store interface {
	Authenticator
	Lookup
	// List returns every user, ordered by name (bytewise).
	List(ctx context.Context) ([]User, error)
	// Add creates the user with the given password (hashed before
	// storing). It returns ErrExists when the name is taken and ErrInvalid
	// when Validate or ValidatePassword refuses u or the password. Created
	// is kept when set (an import); Updated is now.
	Add(ctx context.Context, u User, password string) error
	// Update changes every field but the name, the password and Created,
	// and sets Updated to now. It returns ErrNotFound for a missing user
	// and ErrInvalid when Validate refuses u.
	Update(ctx context.Context, u User) error
	// SetPassword replaces the password of name; ErrNotFound, ErrInvalid.
	SetPassword(ctx context.Context, name, password string) error
	// Delete removes name, or returns ErrNotFound.
	Delete(ctx context.Context, name string) error
	Close() error
}

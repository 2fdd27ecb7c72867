package users

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
)

// Login decides a password login the way every Store must, so that stores
// differ only in how they find an account: u and hash are the stored account
// called req.Name and its password hash, u nil when there is none.
//
// An unknown name, a disabled account, and an account whose rules req does
// not meet (TLSRequired "control" or "all" on a plaintext connection,
// CertRequired without a verified certificate naming the user) are refused
// without checking the password: checking it would tell whoever sent it
// whether it was right over a connection that the account forbids. Each such
// refusal still spends one check of a new hash (VerifyDummy), so that every
// refusal takes the time of a wrong password and none tells whether the name
// exists. All refusals wrap ErrAuth with the reason, for the log.
func (v *Verifier) Login(ctx context.Context, req LoginRequest, u *User, hash string) (*User, error) {
	var reason string
	switch {
	case u == nil:
		reason = "unknown user"
	case u.Disabled:
		reason = "account disabled"
	case req.TLS == nil && (u.TLSRequired == "control" || u.TLSRequired == "all"):
		reason = "user requires TLS"
	case u.CertRequired && !CertNames(req.Cert, u.Name):
		reason = "user requires a client certificate"
	}
	if reason != "" {
		if err := v.VerifyDummy(ctx, req.Password); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s", ErrAuth, reason)
	}
	ok, err := v.Verify(ctx, hash, req.Password)
	switch {
	case errors.Is(err, ErrBusy):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("%w: stored password hash: %v", ErrAuth, err)
	case !ok:
		return nil, fmt.Errorf("%w: wrong password", ErrAuth)
	}
	return u, nil
}

// CertLogin returns the account that req's verified client certificate logs
// in without a password: the account called req.Name must exist, be enabled
// and marked CertLogin, and the certificate must name it (CertNames).
// Otherwise it returns an error wrapping ErrAuth, or the store's error.
func CertLogin(ctx context.Context, l Lookup, req LoginRequest) (*User, error) {
	if !CertNames(req.Cert, req.Name) {
		return nil, fmt.Errorf("%w: no verified certificate naming the user", ErrAuth)
	}
	u, err := l.Get(ctx, req.Name)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, fmt.Errorf("%w: unknown user", ErrAuth)
	case err != nil:
		return nil, err
	case u.Disabled:
		return nil, fmt.Errorf("%w: account disabled", ErrAuth)
	case !u.CertLogin:
		return nil, fmt.Errorf("%w: certificate logins are off for the user", ErrAuth)
	}
	return u, nil
}

// CertNames reports whether the verified client certificate cert names the
// user: its subject's common name, a DNS name or an e-mail address equals
// name. A nil cert names nobody.
func CertNames(cert *x509.Certificate, name string) bool {
	if cert == nil || name == "" {
		return false
	}
	if cert.Subject.CommonName == name {
		return true
	}
	for _, n := range cert.DNSNames {
		if n == name {
			return true
		}
	}
	for _, e := range cert.EmailAddresses {
		if e == name {
			return true
		}
	}
	return false
}

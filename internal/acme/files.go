// Package acme obtains and renews the server's certificate from an ACME
// (RFC 8555) certificate authority such as Let's Encrypt, answering the
// HTTP-01 or TLS-ALPN-01 challenge itself, and serves it to new TLS
// handshakes; renewal swaps it in place, so sessions keep going.
package acme

// The files the manager keeps, relative to the data directory. The
// directory is 0700 and the keys 0600.
const (
	Dir         = "acme"
	AccountFile = "acme/account.key" // the ACME account's private key (PEM, PKCS#8)
	AccountURL  = "acme/account.url" // the account's URL at the CA
	CertFile    = "acme/cert.pem"    // the certificate and its chain
	KeyFile     = "acme/key.pem"     // the certificate's private key
)

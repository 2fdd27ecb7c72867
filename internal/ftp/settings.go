package ftp

import (
	"crypto/tls"
	"fmt"
	"io/fs"
	"net/netip"
	"sync"
	"time"

	"github.com/ferryftp/ferry/internal/access"
	"github.com/ferryftp/ferry/internal/rate"
	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/users"
	"github.com/ferryftp/ferry/internal/vpath"
)

// TLSPolicy says what must be encrypted (the tls_required setting, and a
// user's override of it).
type TLSPolicy uint8

const (
	TLSNone    TLSPolicy = iota // nothing must be encrypted
	TLSControl                  // the control connection must be
	TLSData                     // data connections must be (PROT P)
	TLSAll                      // both
)

var tlsPolicyNames = [...]string{TLSNone: "none", TLSControl: "control", TLSData: "data", TLSAll: "all"}

// ParseTLSPolicy reads "none", "control", "data" or "all".
func ParseTLSPolicy(s string) (TLSPolicy, error) {
	for p, n := range tlsPolicyNames {
		if n == s {
			return TLSPolicy(p), nil
		}
	}
	return TLSNone, fmt.Errorf("ftp: TLS policy %q is not none, control, data or all", s)
}

func (p TLSPolicy) String() string {
	if int(p) < len(tlsPolicyNames) {
		return tlsPolicyNames[p]
	}
	return fmt.Sprintf("TLSPolicy(%d)", p)
}

// control reports whether the policy demands TLS on the control connection.
func (p TLSPolicy) control() bool { return p == TLSControl || p == TLSAll }

// data reports whether the policy demands protected data connections.
func (p TLSPolicy) data() bool { return p == TLSData || p == TLSAll }

// TLSReuse says whether a protected data connection must resume the TLS
// session of its own control connection (the tls_session_reuse setting).
type TLSReuse uint8

const (
	ReuseRequired TLSReuse = iota // resumption of the session's own ticket is demanded
	ReuseOptional                 // any handshake is accepted
)

// PortRange is an inclusive range of TCP ports; the zero value means any
// port the operating system picks.
type PortRange struct{ Lo, Hi uint16 }

// Any reports whether the range leaves the port to the operating system.
func (r PortRange) Any() bool { return r.Lo == 0 }

// Settings are the engine's settings, typed and parsed once. A Settings value
// installed in a Site is never changed: a session takes its site at connect
// and reads only that snapshot for its whole life, so a later reload swaps
// the site instead of editing it. cmd/ferry compiles them from the
// configuration file and flags; the engine knows nothing of that format.
type Settings struct {
	// Banner is the text of the 220 greeting; one line.
	Banner string
	// LoginMessage, when set, comes before the text of the reply to every
	// successful login (230, or 232 for a certificate login), anonymous
	// included: lines separated by '\n', sent as a multi-line reply (RFC
	// 959 §4.2) whose last line is the usual text. Empty sends none.
	LoginMessage string
	// Anonymous allows the anonymous and ftp logins, read-only.
	Anonymous bool
	// AnonymousRoot is the host directory anonymous sessions see.
	AnonymousRoot string
	// DropBox, when not the root, is the anonymous upload directory: files
	// go in, nothing is listed or read.
	DropBox vpath.Path
	// PublicIP, when valid, is the IPv4 address PASV advertises (for NAT).
	PublicIP netip.Addr
	// PassivePorts are the ports of passive data listeners.
	PassivePorts PortRange

	// LoginTimeout is the time from connect (or REIN) to a login.
	LoginTimeout time.Duration
	// IdleTimeout is the time allowed between commands when no transfer runs.
	IdleTimeout time.Duration
	// DataTimeout bounds the wait for a data connection and a stalled transfer.
	DataTimeout time.Duration
	// MaxLineBytes is the longest control line accepted.
	MaxLineBytes int
	// BackendTimeout bounds every storage, authentication and ban call of
	// a command; 0 means no deadline. A transfer's data is not bounded by
	// it (DataTimeout bounds a stall), nor a password check, which may wait
	// for its turn until the login deadline (LoginTimeout).
	BackendTimeout time.Duration
	// ShutdownGrace is how long Server.Shutdown lets running transfers
	// finish before it aborts them; 0 aborts them at once.
	ShutdownGrace time.Duration

	// MaxSessions, MaxSessionsPerIP and MaxSessionsPerUser limit
	// concurrent connections; 0 means unlimited.
	MaxSessions        int
	MaxSessionsPerIP   int
	MaxSessionsPerUser int
	// MaxLoginFailures is the failed logins allowed on one connection; 0
	// means unlimited.
	MaxLoginFailures int

	// FileUmask and DirUmask are the permission bits cleared from uploaded
	// files and created directories.
	FileUmask fs.FileMode
	DirUmask  fs.FileMode
	// Hidden are names never listed nor reachable; DenyUpload names that
	// cannot be uploaded. Both match single names (in any case unless
	// made exact).
	Hidden     access.Patterns
	DenyUpload access.Patterns
	// HashMaxSize is the most bytes that HASH and the X* digest commands
	// read to hash a file (or range) without a stored digest; larger
	// ones are refused with 556. 0 means no limit.
	HashMaxSize int64
	// HashPerUser is how many such on-demand digests one user may have
	// running at once (over all sessions); more get 450. 0 means no limit.
	HashPerUser int
	// UploadRate and DownloadRate limit all transfers of the site,
	// bytes/s; 0 means unlimited.
	UploadRate   int64
	DownloadRate int64

	// TLSRequired is what must be encrypted, unless a user overrides it.
	TLSRequired TLSPolicy
	// TLSAnonymousExempt lets anonymous sessions skip TLSRequired.
	TLSAnonymousExempt bool
	// TLSMinVersion is the lowest TLS version accepted (tls.VersionTLS12
	// or tls.VersionTLS13), unless the site's TLS config sets its own.
	TLSMinVersion uint16
	// TLSSessionReuse is the data-connection resumption policy.
	TLSSessionReuse TLSReuse
	// TLSReuseExempt are client networks exempt from TLSSessionReuse.
	TLSReuseExempt []netip.Prefix
	// TLSAllowCCC allows CCC after login.
	TLSAllowCCC bool
}

// Site is one FTP site: its settings, who may log in, where their files
// are and the certificate it presents. Exactly one exists today; the engine
// looks it up per connection (Server.siteFor), so that virtual hosts and a
// reload that swaps a site whole can come later. A Site must not change
// once given to Server.SetSite.
type Site struct {
	Settings
	// Auth checks named logins; never nil.
	Auth users.Authenticator
	// Storage opens a user's storage at the location the account names as
	// its home, and the anonymous tree at Settings.AnonymousRoot; nil
	// means local disk without protected paths.
	Storage storage.Opener
	// TLS, when set, enables AUTH TLS and implicit FTPS: the certificate
	// source. Its certificate comes from GetCertificate, so that a
	// renewed certificate reaches new handshakes.
	TLS *tls.Config

	tlsConfig *tls.Config   // TLS with Ferry's session settings; nil without TLS
	up, down  *rate.Limiter // the site's rates; SetSite makes them unless set

	mu     sync.Mutex
	anonFS storage.FS // the shared anonymous tree, guarded by mu
}

// hasDropBox reports whether anonymous uploads go to a drop box.
func (st *Site) hasDropBox() bool { return !st.DropBox.IsRoot() }

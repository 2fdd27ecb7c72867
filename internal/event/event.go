// Package event defines what the FTP engine reports about its sessions: the
// Event values that Server.Observe hands to observers. It sits apart from
// the engine so that the observers (metrics, transfer and auth logs) depend
// on these types only, never on the engine itself.
package event

import (
	"crypto/tls"
	"net/netip"
	"strings"
	"time"
)

// Kind says what an Event reports.
type Kind uint8

// The kinds of Event, in the order a session produces them; KindChange and
// KindRefused come with the commands that make or are refused a change.
const (
	KindConnect    Kind = iota + 1 // a connection was accepted (Result "ok") or refused ("refused", Reason)
	KindTLS                        // a TLS handshake: Conn, TLS; Result "ok", "refused" (Reason) or "failed" (Err)
	KindLogin                      // a login: Result "ok", "failed", "busy" or "refused"; Reason, Method
	KindCommand                    // a command ran: Cmd, Arg, Code
	KindData                       // a data connection: Result "listening", "opened", "unused" or "refused" (Reason, Peer, Err); see Event.Cmd
	KindTransfer                   // a transfer ended: Cmd, Path, Direction, Bytes, Duration, Result, Err
	KindBan                        // the session's address was banned: Reason
	KindDisconnect                 // the session ended: Duration
	KindChange                     // a client changed the tree: Cmd, Path, From (RNTO), Detail (mode or time)
	KindRefused                    // an operation refused by policy: Cmd, Path, Reason (a Refusal), Code
	KindClient                     // the client named its software with CLNT: Client
	KindFinding                    // no session's: a diagnosis (internal/natdiag) found a problem; Reason is its ID, Detail its summary
)

var kindNames = [...]string{"", "connect", "tls", "login", "command", "data", "transfer", "ban", "disconnect", "change", "refused", "client", "finding"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// The reasons of a KindData refusal ("refused"). The set is closed: a
// consumer may use them as metric labels.
const (
	DataForeignAddress = "foreign address" // a passive connection came from another address than the client's
	DataActiveAddress  = "active address"  // PORT/EPRT named another address than the client's
	DataNoPassivePort  = "no passive port" // the passive range is exhausted
	DataTimeout        = "timeout"         // nobody connected to the passive port in time
	DataConnectFailed  = "connect failed"  // an active connection could not be made
)

// The reasons of a KindRefused event: the policy that refused the operation.
// The set is closed.
const (
	RefusedPermission  = "permission"   // the user's permissions (or anonymous read-only access)
	RefusedQuota       = "quota"        // the user's byte or file quota
	RefusedPattern     = "pattern"      // deny_upload_patterns or hidden_patterns
	RefusedTLSRequired = "tls_required" // tls_required (or the user's): AUTH TLS or PROT P first
	RefusedPolicy      = "policy"       // another server rule: CCC not allowed, special mode bits
)

// Event is one thing that happened on a control connection. The fields a
// kind does not use are zero. Events of one session reach each observer in
// the order they happened.
type Event struct {
	Kind    Kind
	Time    time.Time
	Session string         // the session's ID, as in the logs
	Remote  netip.AddrPort // the client's address
	User    string         // the user name given (with USER, or the login's), if any
	// Client is the name the client gave its software with CLNT, on every
	// event of the session from then on; "" before or without one.
	Client string
	// Secure says the control connection was protected by TLS when the
	// event happened.
	Secure bool

	Local       netip.AddrPort       // KindConnect: the address the client reached; KindData: the passive listener
	ImplicitTLS bool                 // KindConnect: on an implicit-TLS listener
	Conn        string               // KindTLS: "control", "implicit" or "data"
	TLS         *tls.ConnectionState // KindTLS: the negotiated state, when the handshake completed
	// Method is KindLogin's and KindTransfer's login method: "password",
	// "certificate" or "anonymous".
	Method string
	// Detail is the anonymous password (an address, sanitised) of
	// KindLogin and of an anonymous user's KindTransfer; KindChange's new
	// mode (SITE CHMOD) or time (MFMT); KindFinding's summary.
	Detail string
	// Cmd is the verb of KindCommand, KindTransfer, KindChange and
	// KindRefused ("SITE CHMOD" for SITE's). Of KindData, the command that
	// set the data connection up: PASV, EPSV, PORT or EPRT. KindData
	// "listening" is a PASV or EPSV reply: Local is the listener, Peer the
	// address and port the reply advertised, InUse the passive listeners
	// open on the server. "opened" has Peer, the data connection's other
	// end. "unused" is a passive listener closed before any transfer took
	// it (the client never used the reply, or did not reach the address),
	// with Local. "refused" has one of the Data reasons; with
	// DataForeignAddress and DataActiveAddress, Peer is the address
	// refused; with DataTimeout, Local is the listener.
	Cmd string
	Arg string // KindCommand: the argument ("" for PASS)
	// Code is KindCommand's last reply code written while the command ran;
	// 0 when it answers later (a transfer: see KindData and KindTransfer).
	// KindTransfer: the transfer's final reply (226, 426, 4xx or 5xx).
	// KindRefused: the refusal's reply code.
	Code      int
	Path      string         // KindTransfer, KindChange, KindRefused: the path
	From      string         // KindChange of RNTO: the old path
	Direction string         // KindTransfer: "download", "upload", "list" or "hash" (a digest read on demand)
	ASCII     bool           // KindTransfer: in TYPE A
	Bytes     int64          // KindTransfer
	Duration  time.Duration  // KindTransfer, KindDisconnect
	Result    string         // see the kinds
	Reason    string         // why something was refused or failed
	Peer      netip.AddrPort // KindData: see Cmd
	InUse     int            // KindData "listening": see Cmd
	Until     time.Time      // KindConnect refused for a ban: when it ends
	Err       error          // the error behind a failure, if any
}

// LoginReason is the closed-set reason of a failed or refused login event,
// for metrics and the auth log: "session_limit" for a refused login (the
// password was right, but the user has too many sessions),
// "anonymous_disabled" for an anonymous login when those are off, and
// "credentials" for every other failure. The account checks the user store
// makes before the password (unknown user, disabled account, TLS or a client
// certificate required by the account) all count as credentials, so that
// neither the metrics nor the auth log tell which user names exist; the
// server's own log keeps the detailed reason.
func LoginReason(e Event) string {
	switch {
	case e.Result == "refused":
		return "session_limit"
	case strings.Contains(e.Reason, "anonymous logins are disabled"):
		return "anonymous_disabled"
	}
	return "credentials"
}

// LoginReasons are the values LoginReason returns.
var LoginReasons = []string{"credentials", "anonymous_disabled", "session_limit"}

// BanReason is the closed-set reason of a KindBan event: "failed_logins"
// or "protocol_errors".
func BanReason(e Event) string {
	if strings.Contains(e.Reason, "protocol") {
		return "protocol_errors"
	}
	return "failed_logins"
}

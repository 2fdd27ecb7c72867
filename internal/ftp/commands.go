package ftp

import (
	"sort"
	"strings"
)

// command is one row of the command table. The dispatcher enforces the rules
// of the row, so handlers only do their own work.
type command struct {
	handler func(s *session, arg string)
	// public commands work before login.
	public bool
	// preTLS commands are allowed before AUTH when TLS is required on the
	// control connection (RFC 4217 §4: AUTH and what a client needs to get there).
	preTLS bool
	// argument: the command needs one; a missing one is answered 501.
	argument bool
	// midTransfer commands are handled while a transfer runs; others wait.
	midTransfer bool
	// data commands open a data connection: PASV/EPSV/PORT/EPRT must come first.
	data bool
	// feat is the line FEAT advertises for the command, if any.
	feat string
	// help is the one-line syntax shown by HELP CMD.
	help string
}

// commands is THE command table. FEAT and HELP are rendered from it.
var commands map[string]*command

func init() {
	commands = map[string]*command{
		// Access control (RFC 959 §4.1.1).
		"USER": {handler: (*session).cmdUSER, public: true, preTLS: true, argument: true, help: "USER <name>"},
		"PASS": {handler: (*session).cmdPASS, public: true, preTLS: true, help: "PASS <password>"},
		"ACCT": {handler: (*session).cmdACCT, public: true, argument: true, help: "ACCT <account>"},
		"REIN": {handler: (*session).cmdREIN, public: true, preTLS: true, help: "REIN"},
		"QUIT": {handler: (*session).cmdQUIT, public: true, preTLS: true, midTransfer: true, help: "QUIT"},
		"CWD":  {handler: (*session).cmdCWD, help: "CWD <path>"},
		"XCWD": {handler: (*session).cmdCWD, help: "XCWD <path>"},
		"CDUP": {handler: (*session).cmdCDUP, help: "CDUP"},
		"XCUP": {handler: (*session).cmdCDUP, help: "XCUP"},
		"SMNT": {handler: notImplemented, argument: true, help: "SMNT (not implemented)"},

		// Transfer parameters (RFC 959 §4.1.2, RFC 2428).
		"PORT": {handler: (*session).cmdPORT, argument: true, help: "PORT h1,h2,h3,h4,p1,p2"},
		"EPRT": {handler: (*session).cmdEPRT, argument: true, feat: "EPRT", help: "EPRT |proto|addr|port|"},
		"PASV": {handler: (*session).cmdPASV, help: "PASV"},
		"EPSV": {handler: (*session).cmdEPSV, feat: "EPSV", help: "EPSV [1|2|ALL]"},
		"TYPE": {handler: (*session).cmdTYPE, argument: true, help: "TYPE A|I|L 8"},
		"STRU": {handler: (*session).cmdSTRU, argument: true, help: "STRU F"},
		"MODE": {handler: (*session).cmdMODE, argument: true, help: "MODE S"},

		// Service commands.
		"RETR": {handler: (*session).cmdRETR, argument: true, data: true, help: "RETR <path>"},
		"STOR": {handler: (*session).cmdSTOR, argument: true, data: true, help: "STOR <path>"},
		"STOU": {handler: (*session).cmdSTOU, data: true, help: "STOU [<name>]"},
		"APPE": {handler: (*session).cmdAPPE, argument: true, data: true, help: "APPE <path>"},
		"ALLO": {handler: (*session).cmdALLO, argument: true, help: "ALLO <bytes>"},
		"REST": {handler: (*session).cmdREST, argument: true, feat: "REST STREAM", help: "REST <offset>"},
		"RNFR": {handler: (*session).cmdRNFR, argument: true, help: "RNFR <path>"},
		"RNTO": {handler: (*session).cmdRNTO, argument: true, help: "RNTO <path>"},
		"ABOR": {handler: (*session).cmdABOR, midTransfer: true, help: "ABOR"},
		"DELE": {handler: (*session).cmdDELE, argument: true, help: "DELE <path>"},
		"RMD":  {handler: (*session).cmdRMD, argument: true, help: "RMD <path>"},
		"XRMD": {handler: (*session).cmdRMD, argument: true, help: "XRMD <path>"},
		"MKD":  {handler: (*session).cmdMKD, argument: true, help: "MKD <path>"},
		"XMKD": {handler: (*session).cmdMKD, argument: true, help: "XMKD <path>"},
		"PWD":  {handler: (*session).cmdPWD, help: "PWD"},
		"XPWD": {handler: (*session).cmdPWD, help: "XPWD"},
		"LIST": {handler: (*session).cmdLIST, data: true, help: "LIST [-la] [<path>]"},
		"NLST": {handler: (*session).cmdNLST, data: true, help: "NLST [<path>]"},
		"SITE": {handler: (*session).cmdSITE, argument: true, help: "SITE HELP|CHMOD <mode> <path>"},
		"SYST": {handler: (*session).cmdSYST, public: true, help: "SYST"},
		"STAT": {handler: (*session).cmdSTAT, public: true, midTransfer: true, help: "STAT [<path>]"},
		"HELP": {handler: (*session).cmdHELP, public: true, preTLS: true, help: "HELP [<command>]"},
		"NOOP": {handler: (*session).cmdNOOP, public: true, preTLS: true, midTransfer: true, help: "NOOP"},

		// Extensions: RFC 2389, 3659, 2640, 7151.
		"FEAT": {handler: (*session).cmdFEAT, public: true, preTLS: true, help: "FEAT"},
		"OPTS": {handler: (*session).cmdOPTS, public: true, argument: true, help: "OPTS UTF8 ON|MLST <facts>"},
		"SIZE": {handler: (*session).cmdSIZE, argument: true, feat: "SIZE", help: "SIZE <path>"},
		"MDTM": {handler: (*session).cmdMDTM, argument: true, feat: "MDTM", help: "MDTM <path>"},
		"MFMT": {handler: (*session).cmdMFMT, argument: true, feat: "MFMT", help: "MFMT <YYYYMMDDHHMMSS> <path>"},
		"MLST": {handler: (*session).cmdMLST, help: "MLST [<path>]"},
		"MLSD": {handler: (*session).cmdMLSD, data: true, help: "MLSD [<path>]"},
		"HOST": {handler: (*session).cmdHOST, public: true, preTLS: true, argument: true, feat: "HOST", help: "HOST <name>"},

		// Security (RFC 2228, RFC 4217).
		"AUTH": {handler: (*session).cmdAUTH, public: true, preTLS: true, argument: true, help: "AUTH TLS"},
		"PBSZ": {handler: (*session).cmdPBSZ, public: true, preTLS: true, argument: true, feat: "PBSZ", help: "PBSZ 0"},
		"PROT": {handler: (*session).cmdPROT, public: true, preTLS: true, argument: true, feat: "PROT", help: "PROT C|P"},
		"CCC":  {handler: (*session).cmdCCC, help: "CCC"},
		"ADAT": {handler: notImplemented, public: true, preTLS: true, help: "ADAT (not implemented)"},
		"MIC":  {handler: notImplemented, public: true, preTLS: true, help: "MIC (not implemented)"},
		"CONF": {handler: notImplemented, public: true, preTLS: true, help: "CONF (not implemented)"},
		"ENC":  {handler: notImplemented, public: true, preTLS: true, help: "ENC (not implemented)"},
	}
}

func notImplemented(s *session, _ string) { s.reply(502, "Command not implemented.") }

// featLines renders the FEAT body (RFC 2389 §3.2) from the table plus the
// features that are not one command each.
func (s *session) featLines() []string {
	lines := []string{"UTF8", "TVFS", "MLST " + s.featFacts()}
	if s.srv.tlsConfig != nil {
		lines = append(lines, "AUTH TLS")
	}
	for _, c := range commands {
		if c.feat != "" {
			lines = append(lines, c.feat)
		}
	}
	sort.Strings(lines)
	return lines
}

// helpText renders HELP's command list, eight verbs a line.
func helpText() string {
	verbs := make([]string, 0, len(commands))
	for v := range commands {
		verbs = append(verbs, v)
	}
	sort.Strings(verbs)
	var b strings.Builder
	b.WriteString("The following commands are recognized.")
	for i, v := range verbs {
		switch {
		case i%8 == 0:
			b.WriteString("\n")
		default:
			b.WriteString(" ")
		}
		b.WriteString(v)
	}
	b.WriteString("\nHelp OK.")
	return b.String()
}

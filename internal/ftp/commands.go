package ftp

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"sort"
	"strings"
	"time"

	"github.com/ferryftp/ferry/internal/access"
	"github.com/ferryftp/ferry/internal/ftp/wire"
	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/vpath"
)

// command is one row of the command table. The dispatcher enforces the rules
// of the row, so handlers only do their own work and return errors that
// replyFor (errors.go) turns into replies.
type command struct {
	handler func(s *session, r *request) error
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
	// path says where the command's path comes from; pathNone for none.
	path pathRule
	// verb is the access verb checked on the path before anything reveals
	// whether it exists (uploads check the finer verbs once they know).
	verb access.Verb
	// stat says whether the dispatcher looks the path up, and what it must be.
	stat statRule
	// notRoot refuses the user's root directory itself (RMD, RNFR, DELE).
	notRoot bool
	// newName commands may create the path's last element (uploads, MKD,
	// RNTO): it must pass vpath.CheckNewName, so no client plants a name
	// with control characters.
	newName bool
	// needs are the storage capabilities the command relies on: without
	// them FEAT leaves its line out and the command answers 502.
	needs storage.Capabilities
	// lacking, when set, is the text of the 550 answered instead of 502
	// when the storage lacks needs: for a command every client may send
	// (SITE CHMOD after each upload) whose refusal must say why.
	lacking string
	// feat is the line FEAT advertises for the command, if any.
	feat string
	// help is the one-line syntax shown by HELP CMD.
	help string
}

// pathRule says how the dispatcher finds a command's path in its argument.
type pathRule uint8

const (
	pathNone   pathRule = iota
	pathArg             // the whole argument is a path
	pathOpt             // an optional path; none means the current directory
	pathList            // LIST/NLST/STAT: ls flags first, then an optional path
	pathTime            // MFMT: "YYYYMMDDHHMMSS path"
	pathMDTM            // MDTM: a path, or the set-time form "YYYYMMDDHHMMSS path"
	pathChmod           // SITE CHMOD: "mode path"
	pathUp              // CDUP: the parent of the current directory
	pathUnique          // STOU: a new unique name in the current directory
	pathUtime           // SITE UTIME: "time path", "path time" or "path atime mtime ctime UTC"
	pathDigest          // XCRC and the like: "path [start end]", the path maybe quoted
)

// statRule says what the dispatcher requires of the path's entry.
type statRule uint8

const (
	statNone   statRule = iota
	statExists          // the entry must exist
	statFile            // it must be a regular file
	statNotDir          // it must exist and not be a directory
	statDir             // it must be a directory
	statMaybe           // look it up; a missing entry leaves r.info nil
	statUpload          // statMaybe; before a whole upload (no REST) with the backend's look-up for that (storage.StatUpload)
)

// request is one command as the dispatcher hands it to the handler.
type request struct {
	verb string      // the command verb, upper case
	arg  string      // the raw argument
	path vpath.Path  // the resolved path, for rows with a path rule
	info fs.FileInfo // the path's entry, for rows with a stat rule (nil: missing, statMaybe and statUpload only)
	// looked says the dispatcher looked the path up for a stat rule, so
	// info is what the storage held a moment ago.
	looked bool
	// mtime is the time of MFMT and of MDTM's set-time form.
	mtime time.Time
	// setTime marks MDTM's set-time form.
	setTime bool
	// mode is the SITE CHMOD mode.
	mode fs.FileMode
	// resolved says path is set: the argument was resolved, even if a
	// check refused it afterwards.
	resolved bool
	// start, end and ranged are the byte range of the X* digest commands
	// (end exclusive), when one was given.
	start, end int64
	ranged     bool
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
		"CWD":  {handler: (*session).cmdCWD, path: pathOpt, verb: access.List, stat: statDir, help: "CWD <path>"},
		"XCWD": {handler: (*session).cmdCWD, path: pathOpt, verb: access.List, stat: statDir, help: "XCWD <path>"},
		"CDUP": {handler: (*session).cmdCWD, path: pathUp, verb: access.List, stat: statDir, help: "CDUP"},
		"XCUP": {handler: (*session).cmdCWD, path: pathUp, verb: access.List, stat: statDir, help: "XCUP"},
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
		"RETR": {handler: (*session).cmdRETR, argument: true, data: true, path: pathArg, verb: access.Download, stat: statFile, help: "RETR <path>"},
		"STOR": {handler: (*session).cmdSTOR, argument: true, data: true, path: pathArg, verb: access.Upload, stat: statUpload, newName: true, help: "STOR <path>"},
		"STOU": {handler: (*session).cmdSTOU, data: true, path: pathUnique, verb: access.Upload, newName: true, help: "STOU [<name>]"},
		"APPE": {handler: (*session).cmdAPPE, argument: true, data: true, needs: storage.CapWriteAt, path: pathArg, verb: access.Upload, stat: statMaybe, newName: true, help: "APPE <path>"},
		"ALLO": {handler: (*session).cmdALLO, argument: true, help: "ALLO <bytes>"},
		"REST": {handler: (*session).cmdREST, argument: true, feat: "REST STREAM", help: "REST <offset>"},
		"RNFR": {handler: (*session).cmdRNFR, argument: true, path: pathArg, verb: access.Rename, stat: statExists, notRoot: true, help: "RNFR <path>"},
		"RNTO": {handler: (*session).cmdRNTO, argument: true, path: pathArg, verb: access.Rename, stat: statMaybe, newName: true, help: "RNTO <path>"},
		"ABOR": {handler: (*session).cmdABOR, midTransfer: true, help: "ABOR"},
		"DELE": {handler: (*session).cmdDELE, argument: true, path: pathArg, verb: access.Delete, stat: statExists, notRoot: true, help: "DELE <path>"},
		"RMD":  {handler: (*session).cmdRMD, argument: true, path: pathArg, verb: access.Rmdir, notRoot: true, help: "RMD <path>"},
		"XRMD": {handler: (*session).cmdRMD, argument: true, path: pathArg, verb: access.Rmdir, notRoot: true, help: "XRMD <path>"},
		"MKD":  {handler: (*session).cmdMKD, argument: true, path: pathArg, verb: access.Mkdir, newName: true, help: "MKD <path>"},
		"XMKD": {handler: (*session).cmdMKD, argument: true, path: pathArg, verb: access.Mkdir, newName: true, help: "XMKD <path>"},
		"PWD":  {handler: (*session).cmdPWD, help: "PWD"},
		"XPWD": {handler: (*session).cmdPWD, help: "XPWD"},
		"LIST": {handler: (*session).cmdLIST, data: true, path: pathList, verb: access.List, stat: statExists, help: "LIST [-la] [<path>]"},
		"NLST": {handler: (*session).cmdNLST, data: true, path: pathList, verb: access.List, stat: statExists, help: "NLST [<path>]"},
		"SITE": {handler: (*session).cmdSITE, argument: true, help: "SITE HELP|QUOTA|CHMOD <mode> <path>|UTIME <time> <path>"},
		"SYST": {handler: (*session).cmdSYST, public: true, help: "SYST"},
		"STAT": {handler: (*session).cmdSTAT, public: true, midTransfer: true, help: "STAT [<path>]"},
		"HELP": {handler: (*session).cmdHELP, public: true, preTLS: true, help: "HELP [<command>]"},
		"NOOP": {handler: (*session).cmdNOOP, public: true, preTLS: true, midTransfer: true, help: "NOOP"},

		// Extensions: RFC 2389, 3659, 2640, 7151.
		"FEAT": {handler: (*session).cmdFEAT, public: true, preTLS: true, help: "FEAT"},
		"OPTS": {handler: (*session).cmdOPTS, public: true, argument: true, help: "OPTS UTF8 ON|MLST <facts>|HASH [<algorithm>]"},
		"SIZE": {handler: (*session).cmdSIZE, argument: true, path: pathArg, verb: access.List, stat: statFile, feat: "SIZE", help: "SIZE <path>"},
		"MDTM": {handler: (*session).cmdMDTM, argument: true, path: pathMDTM, verb: access.List, stat: statNotDir, feat: "MDTM", help: "MDTM <path>"},
		"MFMT": {handler: (*session).cmdMFMT, argument: true, needs: storage.CapChtimes, path: pathTime, verb: access.Chmod, feat: "MFMT", help: "MFMT <YYYYMMDDHHMMSS> <path>"},
		"MLST": {handler: (*session).cmdMLST, path: pathOpt, verb: access.List, stat: statExists, help: "MLST [<path>]"},
		"MLSD": {handler: (*session).cmdMLSD, data: true, path: pathOpt, verb: access.List, stat: statExists, help: "MLSD [<path>]"},
		"HOST": {handler: (*session).cmdHOST, public: true, preTLS: true, argument: true, feat: "HOST", help: "HOST <name>"},

		// Less common extensions: draft-peterson-streamlined-ftp-command-
		// extensions (AVBL); CLNT, as Serv-U, ProFTPD and WinSCP use it.
		"AVBL": {handler: (*session).cmdAVBL, path: pathOpt, verb: access.List, stat: statExists, feat: "AVBL", help: "AVBL [<path>]"},
		"CLNT": {handler: (*session).cmdCLNT, public: true, preTLS: true, argument: true, help: "CLNT <client name>"},

		// File digests: draft-bryan-ftpext-hash, draft-bryan-ftp-range and the
		// legacy commands (cmd_hash.go). Reading a digest is reading the file.
		"HASH":    {handler: (*session).cmdHASH, argument: true, path: pathArg, verb: access.Download, stat: statExists, feat: "HASH", help: "HASH <path>"},
		"RANG":    {handler: (*session).cmdRANG, argument: true, help: "RANG <start> <end> (for HASH)"},
		"XCRC":    {handler: (*session).cmdXDigest, argument: true, path: pathDigest, verb: access.Download, stat: statFile, feat: "XCRC", help: "XCRC <path> [<start> <end>]"},
		"XMD5":    {handler: (*session).cmdXDigest, argument: true, path: pathDigest, verb: access.Download, stat: statFile, feat: "XMD5", help: "XMD5 <path> [<start> <end>]"},
		"XSHA":    {handler: (*session).cmdXDigest, argument: true, path: pathDigest, verb: access.Download, stat: statFile, help: "XSHA <path> [<start> <end>]"},
		"XSHA1":   {handler: (*session).cmdXDigest, argument: true, path: pathDigest, verb: access.Download, stat: statFile, feat: "XSHA1", help: "XSHA1 <path> [<start> <end>]"},
		"XSHA256": {handler: (*session).cmdXDigest, argument: true, path: pathDigest, verb: access.Download, stat: statFile, feat: "XSHA256", help: "XSHA256 <path> [<start> <end>]"},
		"XSHA512": {handler: (*session).cmdXDigest, argument: true, path: pathDigest, verb: access.Download, stat: statFile, feat: "XSHA512", help: "XSHA512 <path> [<start> <end>]"},

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

// Verbs returns the verbs of the command table, sorted: the closed set of
// the commands a client can run (for metric labels).
func Verbs() []string {
	verbs := make([]string, 0, len(commands))
	for v := range commands {
		verbs = append(verbs, v)
	}
	sort.Strings(verbs)
	return verbs
}

// errSpecialBits refuses a SITE CHMOD with setuid, setgid or sticky bits.
var errSpecialBits = reply(550, "SITE CHMOD: setuid, setgid and sticky bits are not allowed.")

func notImplemented(*session, *request) error { return reply(502, "Command not implemented.") }

// caps are the capabilities of the session's storage; before login, those
// the server's opener reports.
func (s *session) caps() storage.Capabilities {
	if s.fs != nil {
		return storage.CapsOf(s.fs)
	}
	return storage.CapsOf(s.site.Storage)
}

// featLines renders the FEAT body (RFC 2389 §3.2) from the table plus the
// features that are not one command each.
func (s *session) featLines() []string {
	lines := []string{"UTF8", "TVFS", "MLST " + s.featFacts()}
	if s.site.tlsConfig != nil {
		lines = append(lines, "AUTH TLS")
	}
	caps := s.caps()
	for _, c := range commands {
		if c.feat != "" && caps.Has(c.needs) {
			if c.feat == "HASH" {
				lines = append(lines, s.hashFeat())
				continue
			}
			lines = append(lines, c.feat)
		}
	}
	for _, c := range siteCommands {
		if c.feat != "" && caps.Has(c.needs) {
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

// run applies a row's path rule, permission verb and stat rule, then runs
// its handler; every error, from the checks or the handler, becomes a reply
// in replyFor. Permission is always decided before anything looks at the
// file, so a denied path answers the same whether it exists or not.
func (s *session) run(c *command, verb, arg string) {
	r := &request{verb: verb, arg: arg}
	var err error
	switch {
	case !s.caps().Has(c.needs) && c.lacking != "":
		err = reply(550, c.lacking) // before the path is looked at
	case !s.caps().Has(c.needs):
		err = storage.ErrNotSupported // 502, before the path is looked at
	default:
		err = s.target(c, r)
	}
	if err == nil {
		err = c.handler(s, r)
	}
	if err != nil {
		s.fail(err, verb)
		if why := refusal(err); why != "" {
			path := r.arg
			if r.resolved {
				path = r.path.String()
			}
			s.refused(verb, path, why)
		}
		if c.data && s.xfer == nil {
			// The prepared data channel will not be used: closed
			// after the reply (see abandonData).
			s.rest = 0
			s.abandonData()
		}
	}
}

// target resolves the row's path from r.arg, checks the row's verb on it
// and looks it up as the row says.
func (s *session) target(c *command, r *request) error {
	name, v, stat := r.arg, c.verb, c.stat
	switch c.path {
	case pathNone:
		return nil
	case pathArg, pathOpt:
	case pathUp:
		name = ".."
	case pathList:
		name, _ = wire.ParseListArgs(r.arg)
	case pathTime, pathMDTM:
		ts, rest, ok := strings.Cut(r.arg, " ")
		if c.path == pathMDTM && !(ok && rest != "" && isTimeArg(ts)) {
			break // MDTM path: the get form
		}
		if !ok || rest == "" {
			return reply(501, "Syntax: "+c.help+".")
		}
		t, err := wire.ParseTime(ts)
		if err != nil {
			return reply(501, "Invalid time value.")
		}
		// The set-time form is MFMT: it needs the chmod verb and looks
		// nothing up, so it reveals no more than MFMT does.
		name, r.mtime, r.setTime, v, stat = rest, t, true, access.Chmod, statNone
	case pathUtime:
		p, t, ok := parseUtime(r.arg)
		if !ok {
			return reply(501, "Syntax: "+c.help+".")
		}
		if t.IsZero() {
			return reply(501, "Invalid time value.")
		}
		name, r.mtime = p, t
	case pathChmod:
		mode, rest, err := wire.ParseChmod(r.arg)
		if errors.Is(err, wire.ErrSpecialBits) {
			return errSpecialBits
		}
		if err != nil || rest == "" {
			return reply(501, "Syntax: "+c.help+".")
		}
		name, r.mode = rest, mode
	case pathDigest:
		path, start, end, ranged, err := wire.ParseDigestArgs(r.arg)
		if errors.Is(err, wire.ErrRangeOrder) {
			return reply(501, r.verb+": the start point must be below the end point (end exclusive).")
		}
		if err != nil {
			return reply(501, "Syntax: "+c.help+".")
		}
		name, r.start, r.end, r.ranged = path, start, end, ranged
	case pathUnique:
		// STOU: a new name in the current directory, from the argument's
		// last element when there is one (RFC 1123 §4.1.2.9).
		base := "ferry"
		if r.arg != "" {
			if p, err := s.resolve(r.arg); err == nil && !p.IsRoot() {
				base = p.Base()
			}
		}
		var rnd [6]byte
		rand.Read(rnd[:])
		name = base + "." + hex.EncodeToString(rnd[:])
	}
	p, err := s.resolve(name)
	if err == nil || errors.Is(err, errHidden) {
		r.path, r.resolved = p, true
	}
	if err != nil {
		return err
	}
	if c.notRoot && p.IsRoot() {
		return errDenied
	}
	if err := s.allow(v, p); err != nil {
		return err
	}
	if !p.IsUTF8() && !s.caps().Has(storage.CapByteNames) {
		return errNotUTF8 // before the storage could see the name
	}
	if c.newName && !p.IsRoot() {
		if err := vpath.CheckNewName(p.Base()); err != nil {
			return err
		}
	}
	r.path = p
	if stat == statNone {
		return nil
	}
	var fi fs.FileInfo
	if stat == statUpload && s.rest == 0 { // REST makes it an in-place upload
		fi, err = storage.StatUpload(s.ctx(), s.fs, p)
	} else {
		fi, err = s.fs.Stat(s.ctx(), p)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist) && (stat == statMaybe || stat == statUpload):
		r.looked = true
		return nil
	case err != nil:
		return err
	case stat == statDir && !fi.IsDir():
		return storage.ErrNotDir
	case (stat == statFile || stat == statNotDir) && fi.IsDir():
		return storage.ErrIsDir
	case stat == statFile && !fi.Mode().IsRegular():
		return reply(550, "Not a regular file.")
	}
	r.info, r.looked = fi, true
	return nil
}

// parseUtime splits a SITE UTIME argument in the forms clients send: the
// 2-argument "YYYYMMDDhhmm[ss] path" of ProFTPD's mod_site_misc (and
// "path YYYYMMDDhhmm[ss]", which some clients send), and the 5-argument
// "path atime mtime ctime UTC", whose mtime is the one set. Paths may hold
// spaces. ok is false for any other shape; a zero t with ok is a time that
// has the shape but no valid date (month 13).
func parseUtime(arg string) (path string, t time.Time, ok bool) {
	w := strings.Split(arg, " ")
	n := len(w)
	parse := func(ts string) time.Time {
		if len(ts) == 12 {
			ts += "00"
		}
		t, err := wire.ParseTime(ts)
		if err != nil {
			return time.Time{}
		}
		return t
	}
	switch {
	case n >= 5 && strings.EqualFold(w[n-1], "UTC"):
		if !utimeStamp(w[n-4]) || !utimeStamp(w[n-3]) || !utimeStamp(w[n-2]) {
			return "", time.Time{}, false
		}
		path = strings.Join(w[:n-4], " ")
		t = parse(w[n-3])
		if parse(w[n-4]).IsZero() || parse(w[n-2]).IsZero() {
			t = time.Time{}
		}
	case n >= 2 && utimeStamp(w[0]):
		path, t = strings.Join(w[1:], " "), parse(w[0])
	case n >= 2 && utimeStamp(w[n-1]):
		path, t = strings.Join(w[:n-1], " "), parse(w[n-1])
	default:
		return "", time.Time{}, false
	}
	return path, t, path != ""
}

// utimeStamp reports a word of 12 or 14 digits: the shape of a SITE UTIME
// time (YYYYMMDDhhmm[ss], UTC).
func utimeStamp(w string) bool { return (len(w) == 12 || len(w) == 14) && isAllDigits(w) }

// isTimeArg reports an MDTM argument that starts with a timestamp
// (YYYYMMDDHHMMSS, optionally with a fraction): the set-time form. The form
// is decided by syntax alone, never by looking at the file.
func isTimeArg(ts string) bool {
	return len(ts) >= 14 && isAllDigits(ts[:14]) && (len(ts) == 14 || ts[14] == '.')
}

package ftp

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ferryftp/ferry/internal/access"
	"github.com/ferryftp/ferry/internal/escape"

	"github.com/ferryftp/ferry/internal/ftp/wire"
	"github.com/ferryftp/ferry/internal/storage"
)

func (s *session) cmdSYST(*request) error { s.reply(215, "UNIX Type: L8"); return nil }
func (s *session) cmdNOOP(*request) error { s.reply(200, "NOOP ok."); return nil }

func (s *session) cmdHELP(r *request) error {
	arg := r.arg
	if arg == "" {
		s.reply(214, helpText())
		return nil
	}
	verb, _ := wire.Split(arg)
	if c := commands[verb]; c != nil {
		s.reply(214, "Syntax: "+c.help)
		return nil
	}
	return reply(502, "Unknown command "+verb+".")
}

func (s *session) cmdFEAT(r *request) error {
	s.reply(211, "Features:\n"+strings.Join(s.featLines(), "\n")+"\nEnd")
	return nil
}

func (s *session) featFacts() string { return wire.FeatFacts(s.offeredFacts(), s.facts) }

// offeredFacts are the MLST facts the session's storage can give: unique,
// UNIX.owner and UNIX.group only with storage.CapUnixStat. FEAT lists
// these and OPTS MLST selects among them (RFC 3659 §7.8, §7.9).
func (s *session) offeredFacts() wire.Facts {
	if s.caps().Has(storage.CapUnixStat) {
		return wire.AllFacts
	}
	return wire.AllFacts &^ (wire.FactUnique | wire.FactUnixOwner | wire.FactUnixGroup)
}

// cmdOPTS handles OPTS UTF8 (RFC 2640; names are always UTF-8, so ON is a
// no-op and OFF is refused), OPTS MLST (RFC 3659 §7.9) and OPTS HASH
// (draft-bryan-ftpext-hash §3.2).
func (s *session) cmdOPTS(r *request) error {
	arg := r.arg
	name, value, _ := strings.Cut(arg, " ")
	switch strings.ToUpper(name) {
	case "UTF8", "UTF-8":
		switch strings.ToUpper(strings.TrimSpace(value)) {
		case "ON", "":
			s.reply(200, "Always in UTF8 mode.")
		case "OFF":
			s.reply(504, "UTF8 cannot be turned off.")
		default:
			s.reply(501, "OPTS UTF8 takes ON or OFF.")
		}
	case "HASH":
		s.optsHASH(value)
	case "MLST":
		facts, canon := wire.ParseOptsMLST(value, s.offeredFacts())
		s.facts = facts
		s.reply(200, "MLST OPTS "+canon)
	default:
		s.reply(501, "Option not understood.")
	}
	return nil
}

// cmdHOST selects a virtual host before login (RFC 7151). Ferry serves one
// host, so any valid name is accepted; after login it is out of sequence.
func (s *session) cmdHOST(r *request) error {
	arg := r.arg
	if s.user != nil || s.userName != "" {
		return reply(503, "HOST must come before USER.")
	}
	if strings.ContainsAny(arg, " /\\") || len(arg) > 255 {
		return reply(501, "Invalid host name.")
	}
	s.host = arg
	s.reply(220, "Host accepted.")
	return nil
}

func (s *session) cmdTYPE(r *request) error {
	arg := r.arg
	t, err := wire.ParseType(arg)
	switch {
	case errors.Is(err, wire.ErrNotImplemented):
		s.reply(504, "Type not supported: use A, A N, I or L 8.")
	case err != nil:
		s.reply(501, "Syntax error in TYPE.")
	default:
		s.typ = t
		if t == wire.TypeASCII {
			s.reply(200, "Switching to ASCII mode.")
		} else {
			s.reply(200, "Switching to Binary mode.")
		}
	}
	return nil
}

func (s *session) cmdSTRU(r *request) error {
	arg := r.arg
	switch strings.ToUpper(strings.TrimSpace(arg)) {
	case "F":
		s.reply(200, "Structure set to F.")
	case "R", "P":
		s.reply(504, "Only file structure (F) is supported.")
	default:
		s.reply(501, "Syntax error in STRU.")
	}
	return nil
}

func (s *session) cmdMODE(r *request) error {
	arg := r.arg
	switch strings.ToUpper(strings.TrimSpace(arg)) {
	case "S":
		s.reply(200, "Mode set to S.")
	case "B", "C", "Z":
		s.reply(504, "Only stream mode (S) is supported.")
	default:
		s.reply(501, "Syntax error in MODE.")
	}
	return nil
}

// siteCommands is the SITE sub-table: its rows follow the rules of the
// main table (path, verb, stat), applied by the same dispatcher.
var siteCommands map[string]*command

func init() {
	siteCommands = map[string]*command{
		"HELP":  {handler: (*session).cmdSiteHELP, help: "SITE HELP"},
		"QUOTA": {handler: (*session).cmdSiteQUOTA, help: "SITE QUOTA"},
		"UTIME": {handler: (*session).cmdSiteUTIME, needs: storage.CapChtimes, path: pathUtime, verb: access.Chmod, feat: "SITE UTIME", help: "SITE UTIME <YYYYMMDDhhmm[ss]> <path> | <path> <atime> <mtime> <ctime> UTC"},
		"CHMOD": {handler: (*session).cmdSiteCHMOD, needs: storage.CapChmod, lacking: "SITE CHMOD: this storage keeps no permission bits (object storage); nothing changed.", path: pathChmod, verb: access.Chmod, help: "SITE CHMOD <octal mode> <path>"},
	}
}

// cmdSITE dispatches a SITE subcommand through its row.
func (s *session) cmdSITE(r *request) error {
	sub, rest, _ := strings.Cut(r.arg, " ")
	sub = strings.ToUpper(sub)
	c := siteCommands[sub]
	if c == nil {
		return reply(500, "Unknown SITE command.")
	}
	s.run(c, "SITE "+sub, rest)
	return nil
}

func (s *session) cmdSiteHELP(*request) error {
	caps := s.caps()
	var subs []string
	for name, c := range siteCommands {
		if caps.Has(c.needs) {
			subs = append(subs, name)
		}
	}
	sort.Strings(subs)
	s.reply(214, "SITE commands: "+strings.Join(subs, " ")+"\nHelp OK.")
	return nil
}

// cmdSiteUTIME is MFMT in the SITE UTIME forms of ProFTPD's mod_site_misc
// (the row parsed the path and the modification time); it answers 200 as
// ProFTPD does.
func (s *session) cmdSiteUTIME(r *request) error {
	if err := s.fs.Chtimes(s.ctx(), r.path, r.mtime); err != nil {
		return err
	}
	t := string(wire.AppendTime(nil, r.mtime))
	s.reply(200, "SITE UTIME command successful: modify="+t+"; "+r.path.Base())
	s.changed(r, "", t)
	return nil
}

// cmdAVBL reports the bytes the user may still store under a directory
// (draft-peterson-streamlined-ftp-command-extensions, AVBL): 213 and the
// number, from the storage's SpaceReporter (the byte quota's remainder
// when that is less); 550 on a file, or when the storage does not know.
func (s *session) cmdAVBL(r *request) error {
	if !r.info.IsDir() {
		return reply(550, "AVBL needs a directory.")
	}
	sr, ok := s.fs.(storage.SpaceReporter)
	if !ok {
		return errSpaceUnknown
	}
	n, err := sr.Free(s.ctx())
	switch {
	case errors.Is(err, storage.ErrNotSupported):
		return errSpaceUnknown
	case err != nil:
		return err
	}
	s.reply(213, strconv.FormatInt(n, 10))
	return nil
}

// errSpaceUnknown answers AVBL on storage that does not know its free space.
var errSpaceUnknown = reply(550, "Free space is not known for this storage.")

// maxClientName bounds the name CLNT keeps.
const maxClientName = 128

// cmdCLNT takes the client's name (a Serv-U extension that WinSCP,
// SmartFTP and others send), before or after login: it goes to the log
// and the observers (Event.Client, SessionInfo.Client). It changes
// nothing else.
func (s *session) cmdCLNT(r *request) error {
	name := strings.TrimSpace(r.arg)
	if name == "" || len(name) > maxClientName || !utf8.ValidString(name) || escape.HasControl(name) {
		return reply(501, "CLNT needs a client name: printable UTF-8, at most 128 bytes.")
	}
	s.client = name
	s.emit(Event{Kind: KindClient, Client: name})
	s.reply(200, "Noted.")
	return nil
}

func (s *session) cmdSiteCHMOD(r *request) error {
	if err := s.fs.Chmod(s.ctx(), r.path, r.mode); err != nil {
		return err
	}
	s.reply(200, "SITE CHMOD command ok.")
	s.changed(r, "", fmt.Sprintf("%04o", r.mode.Perm()))
	return nil
}

// cmdSiteQUOTA reports the user's quota: what the user stores and the
// limits, in bytes and in files (like ProFTPD's SITE QUOTA). The numbers
// are the usage the quota enforces, shared by the user's sessions, with
// the reservations of uploads in progress.
func (s *session) cmdSiteQUOTA(r *request) error {
	if r.arg != "" {
		return reply(501, "SITE QUOTA takes no argument.")
	}
	u := s.user
	if s.anon || u.QuotaBytes <= 0 && u.QuotaFiles <= 0 {
		s.reply(200, "No quota: bytes and files are unlimited.")
		return nil
	}
	usage := s.srv.quotas.Get(u.Name, u.Home)
	if err := usage.Wait(s.ctx()); err != nil {
		return err
	}
	b, f, err := usage.Counts(s.ctx())
	if err != nil {
		return err
	}
	s.reply(200, fmt.Sprintf("Quota of %s:\nBytes: %s\nFiles: %s\nEnd of quota.", u.Name, quotaLine(b, u.QuotaBytes), quotaLine(f, u.QuotaFiles)))
	return nil
}

// quotaLine is one line of SITE QUOTA: "1200 used of 5000 (24%), 3800 free".
func quotaLine(used, limit int64) string {
	if limit <= 0 {
		return fmt.Sprintf("%d used, unlimited", used)
	}
	return fmt.Sprintf("%d used of %d (%d%%), %d free", used, limit, used*100/limit, max(limit-used, 0))
}

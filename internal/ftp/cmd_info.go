package ftp

import (
	"errors"
	"strings"

	"github.com/ferryftp/ferry/internal/ftp/wire"
)

func (s *session) cmdSYST(string) { s.reply(215, "UNIX Type: L8") }
func (s *session) cmdNOOP(string) { s.reply(200, "NOOP ok.") }

func (s *session) cmdHELP(arg string) {
	if arg == "" {
		s.reply(214, helpText())
		return
	}
	verb, _ := wire.Split(arg)
	if c := commands[verb]; c != nil {
		s.reply(214, "Syntax: "+c.help)
		return
	}
	s.reply(502, "Unknown command "+verb+".")
}

func (s *session) cmdFEAT(string) {
	s.reply(211, "Features:\n"+strings.Join(s.featLines(), "\n")+"\nEnd")
}

func (s *session) featFacts() string { return wire.FeatFacts(s.facts) }

// cmdOPTS handles OPTS UTF8 (RFC 2640; names are always UTF-8, so ON is a
// no-op and OFF is refused) and OPTS MLST (RFC 3659 §7.9).
func (s *session) cmdOPTS(arg string) {
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
	case "MLST":
		facts, canon := wire.ParseOptsMLST(value)
		s.facts = facts
		s.reply(200, "MLST OPTS "+canon)
	default:
		s.reply(501, "Option not understood.")
	}
}

// cmdHOST selects a virtual host before login (RFC 7151). Ferry serves one
// host, so any valid name is accepted; after login it is out of sequence.
func (s *session) cmdHOST(arg string) {
	if s.user != nil || s.userName != "" {
		s.reply(503, "HOST must come before USER.")
		return
	}
	if strings.ContainsAny(arg, " /\\") || len(arg) > 255 {
		s.reply(501, "Invalid host name.")
		return
	}
	s.host = arg
	s.reply(220, "Host accepted.")
}

func (s *session) cmdTYPE(arg string) {
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
}

func (s *session) cmdSTRU(arg string) {
	switch strings.ToUpper(strings.TrimSpace(arg)) {
	case "F":
		s.reply(200, "Structure set to F.")
	case "R", "P":
		s.reply(504, "Only file structure (F) is supported.")
	default:
		s.reply(501, "Syntax error in STRU.")
	}
}

func (s *session) cmdMODE(arg string) {
	switch strings.ToUpper(strings.TrimSpace(arg)) {
	case "S":
		s.reply(200, "Mode set to S.")
	case "B", "C", "Z":
		s.reply(504, "Only stream mode (S) is supported.")
	default:
		s.reply(501, "Syntax error in MODE.")
	}
}

// cmdSITE handles SITE HELP and SITE CHMOD.
func (s *session) cmdSITE(arg string) {
	sub, rest, _ := strings.Cut(arg, " ")
	switch strings.ToUpper(sub) {
	case "HELP":
		s.reply(214, "SITE commands: CHMOD HELP\nHelp OK.")
	case "CHMOD":
		mode, name, err := wire.ParseChmod(rest)
		if errors.Is(err, wire.ErrSpecialBits) {
			s.reply(550, "SITE CHMOD: setuid, setgid and sticky bits are not allowed.")
			return
		}
		if err != nil || name == "" {
			s.reply(501, "Syntax: SITE CHMOD <octal mode> <path>.")
			return
		}
		p, err := s.resolve(name)
		if err == nil {
			err = s.allow(verbChmod, p)
		}
		if err == nil {
			err = s.fs.Chmod(s.ctx(), p.Rel(), mode)
		}
		if err != nil {
			s.fail(err, "SITE CHMOD")
			return
		}
		s.reply(200, "SITE CHMOD command ok.")
	default:
		s.reply(500, "Unknown SITE command.")
	}
}

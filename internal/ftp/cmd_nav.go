package ftp

import (
	"io/fs"
	"strings"

	"github.com/ferryftp/ferry/internal/ftp/wire"
	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/vpath"
)

// resolve turns a client's argument into a path, refusing bad names and
// anything under an in-progress upload's name.
func (s *session) resolve(arg string) (vpath.Path, error) {
	p, err := vpath.Resolve(s.cwd, arg)
	if err != nil {
		return p, err
	}
	if s.hidden(p) {
		return p, errHidden
	}
	return p, nil
}

// errHidden is a hidden name: to the client it does not exist (replyFor
// maps it as fs.ErrNotExist); the audit trail says why.
var errHidden error = hiddenError{}

type hiddenError struct{}

func (hiddenError) Error() string        { return "hidden name" }
func (hiddenError) Is(target error) bool { return target == fs.ErrNotExist }

// hidden reports a path no client may see or reach.
func (s *session) hidden(p vpath.Path) bool {
	for q := p; !q.IsRoot(); q = q.Dir() {
		if s.hiddenName(q.Base()) {
			return true
		}
	}
	return false
}

func (s *session) hiddenName(name string) bool {
	if strings.HasPrefix(name, storage.TempPrefix) {
		return true
	}
	return s.site.Hidden.Match(name)
}

func (s *session) cmdPWD(*request) error {
	s.reply(257, wire.QuotePath(s.cwd.String())+" is the current directory.")
	return nil
}

// cmdCWD serves CWD, XCWD, CDUP and XCUP: the row resolved the directory.
func (s *session) cmdCWD(r *request) error {
	s.cwd = r.path
	s.reply(250, "Directory successfully changed.")
	return nil
}

func (s *session) cmdMKD(r *request) error {
	if err := s.fs.Mkdir(s.ctx(), r.path, 0o777&^s.site.DirUmask); err != nil {
		return err
	}
	s.reply(257, wire.QuotePath(r.path.String())+" created.")
	s.changed(r, "", "")
	return nil
}

func (s *session) cmdRMD(r *request) error {
	if err := s.fs.RemoveDir(s.ctx(), r.path); err != nil {
		return err
	}
	s.reply(250, "Directory removed.")
	s.changed(r, "", "")
	return nil
}

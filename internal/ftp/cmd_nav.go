package ftp

import (
	"context"
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
		return p, fs.ErrNotExist
	}
	return p, nil
}

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
	return s.srv.access.Hidden(name)
}

func (s *session) ctx() context.Context { return context.Background() }

func (s *session) cmdPWD(string) {
	s.reply(257, wire.QuotePath(s.cwd.String())+" is the current directory.")
}

func (s *session) cmdCWD(arg string) {
	p, err := s.resolve(arg)
	if err == nil {
		err = s.allow(verbList, p)
	}
	if err == nil {
		var fi fs.FileInfo
		fi, err = s.fs.Stat(s.ctx(), p.Rel())
		if err == nil && !fi.IsDir() {
			err = storage.ErrNotDir
		}
	}
	if err != nil {
		s.fail(err, "CWD")
		return
	}
	s.cwd = p
	s.reply(250, "Directory successfully changed.")
}

func (s *session) cmdCDUP(string) {
	s.cmdCWD("..")
}

func (s *session) cmdMKD(arg string) {
	p, err := s.resolve(arg)
	if err == nil {
		err = s.allow(verbMkdir, p)
	}
	if err == nil {
		err = s.fs.Mkdir(s.ctx(), p.Rel(), 0o777&^s.srv.Config.DirUmaskBits())
	}
	if err != nil {
		s.fail(err, "MKD")
		return
	}
	s.reply(257, wire.QuotePath(p.String())+" created.")
}

func (s *session) cmdRMD(arg string) {
	p, err := s.resolve(arg)
	if err == nil && p.IsRoot() {
		err = errDenied
	}
	if err == nil {
		err = s.allow(verbRmdir, p)
	}
	if err == nil {
		err = s.fs.RemoveDir(s.ctx(), p.Rel())
	}
	if err != nil {
		s.fail(err, "RMD")
		return
	}
	s.reply(250, "Directory removed.")
}

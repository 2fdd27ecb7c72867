package ftp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"net"
	"strconv"
	"strings"

	"github.com/ferryftp/ferry/internal/ftp/wire"
	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/vpath"
)

func (s *session) typeName() string {
	if s.typ == wire.TypeASCII {
		return "ASCII"
	}
	return "BINARY"
}

func (s *session) cmdRETR(arg string) {
	p, err := s.resolve(arg)
	if err == nil {
		err = s.allow(verbDownload, p)
	}
	var f storage.File
	var size int64 = -1
	if err == nil {
		f, err = s.fs.Open(s.ctx(), p.Rel(), s.rest)
	}
	if err != nil {
		s.rest = 0
		s.abandonData()
		s.fail(err, "RETR")
		return
	}
	if fi, err := s.fs.Stat(s.ctx(), p.Rel()); err == nil {
		size = fi.Size() - s.rest
	}
	note := "Opening " + s.typeName() + " mode data connection for " + p.Base()
	if size >= 0 {
		note += " (" + strconv.FormatInt(size, 10) + " bytes)"
	}
	ascii := s.typ == wire.TypeASCII
	timeout := s.srv.Config.DataTimeout.Duration
	lim := s.limits(s.srv.down, s.ustate.down)
	s.startTransfer("RETR", p.String(), "download", note+".", func(ctx context.Context, c net.Conn) (int64, error) {
		var src io.Reader = f
		if of, ok := f.(storage.OSFiler); ok {
			src = of.OSFile() // lets the kernel send the file (sendfile)
		}
		if ascii {
			src = wire.NewASCIIReader(src)
		}
		return copyOut(ctx, c, src, timeout, lim)
	}, func(err error) error { f.Close(); return err })
}

// abandonData closes a prepared data channel that a failed command will not use.
func (s *session) abandonData() {
	s.closePassive()
	s.activeSet = false
}

func (s *session) cmdSTOR(arg string) { s.store(arg, "STOR", false) }
func (s *session) cmdAPPE(arg string) { s.store(arg, "APPE", true) }

// cmdSTOU stores under a new unique name (RFC 959 §4.1.3; RFC 1123 §4.1.2.9
// gives the 150 text form "FILE: name").
func (s *session) cmdSTOU(arg string) {
	base := "ferry"
	if arg != "" {
		if p, err := s.resolve(arg); err == nil {
			base = p.Base()
		}
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	s.rest = 0 // a new file has nothing to resume
	s.storeAs(base+"."+hex.EncodeToString(rnd[:]), "STOU", false, true)
}

func (s *session) store(arg, verb string, appendMode bool) {
	s.storeAs(arg, verb, appendMode, false)
}

func (s *session) storeAs(arg, verb string, appendMode, unique bool) {
	p, err := s.resolve(arg)
	var old int64 = -1 // size of the file replaced or extended; -1: new file
	if err == nil {
		old, err = s.checkUpload(p, appendMode || s.rest > 0)
	}
	if err == nil && old < 0 && s.user.QuotaFiles > 0 && s.ustate.files.Load() >= s.user.QuotaFiles {
		err = reply(552, "File quota exceeded.")
	}
	inPlace := appendMode || s.rest > 0 || unique
	// replaced is what the upload removes from the quota use at once
	// (REST truncates at its offset) or on commit (a replaced file).
	var replaced int64
	switch {
	case old < 0, appendMode:
	case s.rest > 0:
		replaced = max(old-s.rest, 0)
	default:
		replaced = old
	}
	var up storage.Upload
	if err == nil {
		up, err = s.fs.Create(s.ctx(), p.Rel(), storage.CreateOptions{
			Offset:    s.rest,
			Append:    appendMode,
			Exclusive: unique,
			Perm:      0o666 &^ s.srv.Config.FileUmaskBits(),
		})
	}
	if err != nil {
		s.rest = 0
		s.abandonData()
		s.fail(err, verb)
		return
	}
	note := "Ok to send data."
	if unique {
		note = "FILE: " + p.Base()
	}
	ascii := s.typ == wire.TypeASCII
	timeout := s.srv.Config.DataTimeout.Duration
	lim := s.limits(s.srv.up, s.ustate.up)
	st, quota, log, raw := s.ustate, s.user.QuotaBytes, s.log, s.raw
	if inPlace {
		st.bytes.Add(-replaced)
		replaced = 0
	}
	var written int64
	s.startTransfer(verb, p.String(), "upload", note, func(ctx context.Context, c net.Conn) (int64, error) {
		var dst io.Writer = up
		if quota > 0 {
			q := &quotaWriter{w: dst, st: st, max: quota + replaced}
			defer func() { written = q.written }()
			dst = q
		} else {
			defer func() { st.bytes.Add(written) }()
			dst = &countWriter{w: dst, n: &written}
		}
		if len(lim) > 0 {
			dst = &throttledWriter{ctx: ctx, w: dst, lim: lim}
		}
		var dec *wire.ASCIIDecoder
		if ascii {
			dec = wire.NewASCIIDecoder(dst)
			dst = dec
		}
		n, err := copyIn(dst, c, timeout)
		if err == nil && dec != nil {
			err = dec.Close()
		}
		return n, err
	}, func(err error) error {
		// In stream mode the end of the data connection is the end of
		// the file, so a client that died mid-upload looks like one that
		// finished: if its control connection is gone too, the upload
		// is not trusted.
		if err == nil && peerGone(raw) {
			err = errControlGone
		}
		// A whole upload replaces the old file. A cut in-place upload
		// keeps what arrived so the client can resume it; a full disk
		// or quota removes the partial data.
		full := errors.Is(err, storage.ErrQuota) || errors.Is(err, storage.ErrNoSpace)
		if err == nil || inPlace && !full {
			if cerr := up.Commit(); cerr != nil {
				log.Warn("upload commit failed", "path", p.String(), "err", cerr)
				st.bytes.Add(-written)
				if err == nil {
					err = cerr
				}
				return err
			}
			st.bytes.Add(-replaced)
			if old < 0 {
				st.files.Add(1)
			}
			return err
		}
		up.Abort()
		st.bytes.Add(-written)
		return err
	})
}

// errControlGone is an upload whose client closed the control connection
// before the data connection.
var errControlGone = errors.New("control connection closed during the upload")

// countWriter counts bytes written, for quota use of users without quota.
type countWriter struct {
	w io.Writer
	n *int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	*c.n += int64(n)
	return n, err
}

// limits collects the rate limiters that apply, skipping unset ones.
func (s *session) limits(ls ...*rateLimiter) limits {
	var out limits
	for _, l := range ls {
		if l != nil {
			out = append(out, l)
		}
	}
	return out
}

// checkUpload applies the permission verbs of an upload to p and returns
// the size of the existing file, or -1 when there is none.
func (s *session) checkUpload(p vpath.Path, inPlace bool) (int64, error) {
	if err := s.allow(verbUpload, p); err != nil {
		return -1, err
	}
	fi, err := s.fs.Stat(s.ctx(), p.Rel())
	switch {
	case err == nil && fi.IsDir():
		return -1, storage.ErrIsDir
	case err == nil && inPlace:
		return fi.Size(), s.allow(verbAppend, p)
	case err == nil:
		return fi.Size(), s.allow(verbOverwrite, p)
	case errors.Is(err, fs.ErrNotExist):
		return -1, nil
	}
	return -1, err
}

func (s *session) cmdREST(arg string) {
	n, err := strconv.ParseInt(strings.TrimSpace(arg), 10, 64)
	if err != nil || n < 0 {
		s.reply(501, "REST needs a non-negative byte offset.")
		return
	}
	if n > 0 && s.typ == wire.TypeASCII {
		s.reply(504, "REST is only supported in binary mode (TYPE I).")
		return
	}
	s.rest = n
	s.reply(350, "Restarting at "+strconv.FormatInt(n, 10)+". Send STOR or RETR.")
}

func (s *session) cmdALLO(arg string) {
	f := strings.Fields(arg)
	if len(f) == 0 || len(f) > 3 {
		s.reply(501, "Syntax error in ALLO.")
		return
	}
	if _, err := strconv.ParseUint(f[0], 10, 63); err != nil {
		s.reply(501, "ALLO needs a byte count.")
		return
	}
	s.reply(202, "No storage allocation necessary.")
}

func (s *session) cmdDELE(arg string) {
	p, err := s.resolve(arg)
	if err == nil {
		err = s.allow(verbDelete, p)
	}
	var fi fs.FileInfo
	if err == nil {
		fi, err = s.fs.Stat(s.ctx(), p.Rel())
	}
	if err == nil {
		err = s.fs.Remove(s.ctx(), p.Rel())
	}
	if err != nil {
		s.fail(err, "DELE")
		return
	}
	s.ustate.bytes.Add(-fi.Size())
	s.ustate.files.Add(-1)
	s.reply(250, "File deleted.")
}

func (s *session) cmdRNFR(arg string) {
	p, err := s.resolve(arg)
	if err == nil && p.IsRoot() {
		err = errDenied
	}
	if err == nil {
		err = s.allow(verbRename, p)
	}
	if err == nil {
		_, err = s.fs.Stat(s.ctx(), p.Rel())
	}
	if err != nil {
		s.fail(err, "RNFR")
		return
	}
	s.renameFrom = &p
	s.reply(350, "Ready for RNTO.")
}

func (s *session) cmdRNTO(arg string) {
	from := s.renameFrom
	s.renameFrom = nil
	if from == nil {
		s.reply(503, "RNFR required first.")
		return
	}
	p, err := s.resolve(arg)
	if err == nil && (p.IsRoot() || p.Within(*from) && p != *from) {
		err = reply(553, "Cannot move a directory into itself.")
	}
	if err == nil {
		err = s.allow(verbRename, p)
	}
	if err == nil && p.Base() != from.Base() {
		err = s.uploadName(p)
	}
	if err == nil {
		if _, serr := s.fs.Stat(s.ctx(), p.Rel()); serr == nil && p != *from {
			err = s.allow(verbOverwrite, p)
		}
	}
	if err == nil {
		err = s.fs.Rename(s.ctx(), from.Rel(), p.Rel())
	}
	if err != nil {
		s.fail(err, "RNTO")
		return
	}
	s.log.Info("rename", "user", s.userName, "from", from.String(), "path", p.String())
	s.reply(250, "Rename successful.")
}

func (s *session) cmdSIZE(arg string) {
	p, err := s.resolve(arg)
	if err == nil {
		err = s.allow(verbList, p)
	}
	var fi fs.FileInfo
	if err == nil {
		fi, err = s.fs.Stat(s.ctx(), p.Rel())
	}
	if err == nil && !fi.Mode().IsRegular() {
		err = reply(550, "Not a regular file.")
	}
	if err != nil {
		s.fail(err, "SIZE")
		return
	}
	// RFC 3659 §4: in ASCII mode SIZE would be the converted size; like most
	// servers we report the stored size in both types.
	s.reply(213, strconv.FormatInt(fi.Size(), 10))
}

func (s *session) cmdMDTM(arg string) {
	// Some clients send "MDTM YYYYMMDDHHMMSS path" to set the time.
	if ts, rest, ok := strings.Cut(arg, " "); ok && len(ts) >= 14 && isAllDigits(ts[:14]) {
		if _, err := wire.ParseTime(ts); err == nil {
			if p, err := s.resolve(rest); err == nil {
				if _, err := s.fs.Stat(s.ctx(), p.Rel()); err == nil {
					s.cmdMFMT(arg)
					return
				}
			}
		}
	}
	p, err := s.resolve(arg)
	if err == nil {
		err = s.allow(verbList, p)
	}
	var fi fs.FileInfo
	if err == nil {
		fi, err = s.fs.Stat(s.ctx(), p.Rel())
	}
	if err == nil && fi.IsDir() {
		err = reply(550, "Not a regular file.")
	}
	if err != nil {
		s.fail(err, "MDTM")
		return
	}
	s.reply(213, string(wire.AppendTime(nil, fi.ModTime())))
}

// cmdMFMT sets a file's modification time (draft-somers-ftp-mfxx).
func (s *session) cmdMFMT(arg string) {
	ts, name, ok := strings.Cut(arg, " ")
	if !ok || name == "" {
		s.reply(501, "Syntax: MFMT YYYYMMDDHHMMSS path.")
		return
	}
	t, err := wire.ParseTime(ts)
	if err != nil {
		s.reply(501, "Invalid time value.")
		return
	}
	p, err := s.resolve(name)
	if err == nil {
		err = s.allow(verbChmod, p)
	}
	if err == nil {
		err = s.fs.Chtimes(s.ctx(), p.Rel(), t)
	}
	if err != nil {
		s.fail(err, "MFMT")
		return
	}
	s.reply(213, "Modify="+string(wire.AppendTime(nil, t))+"; "+p.Base())
}

func isAllDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

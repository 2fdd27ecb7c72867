package ftp

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ferryftp/ferry/internal/access"
	"github.com/ferryftp/ferry/internal/ftp/wire"
	"github.com/ferryftp/ferry/internal/rate"
	"github.com/ferryftp/ferry/internal/sockopt"
	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/vpath"
)

func (s *session) typeName() string {
	if s.typ == wire.TypeASCII {
		return "ASCII"
	}
	return "BINARY"
}

func (s *session) cmdRETR(r *request) error {
	p := r.path
	if s.rest > r.info.Size() {
		return errRestPastEnd
	}
	f, err := s.fs.Open(s.ctx(), p, s.rest)
	if err != nil {
		return err
	}
	note := "Opening " + s.typeName() + " mode data connection for " + p.Base() +
		" (" + strconv.FormatInt(r.info.Size()-s.rest, 10) + " bytes)."
	ascii := s.typ == wire.TypeASCII
	timeout := s.site.DataTimeout
	lim := rate.Of(s.site.down, s.rates.down)
	size := r.info.Size() - s.rest
	if ascii {
		size = -1 // TYPE A changes the count
	}
	s.startTransfer("RETR", p.String(), "download", note, func(ctx context.Context, c net.Conn, progress *atomic.Int64) (int64, error) {
		var src io.Reader = storageReader{f}
		if of, ok := f.(storage.OSFiler); ok {
			src = of.OSFile() // lets the kernel send the file (sendfile)
		}
		if ascii {
			src = wire.NewASCIIReader(src)
		}
		return copyOut(ctx, c, src, size, timeout, lim, progress)
	}, func(err error) error { f.Close(); return err })
	s.xfer.size = size
	return nil
}

// refusedTLSLinger bounds how long a refused transfer's TLS data
// connection is held for the client to close it.
const refusedTLSLinger = 5 * time.Second

// errRestPastEnd refuses a REST offset beyond the end of the file, for
// downloads and uploads alike (ProFTPD answers 554 too): a restarted upload
// must not make a sparse file of any size.
var errRestPastEnd = reply(554, "Restart offset is beyond the end of the file.")

// abandonData closes a prepared data channel that a failed command will not
// use. Call it after the command's reply: a client that already connected
// then reads the reply first and end-of-file after it (basic-ftp, for one,
// takes a reset data connection for a failure of its own and never reads the
// reply).
func (s *session) abandonData() {
	if p := s.pasv; p != nil && s.protP {
		// Under PROT P a client that connected is in its TLS handshake:
		// the connection is held until it closes it after the reply, a
		// few seconds at most (sockopt.CloseListenerLinger).
		p.timer.Stop()
		sockopt.CloseListenerLinger(p.ln, refusedTLSLinger)
		p.acc.Close()
		p.release()
		s.pasv = nil
	}
	s.closePassive()
	s.activeSet = false
}

func (s *session) cmdSTOR(r *request) error { return s.store(r, false, false) }
func (s *session) cmdAPPE(r *request) error { return s.store(r, true, false) }

// cmdSTOU stores under a new unique name (RFC 959 §4.1.3; RFC 1123 §4.1.2.9
// gives the 150 text form "FILE: name"): the row picked the name.
func (s *session) cmdSTOU(r *request) error {
	s.rest = 0 // a new file has nothing to resume
	return s.store(r, false, true)
}

func (s *session) store(r *request, appendMode, unique bool) error {
	p, verb := r.path, r.verb
	if err := s.uploadCheck(r, appendMode); err != nil {
		return err
	}
	if (appendMode || s.rest > 0) && !s.caps().Has(storage.CapWriteAt) {
		return storage.ErrNotSupported // REST+STOR and APPE need in-place writes
	}
	inPlace := appendMode || s.rest > 0 || unique
	// REST at the file's end is an append (uploadCheck), and is written as
	// one: a file that grew since the look-up (another user's APPE) is not
	// cut back to the offset, which would need overwrite.
	offset := s.rest
	if !appendMode && r.info != nil && offset > 0 && offset == r.info.Size() {
		appendMode, offset = true, 0
	}
	// A whole upload by a user who may not overwrite must not replace a
	// file that appears under the name while it runs (the drop box).
	noReplace := !inPlace && s.allow(verbOverwrite, p) != nil
	// An APPE of a name that was free creates a file: one that appears
	// under the name meanwhile is not appended to by a user who may not.
	exclusive := unique || appendMode && r.info == nil && s.allow(verbAppend, p) != nil
	// A quota is kept by the storage below (package quota): Create
	// reserves a new name's file slot and each write its bytes.
	up, err := s.fs.Create(s.ctx(), p, storage.CreateOptions{
		Offset:    offset,
		Append:    appendMode,
		Exclusive: exclusive,
		NoReplace: noReplace,
		Perm:      0o666 &^ s.site.FileUmask,
		// The row's look-up, which the S3 backend need not repeat.
		Looked: r.looked,
		Found:  r.info,
	})
	if err != nil {
		return err
	}
	// A whole upload is hashed as it is received, for a backend that
	// stores the digests with the file (HASH then answers without
	// reading it): in TYPE A below the decoder, as it is written (hw);
	// in TYPE I in a goroutine beside the receive (hp, made when the
	// transfer runs and ended by its cleanup, in the same goroutine), or
	// inline (hw) when the server's pipes are all in use.
	ascii := s.typ == wire.TypeASCII
	var hw *hashWriter
	var hp *hashPipe
	var hashes []int
	setter, _ := up.(storage.HashSetter)
	if !inPlace && setter != nil && storage.HashStoreOf(s.fs) != nil {
		hashes = s.uploadHashes()
		if ascii {
			hw = newHashWriter(up, hashes)
		}
	}
	note := "Ok to send data."
	if unique {
		note = "FILE: " + p.Base()
	}
	timeout := s.site.DataTimeout
	lim := rate.Of(s.site.up, s.rates.up)
	log, raw := s.logger(), s.raw
	// The upload ends after this command has returned, and its context
	// with it: the commit gets a deadline of its own when it starts, and
	// is cancelled neither by ABOR (a cut in-place upload keeps what
	// arrived) nor by the end of the session (backendCtx reads only s.site,
	// fixed for the session's life, so the transfer goroutine may call it).
	base := context.WithoutCancel(s.sctx)
	s.startTransfer(verb, p.String(), "upload", note, func(ctx context.Context, c net.Conn, progress *atomic.Int64) (int64, error) {
		if hashes != nil && !ascii {
			// Beside the receive when a pipe is free, else inline.
			if hp = newHashPipe(hashes); hp == nil {
				hw = newHashWriter(up, hashes)
			}
		}
		var dst io.Writer = up
		if hw != nil {
			dst = hw
		}
		dst = lim.Writer(ctx, dst)
		var dec *wire.ASCIIDecoder
		if ascii {
			dec = wire.NewASCIIDecoder(dst)
			dst = dec
		}
		n, err := copyIn(ctx, dst, c, timeout, progress, hp)
		if err == nil && dec != nil {
			err = dec.Close()
		}
		return n, err
	}, func(err error) error {
		// In stream mode the end of the data connection is the end of
		// the file, so a client that died mid-upload looks like one that
		// finished: if its control connection is gone too, the upload
		// is not trusted.
		if err == nil && sockopt.PeerGone(raw) {
			err = errControlGone
		}
		// A whole upload replaces the old file. A cut in-place upload
		// keeps what arrived so the client can resume it; a full disk
		// or quota removes the partial data.
		full := errors.Is(err, storage.ErrQuota) || errors.Is(err, storage.ErrNoSpace)
		ctx, cancel := s.backendCtx(base)
		defer cancel()
		if hp != nil && err != nil {
			hp.end(true)
		}
		if err == nil || inPlace && !full {
			switch {
			case err == nil && hw != nil:
				setter.SetHashes(hw.sums())
			case err == nil && hp != nil:
				setter.SetHashes(hp.sums())
			}
			if cerr := up.Commit(ctx); cerr != nil {
				log.Warn("upload commit failed", "path", p.String(), "err", cerr)
				if err == nil {
					err = fromStorage(cerr)
				}
			}
			return err
		}
		up.Abort(ctx)
		return err
	})
	return nil
}

// errControlGone is an upload whose client closed the control connection
// before the data connection.
var errControlGone = errors.New("control connection closed during the upload")

// uploadCheck applies the finer upload verbs once the row has checked
// upload and looked the target up. Replacing a file needs overwrite; writing
// at its end (APPE, or REST at its size) needs append; writing at an offset
// inside it replaces its tail, so it is an overwrite too.
func (s *session) uploadCheck(r *request, appendMode bool) error {
	fi := r.info
	switch {
	case fi != nil && fi.IsDir():
		return storage.ErrIsDir
	case fi == nil && s.rest > 0:
		return errRestPastEnd
	case fi == nil:
		return nil
	case s.rest > fi.Size():
		return errRestPastEnd
	case appendMode || s.rest > 0 && s.rest == fi.Size():
		return s.allow(verbAppend, r.path)
	}
	return s.allow(verbOverwrite, r.path)
}

func (s *session) cmdREST(r *request) error {
	n, err := strconv.ParseInt(strings.TrimSpace(r.arg), 10, 64)
	if err != nil || n < 0 {
		return reply(501, "REST needs a non-negative byte offset.")
	}
	if n > 0 && s.typ == wire.TypeASCII {
		return reply(504, "REST is only supported in binary mode (TYPE I).")
	}
	s.rest = n
	s.reply(350, "Restarting at "+strconv.FormatInt(n, 10)+". Send STOR or RETR.")
	return nil
}

func (s *session) cmdALLO(r *request) error {
	f := strings.Fields(r.arg)
	if len(f) == 0 || len(f) > 3 {
		return reply(501, "Syntax error in ALLO.")
	}
	if _, err := strconv.ParseUint(f[0], 10, 63); err != nil {
		return reply(501, "ALLO needs a byte count.")
	}
	s.reply(202, "No storage allocation necessary.")
	return nil
}

func (s *session) cmdDELE(r *request) error {
	if err := s.fs.Remove(s.ctx(), r.path); err != nil {
		return err
	}
	s.reply(250, "File deleted.")
	s.changed(r, "", "")
	return nil
}

func (s *session) cmdRNFR(r *request) error {
	s.renameFrom = &r.path
	s.reply(350, "Ready for RNTO.")
	return nil
}

func (s *session) cmdRNTO(r *request) error {
	from, p := s.renameFrom, r.path
	s.renameFrom = nil
	switch {
	case from == nil:
		return reply(503, "RNFR required first.")
	case p.IsRoot() || p.Within(*from) && p != *from:
		return reply(553, "Cannot move a directory into itself.")
	}
	if p.Base() != from.Base() {
		if err := s.uploadName(p); err != nil {
			return err
		}
	}
	if r.info != nil && p != *from {
		if err := s.allow(verbOverwrite, p); err != nil {
			return err
		}
	}
	if err := s.keepsRules(*from, p); err != nil {
		return err
	}
	// A user who may not overwrite must not replace a file that appears
	// under the new name after the look-up: the rename refuses a taken
	// name then, where the backend can do that atomically.
	rename := s.fs.Rename
	if p != *from && s.allow(verbOverwrite, p) != nil {
		rename = func(ctx context.Context, from, to vpath.Path) error {
			err := storage.RenameNoReplace(ctx, s.fs, from, to)
			if errors.Is(err, storage.ErrNotSupported) {
				return s.fs.Rename(ctx, from, to)
			}
			return err
		}
	}
	if err := rename(s.ctx(), *from, p); err != nil {
		return err
	}
	s.reply(250, "Rename successful.")
	s.changed(r, from.String(), "")
	return nil
}

// errRenameRules refuses a rename that would change the permissions of
// what it moves.
var errRenameRules = reply(550, "Permission denied: the rename would change the permissions of what it moves.")

// keepsRules refuses a rename of from to to that would take a path out from
// under a stricter permission rule or put it under a looser one: at the
// renamed entry itself and at every rule below from or below to, the verbs
// that would apply after the move must be no more than those before. With
// no rule below either path and the same rules at both (the usual case),
// every rename passes.
func (s *session) keepsRules(from, to vpath.Path) error {
	if s.anon || len(s.rules) == 0 {
		return nil
	}
	// moved maps path q from under a to under b.
	moved := func(q string, a, b vpath.Path) string { return b.String() + q[len(a.String()):] }
	check := func(before, after string) error {
		if s.rules.Verbs(access.All, after)&^s.rules.Verbs(access.All, before) != 0 {
			return errRenameRules
		}
		return nil
	}
	if err := check(from.String(), to.String()); err != nil {
		return err
	}
	for _, q := range s.rules.Under(from.String()) {
		if err := check(q, moved(q, from, to)); err != nil {
			return err
		}
	}
	for _, q := range s.rules.Under(to.String()) {
		if err := check(moved(q, to, from), q); err != nil {
			return err
		}
	}
	return nil
}

func (s *session) cmdSIZE(r *request) error {
	// RFC 3659 §4: in ASCII mode SIZE would be the converted size; like most
	// servers we report the stored size in both types.
	s.reply(213, strconv.FormatInt(r.info.Size(), 10))
	return nil
}

// cmdMDTM reports a file's modification time (RFC 3659 §3). Some clients
// send "MDTM YYYYMMDDHHMMSS path" to set it: the row then treats it as MFMT.
func (s *session) cmdMDTM(r *request) error {
	if r.setTime {
		return s.cmdMFMT(r)
	}
	s.reply(213, string(wire.AppendTime(nil, r.info.ModTime())))
	return nil
}

// cmdMFMT sets a file's modification time (draft-somers-ftp-mfxx).
func (s *session) cmdMFMT(r *request) error {
	if !s.caps().Has(storage.CapChtimes) { // reached from MDTM too
		return storage.ErrNotSupported
	}
	if err := s.fs.Chtimes(s.ctx(), r.path, r.mtime); err != nil {
		return err
	}
	t := string(wire.AppendTime(nil, r.mtime))
	s.reply(213, "Modify="+t+"; "+r.path.Base())
	s.changed(r, "", t)
	return nil
}

func isAllDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

package ftp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"log/slog"

	"github.com/ferryftp/ferry/internal/event"
	"github.com/ferryftp/ferry/internal/quota"
	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/tlsbind"
	"github.com/ferryftp/ferry/internal/vpath"
)

// replyError is an error that is a reply: handlers return it when they know
// the exact code and text to send.
type replyError struct {
	code int
	msg  string
}

func (e *replyError) Error() string { return e.msg }

func reply(code int, msg string) error { return &replyError{code, msg} }

var errDenied = reply(550, "Permission denied.")

// errNotUTF8 refuses a name that is not UTF-8 on storage without
// storage.CapByteNames, before any storage call (and is the reply to a
// backend's storage.ErrNotUTF8).
var errNotUTF8 = reply(553, "File name not allowed: name is not valid UTF-8; this storage keeps UTF-8 names only.")

// replyFor maps an error to a reply code and text. It is the only place that
// does so: unknown errors are logged with an ID and the client sees a generic
// 451, never a host path or a raw error string.
func (s *session) replyFor(err error, op string) (int, string) {
	var re *replyError
	switch {
	case errors.As(err, &re):
		return re.code, re.msg
	case errors.Is(err, vpath.ErrControlName):
		return 553, "File name not allowed: it holds a control character."
	case errors.Is(err, vpath.ErrBadName):
		return 553, "File name not allowed: NUL, CR and LF cannot be part of a name."
	case errors.Is(err, storage.ErrNotUTF8):
		return 553, errNotUTF8.(*replyError).msg
	case errors.Is(err, storage.ErrNameTooLong):
		return 553, "File name not allowed: too long for this storage."
	case errors.Is(err, storage.ErrBadName):
		return 553, "File name not allowed by this storage."
	case errors.Is(err, storage.ErrPartial):
		s.logger().Warn("storage operation stopped partway", "op", op, "err", err)
		return 451, "Stopped partway: repeat the rename to finish it."
	case errors.Is(err, fs.ErrNotExist):
		return 550, "No such file or directory."
	case errors.Is(err, fs.ErrExist):
		return 550, "File exists."
	case errors.Is(err, fs.ErrPermission):
		return 550, "Permission denied."
	case errors.Is(err, storage.ErrIsDir):
		return 550, "Is a directory."
	case errors.Is(err, storage.ErrNotDir):
		return 550, "Not a directory."
	case errors.Is(err, storage.ErrNotEmpty):
		return 550, "Directory not empty."
	case errors.Is(err, quota.ErrFiles):
		return 552, "File quota exceeded."
	case errors.Is(err, storage.ErrQuota):
		return 552, "Quota exceeded; upload removed."
	case errors.Is(err, quota.ErrBusy):
		return 450, "File busy: an upload is writing it; try again later."
	case errors.Is(err, storage.ErrNoSpace) && isUpload(op):
		return 452, "Insufficient storage space; upload removed."
	case errors.Is(err, storage.ErrNoSpace):
		return 452, "Insufficient storage space."
	case errors.Is(err, storage.ErrNotSupported):
		return 502, "Not supported by this storage."
	case errors.Is(err, context.Canceled):
		// ABOR, QUIT, a lost connection or the end of the shutdown grace.
		return 451, "Requested action aborted."
	case errors.Is(err, context.DeadlineExceeded):
		s.logger().Warn("backend call timed out", "op", op)
		return 451, "Requested action aborted: storage did not answer in time."
	case isNetErr(err):
		// Outside the data connection (transferReply takes its errors
		// first) a network error is the storage's: an object store that
		// cannot be reached.
		ref := errorRef()
		s.logger().Error("storage unavailable", slog.String("op", op), slog.String("ref", ref), slog.Any("err", err))
		return 451, "Storage unavailable; try again later (ref " + ref + ")."
	}
	ref := errorRef()
	s.logger().Error("internal error", slog.String("op", op), slog.String("ref", ref), slog.Any("err", err))
	return 451, "Local error in processing (ref " + ref + ")."
}

// errorRef returns a fresh reference that ties a reply to its log record.
func errorRef() string {
	var id [4]byte
	rand.Read(id[:])
	return hex.EncodeToString(id[:])
}

// storageFailure marks an error of the storage side of a transfer (the
// upload's Write and Commit, the download's Read), so that transferReply
// does not take a network error inside it for a failed data connection:
// an object store that cannot be reached is not the client's fault.
type storageFailure struct{ err error }

func (e *storageFailure) Error() string { return e.err.Error() }
func (e *storageFailure) Unwrap() error { return e.err }

// fromStorage marks err as the storage's (see storageFailure); nil and
// the context's errors (ABOR, QUIT, timeouts) stay as they are.
func fromStorage(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &storageFailure{err}
}

// storageReader marks the errors of a download's source (fromStorage).
type storageReader struct{ r io.Reader }

func (s storageReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err == io.EOF {
		return n, err
	}
	return n, fromStorage(err)
}

// reuseHint ends the 522 of a data connection that did not resume the
// control session: most such clients cannot (Python's ftplib, Java's
// Commons Net), and the text names the setting that lets them in.
const reuseHint = "; clients that never resume (Python ftplib, Java Commons Net) need the server setting" +
	" tls_session_reuse = \"optional\" (--tls-session-reuse optional) or tls_reuse_exempt."

// isUpload reports the commands whose failure removes an upload.
func isUpload(op string) bool { return op == "STOR" || op == "APPE" || op == "STOU" }

// transferReply maps the error that ended a transfer: failures of the data
// connection first, then what replyFor maps for every command.
func (s *session) transferReply(err error, op string) (int, string) {
	var refusal *tlsRefusal
	var sf *storageFailure
	switch {
	case errors.As(err, &sf):
		return s.replyFor(sf.err, op)
	case errors.As(err, &refusal):
		s.logTLS("data", refusal.state, refusal.why)
		if refusal.why == tlsbind.NotResumed {
			return 522, "Data connection refused: " + refusal.why + reuseHint
		}
		return 522, "Data connection refused: " + refusal.why + "."
	case errors.Is(err, errDataTLS):
		s.emit(Event{Kind: KindTLS, Conn: "data", Result: "failed", Err: err})
		return 425, "Can't open data connection: TLS handshake failed."
	case isNetErr(err), errors.Is(err, context.Canceled):
		return 426, "Connection closed; transfer aborted."
	}
	return s.replyFor(err, op)
}

// refusal returns the policy that err is a refusal by (an event.Refused*
// reason), or "" when err is not one.
func refusal(err error) string {
	switch {
	case errors.Is(err, errDenied), errors.Is(err, errRenameRules), errors.Is(err, fs.ErrPermission):
		return event.RefusedPermission
	case errors.Is(err, storage.ErrQuota), errors.Is(err, quota.ErrFiles):
		return event.RefusedQuota
	case errors.Is(err, errDenyUpload), errors.Is(err, errHidden):
		return event.RefusedPattern
	case errors.Is(err, errSpecialBits):
		return event.RefusedPolicy
	}
	return ""
}

// refused reports an operation refused by policy, after its reply: the code
// is the reply's.
func (s *session) refused(cmd, path, why string) {
	s.emit(Event{Kind: KindRefused, Cmd: cmd, Path: path, Reason: why, Code: s.lastCode})
}

// changed reports a change the client made to its tree (the audit trail),
// after the reply: from is RNTO's old path, detail a new mode or time.
func (s *session) changed(r *request, from, detail string) {
	s.emit(Event{Kind: KindChange, Cmd: r.verb, Path: r.path.String(), From: from, Detail: detail, Result: "ok"})
}

// fail replies with the mapping of err.
func (s *session) fail(err error, op string) {
	code, msg := s.replyFor(err, op)
	s.reply(code, msg)
}

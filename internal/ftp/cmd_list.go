package ftp

import (
	"bufio"
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ferryftp/ferry/internal/access"
	"github.com/ferryftp/ferry/internal/escape"
	"github.com/ferryftp/ferry/internal/ftp/wire"
	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/vpath"
)

// listBatch is how many directory entries are read at a time: a listing of
// a million entries costs the memory of one batch.
const listBatch = 256

type listFormat int

const (
	formatLIST listFormat = iota
	formatNLST
	formatMLSD
)

func (s *session) cmdLIST(r *request) error { return s.list(r, formatLIST) }
func (s *session) cmdNLST(r *request) error { return s.list(r, formatNLST) }
func (s *session) cmdMLSD(r *request) error { return s.list(r, formatMLSD) }

// lister renders directory entries in one of the listing formats.
type lister struct {
	fsys   storage.FS
	format listFormat
	facts  wire.Facts
	perm   func(b []byte, p vpath.Path, isDir bool) []byte
	hidden func(name string) bool
	empty  bool // a drop box: the directory's entries are not shown
	now    time.Time
	buf    []byte
	// perms interns the perm facts: a listing has only a few distinct
	// ones, and an entry then costs no string of its own.
	perms   map[string]string
	scratch []byte
}

func (s *session) newLister(format listFormat) *lister {
	return &lister{
		fsys:   s.fs,
		format: format,
		facts:  s.facts,
		perm:   s.appendPerm,
		hidden: s.hiddenName,
		now:    time.Now(),
	}
}

// entry appends the line for one entry; names that could forge protocol
// lines are skipped, and other control characters are shown as '?'
// (escape.Listing), so a name found on disk cannot drive the terminal of
// whoever lists it. Neither can be created through Ferry.
// The entry's own path (for the perm fact) is self, or self's child name
// when child is set, built only when the perm fact is wanted.
func (l *lister) entry(fi fs.FileInfo, self vpath.Path, child bool, name, mlsType string) {
	if strings.ContainsAny(name, "\r\n\x00") {
		return
	}
	raw := name
	name = escape.Listing(name)
	switch l.format {
	case formatNLST:
		l.buf = append(l.buf, name...)
	case formatLIST:
		l.buf = wire.AppendListLine(l.buf, renamedInfo{fi, name}, "ftp", "ftp", l.now)
		if n := len(l.buf); n >= 2 && l.buf[n-2] == '\r' {
			return
		}
	case formatMLSD:
		if mlsType == "" {
			mlsType = "file"
			if fi.IsDir() {
				mlsType = "dir"
			}
		}
		e := wire.Entry{Name: name, Info: fi, Type: mlsType}
		if l.facts&wire.FactPerm != 0 {
			if child {
				self = self.Child(raw)
			}
			e.Perm = l.permString(self, fi.IsDir())
		}
		if l.facts&wire.FactUnique != 0 {
			e.Unique = uniqueFact(fi)
		}
		if l.facts&(wire.FactUnixOwner|wire.FactUnixGroup) != 0 {
			e.Owner, e.Group = ownerFacts(fi)
		}
		l.buf = wire.AppendFacts(l.buf, e, l.facts)
	}
	l.buf = append(l.buf, '\r', '\n')
}

// permString is the perm fact of p, interned.
func (l *lister) permString(p vpath.Path, isDir bool) string {
	l.scratch = l.perm(l.scratch[:0], p, isDir)
	if s, ok := l.perms[string(l.scratch)]; ok {
		return s
	}
	if l.perms == nil {
		l.perms = map[string]string{}
	}
	s := string(l.scratch)
	l.perms[s] = s
	return s
}

type renamedInfo struct {
	fs.FileInfo
	name string
}

func (r renamedInfo) Name() string { return r.name }

// write streams the listing of dir (or of the single file p) to w.
func (l *lister) write(ctx context.Context, w io.Writer, p vpath.Path) error {
	fi, err := l.fsys.Stat(ctx, p)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		name := p.Base()
		if l.format == formatNLST {
			name = p.String()
		}
		l.entry(fi, p, false, name, "")
		_, err := w.Write(l.buf)
		return err
	}
	if l.format == formatMLSD {
		l.entry(fi, p, false, ".", "cdir")
	}
	if l.empty {
		_, err := w.Write(l.buf)
		return err
	}
	it, err := l.fsys.ReadDir(ctx, p)
	if err != nil {
		return err
	}
	defer it.Close()
	for {
		batch, err := it.Next(listBatch)
		for _, e := range batch {
			name := e.Name()
			if l.hidden(name) {
				continue
			}
			l.entry(e, p, true, name, "")
		}
		if len(l.buf) > 0 {
			if _, werr := w.Write(l.buf); werr != nil {
				return werr
			}
			l.buf = l.buf[:0]
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// list sends the listing of the row's path (ls-style flags of LIST and
// NLST are accepted and ignored by the row: dot files are always shown,
// since hiding them, as vsftpd does, confuses mirrors).
func (s *session) list(r *request, format listFormat) error {
	p, verb := r.path, r.verb
	if format == formatMLSD && !r.info.IsDir() {
		return reply(501, "MLSD needs a directory; use MLST for a file.")
	}
	l := s.newLister(format)
	l.empty = s.inDropBox(p)
	timeout := s.site.DataTimeout
	ascii := "ASCII"
	s.startTransfer(verb, p.String(), "list", "Here comes the directory listing ("+ascii+" mode).", func(ctx context.Context, c net.Conn, progress *atomic.Int64) (int64, error) {
		cw := &countingWriter{progress: progress, c: c, timeout: timeout}
		bw := bufio.NewWriterSize(cw, 64<<10) // fewer, larger writes to the data connection
		err := l.write(ctx, bw, p)
		if err == nil {
			err = bw.Flush()
		}
		return cw.n, err
	}, nil)
	return nil
}

// countingWriter counts listing bytes and keeps the write deadline fresh.
type countingWriter struct {
	progress *atomic.Int64 // the transfer's
	c        net.Conn
	n        int64
	timeout  time.Duration
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.c.SetWriteDeadline(time.Now().Add(w.timeout))
	n, err := w.c.Write(p)
	w.n += int64(n)
	w.progress.Add(int64(n))
	return n, err
}

// cmdMLST describes one entry on the control connection (RFC 3659 §7.2).
func (s *session) cmdMLST(r *request) error {
	p, fi := r.path, r.info
	typ := "file"
	if fi.IsDir() {
		typ = "dir"
	}
	e := wire.Entry{Name: p.String(), Info: fi, Type: typ, Perm: s.permFact(p, fi.IsDir()), Unique: uniqueFact(fi)}
	e.Owner, e.Group = ownerFacts(fi)
	line := wire.AppendFacts(nil, e, s.facts)
	s.reply(250, "Listing "+p.String()+"\n"+string(line)+"\nEnd")
	return nil
}

// statList is STAT with a path: a listing on the control connection,
// under the same rules as LIST.
var statList = &command{handler: (*session).statPath, path: pathList, verb: access.List, stat: statExists}

// cmdSTAT without an argument reports the session; with a path it lists it
// on the control connection (RFC 959 §4.1.3). During a transfer it reports
// the transfer's progress.
func (s *session) cmdSTAT(r *request) error {
	if r.arg != "" && s.xfer == nil && s.user != nil {
		s.run(statList, "STAT", r.arg)
		return nil
	}
	var b strings.Builder
	b.WriteString("Ferry FTP server status:\n")
	b.WriteString("Connected to " + s.remote.Addr().String() + "\n")
	if s.user != nil {
		b.WriteString("Logged in as " + s.user.Name + "\n")
	} else {
		b.WriteString("Not logged in\n")
	}
	b.WriteString("TYPE: " + s.typeName() + ", STRUcture: File, MODE: Stream\n")
	if s.tlsOn {
		b.WriteString("Control connection is protected by TLS\n")
	}
	if s.xfer != nil {
		b.WriteString(s.xfer.status(time.Now()))
	} else {
		b.WriteString("No data connection\n")
	}
	b.WriteString("End of status")
	s.reply(211, b.String())
	return nil
}

// statPath streams the listing as one 213 reply; errors before its first
// line are the row's to reply to.
func (s *session) statPath(r *request) error {
	p := r.path
	l := s.newLister(formatLIST)
	l.empty = s.inDropBox(p)
	out := s.newLongReply(213, "Status of "+p.String()+":")
	// Its length is the client's: written under the write deadline, not
	// bounded by the backend's.
	err := l.write(s.longCtx(), out, p)
	switch {
	case err == nil:
		out.end("End of status")
	case !out.started:
		return err
	case !s.closing:
		// Part of the listing is out: the reply can only end.
		s.logger().Warn("STAT listing cut short", "path", p.String(), "err", err)
		out.end("End of status (listing incomplete)")
	}
	return nil
}

// permFact renders the RFC 3659 §7.5.5 perm fact from the access rules.
func (s *session) permFact(p vpath.Path, isDir bool) string {
	return string(s.appendPerm(nil, p, isDir))
}

// appendPerm appends the perm fact of p to b.
func (s *session) appendPerm(b []byte, p vpath.Path, isDir bool) []byte {
	if isDir {
		if s.allow(verbUpload, p.Child("x")) == nil {
			b = append(b, 'c')
		}
		if s.allow(verbDelete, p) == nil {
			b = append(b, 'd')
		}
		b = append(b, 'e')
		if s.allow(verbRename, p) == nil {
			b = append(b, 'f')
		}
		b = append(b, 'l')
		if s.allow(verbMkdir, p.Child("x")) == nil {
			b = append(b, 'm')
		}
		if s.allow(verbDelete, p.Child("x")) == nil {
			b = append(b, 'p')
		}
		return b
	}
	if s.allow(verbAppend, p) == nil {
		b = append(b, 'a')
	}
	if s.allow(verbDelete, p) == nil {
		b = append(b, 'd')
	}
	if s.allow(verbRename, p) == nil {
		b = append(b, 'f')
	}
	if s.allow(verbDownload, p) == nil {
		b = append(b, 'r')
	}
	if s.allow(verbOverwrite, p) == nil {
		b = append(b, 'w')
	}
	return b
}

// uniqueFact identifies a file by device and inode where the OS tells them.
func uniqueFact(fi fs.FileInfo) string {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		var b [33]byte // one allocation, not three
		u := strconv.AppendUint(b[:0], uint64(st.Dev), 16)
		u = append(u, 'g')
		return string(strconv.AppendUint(u, st.Ino, 16))
	}
	return ""
}

// ownerFacts gives the UNIX.owner and UNIX.group facts, the numeric IDs,
// where the OS tells them (storage.CapUnixStat); "" otherwise.
func ownerFacts(fi fs.FileInfo) (owner, group string) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return strconv.FormatUint(uint64(st.Uid), 10), strconv.FormatUint(uint64(st.Gid), 10)
	}
	return "", ""
}

// inDropBox reports an anonymous session looking into the drop box, whose
// contents are not shown.
func (s *session) inDropBox(p vpath.Path) bool {
	return s.anon && s.site.hasDropBox() && p.Within(s.site.DropBox)
}

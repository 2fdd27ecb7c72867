package ftp

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferryftp/ferry/internal/ftp/wire"
	"github.com/ferryftp/ferry/internal/rate"
	"github.com/ferryftp/ferry/internal/sockopt"
)

// xferEvent is what a transfer goroutine tells its session. It never writes
// a reply itself: the session answers 150 on opened and 226/4xx/5xx on done.
type xferEvent struct {
	opened bool
	peer   netip.AddrPort       // with opened: the data connection's other end
	tls    *tls.ConnectionState // the data connection's TLS, for the log
	done   bool
	bytes  int64
	err    error
	// code and text, when code is set, are the success reply of
	// background work (startWork) in place of 226.
	code int
	text string
}

// transfer is one running data transfer.
type transfer struct {
	events  chan xferEvent
	cancel  context.CancelFunc
	opened  bool
	aborted bool // cancelled by the session
	abor    bool // by the client's ABOR, which gets its 226
	// work is background work without a data connection (startWork): it
	// never opens, so only ABOR and QUIT are handled while it runs, and
	// its own command gets a reply however it ends.
	work  bool
	verb  string
	mode  string // the data connection's: PASV, EPSV, PORT or EPRT
	path  string
	dir   string // "download", "upload", "list" or "hash"
	ascii bool   // in TYPE A
	start time.Time
	note  string // 150 text
	// size is the bytes the transfer will move when known (a download's
	// file from its offset), -1 otherwise; fixed before the transfer is
	// published.
	size int64
	// openedAt is when the data connection opened (the 150); guarded by
	// the session goroutine, zero until then.
	openedAt time.Time
	// progress counts the bytes moved so far; the transfer goroutine's work
	// adds to it while Server.SessionSnapshots reads it.
	progress atomic.Int64
}

// work moves the data of one transfer over an open data connection,
// adding the bytes it moves to progress as they go.
type work func(ctx context.Context, c net.Conn, progress *atomic.Int64) (int64, error)

// startTransfer runs w on a new data connection in its own goroutine.
// cleanup, when set, runs in the transfer goroutine with the outcome and
// returns the final one (an upload's commit can still fail).
func (s *session) startTransfer(verb, path, dir, note string, w work, cleanup func(err error) error) {
	spec := s.takeData()
	ctx, cancel := context.WithCancel(s.sctx)
	t := &transfer{
		events: make(chan xferEvent, 2),
		cancel: cancel,
		verb:   verb,
		mode:   spec.mode,
		path:   path,
		dir:    dir,
		ascii:  s.typ == wire.TypeASCII,
		start:  time.Now(),
		note:   note,
		size:   -1,
	}
	s.xfer = t
	s.rest = 0
	go func() {
		defer cancel()
		c, err := spec.open(ctx)
		if err != nil {
			if cleanup != nil {
				err = cleanup(err)
			}
			t.events <- xferEvent{done: true, err: err}
			return
		}
		t.events <- xferEvent{opened: true, peer: addrPort(c.RemoteAddr())}
		var state *tls.ConnectionState
		if spec.tls != nil {
			tc, err := spec.secure(ctx, c)
			if err != nil {
				c.Close()
				if cleanup != nil {
					err = cleanup(err)
				}
				t.events <- xferEvent{done: true, err: err}
				return
			}
			cs := tc.ConnectionState()
			state, c = &cs, tc
		}
		stop := context.AfterFunc(ctx, func() { c.Close() })
		n, err := w(ctx, c, &t.progress)
		stop()
		if err == nil {
			closeData(c)
		} else {
			c.Close()
		}
		if ctx.Err() != nil && err == nil {
			err = ctx.Err()
		}
		if cleanup != nil {
			err = cleanup(err)
		}
		t.events <- xferEvent{done: true, bytes: n, err: err, tls: state}
	}()
}

// status describes the running transfer for STAT (RFC 959 §4.1.3: during
// a transfer STAT reports its progress): the bytes moved, the size when
// known, and the mean rate since the data connection opened.
func (t *transfer) status(now time.Time) string {
	n := t.progress.Load()
	var b strings.Builder
	b.WriteString("Transfer in progress: " + t.verb + " " + t.path + "\n")
	b.WriteString("Bytes transferred: " + strconv.FormatInt(n, 10))
	if t.size >= 0 {
		b.WriteString(" of " + strconv.FormatInt(t.size, 10))
		if t.size > 0 {
			b.WriteString(" (" + strconv.FormatInt(n*100/t.size, 10) + "%)")
		}
	}
	b.WriteString("\n")
	if t.openedAt.IsZero() {
		b.WriteString("Waiting for the data connection\n")
		return b.String()
	}
	d := now.Sub(t.openedAt)
	rate := int64(0)
	if d > 0 {
		rate = int64(float64(n) / d.Seconds())
	}
	b.WriteString("Rate: " + strconv.FormatInt(rate, 10) + " bytes/s over " + d.Round(time.Millisecond).String() + "\n")
	return b.String()
}

// backgroundWork is work in the transfer slot without a data connection:
// it returns the success reply, or an error.
type backgroundWork func(ctx context.Context, progress *atomic.Int64) (code int, text string, n int64, err error)

// startWork runs w in the transfer slot, in its own goroutine, under a
// context that ABOR, QUIT, the loss of the connection and the end of the
// shutdown grace cancel; cleanup, when set, runs in that goroutine after w.
// Its command gets w's reply, or the mapping of its error (426 when it was
// cancelled).
func (s *session) startWork(verb, path string, w backgroundWork, cleanup func()) {
	ctx, cancel := context.WithCancel(s.sctx)
	t := &transfer{
		events: make(chan xferEvent, 1),
		cancel: cancel,
		work:   true,
		verb:   verb,
		path:   path,
		dir:    "hash",
		start:  time.Now(),
		size:   -1,
	}
	s.xfer = t
	go func() {
		defer cancel()
		code, text, n, err := w(ctx, &t.progress)
		if cleanup != nil {
			cleanup()
		}
		if err == nil && ctx.Err() != nil {
			err = ctx.Err()
		}
		t.events <- xferEvent{done: true, bytes: n, err: err, code: code, text: text}
	}()
}

// closeData ends a data connection after a transfer; for TLS it sends
// close_notify so the client can tell a complete file from a cut one.
func closeData(c net.Conn) {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if tc, ok := c.(*tls.Conn); ok {
		tc.CloseWrite()
	}
	c.Close()
}

// transferEvent handles an event of the running transfer.
func (s *session) transferEvent(ev xferEvent) {
	t := s.xfer
	if ev.opened {
		t.opened, t.openedAt = true, time.Now()
		s.emit(Event{Kind: KindData, Result: "opened", Cmd: t.mode, Peer: ev.peer})
		s.reply(150, t.note)
		return
	}
	s.finishTransfer(ev)
}

// finishTransfer writes the final reply of the transfer and logs it.
func (s *session) finishTransfer(ev xferEvent) {
	t := s.xfer
	s.xfer = nil
	t.cancel()
	if ev.tls != nil {
		s.emit(Event{Kind: KindTLS, Conn: "data", Result: "ok", TLS: ev.tls})
	}
	result := "ok"
	switch {
	case t.aborted && ev.err != nil:
		result = "aborted"
		switch {
		case t.work:
			s.reply(426, t.verb+" aborted.")
		case t.opened:
			s.reply(426, "Transfer aborted; data connection closed.")
		}
	case ev.err == nil && ev.code != 0:
		s.reply(ev.code, ev.text)
	case ev.err == nil:
		s.reply(226, "Transfer complete.")
	default:
		result = "failed"
		s.reply(s.transferReply(ev.err, t.verb))
	}
	e := Event{Kind: KindTransfer, Cmd: t.verb, Path: t.path, Direction: t.dir, ASCII: t.ascii, Bytes: ev.bytes,
		Duration: time.Since(t.start), Result: result, Method: s.method, Detail: s.anonID, Code: s.lastCode}
	if result != "ok" {
		e.Err = ev.err
		e.Reason = refusal(ev.err)
	}
	s.emit(e)
	if e.Reason != "" {
		s.refused(t.verb, t.path, e.Reason)
	}
	if t.abor {
		s.reply(226, "ABOR successful.")
	}
}

// abortTransfer cancels the running transfer and waits for it to end; abor
// says the client asked for it, with ABOR (RFC 959 §4.1.3: 426, then 226).
func (s *session) abortTransfer(abor bool) {
	if s.xfer == nil {
		return
	}
	s.xfer.aborted = true
	s.xfer.abor = abor
	s.xfer.cancel()
	for ev := range s.xfer.events {
		if ev.opened {
			s.xfer.opened = true
			s.emit(Event{Kind: KindData, Result: "opened", Cmd: s.xfer.mode, Peer: ev.peer})
			continue
		}
		s.finishTransfer(ev)
		return
	}
}

func (s *session) cmdABOR(r *request) error {
	if s.xfer == nil {
		s.closePassive()
		s.activeSet, s.rest = false, 0
		s.reply(225, "No transfer to abort.")
		return nil
	}
	s.abortTransfer(true)
	return nil
}

// isNetErr reports a data connection that failed under the transfer.
func isNetErr(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrClosedPipe)
}

// bufPool holds transfer buffers, so an idle session owns none.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// chunk is how much a download may send per deadline: a client slower than
// chunk per data timeout is considered stalled.
const chunk = 256 << 10

// copyOut sends src to c, refreshing the write deadline as data moves and
// waiting on the rate limits. An *os.File source reaches a plain TCP
// connection through sendfile, also under wrappers that allow it (see
// internal/sockopt), which are told the bytes sent beneath them. size is
// what src holds when known, -1 otherwise: a file of at most chunk bytes
// goes by the poller's sendfile below, two system calls where the
// blocking one (sockopt.SendFile) takes nine to set up and tear down.
func copyOut(ctx context.Context, c net.Conn, src io.Reader, size int64, timeout time.Duration, lim rate.Limits, progress *atomic.Int64) (int64, error) {
	// A bulk download sends full segments while the data flows, and the
	// tail at once when the copy ends; one of at most a chunk has too
	// little to coalesce to be worth the two system calls.
	bulk := size < 0 || size > chunk
	if bulk {
		defer sockopt.Coalesce(c)()
	}
	if tc := sockopt.TCP(c); tc != nil && len(lim) == 0 && bulk {
		if f, ok := src.(*os.File); ok {
			return sockopt.SendFile(ctx, tc, f, timeout, func(n int64) {
				progress.Add(n)
				sockopt.NotifySent(c, n)
			})
		}
	}
	var total int64
	step := int64(chunk)
	if len(lim) > 0 {
		step = 32 << 10
	}
	// A file (rate-limited or small here) reaches a plain TCP connection through
	// its ReadFrom, which hands a limited *os.File to sendfile. Anything
	// else (an object store's body, TYPE A) is copied below in writes of
	// a whole step: ReadFrom would copy it 32 KiB at a time, which took a
	// RETR from S3 from 1.1 GB/s to 0.78 and cost half again its CPU.
	_, isFile := src.(*os.File)
	if _, plain := c.(*net.TCPConn); plain && isFile {
		for {
			if err := lim.Wait(ctx, int(step)); err != nil {
				return total, err
			}
			c.SetWriteDeadline(time.Now().Add(timeout))
			n, err := io.CopyN(c, src, step)
			total += n
			progress.Add(n)
			if err == io.EOF {
				return total, nil
			}
			if err != nil {
				return total, err
			}
		}
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := (*bp)[:step]
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if err := lim.Wait(ctx, n); err != nil {
				return total, err
			}
			c.SetWriteDeadline(time.Now().Add(timeout))
			if _, err := c.Write(buf[:n]); err != nil {
				return total, err
			}
			total += int64(n)
			progress.Add(int64(n))
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

// copyIn receives from c into dst until the client closes the connection,
// writing what each read brings at once. With hp, it receives into hp's
// buffers, each one until less than an eighth of it is left (a TLS read
// brings one 16 KiB record), and then hands it to hp, whose goroutine
// hashes it meanwhile: only for a binary upload, whose bytes on the wire
// are the bytes of the file.
func copyIn(ctx context.Context, dst io.Writer, c net.Conn, timeout time.Duration, progress *atomic.Int64, hp *hashPipe) (int64, error) {
	var bp *[]byte
	off := 0 // with hp: the bytes received into *bp
	if hp == nil {
		bp = bufPool.Get().(*[]byte)
		defer bufPool.Put(bp)
	} else {
		defer func() {
			if bp != nil {
				hp.hash(bp, off)
			}
		}()
	}
	var total int64
	for {
		if hp != nil && (bp == nil || len(*bp)-off < len(*bp)/8) {
			if bp != nil {
				hp.hash(bp, off) // still ours to read until the next buffer
			}
			bp, off = hp.buffer(), 0
		}
		buf := (*bp)[off:]
		c.SetReadDeadline(time.Now().Add(timeout))
		n, rerr := c.Read(buf)
		if n > 0 {
			if _, err := dst.Write(buf[:n]); err != nil {
				return total, fromStorage(err)
			}
			total += int64(n)
			progress.Add(int64(n))
		}
		if hp != nil {
			off += n
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

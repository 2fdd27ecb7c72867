package wire

import (
	"bytes"
	"io"
)

// Telnet command bytes (RFC 854, "TELNET COMMAND STRUCTURE").
const (
	telnetSE   = 240 // end of subnegotiation
	telnetSB   = 250 // start of subnegotiation
	telnetWILL = 251 // WILL, WONT, DO and DONT (251..254) take one option byte
	telnetIAC  = 255 // interpret as command
)

// telnetState is where the Reader is inside a Telnet command sequence.
type telnetState uint8

const (
	tnData   telnetState = iota // ordinary data
	tnIAC                       // after IAC
	tnOption                    // after IAC WILL/WONT/DO/DONT: the next byte is the option code
	tnSub                       // inside IAC SB … IAC SE
	tnSubIAC                    // inside a subnegotiation, after IAC
)

const (
	// readBufSize is small because every idle session keeps its buffer
	// (its reader waits in Read on it): control lines are short, and a
	// long one only takes a few more reads.
	readBufSize = 256
	// keepLineCap is the largest line buffer kept between lines; a
	// longer line's buffer is dropped once the line is returned.
	keepLineCap   = 256
	maxEmptyReads = 100 // as bufio: a reader returning 0, nil this often is broken
)

// Reader reads control-connection lines (RFC 959 §4.1) and removes the
// Telnet commands embedded in them (RFC 854), so that no IAC sequence ever
// reaches a command argument or a file name.
//
// A Reader is not safe for concurrent use; one goroutine reads the control
// connection.
type Reader struct {
	rd  io.Reader
	max int // longest line returned, in bytes, without its terminator; > 0

	buf        []byte // read buffer; buf[start:end] has not been scanned yet
	start, end int

	line    []byte      // data bytes of the current line; len(line) <= max+1 (room for the CR of CRLF)
	pending int         // bytes scanned since the last line ended (data, Telnet and discarded bytes)
	state   telnetState // Telnet state; always tnData between lines
	tooLong bool        // the current line exceeded max: its bytes are discarded up to LF
	err     error       // error from rd, reported once buf[start:end] is drained
}

// NewReader returns a Reader that reads lines of at most max bytes (not
// counting the line terminator) from r. It panics if max < 1.
func NewReader(r io.Reader, max int) *Reader {
	if max < 1 {
		panic("wire: NewReader: max must be positive")
	}
	// The line buffer grows with the first line (up to max+1 bytes).
	return &Reader{rd: r, max: max, buf: make([]byte, readBufSize)}
}

// ReadLine returns the next line without its terminator. CRLF and a bare LF
// both end a line; a CR not followed by LF is kept as data for the engine to
// refuse.
//
// Telnet sequences (RFC 854) are removed: IAC IAC becomes one 0xFF byte;
// IAC WILL/WONT/DO/DONT and their option byte are dropped; IAC SB … IAC SE is
// dropped, though an LF inside it still ends the line, so a stray SB cannot
// swallow commands; any other IAC command (IP, DM, AO, AYT, NOP, …) is
// dropped. An IAC followed by a byte that is not a Telnet command drops only
// the IAC.
//
// A line longer than max is discarded through its LF and ReadLine returns
// ("", ErrLineTooLong); the Reader stays usable. At the end of input it
// returns io.EOF, or io.ErrUnexpectedEOF if an unterminated partial line was
// pending (the partial line is dropped). Other read errors are returned as is,
// once; the partial line is kept, so a call after a timeout resumes it.
//
// Apart from the returned string, ReadLine allocates only to grow its line
// buffer, which it keeps for lines of up to keepLineCap bytes.
func (r *Reader) ReadLine() (string, error) {
	for {
		if r.start == r.end {
			if r.err != nil {
				return "", r.readErr()
			}
			r.fill()
			continue
		}
		if line, done, err := r.scan(); done {
			return line, err
		}
	}
}

// fill reads once into the empty buffer.
func (r *Reader) fill() {
	for range maxEmptyReads {
		n, err := r.rd.Read(r.buf)
		if n < 0 || n > len(r.buf) {
			n, err = 0, io.ErrShortBuffer // a broken io.Reader; never trust n
		}
		r.start, r.end = 0, n
		if err != nil {
			r.err = err
			return
		}
		if n > 0 {
			return
		}
	}
	r.err = io.ErrNoProgress
}

// readErr reports r.err once the buffer is drained. io.EOF stays sticky;
// other errors are cleared so that a later call can retry.
func (r *Reader) readErr() error {
	err := r.err
	if err == io.EOF {
		if r.pending > 0 {
			r.resetLine()
			return io.ErrUnexpectedEOF
		}
		return io.EOF
	}
	r.err = nil
	return err
}

func (r *Reader) resetLine() {
	r.line = r.line[:0]
	r.pending = 0
	r.state = tnData
	r.tooLong = false
}

// scan consumes buf[start:end] up to and including the next line end. done
// reports whether a line (or ErrLineTooLong) is ready.
func (r *Reader) scan() (line string, done bool, err error) {
	b := r.buf[r.start:r.end]
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch r.state {
		case tnData:
			switch c {
			case '\n':
				r.start += i + 1
				line, err = r.endLine()
				return line, true, err
			case telnetIAC:
				r.state = tnIAC
			default:
				// Copy the run of ordinary bytes in one go.
				run := b[i:]
				if k := bytes.IndexByte(run, '\n'); k >= 0 {
					run = run[:k]
				}
				if k := bytes.IndexByte(run, telnetIAC); k >= 0 {
					run = run[:k]
				}
				r.appendData(run)
				i += len(run) - 1
			}
		case tnIAC:
			switch {
			case c == telnetIAC: // escaped 0xFF data byte
				r.state = tnData
				r.appendData(b[i : i+1])
			case c >= telnetWILL:
				r.state = tnOption
			case c == telnetSB:
				r.state = tnSub
			case c >= telnetSE: // NOP, DM, BRK, IP, AO, AYT, EC, EL, GA, SE
				r.state = tnData
			default:
				// Not a Telnet command; RFC 854 leaves it undefined. Drop the
				// IAC and take the byte as data (an LF still ends the line).
				r.state = tnData
				i--
			}
		case tnOption:
			r.state = tnData
		case tnSub:
			switch c {
			case telnetIAC:
				r.state = tnSubIAC
			case '\n':
				r.state = tnData
				i--
			}
		case tnSubIAC:
			switch c {
			case telnetSE:
				r.state = tnData
			case '\n':
				r.state = tnData
				i--
			default:
				r.state = tnSub
			}
		}
	}
	r.pending += len(b)
	r.start = r.end
	return "", false, nil
}

// appendData adds data bytes to the current line, switching to discard mode
// once the line cannot fit in max bytes even after removing a CR before LF.
func (r *Reader) appendData(p []byte) {
	if r.tooLong {
		return
	}
	if room := r.max + 1 - len(r.line); len(p) > room {
		r.tooLong = true
		r.line = r.line[:0]
		return
	}
	r.line = append(r.line, p...)
}

// endLine finishes the current line at its LF.
func (r *Reader) endLine() (string, error) {
	tooLong := r.tooLong
	l := r.line
	if n := len(l); n > 0 && l[n-1] == '\r' {
		l = l[:n-1]
	}
	r.resetLine()
	line, err := "", error(nil)
	switch {
	case tooLong || len(l) > r.max:
		err = ErrLineTooLong
	case len(l) > 0:
		line = string(l)
	}
	if cap(r.line) > keepLineCap {
		r.line = nil // an idle session keeps no long line's buffer
	}
	return line, err
}

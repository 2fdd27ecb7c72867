package wire

import (
	"bytes"
	"io"
)

// asciiChunk bounds how much input one conversion step handles, so the
// internal buffer stays small however large the caller's writes are.
const asciiChunk = 32 << 10

// NewASCIIEncoder returns a Writer for TYPE A downloads (RFC 959 §3.1.1.1):
// it writes what it is given to w with each LF not already preceded by CR
// turned into CRLF. A CR is passed through, and a CRLF already in the file
// (or in a listing) stays CRLF rather than becoming CR CR LF. Writes may be
// split anywhere, even between CR and LF. Each Write makes at most one call to
// w per 32 KiB of input, so a TLS data connection is not flooded with tiny
// records. On error the returned count may understate what was consumed.
func NewASCIIEncoder(w io.Writer) io.Writer {
	return &asciiEncoder{w: w}
}

type asciiEncoder struct {
	w      io.Writer
	prevCR bool   // the last byte written was CR
	buf    []byte // reused output buffer
}

func (e *asciiEncoder) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		seg := p[:min(len(p), asciiChunk)]
		out := e.buf[:0]
		prevCR := e.prevCR
		rest := seg
		for {
			i := bytes.IndexByte(rest, '\n')
			if i < 0 {
				out = append(out, rest...)
				break
			}
			if i > 0 {
				prevCR = rest[i-1] == '\r'
			}
			out = append(out, rest[:i]...)
			if !prevCR {
				out = append(out, '\r')
			}
			out = append(out, '\n')
			rest = rest[i+1:]
			prevCR = false
		}
		e.buf = out
		e.prevCR = seg[len(seg)-1] == '\r'
		if err := writeAll(e.w, out); err != nil {
			return n, err
		}
		n += len(seg)
		p = p[len(seg):]
	}
	return n, nil
}

// ASCIIDecoder wraps the destination of a TYPE A upload (RFC 959 §3.1.1.1):
// each CRLF becomes LF; a CR not followed by LF is kept. A CR ending one Write
// is held until the next byte shows whether an LF follows, so Close must be
// called at the end of the upload to write a held CR.
type ASCIIDecoder struct {
	w         io.Writer
	pendingCR bool   // a CR ended the last Write and is not written yet
	buf       []byte // reused output buffer
}

// NewASCIIDecoder returns an ASCIIDecoder writing to w.
func NewASCIIDecoder(w io.Writer) *ASCIIDecoder {
	return &ASCIIDecoder{w: w}
}

// Write converts p and writes it to w, at most one call to w per 32 KiB of
// input. It reports all of p as written on success, including a held CR. On
// error the returned count may understate what was consumed.
func (d *ASCIIDecoder) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		seg := p[:min(len(p), asciiChunk)]
		out := d.buf[:0]
		rest := seg
		if d.pendingCR {
			d.pendingCR = false
			if rest[0] != '\n' {
				out = append(out, '\r')
			}
		}
		for {
			i := bytes.IndexByte(rest, '\r')
			if i < 0 {
				out = append(out, rest...)
				break
			}
			out = append(out, rest[:i]...)
			rest = rest[i+1:]
			if len(rest) == 0 {
				d.pendingCR = true
				break
			}
			if rest[0] != '\n' {
				out = append(out, '\r')
			}
		}
		d.buf = out
		if err := writeAll(d.w, out); err != nil {
			return n, err
		}
		n += len(seg)
		p = p[len(seg):]
	}
	return n, nil
}

// Close writes a held CR, if any. It does not close the underlying writer.
func (d *ASCIIDecoder) Close() error {
	if !d.pendingCR {
		return nil
	}
	d.pendingCR = false
	return writeAll(d.w, []byte{'\r'})
}

// writeAll writes b to w, turning a short write without error into
// io.ErrShortWrite as io.Copy does.
func writeAll(w io.Writer, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	n, err := w.Write(b)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	return err
}

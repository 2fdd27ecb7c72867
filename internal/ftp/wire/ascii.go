package wire

import (
	"bytes"
	"io"
)

// asciiChunk bounds how much input one decoding step handles, so the
// internal buffer stays small however large the caller's writes are.
const asciiChunk = 32 << 10

// NewASCIIReader returns a Reader for TYPE A downloads (RFC 959 §3.1.1.1):
// it reads from r and turns each LF not already preceded by CR into CRLF. A
// CR is passed through, and a CRLF already in the file stays CRLF rather than
// becoming CR CR LF. It converts in place in the caller's buffer: each Read
// reads at most half of len(p) from r, so it keeps no buffer of its own and a
// large copy buffer still makes large reads.
func NewASCIIReader(r io.Reader) io.Reader {
	return &asciiReader{r: r}
}

type asciiReader struct {
	r      io.Reader
	prevCR bool // the last byte read from r was CR
	pendLF bool // a CR was returned as the last byte of p; its LF is owed
}

func (a *asciiReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if a.pendLF {
		a.pendLF = false
		p[0] = '\n'
		return 1, nil
	}
	// Read into the second half, so each LF can grow into CRLF in place
	// without overtaking the bytes still to be converted.
	half := max(len(p)/2, 1)
	n, err := a.r.Read(p[len(p)-half:])
	src := p[len(p)-half : len(p)-half+n]
	out := 0
	for _, b := range src {
		if b == '\n' && !a.prevCR {
			p[out] = '\r'
			out++
			if out == len(p) {
				a.pendLF, a.prevCR = true, false
				break
			}
		}
		a.prevCR = b == '\r'
		p[out] = b
		out++
	}
	return out, err
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

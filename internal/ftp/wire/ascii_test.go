package wire

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// encodeRef is the obvious definition: an LF not preceded by CR gets one.
func encodeRef(in []byte) []byte {
	var out []byte
	for i, c := range in {
		if c == '\n' && (i == 0 || in[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}

// decodeRef: every CRLF becomes LF, scanning left to right.
func decodeRef(in []byte) []byte {
	return bytes.ReplaceAll(in, []byte("\r\n"), []byte("\n"))
}

// smallReader hands out its data in reads of at most n bytes.
type smallReader struct {
	b []byte
	n int
}

func (r *smallReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	k := min(len(p), r.n, len(r.b))
	copy(p, r.b[:k])
	r.b = r.b[k:]
	return k, nil
}

// encodeChunks converts in through an ASCII reader whose source hands out at
// most srcChunk bytes a read and whose caller reads into a dstBuf-byte buffer.
func encodeChunks(t testing.TB, in []byte, srcChunk, dstBuf int) []byte {
	t.Helper()
	r := NewASCIIReader(&smallReader{b: in, n: srcChunk})
	buf := make([]byte, dstBuf)
	var out []byte
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// writeChunks writes in through w in pieces cut at the given offsets.
func writeChunks(t testing.TB, w io.Writer, in []byte, cuts []int) {
	t.Helper()
	prev := 0
	for _, c := range append(cuts, len(in)) {
		c = min(max(c, prev), len(in))
		n, err := w.Write(in[prev:c])
		if err != nil || n != c-prev {
			t.Fatalf("Write = %d, %v; want %d", n, err, c-prev)
		}
		prev = c
	}
}

var asciiCases = []string{
	"",
	"a",
	"\n",
	"\r",
	"\r\n",
	"\n\n",
	"\r\r",
	"\r\r\n",
	"\n\r",
	"line one\nline two\n",
	"dos\r\nfile\r\n",
	"mixed\nends\r\nhere\rand\n",
	"no newline at end",
	"\x00\xff\r\x1a\n",
}

func TestASCIIReader(t *testing.T) {
	tests := map[string]string{
		"":           "",
		"a\nb":       "a\r\nb",
		"\n\n":       "\r\n\r\n",
		"a\r\nb":     "a\r\nb",
		"a\rb":       "a\rb",
		"\r\r\n":     "\r\r\n",
		"\n\r\n\n":   "\r\n\r\n\r\n",
		"x\r":        "x\r",
		"\xff\n\x00": "\xff\r\n\x00",
	}
	for in, want := range tests {
		out, err := io.ReadAll(NewASCIIReader(strings.NewReader(in)))
		if err != nil {
			t.Errorf("ReadAll(%q): %v", in, err)
		}
		if string(out) != want {
			t.Errorf("encode(%q) = %q, want %q", in, out, want)
		}
	}
}

func TestASCIIDecoder(t *testing.T) {
	tests := map[string]string{
		"":             "",
		"a\r\nb":       "a\nb",
		"a\nb":         "a\nb",
		"a\rb":         "a\rb",
		"\r\r\n":       "\r\n",
		"\r\n\r\n":     "\n\n",
		"x\r":          "x\r",
		"\r":           "\r",
		"\r\r":         "\r\r",
		"\n\r":         "\n\r",
		"\xff\r\n\x00": "\xff\n\x00",
	}
	for in, want := range tests {
		var out bytes.Buffer
		d := NewASCIIDecoder(&out)
		if n, err := d.Write([]byte(in)); n != len(in) || err != nil {
			t.Errorf("Write(%q) = %d, %v", in, n, err)
		}
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if out.String() != want {
			t.Errorf("decode(%q) = %q, want %q", in, out.String(), want)
		}
	}
}

func TestASCIIDecoderCRAcrossWrites(t *testing.T) {
	var out bytes.Buffer
	d := NewASCIIDecoder(&out)
	d.Write([]byte("a\r"))
	if out.String() != "a" {
		t.Fatalf("after \"a\\r\": %q, want the CR held", out.String())
	}
	d.Write([]byte("\nb\r"))
	d.Write([]byte("c"))
	d.Write([]byte("\r"))
	d.Close()
	if want := "a\nb\rc\r"; out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
	// Close is idempotent and does not write twice.
	d.Close()
	if want := "a\nb\rc\r"; out.String() != want {
		t.Errorf("after second Close: %q", out.String())
	}
}

func TestASCIIChunking(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	inputs := append([]string(nil), asciiCases...)
	for range 200 {
		b := make([]byte, rng.IntN(64))
		for i := range b {
			b[i] = "ab\r\n"[rng.IntN(4)]
		}
		inputs = append(inputs, string(b))
	}
	// Large inputs cross the internal 32 KiB step.
	inputs = append(inputs, strings.Repeat("x\n", asciiChunk), strings.Repeat("\r", asciiChunk)+"\n"+strings.Repeat("y\r\n", 5000))
	for _, in := range inputs {
		for trial := range 5 {
			var cuts []int
			for range rng.IntN(6) {
				cuts = append(cuts, rng.IntN(len(in)+1))
			}
			if trial == 0 {
				cuts = nil
				for i := range len(in) {
					if i < 200 {
						cuts = append(cuts, i)
					}
				}
			}
			var dec bytes.Buffer
			enc := encodeChunks(t, []byte(in), rng.IntN(70)+1, rng.IntN(70)+1)
			if trial == 1 {
				enc = encodeChunks(t, []byte(in), len(in)+1, 256<<10)
			}
			d := NewASCIIDecoder(&dec)
			writeChunks(t, d, []byte(in), sortInts(cuts))
			d.Close()
			if want := encodeRef([]byte(in)); !bytes.Equal(enc, want) {
				t.Fatalf("encode(%.40q) = %.40q, want %.40q", in, enc, want)
			}
			if want := decodeRef([]byte(in)); !bytes.Equal(dec.Bytes(), want) {
				t.Fatalf("decode(%.40q, cuts %v) = %.40q, want %.40q", in, cuts, dec.Bytes(), want)
			}
		}
	}
}

func sortInts(a []int) []int {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j] < a[j-1]; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
	return a
}

// TestASCIIRoundTrip: for input without CR, decode(encode(x)) == x.
func TestASCIIRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for range 1000 {
		b := make([]byte, rng.IntN(200))
		for i := range b {
			b[i] = byte(rng.UintN(256))
			if b[i] == '\r' || rng.IntN(5) == 0 {
				b[i] = '\n'
			}
		}
		var back bytes.Buffer
		wire := encodeChunks(t, b, rng.IntN(20)+1, rng.IntN(20)+1)
		d := NewASCIIDecoder(&back)
		d.Write(wire)
		d.Close()
		if !bytes.Equal(back.Bytes(), b) {
			t.Fatalf("round trip of %q gave %q (wire %q)", b, back.Bytes(), wire)
		}
	}
}

// errWriter fails after accepting limit bytes.
type errWriter struct {
	limit int
	short bool // report a short write without error
}

var errDisk = errors.New("disk full")

func (w *errWriter) Write(p []byte) (int, error) {
	if len(p) <= w.limit {
		w.limit -= len(p)
		return len(p), nil
	}
	n := w.limit
	w.limit = 0
	if w.short {
		return n, nil
	}
	return n, errDisk
}

// TestASCIIReaderError: the source's error comes back with the bytes
// converted before it.
func TestASCIIReaderError(t *testing.T) {
	r := NewASCIIReader(io.MultiReader(strings.NewReader("a\nb"), iotestErrReader{}))
	out, err := io.ReadAll(r)
	if err != errDisk || string(out) != "a\r\nb" {
		t.Errorf("ReadAll = %q, %v; want %q, %v", out, err, "a\r\nb", errDisk)
	}
}

type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) { return 0, errDisk }

func TestASCIIWriteErrors(t *testing.T) {
	in := []byte(strings.Repeat("line\r\n", 20000)) // several internal steps
	for _, short := range []bool{false, true} {
		wantErr := errDisk
		if short {
			wantErr = io.ErrShortWrite
		}
		w := NewASCIIDecoder(&errWriter{limit: 50000, short: short})
		n, err := w.Write(in)
		if err != wantErr || n >= len(in) {
			t.Errorf("Write = %d, %v; want < %d, %v", n, err, len(in), wantErr)
		}
	}
	d := NewASCIIDecoder(&errWriter{})
	d.Write([]byte("\r"))
	if err := d.Close(); err != errDisk {
		t.Errorf("Close with a failing writer = %v, want %v", err, errDisk)
	}
}

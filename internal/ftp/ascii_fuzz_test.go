package ftp

import (
	"bytes"
	"io"
	"testing"

	"github.com/ferryftp/ferry/internal/ftp/wire"
)

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

// FuzzASCIISource checks the TYPE A download converter against the wire
// package's encoder, whatever the read sizes on both sides.
func FuzzASCIISource(f *testing.F) {
	for _, s := range []string{"", "\n", "a\nb\n", "a\r\nb", "\r", "\r\r\n\n", "x\n\n\ny"} {
		f.Add([]byte(s), uint8(1), uint8(1))
		f.Add([]byte(s), uint8(3), uint8(2))
	}
	f.Fuzz(func(t *testing.T, data []byte, srcChunk, dstBuf uint8) {
		var want bytes.Buffer
		enc := wire.NewASCIIEncoder(&want)
		enc.Write(data)
		src := &asciiSource{r: &smallReader{b: data, n: int(srcChunk%16) + 1}}
		buf := make([]byte, int(dstBuf%8)+1)
		var got []byte
		for {
			n, err := src.Read(buf)
			got = append(got, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("asciiSource(%q) = %q, want %q", data, got, want.Bytes())
		}
	})
}

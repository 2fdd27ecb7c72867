package s3store

import (
	"bytes"
	"io"
	"net"
	"testing"
)

// countConn counts the writes that reach the connection.
type countConn struct {
	net.Conn
	writes, bytes int
}

func (c *countConn) Write(p []byte) (int, error) {
	c.writes++
	c.bytes += len(p)
	return len(p), nil
}

// TestBigWrites: a request body that net/http copies to the connection (as
// an io.LimitedReader, which has no WriteTo) goes out in writes of
// bodyWrite bytes, not io.Copy's 32 KiB.
func TestBigWrites(t *testing.T) {
	cc := &countConn{}
	var c net.Conn = bigWriteConn{cc}
	body := bytes.Repeat([]byte("x"), 8<<20)
	n, err := io.Copy(c, io.LimitReader(bytes.NewReader(body), int64(len(body))))
	if err != nil || n != int64(len(body)) {
		t.Fatalf("io.Copy = %d, %v", n, err)
	}
	if want := len(body) / bodyWrite; cc.writes != want || cc.bytes != len(body) {
		t.Errorf("%d bytes in %d writes, want %d bytes in %d", cc.bytes, cc.writes, len(body), want)
	}
}

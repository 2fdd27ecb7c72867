package s3store

import (
	"context"
	"io"
	"net"
	"sync"
)

// bodyWrite is the size of the writes that send a request body.
const bodyWrite = 256 << 10

var bodyBufs = sync.Pool{New: func() any { b := make([]byte, bodyWrite); return &b }}

// dialBigWrites wraps dial's connections in bigWriteConn.
func dialBigWrites(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return bigWriteConn{c}, nil
	}
}

// bigWriteConn sends what it copies from a reader (net/http's request
// bodies, which it hands over as an io.LimitedReader) in writes of
// bodyWrite bytes: a TCP connection would copy them 32 KiB at a time, so
// a part of 8 MiB took 256 system calls, and now takes 32.
type bigWriteConn struct{ net.Conn }

func (c bigWriteConn) ReadFrom(r io.Reader) (int64, error) {
	bp := bodyBufs.Get().(*[]byte)
	defer bodyBufs.Put(bp)
	return io.CopyBuffer(writeOnly{c.Conn}, r, *bp)
}

// writeOnly hides the connection's own ReadFrom from io.CopyBuffer.
type writeOnly struct{ io.Writer }

package ftp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"hash"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// feedPipe hands data to p in pieces of the given sizes, as copyIn does,
// with empty hand-overs (a read of nothing) between them.
func feedPipe(p *hashPipe, data []byte, sizes []int) {
	for len(data) > 0 {
		for _, n := range sizes {
			n = min(n, len(data), hashPipeBufSize)
			b := p.buffer()
			copy(*b, data[:n])
			p.hash(b, n)
			data = data[n:]
			b = p.buffer()
			p.hash(b, 0)
		}
	}
}

// TestHashPipeDigests: the digests of a pipe are those of the whole data,
// however it was cut into buffers.
func TestHashPipeDigests(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 3*hashPipeBufSize+12345)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	random := make([]int, 50)
	for i := range random {
		random[i] = 1 + rng.IntN(hashPipeBufSize)
	}
	for _, tc := range []struct {
		name  string
		data  []byte
		sizes []int
	}{
		{"empty", nil, []int{1}},
		{"one byte", data[:1], []int{1}},
		{"bytes", data[:5000], []int{1}},
		{"odd", data, []int{4093}},
		{"full buffers", data, []int{hashPipeBufSize}},
		{"random", data, random},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newHashPipe([]int{algoSHA256, algoCRC32})
			feedPipe(p, tc.data, tc.sizes)
			sums := p.sums()
			sha := sha256.Sum256(tc.data)
			if !bytes.Equal(sums["SHA-256"], sha[:]) {
				t.Errorf("SHA-256 %x, want %x", sums["SHA-256"], sha)
			}
			crc := crc32.NewIEEE()
			crc.Write(tc.data)
			if !bytes.Equal(sums["CRC32"], crc.Sum(nil)) {
				t.Errorf("CRC32 %x, want %x", sums["CRC32"], crc.Sum(nil))
			}
			if len(sums) != 2 {
				t.Errorf("sums %v, want SHA-256 and CRC32", sums)
			}
			p.end(true) // a second end is a no-op
		})
	}
}

// gateHash is a hash whose Write waits for a token on gate, after telling
// entered; it counts what it was given.
type gateHash struct {
	hash.Hash
	entered chan struct{}
	gate    chan struct{}
	n       atomic.Int64
}

func newGateHash() *gateHash {
	return &gateHash{Hash: sha256.New(), entered: make(chan struct{}, 100), gate: make(chan struct{})}
}

func (g *gateHash) Write(p []byte) (int, error) {
	g.entered <- struct{}{}
	<-g.gate
	g.n.Add(int64(len(p)))
	return g.Hash.Write(p)
}

// TestHashPipeBounded: a hasher that falls behind holds the receive back
// once every buffer waits for it, instead of queueing more data.
func TestHashPipeBounded(t *testing.T) {
	g := newGateHash()
	p := newHashPipeOf([]string{"gate"}, []hash.Hash{g})
	for range hashPipeBufs {
		b := p.buffer()
		p.hash(b, 10)
	}
	<-g.entered // the first is being hashed, the others are queued
	select {
	case <-p.free:
		t.Fatal("a buffer was free while all of them wait for the hasher")
	default:
	}
	g.gate <- struct{}{} // the first is done: its buffer comes back
	b := p.buffer()
	if len(*b) != hashPipeBufSize {
		t.Errorf("a returned buffer has length %d, want %d", len(*b), hashPipeBufSize)
	}
	p.hash(b, 0)
	go func() {
		for range g.entered {
			g.gate <- struct{}{}
		}
	}()
	p.sums()
	if got := g.n.Load(); got != int64(10*hashPipeBufs) {
		t.Errorf("hashed %d bytes, want %d", got, 10*hashPipeBufs)
	}
	close(g.entered)
}

// TestHashPipeAbandon: ending an abandoned pipe skips the data still
// queued, and takes every buffer back.
func TestHashPipeAbandon(t *testing.T) {
	g := newGateHash()
	p := newHashPipeOf([]string{"gate"}, []hash.Hash{g})
	for range hashPipeBufs {
		b := p.buffer()
		p.hash(b, 100)
	}
	<-g.entered
	ended := make(chan struct{})
	go func() { p.end(true); close(ended) }()
	for !p.stop.Load() {
		time.Sleep(time.Millisecond) // until end has flagged the pipe
	}
	g.gate <- struct{}{} // the buffer being hashed completes
	<-ended
	if got := g.n.Load(); got != 100 {
		t.Errorf("hashed %d bytes after the abandon, want only the 100 of the buffer under way", got)
	}
	select {
	case <-p.done:
	default:
		t.Error("the hasher still runs after end")
	}
	if len(p.free) != 0 {
		t.Errorf("%d buffers left in the pipe after end, want all back in the pool", len(p.free))
	}
}

// failAfter takes limit bytes, then fails.
type failAfter struct {
	buf   bytes.Buffer
	limit int
}

var errDisk = errors.New("disk trouble")

func (f *failAfter) Write(p []byte) (int, error) {
	if f.buf.Len()+len(p) > f.limit {
		return 0, errDisk
	}
	return f.buf.Write(p)
}

// TestCopyInHashPipe: copyIn with a pipe stores and hashes every byte a
// client sends in writes of any size, and a failing write ends the copy
// with its error and leaves the pipe to end cleanly.
func TestCopyInHashPipe(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, 5*hashPipeBufSize+777)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	send := func(t *testing.T) net.Conn {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				return
			}
			defer c.Close()
			rng := rand.New(rand.NewPCG(5, 6))
			for rest := data; len(rest) > 0; {
				n := min(len(rest), 1+rng.IntN(300<<10))
				if _, err := c.Write(rest[:n]); err != nil {
					return
				}
				rest = rest[n:]
			}
		}()
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	t.Run("whole", func(t *testing.T) {
		var got bytes.Buffer
		var progress atomic.Int64
		p := newHashPipe([]int{algoSHA256})
		n, err := copyIn(context.Background(), &got, send(t), 10*time.Second, &progress, p)
		if err != nil || n != int64(len(data)) || progress.Load() != n {
			t.Fatalf("copyIn: %d bytes (progress %d), %v; want %d", n, progress.Load(), err, len(data))
		}
		if !bytes.Equal(got.Bytes(), data) {
			t.Error("the data written differs from the data sent")
		}
		sha := sha256.Sum256(data)
		if sum := p.sums()["SHA-256"]; !bytes.Equal(sum, sha[:]) {
			t.Errorf("SHA-256 %x, want %x", sum, sha)
		}
	})
	t.Run("write fails", func(t *testing.T) {
		dst := &failAfter{limit: 2*hashPipeBufSize + 5}
		var progress atomic.Int64
		p := newHashPipe([]int{algoSHA256})
		n, err := copyIn(context.Background(), dst, send(t), 10*time.Second, &progress, p)
		if !errors.Is(err, errDisk) {
			t.Fatalf("copyIn: %v, want the write's error", err)
		}
		if n != int64(dst.buf.Len()) || n > int64(dst.limit) {
			t.Errorf("copyIn counted %d bytes, the writer took %d", n, dst.buf.Len())
		}
		p.end(true)
		if len(p.free) != 0 {
			t.Errorf("%d buffers left in the pipe after end", len(p.free))
		}
	})
	t.Run("read fails", func(t *testing.T) {
		c := send(t)
		var progress atomic.Int64
		p := newHashPipe([]int{algoSHA256})
		c.Close()
		_, err := copyIn(context.Background(), io.Discard, c, 10*time.Second, &progress, p)
		if err == nil || !isNetErr(err) {
			t.Fatalf("copyIn on a closed connection: %v, want a network error", err)
		}
		p.end(true)
	})
}

// countHash counts the non-empty writes it is given.
type countHash struct {
	hash.Hash
	writes int
}

func (h *countHash) Write(p []byte) (int, error) {
	if len(p) > 0 {
		h.writes++
	}
	return h.Hash.Write(p)
}

// TestCopyInHashPipeSmallReads: reads of one TLS record each (16 KiB) are
// written to the file one by one, but gathered into buffers of at least
// seven eighths of their size for the hasher, not handed over one by one.
func TestCopyInHashPipeSmallReads(t *testing.T) {
	data := hashData(3*hashPipeBufSize + 1000)
	srv, cli := net.Pipe()
	defer srv.Close()
	go func() {
		defer cli.Close()
		for rest := data; len(rest) > 0; {
			n := min(len(rest), 16<<10)
			if _, err := cli.Write(rest[:n]); err != nil {
				return
			}
			rest = rest[n:]
		}
	}()
	h := &countHash{Hash: sha256.New()}
	p := newHashPipeOf([]string{"SHA-256"}, []hash.Hash{h})
	var got countWriter
	var progress atomic.Int64
	n, err := copyIn(context.Background(), &got, srv, 10*time.Second, &progress, p)
	if err != nil || n != int64(len(data)) {
		t.Fatalf("copyIn: %d bytes, %v; want %d", n, err, len(data))
	}
	sha := sha256.Sum256(data)
	if sum := p.sums()["SHA-256"]; !bytes.Equal(sum, sha[:]) {
		t.Errorf("SHA-256 %x, want %x", sum, sha)
	}
	if want := (len(data)+16<<10)/(16<<10) - 1; got.writes < want {
		t.Errorf("%d writes to the file, want one per read (%d)", got.writes, want)
	}
	if most := len(data)/(hashPipeBufSize*7/8) + 1; h.writes > most {
		t.Errorf("the hasher was handed %d buffers, want at most %d", h.writes, most)
	}
}

// countWriter counts its writes.
type countWriter struct{ writes int }

func (w *countWriter) Write(p []byte) (int, error) {
	w.writes++
	return len(p), nil
}

// TestHashPipeSlots: pipes beyond the server's slots are not made (the
// upload hashes inline), and a pipe's end gives its slot back, once.
func TestHashPipeSlots(t *testing.T) {
	slots := make(chan struct{}, 2)
	a, b := newHashPipeIn(slots, []int{0}), newHashPipeIn(slots, []int{0})
	if a == nil || b == nil {
		t.Fatal("a pipe was refused while slots were free")
	}
	if p := newHashPipeIn(slots, []int{0}); p != nil {
		p.end(true)
		t.Fatal("a third pipe was made with two slots")
	}
	a.end(true)
	a.end(true) // idempotent: the slot is given back once
	if len(slots) != 1 {
		t.Fatalf("%d slots held after one of two pipes ended, want 1", len(slots))
	}
	c := newHashPipeIn(slots, []int{0})
	if c == nil {
		t.Fatal("no pipe after one ended")
	}
	b.sums()
	c.sums()
	if len(slots) != 0 {
		t.Errorf("%d slots held after every pipe ended", len(slots))
	}
}

package ftp

import (
	"hash"
	"runtime"
	"sync"
	"sync/atomic"
)

// A binary upload is hashed by a hashPipe: in a goroutine of its own, so
// that on two cores SHA-256 (the bulk of an upload's CPU) overlaps the
// receive and the file write instead of following them. copyIn receives
// into the pipe's buffers and hands each one over as it writes it to the
// file; the hasher only reads a buffer, so it may hash while the file
// write of the same buffer runs. There are hashPipeBufs buffers: when the
// hasher is that far behind, the receive waits for it.
const (
	hashPipeBufs    = 3
	hashPipeBufSize = 1 << 20 // a receive of up to 1 MiB, also one file write
)

// hashBufPool holds the pipes' buffers, so an idle server owns none.
var hashBufPool = sync.Pool{New: func() any { b := make([]byte, hashPipeBufSize); return &b }}

// hashPipeSlots bounds the pipes of the whole server, and so their
// buffers (hashPipeBufs MiB each): a pipe only helps while a processor is
// idle, so a pipe per processor is all that can run beside the receives;
// further uploads hash inline, as they did before pipes, instead of each
// holding 3 MiB (100 uploads at once would hold 300 MiB).
var hashPipeSlots = make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))

// hashPipe computes digests of data handed to it in its buffers.
type hashPipe struct {
	digests
	full  chan *[]byte // buffers to hash, in order; closed by end
	free  chan *[]byte // buffers to receive into
	done  chan struct{}
	stop  atomic.Bool // an abandoned pipe skips its queued buffers
	ended bool
	slots chan struct{} // holds one of these slots, given back by end
}

// newHashPipe hashes by the given algorithms (indexes in hashAlgos). It
// returns nil when the server's pipes are all in use: the caller hashes
// inline then.
func newHashPipe(algos []int) *hashPipe { return newHashPipeIn(hashPipeSlots, algos) }

// newHashPipeIn is newHashPipe with the slots of slots.
func newHashPipeIn(slots chan struct{}, algos []int) *hashPipe {
	select {
	case slots <- struct{}{}:
	default:
		return nil
	}
	d := newDigests(algos)
	p := newHashPipeOf(d.names, d.hs)
	p.slots = slots
	return p
}

// newHashPipeOf starts a pipe feeding hs, whose digests sums names by
// the names at the same index.
func newHashPipeOf(names []string, hs []hash.Hash) *hashPipe {
	p := &hashPipe{
		digests: digests{names: names, hs: hs},
		full:    make(chan *[]byte, hashPipeBufs),
		free:    make(chan *[]byte, hashPipeBufs),
		done:    make(chan struct{}),
	}
	for range hashPipeBufs {
		p.free <- hashBufPool.Get().(*[]byte)
	}
	go p.run()
	return p
}

func (p *hashPipe) run() {
	defer close(p.done)
	for b := range p.full {
		if !p.stop.Load() {
			p.write(*b)
		}
		*b = (*b)[:cap(*b)]
		p.free <- b
	}
}

// buffer returns a buffer to receive into, waiting while every buffer is
// queued for hashing.
func (p *hashPipe) buffer() *[]byte { return <-p.free }

// hash queues (*b)[:n] for hashing and gives b back to the pipe: the caller
// may go on reading it (writing it to the file) until its next buffer call,
// and must not write to it.
func (p *hashPipe) hash(b *[]byte, n int) {
	*b = (*b)[:n]
	p.full <- b
}

// end stops the hasher, after the buffers queued (skipped when abandon)
// and takes the buffers back; it is idempotent.
func (p *hashPipe) end(abandon bool) {
	if p.ended {
		return
	}
	p.ended = true
	p.stop.Store(abandon)
	close(p.full)
	<-p.done
	for range hashPipeBufs {
		hashBufPool.Put(<-p.free)
	}
	if p.slots != nil {
		<-p.slots
	}
}

// sums ends the pipe and returns the digests of all the data handed to
// it, by algorithm name.
func (p *hashPipe) sums() map[string][]byte {
	p.end(false)
	return p.digests.sums()
}

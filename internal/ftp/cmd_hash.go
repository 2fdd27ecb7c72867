package ftp

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"hash"
	"hash/crc32"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ferryftp/ferry/internal/ftp/wire"
	"github.com/ferryftp/ferry/internal/storage"
)

// File digests: HASH with OPTS HASH and RANG (draft-bryan-ftpext-hash-02,
// draft-bryan-ftp-range-09) and the legacy XCRC, XMD5, XSHA1 (XSHA),
// XSHA256 and XSHA512 (ProFTPD's mod_digest forms). A digest stored with the
// file (storage.HashStore, written while an upload is received) answers at
// once; otherwise the file is read and hashed in the transfer slot, as a
// transfer without a data connection: ABOR and QUIT end it, other commands
// wait for its reply, and it is bounded by Settings.HashMaxSize and
// Settings.HashPerUser.

// hashAlgo is one supported algorithm.
type hashAlgo struct {
	name string // the IANA name, as FEAT, OPTS HASH and the 213 reply show it
	new  func() hash.Hash
}

// hashAlgos are the algorithms, the default (SHA-256) first; FEAT lists them
// in this order.
var hashAlgos = []hashAlgo{
	{storage.HashSHA256, sha256.New},
	{storage.HashSHA512, sha512.New},
	{storage.HashSHA1, sha1.New},
	{storage.HashMD5, md5.New},
	{storage.HashCRC32, func() hash.Hash { return crc32.NewIEEE() }},
}

const (
	algoSHA256 = iota
	algoSHA512
	algoSHA1
	algoMD5
	algoCRC32
)

// hashState is a session's HASH state; REIN resets it.
type hashState struct {
	algo int // index in hashAlgos: the OPTS HASH selection
	// rang is the range of a RANG that the next command may use; only HASH
	// does, and any other command drops it.
	rang *[2]int64
}

// hashFeat is the FEAT line: every algorithm, the selected one starred
// (draft-bryan-ftpext-hash §3.1).
func (s *session) hashFeat() string {
	var b strings.Builder
	b.WriteString("HASH ")
	for i, a := range hashAlgos {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(a.name)
		if i == s.hash.algo {
			b.WriteByte('*')
		}
	}
	return b.String()
}

// optsHASH queries or selects the algorithm of HASH (§3.2).
func (s *session) optsHASH(value string) {
	value = strings.TrimSpace(value)
	if value == "" {
		s.reply(200, hashAlgos[s.hash.algo].name)
		return
	}
	for i, a := range hashAlgos {
		if strings.EqualFold(a.name, value) {
			s.hash.algo = i
			s.reply(200, a.name)
			return
		}
	}
	s.reply(501, "Unknown algorithm, current selection not changed.")
}

// cmdRANG keeps a byte range for the HASH that follows (draft-bryan-ftp-
// range §3: 350 on success and for the reset "RANG 1 0"; 501, and the range
// reset, for a start after the end). Ferry applies RANG to HASH only: FEAT
// does not list "RANG STREAM", and a transfer right after a RANG is refused.
func (s *session) cmdRANG(r *request) error {
	start, end, reset, err := wire.ParseRang(strings.TrimSpace(r.arg))
	s.hash.rang = nil
	switch {
	case errors.Is(err, wire.ErrRangeOrder):
		return reply(501, "RANG start point is after its end point; range reset to the whole file.")
	case err != nil:
		return reply(501, "Syntax: RANG <start> <end>, byte offsets, end inclusive.")
	case reset:
		s.reply(350, "Range reset; HASH covers the whole file.")
		return nil
	}
	s.hash.rang = &[2]int64{start, end}
	s.reply(350, "Range set to bytes "+strconv.FormatInt(start, 10)+"-"+strconv.FormatInt(end, 10)+" for the next HASH.")
	return nil
}

// rangedTransfers are the commands that draft-bryan-ftp-range lets a RANG
// govern and Ferry does not: right after a RANG they are refused, so that
// no client gets a whole file where it asked for part of one.
var rangedTransfers = map[string]bool{"RETR": true, "STOR": true, "APPE": true, "STOU": true}

// rangeRefused is called by the dispatcher for every command: a pending
// RANG is for the next command only (§4.3), and is dropped by any command
// but HASH. It reports a transfer refused for following a RANG.
func (s *session) rangeRefused(verb string) bool {
	if s.hash.rang == nil || verb == "HASH" {
		return false
	}
	s.hash.rang = nil
	if rangedTransfers[verb] {
		s.reply(504, "RANG applies to HASH only here; use REST to restart a transfer.")
		return true
	}
	return false
}

// cmdHASH answers the digest of the file by the selected algorithm, over
// the range of a RANG just before, if any: 213 ALGO START-END HEX PATH.
// The hash of a directory is not defined: 553 (§3.5).
func (s *session) cmdHASH(r *request) error {
	rg := s.hash.rang
	s.hash.rang = nil
	switch {
	case r.info.IsDir():
		return reply(553, "HASH of a directory is not defined.")
	case !r.info.Mode().IsRegular():
		return reply(550, "Not a regular file.")
	}
	if rg == nil {
		return s.digest(r, s.hash.algo, 0, -1, false)
	}
	return s.digest(r, s.hash.algo, rg[0], rg[1], true)
}

// legacyDigests maps the legacy commands to their algorithms.
var legacyDigests = map[string]int{
	"XCRC": algoCRC32, "XMD5": algoMD5, "XSHA": algoSHA1, "XSHA1": algoSHA1,
	"XSHA256": algoSHA256, "XSHA512": algoSHA512,
}

// cmdXDigest answers XCRC, XMD5, XSHA1, XSHA256 and XSHA512: 250 and the
// digest in upper-case hex, as ProFTPD's mod_digest does. The row's path
// rule parsed the optional range (end exclusive).
func (s *session) cmdXDigest(r *request) error {
	if !r.ranged {
		return s.digest(r, legacyDigests[r.verb], 0, -1, false)
	}
	return s.digest(r, legacyDigests[r.verb], r.start, r.end-1, true)
}

// Replies of the digest commands that are not plain error mappings.
var (
	errHashPastEnd = reply(554, "Range start is beyond the end of the file.")
	errHashBusy    = reply(450, "Too many digests being computed for this user; try again later.")
	errHashStalled = reply(451, "Requested action aborted: storage did not answer in time.")
)

// digest answers the digest of r's file by algorithm algo over bytes from
// to last (inclusive; the whole file unless ranged, the end clipped to the
// file's), from the stored digest when the whole file is asked for and one
// is stored, else by reading the file in the transfer slot.
func (s *session) digest(r *request, algo int, from, last int64, ranged bool) error {
	size := r.info.Size()
	if !ranged {
		from, last = 0, size-1
	}
	if ranged && from >= size && size > 0 || ranged && from > 0 && size == 0 {
		return errHashPastEnd
	}
	last = min(last, size-1)
	n := max(last-from+1, 0)
	a := hashAlgos[algo]
	legacy := r.verb != "HASH"
	answer := func(sum []byte) (int, string) {
		if legacy {
			return 250, strings.ToUpper(hex.EncodeToString(sum))
		}
		// An empty file is "0-0": the draft's end point is never
		// below its start point.
		return 213, a.name + " " + strconv.FormatInt(from, 10) + "-" + strconv.FormatInt(max(last, from), 10) + " " +
			hex.EncodeToString(sum) + " " + r.arg
	}
	if n == size {
		sum, ok, err := storage.StoredHash(s.ctx(), s.fs, r.path, a.name)
		if err != nil {
			return err
		}
		if ok {
			s.reply(answer(sum))
			return nil
		}
	}
	if limit := s.site.HashMaxSize; limit > 0 && n > limit {
		return reply(556, "Not hashed: "+strconv.FormatInt(n, 10)+" bytes is more than this server hashes on demand ("+
			strconv.FormatInt(limit, 10)+" bytes).")
	}
	if !s.srv.takeHash(s.user.Name, s.site.HashPerUser) {
		return errHashBusy
	}
	f, err := s.fs.Open(s.ctx(), r.path, from)
	if err != nil {
		s.srv.releaseHash(s.user.Name)
		return err
	}
	user, stall := s.user.Name, s.site.DataTimeout
	s.startWork(r.verb, r.path.String(), func(ctx context.Context, progress *atomic.Int64) (int, string, int64, error) {
		// A read that makes no progress for data_timeout ends the
		// digest, as a stalled transfer ends; closing the file ends a
		// read that waits on the backend.
		ctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		tick := func() {}
		if stall > 0 {
			watchdog := time.AfterFunc(stall, func() { cancel(errHashStalled) })
			defer watchdog.Stop()
			tick = func() { watchdog.Reset(stall) }
		}
		stop := context.AfterFunc(ctx, func() { f.Close() })
		defer stop()
		h := a.new()
		got, err := copyHash(ctx, h, f, n, progress, tick)
		if cause := context.Cause(ctx); cause != nil {
			err = cause
		}
		if err != nil {
			return 0, "", got, err
		}
		if got != n {
			// The file shrank while it was read.
			return 0, "", got, reply(451, "The file changed while it was hashed; try again.")
		}
		code, text := answer(h.Sum(nil))
		return code, text, got, nil
	}, func() {
		f.Close()
		s.srv.releaseHash(user)
	})
	return nil
}

// hashChunk is how much a digest reads at a time; the context is checked
// between reads.
const hashChunk = 256 << 10

// copyHash feeds n bytes of src to h, stopping when ctx ends; tick is
// called after each read.
func copyHash(ctx context.Context, h hash.Hash, src io.Reader, n int64, progress *atomic.Int64, tick func()) (int64, error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := (*bp)[:hashChunk]
	var total int64
	for total < n {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		m, err := src.Read(buf[:min(int64(len(buf)), n-total)])
		tick()
		h.Write(buf[:m])
		total += int64(m)
		progress.Add(int64(m))
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// takeHash counts an on-demand digest of user, unless limit (> 0) are
// running already.
func (srv *Server) takeHash(user string, limit int) bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if limit > 0 && srv.hashing[user] >= limit {
		return false
	}
	if srv.hashing == nil {
		srv.hashing = map[string]int{}
	}
	srv.hashing[user]++
	return true
}

// releaseHash ends a digest counted by takeHash.
func (srv *Server) releaseHash(user string) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.hashing[user]--; srv.hashing[user] <= 0 {
		delete(srv.hashing, user)
	}
}

// uploadHashes are the digests a whole upload computes while it is
// received: SHA-256 and CRC32 always (CRC32 costs almost nothing), and the
// session's selected algorithm. All five would cost about three times the
// CPU of these (docs/commands.md has the figures of BenchmarkDigest).
func (s *session) uploadHashes() []int {
	if s.hash.algo == algoSHA256 || s.hash.algo == algoCRC32 {
		return []int{algoSHA256, algoCRC32}
	}
	return []int{algoSHA256, algoCRC32, s.hash.algo}
}

// digests are running hashes of an upload by several algorithms.
type digests struct {
	names []string
	hs    []hash.Hash
}

// newDigests starts hashes of the given algorithms (indexes in hashAlgos).
func newDigests(algos []int) digests {
	d := digests{names: make([]string, len(algos)), hs: make([]hash.Hash, len(algos))}
	for i, a := range algos {
		d.names[i], d.hs[i] = hashAlgos[a].name, hashAlgos[a].new()
	}
	return d
}

func (d digests) write(p []byte) {
	for _, h := range d.hs {
		h.Write(p)
	}
}

// sums returns the digests by algorithm name.
func (d digests) sums() map[string][]byte {
	out := make(map[string][]byte, len(d.hs))
	for i, h := range d.hs {
		out[d.names[i]] = h.Sum(nil)
	}
	return out
}

// hashWriter writes to w and feeds what w took to the digests.
type hashWriter struct {
	w io.Writer
	digests
}

// newHashWriter hashes what goes to w by the given algorithms.
func newHashWriter(w io.Writer, algos []int) *hashWriter {
	return &hashWriter{w: w, digests: newDigests(algos)}
}

func (hw *hashWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	hw.write(p[:n])
	return n, err
}

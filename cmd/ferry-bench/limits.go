package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net"
	"os"
	"runtime"
	"syscall"
	"time"
)

// The limit scenarios measure the machine's own ceilings on loopback, with
// no FTP server: a bare sender and a receiver in this process, over one TCP
// connection from 127.0.0.1:0. The accepted end plays the server's part (it
// sends for limit-sendfile and limit-tls, receives for limit-recv), the
// dialled end the client's, with the transfer scenarios' client code and
// buffer sizes, so that a server's figure divided by its ceiling says how
// much of what this machine can move the server delivers.
//
// Rates run from the connection (after the TLS handshake for limit-tls) to
// the end of the stream (for limit-recv: until the receiver closed its
// file). cpu_s_per_gib is this whole process, both ends and the runtime.

// loopback is the address the limit results record: their ports are new
// for every connection.
const loopback = "127.0.0.1"

// rusageThread is Linux's RUSAGE_THREAD: getrusage of the calling thread.
const rusageThread = 1

func threadCPU() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(rusageThread, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// loopbackPair returns the two ends of one new TCP connection on 127.0.0.1:
// the accepted one and the dialled one.
func loopbackPair(timeout time.Duration) (accepted, dialled *net.TCPConn, err error) {
	l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, nil, err
	}
	defer l.Close() // also ends the Accept below if the dial fails
	type res struct {
		c   *net.TCPConn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := l.AcceptTCP()
		ch <- res{c, err}
	}()
	d, err := net.DialTimeout("tcp", l.Addr().String(), timeout)
	if err != nil {
		return nil, nil, err
	}
	a := <-ch
	if a.err != nil {
		d.Close()
		return nil, nil, a.err
	}
	return a.c, d.(*net.TCPConn), nil
}

// clientRW wraps the client's end as the transfer scenarios do.
func clientRW(rw io.ReadWriter, nc net.Conn, timeout time.Duration) *deadlineRW {
	nc.SetDeadline(time.Now().Add(timeout))
	return &deadlineRW{rw: rw, nc: nc, timeout: timeout, last: time.Now()}
}

// openLimitFile opens the page-cached file the sending ceilings send.
func openLimitFile(name string) (*os.File, int64, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%s is not a regular file", name)
	}
	return f, st.Size(), nil
}

// recordRate fills the metrics every limit scenario has.
func recordRate(r *result, n int64, el, cpu float64) {
	m := r.Metrics
	m["bytes"] = float64(n)
	m["seconds"] = el
	m["mb_per_s"] = float64(n) / el / 1e6
	m["cpu_s"] = cpu
	if n > 0 {
		m["cpu_s_per_gib"] = cpu / (float64(n) / gib)
	}
}

// senderModes are the two ways a limit sender's socket is tried, and the
// faster one counts: Go's default TCP_NODELAY, and Nagle's algorithm on,
// as vsftpd leaves a data connection and Ferry sets one for a download
// (full segments). The ceiling is the best a bare sender does.
var senderModes = []string{"nodelay", "nagle"}

// bestSender runs one limit sender in each of senderModes and records the
// faster: its rate and CPU as the result's, both rates as mb_per_s_MODE.
func bestSender(r *result, run func(r *result, nagle bool) error) error {
	var best float64
	for _, mode := range senderModes {
		try := &result{Metrics: map[string]float64{}, Info: map[string]any{}}
		if err := run(try, mode == "nagle"); err != nil {
			return fmt.Errorf("%s: %w", mode, err)
		}
		rate := try.Metrics["mb_per_s"]
		r.Metrics["mb_per_s_"+mode] = rate
		if rate > best {
			best = rate
			maps.Copy(r.Metrics, try.Metrics)
			maps.Copy(r.Info, try.Info)
			r.Desc = try.Desc
			r.Info["sender"] = mode
		}
	}
	return nil
}

// runLimitSendfile is the ceiling of a plain download: sendfile(2) of the
// whole file on a blocking socket, as vsftpd and Ferry send, to a client that
// reads like the retr client. The sender runs on its own locked thread, so
// its CPU time is that thread's (sender_cpu_s_per_gib, the counterpart of a
// server's CPU per GiB).
func runLimitSendfile(o *options, r *result) error {
	r.Addr = loopback
	return bestSender(r, func(r *result, nagle bool) error { return limitSendfile(o, r, nagle) })
}

func limitSendfile(o *options, r *result, nagle bool) error {
	f, size, err := openLimitFile(o.File)
	if err != nil {
		return err
	}
	defer f.Close()
	r.Desc = humanBytes(size) + ", sendfile"
	srv, cli, err := loopbackPair(o.Timeout)
	if err != nil {
		return err
	}
	defer srv.Close()
	defer cli.Close()
	if err := srv.SetNoDelay(!nagle); err != nil {
		return err
	}
	type sent struct {
		n   int64
		cpu float64
		err error
	}
	done := make(chan sent, 1)
	cpu0 := clientCPU()
	t0 := time.Now()
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		c0 := threadCPU()
		n, err := sendWholeFile(srv, f, size, o.Timeout)
		done <- sent{n, threadCPU() - c0, err}
	}()
	n, err := readAll(clientRW(cli, cli, o.Timeout), make([]byte, xferBuf), nil)
	el := time.Since(t0).Seconds()
	cpu := clientCPU() - cpu0
	if err != nil {
		cli.Close() // a reset ends a sender blocked on a full socket
		<-done
		return err
	}
	s := <-done
	if s.err != nil {
		return fmt.Errorf("sendfile: %w", s.err)
	}
	if n != size || s.n != size {
		return fmt.Errorf("sendfile: sent %d, received %d bytes, want %d", s.n, n, size)
	}
	recordRate(r, n, el, cpu)
	r.Metrics["sender_cpu_s"] = s.cpu
	r.Metrics["sender_cpu_s_per_gib"] = s.cpu / (float64(n) / gib)
	return nil
}

// sendWholeFile sends size bytes of f from its start with sendfile(2) on a
// blocking duplicate of c (Fd makes it blocking; the duplicate shares the
// socket's flags), in calls of up to 1 GiB, then shuts the socket down for
// writing: the client's end of file. SO_SNDTIMEO bounds a stall.
func sendWholeFile(c *net.TCPConn, f *os.File, size int64, timeout time.Duration) (int64, error) {
	sf, err := c.File()
	if err != nil {
		return 0, err
	}
	defer sf.Close()
	out, in := int(sf.Fd()), int(f.Fd())
	tv := syscall.NsecToTimeval(timeout.Nanoseconds())
	if err := syscall.SetsockoptTimeval(out, syscall.SOL_SOCKET, syscall.SO_SNDTIMEO, &tv); err != nil {
		return 0, err
	}
	var off, total int64
	for total < size {
		n, err := syscall.Sendfile(out, in, &off, int(min(size-total, gib)))
		if n > 0 {
			total += int64(n)
		}
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EAGAIN):
			return total, os.ErrDeadlineExceeded
		case err != nil:
			return total, err
		case n == 0:
			return total, io.ErrUnexpectedEOF // the file shrank
		}
	}
	return total, syscall.Shutdown(out, syscall.SHUT_WR)
}

// runLimitTLS is the ceiling of an FTPS download: a Go TLS 1.3 server reads
// the file in -limit-buf pieces and writes each through its tls.Conn (full
// records from the start), to a client with the ftps-retr client's TLS
// configuration that reads like it.
func runLimitTLS(o *options, r *result) error {
	r.Addr = loopback
	return bestSender(r, func(r *result, nagle bool) error { return limitTLS(o, r, nagle) })
}

func limitTLS(o *options, r *result, nagle bool) error {
	f, size, err := openLimitFile(o.File)
	if err != nil {
		return err
	}
	defer f.Close()
	cert, err := limitCert(o.TLSCert, o.TLSKey)
	if err != nil {
		return err
	}
	r.Desc = humanBytes(size) + ", TLS"
	srv, cli, err := loopbackPair(o.Timeout)
	if err != nil {
		return err
	}
	defer srv.Close()
	defer cli.Close()
	if err := srv.SetNoDelay(!nagle); err != nil {
		return err
	}
	sconf := &tls.Config{
		Certificates:                []tls.Certificate{cert},
		MinVersion:                  tls.VersionTLS13,
		DynamicRecordSizingDisabled: true,
	}
	ts := tls.Server(srv, sconf)
	srv.SetDeadline(time.Now().Add(o.Timeout))
	done := make(chan error, 1)
	var sent int64
	go func() {
		err := ts.Handshake()
		if err == nil {
			buf := make([]byte, o.LimitBuf)
			for err == nil {
				var k int
				k, err = f.Read(buf)
				if k > 0 {
					srv.SetWriteDeadline(time.Now().Add(o.Timeout))
					var w int
					w, err = ts.Write(buf[:k])
					sent += int64(w)
				}
			}
			if err == io.EOF {
				err = ts.CloseWrite() // close_notify
				srv.CloseWrite()
			}
		}
		done <- err
	}()
	tc := tls.Client(cli, newTLSConfig(cli.RemoteAddr().String()))
	cli.SetDeadline(time.Now().Add(o.Timeout))
	if err := tc.Handshake(); err != nil {
		srv.Close()
		<-done
		return fmt.Errorf("TLS handshake: %w", err)
	}
	st := tc.ConnectionState()
	r.Info["tls"] = tls.VersionName(st.Version) + " " + tls.CipherSuiteName(st.CipherSuite)
	cpu0 := clientCPU()
	t0 := time.Now()
	n, err := readAll(clientRW(tc, cli, o.Timeout), make([]byte, xferBuf), nil)
	el := time.Since(t0).Seconds()
	cpu := clientCPU() - cpu0
	if err != nil {
		srv.Close()
		<-done
		return err
	}
	if err := <-done; err != nil {
		return fmt.Errorf("TLS sender: %w", err)
	}
	if n != size || sent != size {
		return fmt.Errorf("TLS: sent %d, received %d bytes, want %d", sent, n, size)
	}
	recordRate(r, n, el, cpu)
	return nil
}

// limitCert loads the servers' certificate, or makes a throw-away ECDSA one
// when none is given (the handshake is not timed).
func limitCert(certFile, keyFile string) (tls.Certificate, error) {
	if certFile != "" || keyFile != "" {
		return tls.LoadX509KeyPair(certFile, keyFile)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// runLimitRecv is the ceiling of a plain upload: the stor client's writes
// from memory, received into a new file in -dir that is closed (not synced)
// and deleted. Two bare receivers are tried and the faster counts: reads
// of -limit-buf bytes each written to the file (read-write), and io.Copy
// into the *os.File, which Go does with splice(2) from a TCP socket.
func runLimitRecv(o *options, r *result) error {
	r.Addr = loopback
	r.Desc = humanBytes(o.Size) + ", to a file"
	r.Info["dir"] = tern(o.Dir == "", os.TempDir(), o.Dir)
	buf := make([]byte, xferBuf)
	fillRandom(buf)
	var best float64
	for _, mode := range []string{"read-write", "splice"} {
		n, el, cpu, err := recvOnce(o, buf, mode == "splice")
		if err != nil {
			return fmt.Errorf("%s: %w", mode, err)
		}
		rate := float64(n) / el / 1e6
		r.Metrics["mb_per_s_"+mode] = rate
		r.Metrics["cpu_s_per_gib_"+mode] = cpu / (float64(n) / gib)
		if rate > best {
			best = rate
			recordRate(r, n, el, cpu)
			r.Info["receiver"] = mode
		}
	}
	return nil
}

// recvOnce runs one upload of o.Size bytes to a bare receiver and returns
// the bytes the receiver wrote, the seconds from the connection to the
// file's close, and this process's CPU seconds.
func recvOnce(o *options, buf []byte, splice bool) (int64, float64, float64, error) {
	srv, cli, err := loopbackPair(o.Timeout)
	if err != nil {
		return 0, 0, 0, err
	}
	defer srv.Close()
	defer cli.Close()
	f, err := os.CreateTemp(o.Dir, "ferry-bench-limit-recv-*.bin")
	if err != nil {
		return 0, 0, 0, err
	}
	defer os.Remove(f.Name())
	type got struct {
		n    int64
		done time.Time
		err  error
	}
	done := make(chan got, 1)
	cpu0 := clientCPU()
	t0 := time.Now()
	go func() {
		var n int64
		var err error
		srv.SetDeadline(time.Now().Add(o.Timeout))
		if splice {
			n, err = io.Copy(f, srv)
		} else {
			n, err = io.CopyBuffer(struct{ io.Writer }{f}, struct{ io.Reader }{srv}, make([]byte, o.LimitBuf))
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		t := time.Now()
		srv.Close() // lets the sender's drain end
		done <- got{n, t, err}
	}()
	sent, err := writeN(clientRW(cli, cli, o.Timeout), buf, o.Size)
	if err != nil {
		srv.Close()
		<-done
		return 0, 0, 0, fmt.Errorf("sender: %w", err)
	}
	closeData(cli, nil)
	g := <-done
	cpu := clientCPU() - cpu0
	if g.err != nil {
		return 0, 0, 0, fmt.Errorf("receiver: %w", g.err)
	}
	if g.n != o.Size || sent != o.Size {
		return 0, 0, 0, fmt.Errorf("sent %d, received %d bytes, want %d", sent, g.n, o.Size)
	}
	return g.n, g.done.Sub(t0).Seconds(), cpu, nil
}

// runLimitSHA256 is the ceiling of an upload that is hashed while it is
// received, as Ferry stores a binary upload's SHA-256: SHA-256 of -size
// bytes from memory, in 1 MiB writes, in one goroutine. A stream's
// SHA-256 is sequential, so no upload that computes it can go faster
// than this, however many cores the rest of its work finds.
func runLimitSHA256(o *options, r *result) error {
	r.Addr = loopback
	r.Desc = humanBytes(o.Size) + ", SHA-256"
	buf := make([]byte, xferBuf)
	fillRandom(buf)
	h := sha256.New()
	cpu0 := clientCPU()
	t0 := time.Now()
	if _, err := writeN(h, buf, o.Size); err != nil {
		return err // a hash.Hash never fails a write
	}
	h.Sum(nil)
	el := time.Since(t0).Seconds()
	recordRate(r, o.Size, el, clientCPU()-cpu0)
	return nil
}

// Command s3ceiling measures what a plain S3 client gets straight from an
// S3 service: the ceilings that bench/compare.sh puts beside Ferry's S3
// rows. It prints one JSON result per measurement, in ferry-bench's
// format (label s3-direct by default), and a human line on stderr.
//
//	s3ceiling -endpoint http://127.0.0.1:7070 -bucket B -mode get -key public/big.bin
//	s3ceiling ... -mode relay -key public/big.bin
//	s3ceiling ... -mode put -size 1GiB -parts 8MiB,16MiB,64MiB -conc 1,4,8
//	s3ceiling ... -mode list -prefix public/dir-10000/ -reps 5
//	s3ceiling ... -mode small -n 10000 -c 4 -object-size 4096
//	s3ceiling ... -mode fill -prefix public/dir-10000/ -n 10000      (test data, no result)
//	s3ceiling ... -mode fill-big -key public/big.bin -size 1GiB      (test data, no result)
//	s3ceiling ... -mode mkbucket                                     (creates -bucket, no result)
//
// Modes: get (one GetObject stream; MB/s = 10^6 bytes/s), relay (the same
// stream passed on to a loopback client: the ceiling of any server in
// between; see relay), put (multipart
// PutObject of -size from memory with every part size × concurrency given;
// the best is the result, all are in info), list (ListObjectsV2 of the
// prefix with delimiter "/", 1,000 keys a page, as Ferry lists a
// directory; the median of -reps), small (-n PutObjects of -object-size
// bytes over -c goroutines; files/s). Credentials: -access-key and
// -secret-key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// result is one measurement, in ferry-bench's JSON form.
type result struct {
	Scenario string             `json:"scenario"`
	Key      string             `json:"key"`
	Server   string             `json:"server,omitempty"`
	Round    int                `json:"round,omitempty"`
	Addr     string             `json:"addr"`
	Time     string             `json:"time"`
	OK       bool               `json:"ok"`
	Error    string             `json:"error,omitempty"`
	Desc     string             `json:"desc"`
	Metrics  map[string]float64 `json:"metrics"`
	Info     map[string]any     `json:"info,omitempty"`
}

type options struct {
	bucket, key, prefix string
	size, objSize       int64
	parts               []int64
	conc                []int
	n, c, reps          int
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("s3ceiling", flag.ContinueOnError)
	fs.SetOutput(stderr)
	endpoint := fs.String("endpoint", "", "S3 endpoint URL; empty: AWS")
	region := fs.String("region", "us-east-1", "region")
	ak := fs.String("access-key", os.Getenv("AWS_ACCESS_KEY_ID"), "access key ID")
	sk := fs.String("secret-key", os.Getenv("AWS_SECRET_ACCESS_KEY"), "secret key")
	pathStyle := fs.Bool("path-style", true, "path-style addressing")
	mode := fs.String("mode", "", "get|relay|put|list|small|fill|fill-big|mkbucket")
	label := fs.String("label", "s3-direct", "server label of the results")
	rkey := fs.String("result-key", "", "result key (default s3-MODE, with get as s3-retr, put as s3-stor)")
	round := fs.Int("round", 0, "round recorded in the results")
	var o options
	fs.StringVar(&o.bucket, "bucket", "", "bucket")
	fs.StringVar(&o.key, "key", "ferry-bench/big.bin", "get, relay, fill-big: object key; put: key to upload to (deleted after)")
	fs.StringVar(&o.prefix, "prefix", "ferry-bench/dir/", "list, fill: key prefix; small: prefix of the objects (deleted after)")
	size := fs.String("size", "64MiB", "put, fill-big: object size")
	objSize := fs.String("object-size", "4KiB", "small: size of each object")
	parts := fs.String("parts", "8MiB,16MiB,64MiB", "put: part sizes to try")
	conc := fs.String("conc", "1,4,8", "put: part concurrencies to try")
	fs.IntVar(&o.n, "n", 10000, "small, fill: objects")
	fs.IntVar(&o.c, "c", 4, "small, fill: goroutines")
	fs.IntVar(&o.reps, "reps", 5, "list: listings (median reported)")
	timeout := fs.Duration("timeout", 10*time.Minute, "whole run")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var err error
	if o.size, err = parseSize(*size); err == nil {
		o.objSize, err = parseSize(*objSize)
	}
	for _, p := range strings.Split(*parts, ",") {
		v, perr := parseSize(p)
		err = errors.Join(err, perr)
		o.parts = append(o.parts, v)
	}
	for _, c := range strings.Split(*conc, ",") {
		v, cerr := strconv.Atoi(strings.TrimSpace(c))
		err = errors.Join(err, cerr)
		o.conc = append(o.conc, v)
	}
	if err != nil || o.bucket == "" || *mode == "" {
		fmt.Fprintln(stderr, "s3ceiling: -bucket and -mode are required; sizes like 4KiB, 8MiB, 1GiB:", err)
		return 2
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second}).DialContext
	opts := s3.Options{
		Region: *region, UsePathStyle: *pathStyle, HTTPClient: &http.Client{Transport: tr},
		Credentials: credentials.NewStaticCredentialsProvider(*ak, *sk, os.Getenv("AWS_SESSION_TOKEN")),
	}
	if *endpoint != "" {
		opts.BaseEndpoint = endpoint
	}
	c := s3.New(opts)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	r := result{Scenario: "s3-" + *mode, Key: *rkey, Server: *label, Round: *round, Addr: *endpoint,
		Time: time.Now().UTC().Format(time.RFC3339), Metrics: map[string]float64{}, Info: map[string]any{}}
	if r.Key == "" {
		r.Key = map[string]string{"get": "s3-retr", "relay": "s3-relay", "put": "s3-stor", "list": "s3-list", "small": "s3-small"}[*mode]
	}
	switch *mode {
	case "get":
		err = get(ctx, c, &o, &r)
	case "relay":
		var raw *rawGetter
		if u, perr := url.Parse(*endpoint); perr == nil && u.Scheme == "http" && *pathStyle {
			raw = &rawGetter{endpoint: u, region: *region, creds: opts.Credentials}
		}
		err = relay(ctx, c, &o, &r, raw)
	case "put":
		err = put(ctx, c, &o, &r)
	case "list":
		err = list(ctx, c, &o, &r)
	case "small":
		err = small(ctx, c, &o, &r)
	case "fill":
		err = fill(ctx, c, &o)
	case "fill-big":
		err = fillBig(ctx, c, &o)
	case "mkbucket":
		_, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &o.bucket})
		if _, ok := errors.AsType[*types.BucketAlreadyOwnedByYou](err); ok {
			err = nil
		}
	default:
		fmt.Fprintf(stderr, "s3ceiling: unknown -mode %q\n", *mode)
		return 2
	}
	if *mode == "fill" || *mode == "fill-big" || *mode == "mkbucket" {
		if err != nil {
			fmt.Fprintln(stderr, "s3ceiling:", err)
			return 1
		}
		return 0
	}
	r.OK = err == nil
	if err != nil {
		r.Error = err.Error()
	}
	json.NewEncoder(stdout).Encode(r)
	fmt.Fprintln(stderr, human(r))
	if err != nil {
		return 1
	}
	return 0
}

func human(r result) string {
	if !r.OK {
		return fmt.Sprintf("%s %s: FAILED: %s", r.Server, r.Key, r.Error)
	}
	var parts []string
	for _, k := range []string{"mb_per_s", "ms", "files_per_s", "entries", "bytes"} {
		if v, ok := r.Metrics[k]; ok {
			parts = append(parts, fmt.Sprintf("%s=%.1f", k, v))
		}
	}
	return fmt.Sprintf("%s %s (%s): %s", r.Server, r.Key, r.Desc, strings.Join(parts, " "))
}

// get reads the object in one GetObject stream.
func get(ctx context.Context, c *s3.Client, o *options, r *result) error {
	t0 := time.Now()
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &o.bucket, Key: &o.key})
	if err != nil {
		return err
	}
	n, err := io.CopyBuffer(io.Discard, out.Body, make([]byte, 1<<20))
	out.Body.Close()
	el := time.Since(t0).Seconds()
	if err != nil {
		return err
	}
	r.Desc = humanBytes(n) + ", one GetObject"
	r.Metrics["bytes"], r.Metrics["seconds"], r.Metrics["mb_per_s"] = float64(n), el, float64(n)/el/1e6
	return nil
}

// put uploads o.size bytes with each part size and concurrency; the best
// throughput is the result.
func put(ctx context.Context, c *s3.Client, o *options, r *result) error {
	data := make([]byte, o.size)
	fillRandom(data)
	best, bestDesc := 0.0, ""
	tries := map[string]float64{}
	for _, ps := range o.parts {
		for _, cc := range o.conc {
			t0 := time.Now()
			if err := multipart(ctx, c, o.bucket, o.key, data, ps, cc); err != nil {
				return fmt.Errorf("parts %s × %d: %w", humanBytes(ps), cc, err)
			}
			el := time.Since(t0).Seconds()
			mbs := float64(o.size) / el / 1e6
			d := fmt.Sprintf("%s parts × %d", humanBytes(ps), cc)
			tries[d] = mbs
			if mbs > best {
				best, bestDesc = mbs, d
			}
		}
	}
	c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &o.bucket, Key: &o.key})
	r.Desc = humanBytes(o.size) + ", best multipart: " + bestDesc
	r.Metrics["bytes"], r.Metrics["mb_per_s"] = float64(o.size), best
	r.Info["tries_mb_per_s"] = tries
	return nil
}

func multipart(ctx context.Context, c *s3.Client, bucket, key string, data []byte, part int64, conc int) error {
	cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return err
	}
	n := int((int64(len(data)) + part - 1) / part)
	done := make([]types.CompletedPart, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, conc)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				lo := int64(i) * part
				hi := min(lo+part, int64(len(data)))
				out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: cr.UploadId,
					PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(data[lo:hi]), ContentLength: aws.Int64(hi - lo)})
				if err != nil {
					errs <- err
					return
				}
				done[i] = types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(int32(i + 1)),
					ChecksumCRC32: out.ChecksumCRC32}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		c.AbortMultipartUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: cr.UploadId})
		return err
	}
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: cr.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
	return err
}

// list lists the prefix as one directory, o.reps times.
func list(ctx context.Context, c *s3.Client, o *options, r *result) error {
	var times []float64
	entries := 0
	for range o.reps {
		t0 := time.Now()
		entries = 0
		pg := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: &o.bucket, Prefix: &o.prefix,
			Delimiter: aws.String("/"), MaxKeys: aws.Int32(1000)})
		for pg.HasMorePages() {
			page, err := pg.NextPage(ctx)
			if err != nil {
				return err
			}
			entries += len(page.Contents) + len(page.CommonPrefixes)
		}
		times = append(times, time.Since(t0).Seconds()*1000)
	}
	slices.Sort(times)
	r.Desc = fmt.Sprintf("%d keys, ListObjectsV2", entries)
	r.Metrics["entries"], r.Metrics["ms"] = float64(entries), times[len(times)/2]
	return nil
}

// small puts o.n objects of o.objSize bytes over o.c goroutines, then
// deletes them.
func small(ctx context.Context, c *s3.Client, o *options, r *result) error {
	data := make([]byte, o.objSize)
	fillRandom(data)
	prefix := o.prefix + fmt.Sprintf("small-%d/", time.Now().UnixNano())
	t0 := time.Now()
	err := each(o.n, o.c, func(i int) error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &o.bucket, Key: aws.String(fmt.Sprintf("%sf-%06d", prefix, i)),
			Body: bytes.NewReader(data), ContentLength: aws.Int64(o.objSize)})
		return err
	})
	el := time.Since(t0).Seconds()
	if err != nil {
		return err
	}
	r.Desc = fmt.Sprintf("%d × %s, %d goroutines", o.n, humanBytes(o.objSize), o.c)
	r.Metrics["files"], r.Metrics["seconds"], r.Metrics["files_per_s"] = float64(o.n), el, float64(o.n)/el
	each(o.n, 8, func(i int) error {
		_, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &o.bucket, Key: aws.String(fmt.Sprintf("%sf-%06d", prefix, i))})
		return err
	})
	return nil
}

// fill makes o.n empty objects under o.prefix (named like ferry-bench
// -mkfiles does) unless that many are there.
func fill(ctx context.Context, c *s3.Client, o *options) error {
	out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &o.bucket, Prefix: &o.prefix, MaxKeys: aws.Int32(1)})
	if err == nil && aws.ToInt32(out.KeyCount) > 0 {
		return nil // made by an earlier run
	}
	return each(o.n, max(o.c, 8), func(i int) error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &o.bucket, Key: aws.String(fmt.Sprintf("%sfile-%07d", o.prefix, i)),
			Body: bytes.NewReader(nil)})
		return err
	})
}

// fillBig uploads a random object of o.size bytes at o.key.
func fillBig(ctx context.Context, c *s3.Client, o *options) error {
	h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &o.bucket, Key: &o.key})
	if err == nil && aws.ToInt64(h.ContentLength) == o.size {
		return nil
	}
	data := make([]byte, o.size)
	fillRandom(data)
	return multipart(ctx, c, o.bucket, o.key, data, 64<<20, 4)
}

// each runs f(0) … f(n-1) over width goroutines; the first error wins.
func each(n, width int, f func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range width {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

func fillRandom(b []byte) {
	var seed [32]byte
	r := rand.NewChaCha8(seed)
	r.Read(b)
}

func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if v, ok := strings.CutSuffix(s, u.suf); ok {
			s, mult = v, u.m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// relay is the ceiling of a server that passes an object on to a client:
// one GetObject stream copied to a loopback TCP connection, whose other end
// reads it in 1 MiB reads as ferry-bench's retr client does, all in this
// process. Two relays are tried and the faster counts: the SDK's body
// copied in 256 KiB writes, as Ferry copies it, and, on a plain-HTTP
// endpoint, a signed GET on a connection of its own whose body the kernel
// moves to the client with splice(2), never through user memory.
func relay(ctx context.Context, c *s3.Client, o *options, r *result, raw *rawGetter) error {
	modes := []string{"copy"}
	if raw != nil {
		modes = append(modes, "splice")
	}
	var best float64
	for _, mode := range modes {
		n, el, err := relayOnce(ctx, c, o, raw, mode == "splice")
		if err != nil {
			return fmt.Errorf("%s: %w", mode, err)
		}
		rate := float64(n) / el / 1e6
		r.Metrics["mb_per_s_"+mode] = rate
		if rate > best {
			best = rate
			r.Metrics["bytes"], r.Metrics["seconds"], r.Metrics["mb_per_s"] = float64(n), el, rate
			r.Info["relay"] = mode
			r.Desc = humanBytes(n) + ", one GetObject relayed"
		}
	}
	return nil
}

// relayOnce relays the object once and returns the bytes the client end
// read and the seconds from the request to the client's end of file.
func relayOnce(ctx context.Context, c *s3.Client, o *options, raw *rawGetter, splice bool) (int64, float64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	defer ln.Close()
	type got struct {
		n   int64
		err error
	}
	done := make(chan got, 1)
	go func() {
		cc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			done <- got{0, err}
			return
		}
		defer cc.Close()
		cc.SetDeadline(time.Now().Add(5 * time.Minute))
		n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{cc}, make([]byte, 1<<20))
		done <- got{n, err}
	}()
	sc, err := ln.Accept()
	if err != nil {
		return 0, 0, err
	}
	srv := sc.(*net.TCPConn)
	defer srv.Close()
	srv.SetDeadline(time.Now().Add(5 * time.Minute))
	t0 := time.Now()
	if splice {
		err = raw.spliceTo(ctx, srv, o.bucket, o.key)
	} else {
		var out *s3.GetObjectOutput
		out, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: &o.bucket, Key: &o.key})
		if err == nil {
			_, err = io.CopyBuffer(struct{ io.Writer }{srv}, struct{ io.Reader }{out.Body}, make([]byte, 256<<10))
			out.Body.Close()
		}
	}
	if err == nil {
		err = srv.CloseWrite()
	}
	if err != nil {
		srv.Close()
		<-done
		return 0, 0, err
	}
	g := <-done
	return g.n, time.Since(t0).Seconds(), g.err
}

// rawGetter sends signed GETs by hand, for the splice relay.
type rawGetter struct {
	endpoint *url.URL // http, path-style
	region   string
	creds    aws.CredentialsProvider
}

// emptySHA256 is the payload hash of a request without a body.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// spliceTo GETs bucket/key on a connection of its own (Connection: close)
// and moves the body to dst: the bytes the header read buffered, then the
// rest through TCPConn.ReadFrom, which splices from a TCP source.
func (g *rawGetter) spliceTo(ctx context.Context, dst *net.TCPConn, bucket, key string) error {
	u := *g.endpoint
	u.Path = "/" + bucket + "/" + key
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Close = true
	req.Header.Set("X-Amz-Content-Sha256", emptySHA256)
	cr, err := g.creds.Retrieve(ctx)
	if err != nil {
		return err
	}
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	if err := signer.SignHTTP(ctx, cr, req, emptySHA256, "s3", g.region, time.Now()); err != nil {
		return err
	}
	conn, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Minute))
	if err := req.Write(conn); err != nil {
		return err
	}
	br := bufio.NewReaderSize(conn, 4096)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || resp.ContentLength < 0 || len(resp.TransferEncoding) > 0 {
		return fmt.Errorf("GET %s: %s, length %d, transfer encoding %q", key, resp.Status, resp.ContentLength, resp.TransferEncoding)
	}
	head, _ := br.Peek(br.Buffered())
	if _, err := dst.Write(head); err != nil {
		return err
	}
	rest := resp.ContentLength - int64(len(head))
	n, err := dst.ReadFrom(io.LimitReader(conn, rest))
	if err == nil && n != rest {
		err = fmt.Errorf("GET %s: %d of %d body bytes", key, n+int64(len(head)), resp.ContentLength)
	}
	return err
}

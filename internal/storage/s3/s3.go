// Package s3store is a storage backend on an S3-compatible object store
// (AWS S3, Ceph RGW, MinIO, R2, versitygw …), built on aws-sdk-go-v2.
//
// Layout: every key lives under Config.Prefix; a location (what an account
// names as its home: "public", "home/alice") is a key prefix below it, so
// the user's name "a/b" is the key "P/home/alice/a/b". A directory is a
// common prefix ("d/…" keys exist) or an empty marker object "d/" (what
// Mkdir puts); objects that other tools put show up as files and
// directories.
//
// Semantics that differ from a disk (docs/storage.md says more):
//   - uploads are invisible until Commit: small ones are one PutObject,
//     larger ones a multipart upload whose parts leave while the client
//     still sends, from part buffers of one server-wide budget;
//   - REST+STOR and APPE copy the existing bytes server-side
//     (UploadPartCopy) and Abort of such an upload leaves the object as it
//     was (storage.CapAbortRestores);
//   - there are no permission bits (Chmod: storage.ErrNotSupported);
//     modification times live in the user metadata entry "mtime", the
//     digests of an upload (storage.HashStore) in "hash-sha256" … (hash.go);
//   - a rename is a copy then a delete; a directory rename that fails
//     midway returns storage.ErrPartial and repeating it finishes it;
//   - a key that is both an object and a prefix ("f" and "f/x") is
//     listed as a directory, but Stat finds the object; keys whose last segment is empty, "." or "..", or holds
//     NUL, CR or LF, are never listed.
package s3store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/ferryftp/ferry/internal/storage"
)

// Config says which bucket to use and how. Zero fields take the defaults
// given.
type Config struct {
	Bucket string
	// Endpoint is the service's URL ("http://127.0.0.1:7070"); empty: AWS.
	Endpoint string
	// Region signs the requests; default "us-east-1".
	Region string
	// Prefix is the key prefix of everything Ferry stores ("ferry" or
	// "a/b"; slashes around it are ignored); empty: the bucket's root.
	Prefix string
	// PathStyle addresses the bucket in the path (http://host/bucket/key),
	// as most S3 clones need, instead of the host name.
	PathStyle bool
	// AccessKey, SecretKey and SessionToken are the credentials; empty:
	// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.
	AccessKey, SecretKey, SessionToken string
	// PartSize is the size of a multipart upload's parts, in bytes:
	// default 8 MiB, at least 5 MiB (S3's minimum). A smaller upload is
	// one PutObject.
	PartSize int64
	// BufferBudget is the server-wide number of bytes for upload part
	// buffers: default 256 MiB, at least one part. When it is used up,
	// writes wait for a buffer.
	BufferBudget int64
	// UploadConcurrency is how many parts of one upload are sent at once:
	// default 4, at least 1. Each part in flight holds a buffer of the
	// budget, and the part being filled one more, so an upload holds at
	// most UploadConcurrency+1 buffers (fewer when the budget is out).
	UploadConcurrency int
	// OrphanAge is how old a multipart upload must be for Sweep to abort
	// it, whatever later cutoff Sweep is given (other servers on the bucket
	// may be running that upload); default 24h; negative: Sweep's cutoff
	// alone decides.
	OrphanAge time.Duration
	// CallTimeout is the deadline of each S3 call (one listing page, one
	// part, one HEAD, a stall of a download's body); default 30 s.
	CallTimeout time.Duration
	// ChecksumWhenRequired sends checksums only where S3 requires them,
	// for older S3 clones that reject the SDK's default CRC32 trailers.
	ChecksumWhenRequired bool
	// Journal, when set, records multipart uploads and directory renames
	// in shared state; nil: none (Sweep lists the bucket's uploads).
	Journal Journal
	// Logger receives warnings (failed clean-ups); nil: slog.Default().
	Logger *slog.Logger
	// Transport carries the HTTP requests; nil: a pooled transport.
	// Tests wrap it to count or break requests.
	Transport http.RoundTripper
	// ListLastModified lists each object with its LastModified and does
	// not read the directory's times object (where MFMT's times are
	// recorded for listings): it saves one GET per listing, but a listing
	// then shows MFMT's times only where Stat does (MDTM, MLST).
	ListLastModified bool
	// Clock is the time the backend reads for how fresh its lists of busy
	// directories' subdirectories are (dirs.go); default time.Now. Tests
	// set it.
	Clock func() time.Time
	// MaxAttempts bounds the SDK's retries of throttling, 5xx and
	// connection errors (standard retryer with backoff); default 3.
	MaxAttempts int
}

// Defaults.
const (
	DefaultPartSize     = 8 << 20
	MinPartSize         = 5 << 20
	DefaultBufferBudget = 256 << 20
	// DefaultUploadConcurrency is Config.UploadConcurrency's default.
	DefaultUploadConcurrency = 4
	DefaultOrphanAge         = 24 * time.Hour
	DefaultCallTimeout       = 30 * time.Second
	// MaxKeyBytes is S3's limit on a key's length.
	MaxKeyBytes = 1024
	// maxCopyObject is the largest object CopyObject copies in one call;
	// larger ones are copied in parts.
	maxCopyObject = 5 << 30
)

// metaMtime is the user metadata entry holding a modification time
// (x-amz-meta-mtime), Unix nanoseconds in decimal.
const metaMtime = "mtime"

// Backend is one bucket (under a prefix) serving every location; it is an
// storage.Opener, HomeMaker and Sweeper. Its methods are safe for
// concurrent use.
type Backend struct {
	client  *s3.Client
	bucket  string
	base    string // "P/" or ""
	part    int64
	conc    int  // parts of one upload in flight at most
	crc     bool // parts carry the CRC32 Ferry computed (not Config.ChecksumWhenRequired)
	timeout time.Duration
	journal Journal
	log     *slog.Logger
	pool    *Pool
	lastMod bool // Config.ListLastModified
	orphan  time.Duration

	dirs dirCache // subdirectories of busy directories (dirs.go)

	mu        sync.Mutex
	exclusive map[string]bool // keys of running exclusive uploads, guarded by mu
}

var (
	_ storage.Opener    = (*Backend)(nil)
	_ storage.HomeMaker = (*Backend)(nil)
	_ storage.Sweeper   = (*Backend)(nil)
)

// New makes a Backend of c. It makes no call: Check tests the bucket.
func New(ctx context.Context, c Config) (*Backend, error) {
	if c.Bucket == "" {
		return nil, errors.New("s3: no bucket")
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.PartSize == 0 {
		c.PartSize = DefaultPartSize
	}
	if c.PartSize < MinPartSize {
		return nil, fmt.Errorf("s3: part size %d below the S3 minimum of %d bytes", c.PartSize, MinPartSize)
	}
	if c.BufferBudget == 0 {
		c.BufferBudget = DefaultBufferBudget
	}
	if c.BufferBudget < c.PartSize {
		return nil, fmt.Errorf("s3: buffer budget %d below one part (%d bytes)", c.BufferBudget, c.PartSize)
	}
	if c.UploadConcurrency == 0 {
		c.UploadConcurrency = DefaultUploadConcurrency
	}
	if c.UploadConcurrency < 1 {
		return nil, fmt.Errorf("s3: upload concurrency %d below 1", c.UploadConcurrency)
	}
	if c.OrphanAge == 0 {
		c.OrphanAge = DefaultOrphanAge
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = retry.DefaultMaxAttempts
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.AccessKey == "" && c.SecretKey == "" {
		c.AccessKey = os.Getenv("AWS_ACCESS_KEY_ID")
		c.SecretKey = os.Getenv("AWS_SECRET_ACCESS_KEY")
		if c.SessionToken == "" {
			c.SessionToken = os.Getenv("AWS_SESSION_TOKEN")
		}
	}
	if c.AccessKey == "" || c.SecretKey == "" {
		return nil, errors.New("s3: no credentials (set an access key and a secret key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
	}
	tr := c.Transport
	if tr == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns = 256
		t.MaxIdleConnsPerHost = 256
		t.DialContext = dialBigWrites((&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext)
		tr = t
	}
	o := s3.Options{
		Region:       c.Region,
		UsePathStyle: c.PathStyle,
		Credentials:  aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(c.AccessKey, c.SecretKey, c.SessionToken)),
		HTTPClient:   &http.Client{Transport: tr},
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = c.MaxAttempts
		}),
	}
	if c.Endpoint != "" {
		o.BaseEndpoint = aws.String(c.Endpoint)
	}
	if c.ChecksumWhenRequired {
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	} else {
		// Set, not left to the zero value, which computes no checksum:
		// a PutObject carries the CRC32 the SDK computes of its body.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenSupported
		// The CRC32 each part carries (upload.write computes it) guards
		// its bytes; hashing them again with SHA-256 for the signature
		// (what the SDK does over plain HTTP) costs a third of the
		// upload speed.
		o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
	}
	base := strings.Trim(c.Prefix, "/")
	if base != "" {
		if !validPrefix(base) {
			return nil, fmt.Errorf("s3: bad prefix %q", c.Prefix)
		}
		base += "/"
	}
	return &Backend{
		client:    s3.New(o),
		bucket:    c.Bucket,
		base:      base,
		part:      c.PartSize,
		conc:      c.UploadConcurrency,
		crc:       !c.ChecksumWhenRequired,
		timeout:   c.CallTimeout,
		journal:   c.Journal,
		log:       c.Logger,
		pool:      NewPool(c.PartSize, c.BufferBudget),
		lastMod:   c.ListLastModified,
		orphan:    c.OrphanAge,
		exclusive: map[string]bool{},
		dirs:      dirCache{now: c.Clock},
	}, nil
}

// validPrefix reports whether p is a clean slash-separated key prefix.
func validPrefix(p string) bool {
	if !utf8.ValidString(p) || len(p) > MaxKeyBytes/2 {
		return false
	}
	for _, e := range strings.Split(p, "/") {
		if e == "" || e == "." || e == ".." || strings.ContainsAny(e, "\x00\r\n") {
			return false
		}
	}
	return true
}

// Pool returns the backend's part-buffer pool (for its figures).
func (b *Backend) Pool() *Pool { return b.pool }

// Close releases the backend's idle connections.
func (b *Backend) Close() error {
	if c, ok := b.client.Options().HTTPClient.(*http.Client); ok {
		c.CloseIdleConnections()
	}
	return nil
}

// call returns ctx bounded by the per-call deadline.
func (b *Backend) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, b.timeout)
}

// deleteObject deletes key within one call's deadline.
func (b *Backend) deleteObject(ctx context.Context, key string) error {
	cctx, cancel := b.call(ctx)
	defer cancel()
	_, err := b.client.DeleteObject(cctx, &s3.DeleteObjectInput{Bucket: &b.bucket, Key: &key})
	return b.wrap("DeleteObject", key, err)
}

// Check tests that the bucket is reachable and writable: it puts and
// deletes a probe object under the prefix. Its error names the problem.
func (b *Backend) Check(ctx context.Context) error {
	key := b.base + storage.TempPrefix + "check"
	cctx, cancel := b.call(ctx)
	defer cancel()
	_, err := b.client.PutObject(cctx, &s3.PutObjectInput{
		Bucket: &b.bucket, Key: &key, Body: strings.NewReader("ferry"),
	})
	if err == nil {
		_, err = b.client.DeleteObject(cctx, &s3.DeleteObjectInput{Bucket: &b.bucket, Key: &key})
	}
	if err == nil {
		return nil
	}
	return b.explain(err)
}

// explain turns a failed probe into a sentence naming the problem.
func (b *Backend) explain(err error) error {
	var ae smithy.APIError
	code := ""
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	var why string
	switch code {
	case "NoSuchBucket":
		why = "no such bucket"
	case "InvalidAccessKeyId", "XAdminUserNotFound":
		why = "bad credentials: the access key is not known (" + code + ")"
	case "SignatureDoesNotMatch":
		why = "bad credentials: the secret key does not match (SignatureDoesNotMatch)"
	case "AccessDenied":
		why = "access denied: the credentials may not write to the bucket"
	case "AuthorizationHeaderMalformed", "IllegalLocationConstraintException", "PermanentRedirect", "AuthorizationQueryParametersError":
		why = "wrong region (" + code + ")"
	default:
		var ne net.Error
		var oe *net.OpError
		switch {
		case errors.As(err, &oe), errors.As(err, &ne), errors.Is(err, context.DeadlineExceeded):
			why = "endpoint unreachable"
		case code != "":
			why = code
		default:
			why = "request failed"
		}
	}
	return fmt.Errorf("s3 bucket %q: %s: %w", b.bucket, why, err)
}

// Open returns the file system of location, a key prefix under the
// backend's prefix ("public", "home/alice"). The root always exists.
func (b *Backend) Open(_ context.Context, location string) (storage.FS, error) {
	root, err := b.locationKey(location)
	if err != nil {
		return nil, err
	}
	return &FS{b: b, root: root}, nil
}

func (b *Backend) locationKey(location string) (string, error) {
	loc := strings.Trim(location, "/")
	if loc == "" {
		return b.base, nil
	}
	if !validPrefix(loc) {
		return "", fmt.Errorf("s3: location %q: %w", location, storage.ErrBadName)
	}
	return b.base + loc + "/", nil
}

// MakeHome puts the marker object of location's root when missing, so the
// home shows as a directory to other tools.
func (b *Backend) MakeHome(ctx context.Context, location string) error {
	root, err := b.locationKey(location)
	if err != nil {
		return err
	}
	if root == "" {
		return nil
	}
	cctx, cancel := b.call(ctx)
	defer cancel()
	_, err = b.client.PutObject(cctx, &s3.PutObjectInput{
		Bucket: &b.bucket, Key: &root, Body: strings.NewReader(""), IfNoneMatch: aws.String("*"),
	})
	if err = b.wrap("PutObject", root, err); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	if err == nil {
		b.dirs.reset() // a new directory in the homes' directory
	}
	return nil
}

// Error is a failed S3 call: the operation, the key, S3's error code, HTTP
// status and request ID. It matches (errors.Is) fs.ErrNotExist for a
// missing key, fs.ErrExist for a failed precondition, fs.ErrPermission for
// AccessDenied, and whatever its cause matches (context errors).
type Error struct {
	Op, Key   string
	Code      string
	Status    int
	RequestID string
	Err       error // the SDK's error
	kind      error // the sentinel it maps to, or nil
}

func (e *Error) Error() string {
	s := "s3 " + e.Op + " " + e.Key + ": "
	if e.Code != "" {
		s += e.Code + " "
	}
	if e.Status != 0 {
		s += fmt.Sprintf("(HTTP %d", e.Status)
		if e.RequestID != "" {
			s += ", request " + e.RequestID
		}
		s += ") "
	}
	return s + e.Err.Error()
}

func (e *Error) Unwrap() []error {
	if e.kind != nil {
		return []error{e.kind, e.Err}
	}
	return []error{e.Err}
}

// wrap maps an SDK error; nil stays nil.
func (b *Backend) wrap(op, key string, err error) error {
	if err == nil {
		return nil
	}
	e := &Error{Op: op, Key: key, Err: err}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		e.Code = ae.ErrorCode()
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		e.Status = re.HTTPStatusCode()
		e.RequestID = re.ServiceRequestID()
	}
	switch {
	case e.Code == "NoSuchKey" || e.Code == "NoSuchUpload" || e.Code == "NotFound" || e.Status == http.StatusNotFound && e.Code != "NoSuchBucket":
		e.kind = fs.ErrNotExist
	case e.Code == "PreconditionFailed" || e.Status == http.StatusPreconditionFailed:
		e.kind = fs.ErrExist
	case e.Code == "AccessDenied" || e.Status == http.StatusForbidden && e.Code == "":
		e.kind = fs.ErrPermission
	case e.Code == "ExistingObjectIsDirectory":
		e.kind = storage.ErrIsDir
	case e.Code == "KeyTooLongError":
		e.kind = storage.ErrNameTooLong
	}
	return e
}

// isStatus reports whether err is an S3 error of HTTP status code.
func isStatus(err error, code int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == code
}

// info is a FileInfo of an object or a directory.
type info struct {
	name  string
	size  int64
	dir   bool
	mtime time.Time
}

func (i *info) Name() string { return i.name }
func (i *info) Size() int64  { return i.size }
func (i *info) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o755
	}
	return 0o644
}
func (i *info) ModTime() time.Time { return i.mtime }
func (i *info) IsDir() bool        { return i.dir }
func (i *info) Sys() any           { return nil }

// dirTime is the modification time of a directory that has no marker
// object to carry one: a common prefix has none.
var dirTime = time.Unix(0, 0).UTC()

// mtimeOf reads the mtime metadata entry, or returns fallback.
func mtimeOf(meta map[string]string, fallback *time.Time) time.Time {
	if v, ok := meta[metaMtime]; ok {
		if t, err := parseMtime(v); err == nil {
			return t
		}
	}
	if fallback != nil {
		return *fallback
	}
	return dirTime
}

func formatMtime(t time.Time) string { return fmt.Sprint(t.UnixNano()) }

func parseMtime(v string) (time.Time, error) {
	var ns int64
	if _, err := fmt.Sscan(v, &ns); err == nil {
		return time.Unix(0, ns).UTC(), nil
	}
	return time.Parse(time.RFC3339Nano, v)
}

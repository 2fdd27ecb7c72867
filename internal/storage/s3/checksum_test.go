package s3store_test

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"

	"github.com/ferryftp/ferry/internal/storage"
	s3store "github.com/ferryftp/ferry/internal/storage/s3"
	"github.com/ferryftp/ferry/internal/storage/storagetest"
)

// partRecorder records each UploadPart's x-amz-checksum-crc32 header and
// the CRC32 of the body it carried; corrupt, when set, flips a byte of
// the body of that part number after the header was set.
type partRecorder struct {
	mu      sync.Mutex
	headers map[int]string
	bodies  map[int]string
	corrupt int
}

func (p *partRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	if awsmiddleware.GetOperationName(r.Context()) != "UploadPart" {
		return http.DefaultTransport.RoundTrip(r)
	}
	num, _ := strconv.Atoi(r.URL.Query().Get("partNumber"))
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.headers[num] = r.Header.Get("X-Amz-Checksum-Crc32")
	p.bodies[num] = crcOf(body)
	if num == p.corrupt {
		body[len(body)/2] ^= 1
	}
	p.mu.Unlock()
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	return http.DefaultTransport.RoundTrip(r)
}

func crcOf(b []byte) string {
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(b)))
}

// TestPartChecksums: every part carries the CRC32 of its own bytes, which
// the backend takes as they are written (the SDK does not read the part
// again for it), in-place uploads' first parts included; S3 refuses a part
// whose bytes do not match it, and the old object stays.
func TestPartChecksums(t *testing.T) {
	rec := &partRecorder{}
	b, srv, bucket := backend(t, func(c *s3store.Config) { c.PartSize = s3store.MinPartSize; c.Transport = rec })
	fsys := openFS(t, b, "public")
	old := randBytes(3 * mib) // under a part: REST reads it into the first part
	write(t, fsys, "f", storage.CreateOptions{}, old)
	for _, tc := range []struct {
		name string
		o    storage.CreateOptions
		n    int
	}{
		{"whole", storage.CreateOptions{}, 2*s3store.MinPartSize + 3},
		{"rest", storage.CreateOptions{Offset: mib + 5}, s3store.MinPartSize + 7},
		{"rest-past-end", storage.CreateOptions{Offset: 4 * mib}, s3store.MinPartSize},
	} {
		rec.mu.Lock()
		rec.headers, rec.bodies = map[int]string{}, map[int]string{}
		rec.mu.Unlock()
		write(t, fsys, "g-"+tc.name, storage.CreateOptions{}, old)
		write(t, fsys, "g-"+tc.name, tc.o, randBytes(tc.n))
		rec.mu.Lock()
		if len(rec.headers) < 2 {
			t.Errorf("%s: %d parts, want 2 or more", tc.name, len(rec.headers))
		}
		for num, h := range rec.headers {
			if h == "" || h != rec.bodies[num] {
				t.Errorf("%s: part %d: x-amz-checksum-crc32 %q, its bytes' CRC32 %q", tc.name, num, h, rec.bodies[num])
			}
		}
		rec.mu.Unlock()
	}

	rec.mu.Lock()
	rec.headers, rec.bodies, rec.corrupt = map[int]string{}, map[int]string{}, 2
	rec.mu.Unlock()
	up, err := fsys.Create(t.Context(), storagetest.P("f"), storage.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var werr error
	for i := 0; i < 4 && werr == nil; i++ {
		_, werr = up.Write(randBytes(4 * mib))
	}
	if werr == nil {
		werr = up.Commit(t.Context())
	} else {
		up.Abort(t.Context())
	}
	if werr == nil {
		t.Fatal("an upload whose part 2 was corrupted on the way committed")
	}
	same(t, "after the corrupted upload", read(t, fsys, "f"), old)
	noUploads(t, srv.Client(), bucket)
	t.Log(fmt.Sprint("the corrupted upload failed: ", werr))
}

// putRecorder records the x-amz-checksum-crc32 header of each PutObject.
type putRecorder struct {
	mu      sync.Mutex
	headers []string
}

func (p *putRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	if awsmiddleware.GetOperationName(r.Context()) == "PutObject" {
		p.mu.Lock()
		p.headers = append(p.headers, r.Header.Get("X-Amz-Checksum-Crc32"))
		p.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestPutChecksum: a small upload's PutObject carries its CRC32 too.
func TestPutChecksum(t *testing.T) {
	rec := &putRecorder{}
	b, _, _ := backend(t, func(c *s3store.Config) { c.Transport = rec })
	fsys := openFS(t, b, "public")
	data := randBytes(1000)
	rec.mu.Lock()
	rec.headers = nil
	rec.mu.Unlock()
	write(t, fsys, "small", storage.CreateOptions{}, data)
	same(t, "small", read(t, fsys, "small"), data)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.headers) != 1 || rec.headers[0] != crcOf(data) {
		t.Errorf("PutObject x-amz-checksum-crc32 headers %q, want [%q]", rec.headers, crcOf(data))
	}
}

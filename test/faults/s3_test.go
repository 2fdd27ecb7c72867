package faults

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/ferryftp/ferry/internal/testenv/s3env"
)

// s3Bucket is a fresh bucket on a private versitygw, and the serve flags
// that put Ferry on it (credentials in a key file, not the environment).
type s3Bucket struct {
	gw     *s3env.Server
	name   string
	c      *s3.Client
	args   []string
	secret string // the secret key file
}

func newS3Bucket(t *testing.T) *s3Bucket {
	t.Helper()
	gw := s3env.Start(t)
	b := &s3Bucket{gw: gw, name: gw.NewBucket(t), c: gw.Client(), secret: filepath.Join(t.TempDir(), "s3-secret")}
	if err := os.WriteFile(b.secret, []byte(gw.SecretKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b.args = []string{"--storage", "s3", "--s3-endpoint", gw.Endpoint, "--s3-bucket", b.name,
		"--s3-region", gw.Region, "--s3-path-style", "--s3-access-key", gw.AccessKey, "--s3-secret-key-file", b.secret}
	return b
}

func (b *s3Bucket) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	return ctx
}

func (b *s3Bucket) put(t *testing.T, key string, data []byte) {
	t.Helper()
	if _, err := b.c.PutObject(b.ctx(t), &s3.PutObjectInput{Bucket: &b.name, Key: &key, Body: bytes.NewReader(data)}); err != nil {
		t.Fatalf("PutObject %s: %v", key, err)
	}
}

// sameObject fails unless the object at key holds exactly want.
func (b *s3Bucket) sameObject(t *testing.T, key string, want []byte) {
	t.Helper()
	out, err := b.c.GetObject(b.ctx(t), &s3.GetObjectInput{Bucket: &b.name, Key: &key})
	if _, ok := errors.AsType[*types.NoSuchKey](err); ok {
		t.Fatalf("object %s is gone", key)
	}
	if err != nil {
		t.Fatalf("GetObject %s: %v", key, err)
	}
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("object %s: %d bytes that differ from the %d expected", key, len(got), len(want))
	}
}

// uploads returns the multipart uploads in progress and how many parts
// the first one has.
func (b *s3Bucket) uploads(t *testing.T) (keys []string, parts int) {
	t.Helper()
	out, err := b.c.ListMultipartUploads(b.ctx(t), &s3.ListMultipartUploadsInput{Bucket: &b.name})
	if err != nil {
		t.Fatalf("ListMultipartUploads: %v", err)
	}
	for _, u := range out.Uploads {
		keys = append(keys, aws.ToString(u.Key))
	}
	if len(out.Uploads) > 0 {
		u := out.Uploads[0]
		lp, err := b.c.ListParts(b.ctx(t), &s3.ListPartsInput{Bucket: &b.name, Key: u.Key, UploadId: u.UploadId})
		if err == nil {
			parts = len(lp.Parts)
		}
	}
	return keys, parts
}

// TestFaultS3KillMidUpload: Ferry on S3 is killed with SIGKILL while a
// client replaces an object with a multipart upload that already has
// parts in the bucket. The old object survives byte for byte (the new one
// would appear only at CompleteMultipartUpload), and the upload left
// behind is aborted by the sweep of the restarted server (s3_orphan_age
// 1s here: the start-up sweep, or the one a second later).
func TestFaultS3KillMidUpload(t *testing.T) {
	b := newS3Bucket(t)
	data := filepath.Join(t.TempDir(), "data")
	addUser(t, data, "alice", "secret")
	old := randomBytes(t, 6<<20+5)
	b.put(t, "home/alice/big.bin", old)
	args := append(b.args, "--s3-orphan-age", "1s", "--s3-part-size", "5242880")
	srv := startFerry(t, data, args...)
	c := dial(t, srv.Addr)
	c.login("alice", "secret")
	d := c.pasv()
	c.cmd("STOR big.bin", 150)
	// Three parts' worth, then a pause: the upload is surely running,
	// with parts stored, when the server dies.
	chunk := randomBytes(t, 1<<20)
	for range 16 {
		d.SetWriteDeadline(time.Now().Add(waitLimit))
		if _, err := d.Write(chunk); err != nil {
			t.Fatalf("upload: %v", err)
		}
	}
	waitFor(t, "a multipart upload with parts in the bucket", func() bool {
		keys, parts := b.uploads(t)
		return len(keys) == 1 && parts >= 2
	})
	srv.kill(t)
	b.sameObject(t, "home/alice/big.bin", old)

	srv2 := startFerry(t, data, args...)
	waitFor(t, "the sweep to abort the upload the killed server left", func() bool {
		keys, _ := b.uploads(t)
		return len(keys) == 0
	})
	srv2.waitLog(t, "swept unfinished S3 uploads")
	b.sameObject(t, "home/alice/big.bin", old)
	// The restarted server serves the old object.
	c = dial(t, srv2.Addr)
	c.login("alice", "secret")
	if got := c.retr("big.bin"); !bytes.Equal(got, old) {
		t.Fatalf("RETR after the restart: %d bytes that differ from the old object", len(got))
	}
}

// TestFaultS3EngineStopped: the S3 engine stops in the middle of an
// upload. The client gets 451 with a text that says the storage failed,
// the old object is intact, and once the engine is back the same session
// uploads and downloads again.
func TestFaultS3EngineStopped(t *testing.T) {
	b := newS3Bucket(t)
	data := filepath.Join(t.TempDir(), "data")
	addUser(t, data, "alice", "secret")
	old := []byte("the old object\n")
	b.put(t, "home/alice/f.bin", old)
	srv := startFerry(t, data, append(b.args, "--backend-timeout", "10s", "--s3-part-size", "5242880")...)
	c := dial(t, srv.Addr)
	c.login("alice", "secret")
	c.cmd("SIZE f.bin", 213)

	d := c.pasv()
	c.cmd("STOR f.bin", 150)
	chunk := randomBytes(t, 1<<20)
	for range 6 { // one part sent to S3, the second one filling
		d.SetWriteDeadline(time.Now().Add(waitLimit))
		if _, err := d.Write(chunk); err != nil {
			t.Fatalf("upload: %v", err)
		}
	}
	waitFor(t, "the first part in the bucket", func() bool {
		_, parts := b.uploads(t)
		return parts >= 1
	})
	b.gw.Stop()
	// The client goes on sending; the server fails the upload at its next
	// S3 call (the part after this one, or the completion).
	for range 12 {
		d.SetWriteDeadline(time.Now().Add(waitLimit))
		if _, err := d.Write(chunk); err != nil {
			break // the server gave up and closed the data connection
		}
	}
	d.Close()
	code, text := c.read()
	if code != 451 {
		t.Fatalf("STOR with the S3 engine stopped: %d %s, want 451", code, text)
	}
	t.Logf("STOR with the S3 engine stopped: %d %s", code, text)
	if strings.Contains(text, "Local error in processing") || !strings.Contains(strings.ToLower(text), "storage") {
		t.Errorf("451 text %q does not say that the storage failed", text)
	}
	// A command that needs S3 while it is down fails the same way, and the
	// session stays.
	code, text = c.sendRead("SIZE f.bin")
	if code != 451 {
		t.Errorf("SIZE with the S3 engine stopped: %d %s, want 451", code, text)
	}
	c.cmd("NOOP", 200)

	if err := b.gw.Restart(); err != nil {
		t.Fatal(err)
	}
	b.sameObject(t, "home/alice/f.bin", old)
	c.cmd("SIZE f.bin", 213)
	d = c.pasv()
	c.cmd("STOR g.bin", 150)
	d.Write([]byte("after the outage"))
	d.Close()
	c.expect(226)
	if got := c.retr("g.bin"); string(got) != "after the outage" {
		t.Fatalf("RETR after the outage: %q", got)
	}
	srv.waitLog(t, "request") // the log names the S3 failure
}

// sendRead sends a command and returns its reply, whatever the code.
func (c *client) sendRead(line string) (int, string) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c.conn, line+"\r\n"); err != nil {
		c.t.Fatalf("send %q: %v", line, err)
	}
	return c.read()
}

// Memory test sizes: s3UploadClients uploads of s3UploadMB MiB each run at
// once under a buffer budget of s3BudgetMiB; the server's peak RSS must
// stay below budget + 128 MiB (issue 10). The full case, 100
// uploads of 100 MB under the 256 MiB default, was run by hand (see
// docs/benchmarks.md); this one is kept small so the suite stays quick.
const (
	s3UploadClients = 40
	s3UploadMB      = 24
	s3BudgetMiB     = 64
)

// TestFaultS3UploadMemory: many clients upload as fast as they can while
// the part-buffer budget is small. Uploads wait for buffers instead of
// growing the server: its peak RSS (VmHWM) stays below the budget plus
// 128 MiB, and every object arrives whole. The password checks of the 40
// logins have their own budget (auth_hash_memory, 19 MiB a check): it is
// set to one check at a time here, and the logins come one after another
// as the clients connect, so that the peak measures the uploads.
func TestFaultS3UploadMemory(t *testing.T) {
	s3UploadMemory(t, false, "--auth-hash-memory", strconv.Itoa(24<<20))
}

// TestFaultS3UploadMemoryBurst is TestFaultS3UploadMemory with every
// client sending PASS at the same moment and the default auth_hash_memory
// of a server on two processors (one check per processor, 38 MiB): the
// checks of the burst run while the first clients' uploads already hold
// the part buffers, and the peak still stays below the budget plus
// 128 MiB. With the old default (256 MiB, thirteen checks at once) it
// did not.
func TestFaultS3UploadMemoryBurst(t *testing.T) {
	t.Setenv("GOMAXPROCS", "2")
	s3UploadMemory(t, true)
}

// s3UploadMemory runs s3UploadClients uploads at once under a budget of
// s3BudgetMiB, the server started with extra flags; with burst, all the
// clients send PASS together once all have had 331 to USER.
func s3UploadMemory(t *testing.T, burst bool, extra ...string) {
	b := newS3Bucket(t)
	data := filepath.Join(t.TempDir(), "data")
	addUser(t, data, "alice", "secret")
	args := append(b.args, "--s3-buffer-budget", strconv.Itoa(s3BudgetMiB<<20),
		"--s3-part-size", "5242880", "--max-sessions-per-ip", "0", "--data-timeout", "2m", "--login-timeout", "2m")
	srv := startFerry(t, data, append(args, extra...)...)
	pid := srv.cmd.Process.Pid
	base := procStatusKiB(t, pid, "VmRSS")

	chunk := randomBytes(t, 1<<20)
	var wg, ready sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, s3UploadClients)
	for i := range s3UploadClients {
		wg.Add(1)
		ready.Add(1)
		go func() {
			defer wg.Done()
			// Each client arrives once: at its PASS, or when it
			// failed before.
			var once sync.Once
			defer once.Do(ready.Done)
			var beforePass func()
			if burst {
				beforePass = func() { once.Do(ready.Done); <-start }
			}
			errs <- uploadRaw(srv.Addr, "alice", "secret", fmt.Sprintf("m-%02d.bin", i), chunk, s3UploadMB, beforePass)
		}()
	}
	ready.Wait()
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	peak := procStatusKiB(t, pid, "VmHWM")
	limit := int64(s3BudgetMiB+128) << 10
	t.Logf("%d uploads of %d MiB, budget %d MiB: RSS before %d MiB, peak %d MiB (limit %d MiB)",
		s3UploadClients, s3UploadMB, s3BudgetMiB, base>>10, peak>>10, limit>>10)
	if peak > limit {
		t.Errorf("peak RSS %d MiB is above the budget + 128 MiB (%d MiB)", peak>>10, limit>>10)
	}
	// Every object is there, whole: its size and its first and last MiB.
	for i := range s3UploadClients {
		key := fmt.Sprintf("home/alice/m-%02d.bin", i)
		out, err := b.c.HeadObject(b.ctx(t), &s3.HeadObjectInput{Bucket: &b.name, Key: &key})
		if err != nil || aws.ToInt64(out.ContentLength) != s3UploadMB<<20 {
			t.Errorf("%s: %v, %v; want %d bytes", key, out, err, s3UploadMB<<20)
		}
	}
	rng := fmt.Sprintf("bytes=%d-", s3UploadMB<<20-len(chunk))
	key := "home/alice/m-00.bin"
	out, err := b.c.GetObject(b.ctx(t), &s3.GetObjectInput{Bucket: &b.name, Key: &key, Range: &rng})
	if err != nil {
		t.Fatal(err)
	}
	tail, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.Equal(tail, chunk) {
		t.Errorf("the last MiB of %s differs", key)
	}
}

// uploadRaw logs in and uploads mib copies of chunk as name, as fast as
// the server takes them; safe to run in many goroutines. A beforePass
// that is not nil is called between USER and PASS.
func uploadRaw(addr, user, pass, name string, chunk []byte, mib int, beforePass func()) error {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	r := textproto.NewReader(bufio.NewReader(c))
	step := func(line string, want int) (string, error) {
		if line != "" {
			if _, err := io.WriteString(c, line+"\r\n"); err != nil {
				return "", err
			}
		}
		code, text, err := r.ReadResponse(0)
		if err == nil && code != want {
			err = fmt.Errorf("%s %q: %d %s, want %d", name, line, code, text, want)
		}
		return text, err
	}
	if _, err := step("", 220); err != nil {
		return err
	}
	if _, err := step("USER "+user, 331); err != nil {
		return err
	}
	if beforePass != nil {
		beforePass()
	}
	for _, s := range []struct {
		line string
		code int
	}{{"PASS " + pass, 230}, {"TYPE I", 200}} {
		if _, err := step(s.line, s.code); err != nil {
			return err
		}
	}
	text, err := step("EPSV", 229)
	if err != nil {
		return err
	}
	i, j := strings.Index(text, "(|||"), strings.Index(text, "|)")
	if i < 0 || j < i {
		return fmt.Errorf("bad EPSV reply %q", text)
	}
	host, _, _ := net.SplitHostPort(addr)
	d, err := net.DialTimeout("tcp", net.JoinHostPort(host, text[i+4:j]), 10*time.Second)
	if err != nil {
		return err
	}
	defer d.Close()
	if _, err := step("STOR "+name, 150); err != nil {
		return err
	}
	d.SetDeadline(time.Now().Add(5 * time.Minute))
	for range mib {
		if _, err := d.Write(chunk); err != nil {
			return fmt.Errorf("%s: %v", name, err)
		}
	}
	d.Close()
	_, err = step("", 226)
	return err
}

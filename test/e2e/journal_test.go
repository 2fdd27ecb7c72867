package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/db"
	"github.com/ferryftp/ferry/internal/testenv/pgenv"
	"github.com/ferryftp/ferry/internal/testenv/s3env"
)

// TestS3JournalTwoServers: two built servers on one bucket (versitygw) and
// one PostgreSQL. One is SIGKILLed while a multipart upload it started has
// parts in the bucket; the other's sweep aborts that upload once the dead
// server's heartbeat is older than node_timeout, though the upload is far
// younger than s3_orphan_age (a day), and the journal is left empty.
func TestS3JournalTwoServers(t *testing.T) {
	url := pgenv.DB(t)
	gw := s3env.Start(t)
	st := &s3Site{gw: gw, bucket: gw.NewBucket(t), c: gw.Client()}
	const timeout = 2 * time.Second
	extra := fmt.Sprintf("\n[database]\nurl = %q\nnode_heartbeat = \"250ms\"\nnode_timeout = %q\n", url, timeout.String())
	args := append(st.serveArgs(), "--s3-part-size", "5242880")
	s1 := startServer(t, serverConfig{NoAnonymous: true, ConfigFile: true, ConfigExtra: extra, Args: args, Env: st.env()})
	s2 := startServer(t, serverConfig{NoAnonymous: true, ConfigFile: true, ConfigExtra: extra, Args: args, Env: st.env()})
	if r := s1.ferry(t, "pw\n", "user", "add", "j", "--storage", "s3", "--database", url, "--password-stdin", "--data", s1.Data); r.Code != 0 {
		t.Fatalf("user add: %s", r)
	}
	u, err := startUpload(s2.Addr, "j", "pw", "big")
	if err != nil {
		t.Fatal(err)
	}
	defer u.close()
	if err := u.write(randBytes(5, 11<<20)); err != nil {
		t.Fatal(err)
	}
	d, err := db.Open(t.Context(), url, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	journaled := func() int {
		var n int
		if err := d.SQL().QueryRow(`SELECT COUNT(*) FROM s3_uploads`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	deadline := time.Now().Add(time.Minute)
	for len(st.uploads(t)) != 1 || journaled() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("no multipart upload in the bucket and the journal: %v, %d\n%s", st.uploads(t), journaled(), s2.LogTail(20))
		}
		time.Sleep(100 * time.Millisecond)
	}
	s2.stopped = true
	s2.cmd.Process.Kill()
	<-s2.done
	killed := time.Now()
	for len(st.uploads(t)) != 0 {
		if time.Since(killed) > time.Minute {
			t.Fatalf("the dead server's upload is still in the bucket: %v\n%s", st.uploads(t), s1.LogTail(20))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the other server aborted the upload %v after the SIGKILL (node_timeout %v)", time.Since(killed).Round(10*time.Millisecond), timeout)
	if n := journaled(); n != 0 {
		t.Errorf("%d uploads left in s3_uploads", n)
	}
	waitLog(t, s1, "swept unfinished S3 uploads")
}

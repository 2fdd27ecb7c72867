package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferryftp/ferry/internal/testenv"
	"github.com/ferryftp/ferry/internal/testenv/s3env"
)

// TestSmokeS3 runs the scenarios of compare.sh's S3 rows (retr, stor,
// list, smallstor) at tiny sizes against Ferry on versitygw, the way
// compare.sh starts it.
func TestSmokeS3(t *testing.T) {
	gw := s3env.Start(t)
	bucket := gw.NewBucket(t)
	c := gw.Client()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	put := func(key string, b []byte) {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(key), Body: bytes.NewReader(b)}); err != nil {
			t.Fatal(err)
		}
	}
	big := make([]byte, smokeFileSize)
	fillRandom(big)
	put("public/big.bin", big)
	for i := range 100 {
		put(fmt.Sprintf("public/dir-100/file-%07d", i), nil)
	}

	tmp := t.TempDir()
	bin, err := testenv.BuildFerry(t.Context(), tmp)
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(tmp, "data")
	add := exec.Command(bin, "user", "add", "bench", "--data", data, "--storage", "s3", "--password-stdin")
	add.Stdin = strings.NewReader("smoke-password\n")
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ferry user add: %v\n%s", err, out)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	lo, hi := passiveRange()
	cmd := exec.Command(bin, "serve", "--listen", addr, "--data", data, "--passive-ports", fmt.Sprintf("%d-%d", lo, hi),
		"--storage", "s3", "--s3-endpoint", gw.Endpoint, "--s3-bucket", bucket, "--s3-region", gw.Region, "--s3-path-style")
	cmd.Env = append(cmd.Environ(), "AWS_ACCESS_KEY_ID="+gw.AccessKey, "AWS_SECRET_ACCESS_KEY="+gw.SecretKey)
	startServer(t, cmd, addr)

	base := options{
		Addr: addr, User: "anonymous", Pass: "smoke@", Label: "smoke",
		File: "big.bin", Upload: "smoke-upload.bin", Size: smokeFileSize,
		Path: "dir-100", ListCmd: "MLSD", Reps: 2, Expect: 100, Concurrency: 4, N: 40,
		PID: cmd.Process.Pid, Sample: 2 * time.Millisecond, Settle: 50 * time.Millisecond,
		Timeout: 10 * time.Second, SrcIPs: 1,
	}
	named := base
	named.User, named.Pass = "bench", "smoke-password"
	small := named
	small.Size, small.Upload = 4096, "small"
	for _, tc := range []struct {
		scenario string
		o        options
		check    map[string]float64
	}{
		{"retr", base, map[string]float64{"bytes": smokeFileSize, "mb_per_s": 0.001, "server_hwm_mib": 1}},
		{"stor", named, map[string]float64{"bytes": smokeFileSize, "mb_per_s": 0.001}},
		{"list", base, map[string]float64{"entries": 100, "ms": 0.001}},
		{"smallstor", small, map[string]float64{"files": 40, "files_per_s": 0.001, "server_hwm_mib": 1}},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			r := runScenario(&tc.o, tc.scenario)
			t.Log(humanLine(r))
			if !r.OK {
				t.Fatalf("%s failed: %s", tc.scenario, r.Error)
			}
			for name, minimum := range tc.check {
				if v, ok := r.Metrics[name]; !ok || v < minimum {
					t.Errorf("metric %s = %v (present %v), want ≥ %v", name, v, ok, minimum)
				}
			}
		})
	}
	// smallstor deletes what it stored; stor too.
	out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: aws.String("home/bench/")})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range out.Contents {
		if k := aws.ToString(o.Key); k != "home/bench/" {
			t.Errorf("left in the bucket: %s", k)
		}
	}
}

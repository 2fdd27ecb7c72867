package s3env_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferryftp/ferry/internal/testenv/s3env"
)

func TestMain(m *testing.M) { s3env.Main(m) }

// TestSharedEngine puts and reads an object in a fresh bucket.
func TestSharedEngine(t *testing.T) {
	srv := s3env.Shared(t)
	bucket := srv.NewBucket(t)
	c := srv.Client()
	ctx := t.Context()
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("k"), Body: strings.NewReader("v")})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("k")})
	if err != nil || aws.ToInt64(out.ContentLength) != 1 {
		t.Fatalf("HeadObject = %v, %v", out, err)
	}
	if s3env.Shared(t) != srv {
		t.Error("Shared started a second engine")
	}
}

// TestStopRestart checks that a private engine refuses calls while stopped
// and keeps its objects across a restart.
func TestStopRestart(t *testing.T) {
	srv := s3env.Start(t)
	bucket := srv.NewBucket(t)
	c := srv.Client()
	ctx := t.Context()
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("k"), Body: strings.NewReader("v")}); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	short, cancel := context.WithTimeout(ctx, 5e9)
	defer cancel()
	if _, err := c.HeadObject(short, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("k")}, func(o *s3.Options) { o.RetryMaxAttempts = 1 }); err == nil {
		t.Fatal("HeadObject succeeded on a stopped engine")
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("k")}); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ferryftp/ferry/internal/testenv/s3env"
)

// TestModes runs every mode at tiny sizes against versitygw, as
// bench/compare.sh does, and checks the results' figures.
func TestModes(t *testing.T) {
	gw := s3env.Start(t)
	base := []string{"-endpoint", gw.Endpoint, "-bucket", "ceiling-test", "-access-key", gw.AccessKey, "-secret-key", gw.SecretKey}
	call := func(args ...string) (result, string) {
		t.Helper()
		var out, errb bytes.Buffer
		code := run(append(base, args...), &out, &errb)
		if code != 0 {
			t.Fatalf("s3ceiling %q: exit %d\n%s", args, code, errb.String())
		}
		var r result
		if out.Len() > 0 {
			if err := json.Unmarshal(out.Bytes(), &r); err != nil {
				t.Fatalf("s3ceiling %q: %v: %s", args, err, out.String())
			}
		}
		return r, errb.String()
	}
	call("-mode", "mkbucket")
	call("-mode", "mkbucket") // again: the bucket is there
	call("-mode", "fill-big", "-key", "public/big.bin", "-size", "6MiB")
	call("-mode", "fill", "-prefix", "public/dir-50/", "-n", "50")
	for _, tc := range []struct {
		args   []string
		key    string
		metric string
		want   float64
	}{
		{[]string{"-mode", "get", "-key", "public/big.bin"}, "s3-retr", "bytes", 6 << 20},
		{[]string{"-mode", "relay", "-key", "public/big.bin"}, "s3-relay", "bytes", 6 << 20},
		{[]string{"-mode", "put", "-size", "11MiB", "-parts", "5MiB,8MiB", "-conc", "1,2"}, "s3-stor", "bytes", 11 << 20},
		{[]string{"-mode", "list", "-prefix", "public/dir-50/", "-reps", "2"}, "s3-list", "entries", 50},
		{[]string{"-mode", "small", "-n", "30", "-c", "3", "-object-size", "1KiB"}, "s3-small", "files", 30},
	} {
		r, human := call(tc.args...)
		if !r.OK || r.Key != tc.key || r.Server != "s3-direct" || r.Metrics[tc.metric] != tc.want {
			t.Errorf("%q: %+v, want key %s and %s = %v", tc.args, r, tc.key, tc.metric, tc.want)
		}
		if !strings.Contains(human, tc.key) {
			t.Errorf("%q: human line %q", tc.args, human)
		}
	}
	// Both relays ran and moved every byte (a short splice is an error).
	r, _ := call("-mode", "relay", "-key", "public/big.bin")
	for _, m := range []string{"mb_per_s_copy", "mb_per_s_splice"} {
		if !(r.Metrics[m] > 0) {
			t.Errorf("relay: %s = %v", m, r.Metrics[m])
		}
	}
	var out, errb bytes.Buffer
	if code := run(append(base, "-mode", "nope"), &out, &errb); code != 2 {
		t.Errorf("-mode nope: exit %d", code)
	}
	if code := run([]string{"-mode", "get"}, &out, &errb); code != 2 {
		t.Errorf("no -bucket: exit %d", code)
	}
	if code := run(append(base, "-mode", "put", "-size", "8 MB"), &out, &errb); code != 2 {
		t.Errorf("-size '8 MB': exit %d", code)
	}
}

package ftp

import (
	"bytes"
	"strings"
	"testing"
)

func TestSmokeRoundTrip(t *testing.T) {
	eachBackend(t, testSmokeRoundTrip)
}

func testSmokeRoundTrip(t *testing.T, be backend) {
	ts := startOn(t, be, nil)
	c := dial(t, ts.addr)
	c.login("alice", "secret")
	c.cmd("TYPE I", 200)
	data := bytes.Repeat([]byte("hello ferry\n"), 10000)
	c.stor("STOR", "a.txt", data)
	if got := ts.get(t, "a.txt"); !bytes.Equal(got, data) {
		t.Fatalf("stored %d bytes, want %d", len(got), len(data))
	}
	if got := c.retr("a.txt"); !bytes.Equal(got, data) {
		t.Fatalf("retr got %d bytes", len(got))
	}
	c.cmd("MKD sub dir", 257)
	ls := c.listing("LIST")
	if !strings.Contains(ls, "a.txt") || !strings.Contains(ls, "sub dir") {
		t.Fatalf("LIST: %q", ls)
	}
	ml := c.listing("MLSD")
	if !strings.Contains(ml, "type=file;size=120000;") {
		t.Fatalf("MLSD: %q", ml)
	}
	c.cmd("QUIT", 221)
}

package wire

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

// BenchmarkReadLineSplit reads and splits a typical mix of command lines.
// The one allocation per op is the string ReadLine returns.
func BenchmarkReadLineSplit(b *testing.B) {
	lines := "USER anonymous\r\nPASS x\r\nTYPE I\r\nEPSV\r\nRETR dir/some file name.iso\r\nNOOP\r\n"
	r := NewReader(&loopReader{data: []byte(lines)}, 4096)
	b.SetBytes(int64(len(lines)) / 6)
	b.ReportAllocs()
	for b.Loop() {
		line, err := r.ReadLine()
		if err != nil {
			b.Fatal(err)
		}
		Split(line)
	}
}

// BenchmarkReadLineTelnet measures the IAC path (IAC IP IAC DM before ABOR).
func BenchmarkReadLineTelnet(b *testing.B) {
	r := NewReader(&loopReader{data: []byte("\xff\xf4\xff\xf2ABOR\r\nMKD a\xff\xffb\r\n")}, 4096)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.ReadLine(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendListLine(b *testing.B) {
	now := time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)
	fi := &fakeInfo{"some file name.txt", 123456789, 0o644, now.Add(-time.Hour)}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendListLine(buf[:0], fi, "alice", "staff", now)
	}
}

func BenchmarkAppendFacts(b *testing.B) {
	e := Entry{Info: &fakeInfo{"some file name.txt", 123456789, 0o644, goldenNow}, Perm: "adfrw", Unique: "801g1a2b"}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendFacts(buf[:0], e, DefaultFacts)
	}
}

func BenchmarkAppendReply(b *testing.B) {
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendReply(buf[:0], 257, `"/home/alice/some dir" is the current directory`)
	}
}

func BenchmarkASCIIReader(b *testing.B) {
	in := []byte(strings.Repeat("a line of text of typical length for a text file\n", 640))
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		r := NewASCIIReader(bytes.NewReader(in))
		for {
			if _, err := r.Read(buf); err != nil {
				break
			}
		}
	}
}

func BenchmarkASCIIDecoder(b *testing.B) {
	in := []byte(strings.Repeat("a line of text of typical length for a text file\r\n", 640))
	d := NewASCIIDecoder(io.Discard)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		d.Write(in)
	}
}

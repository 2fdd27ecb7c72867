package ftp

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferryftp/ferry/internal/storage/local"
	"github.com/ferryftp/ferry/internal/users"
	"github.com/ferryftp/ferry/internal/vpath"
)

// BenchmarkListMLSD10k measures the engine side of a 10,000-entry MLSD (the
// storage walk and the formatting), without the network: see docs/benchmarks.md.
func BenchmarkListMLSD10k(b *testing.B) {
	dir := b.TempDir()
	os.Mkdir(filepath.Join(dir, "d"), 0o755)
	for i := 0; i < 10000; i++ {
		os.WriteFile(filepath.Join(dir, "d", fmt.Sprintf("file-%05d.dat", i)), nil, 0o644)
	}
	fsys, _ := local.Open(dir)
	srv := &Server{}
	srv.init()
	s := &session{srv: srv, site: &Site{}, fs: fsys, user: &users.User{Name: "x"}, facts: 0x3f}
	p, _ := vpath.Resolve(vpath.Root(), "/d")
	b.ResetTimer()
	b.ReportAllocs()
	for b.Loop() {
		l := s.newLister(formatMLSD)
		if err := l.write(context.Background(), io.Discard, p); err != nil {
			b.Fatal(err)
		}
	}
}

//go:build !linux || !(amd64 || arm64)

package local

import (
	"os"

	"github.com/ferryftp/ferry/internal/storage"
)

func newDirIter(d *os.File, dir string, fsys *FS) storage.DirIter {
	return &dirIter{f: d, dir: dir, fsys: fsys}
}

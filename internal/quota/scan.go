package quota

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/vpath"
)

// UsageScanner is an optional storage.FS capability: a backend that can
// count its regular files and their bytes faster than a walk of ReadDir,
// with the package's rules (Lstat semantics, temporary upload files
// skipped).
type UsageScanner interface {
	ScanUsage(ctx context.Context) (bytes, files int64, err error)
}

// Lstater is an optional storage.FS capability for backends with symbolic
// links, whose Stat follows them: Lstat describes the link itself. A backend
// without it has no links, and its Stat is used.
type Lstater interface {
	Lstat(ctx context.Context, name vpath.Path) (fs.FileInfo, error)
}

// lstat is Lstat where the backend has it, else Stat.
func lstat(ctx context.Context, fsys storage.FS, name string) (fs.FileInfo, error) {
	if l, ok := fsys.(Lstater); ok {
		return l.Lstat(ctx, rel(name))
	}
	return fsys.Stat(ctx, rel(name))
}

// Scan counts the regular files under fsys's root and their bytes, skipping
// temporary upload files and directories it cannot read. It streams:
// memory grows with the depth of the tree, not with its size.
func Scan(ctx context.Context, fsys storage.FS) (bytes, files int64, err error) {
	if s, ok := fsys.(UsageScanner); ok {
		return s.ScanUsage(ctx)
	}
	_, links := fsys.(Lstater)
	var walk func(dir string, top bool) error
	walk = func(dir string, top bool) error {
		it, err := fsys.ReadDir(ctx, rel(dir))
		if err != nil {
			if top || ctx.Err() != nil {
				return err
			}
			return nil // unreadable parts are skipped, not fatal
		}
		defer it.Close()
		for {
			batch, err := it.Next(256)
			for _, fi := range batch {
				if strings.HasPrefix(fi.Name(), storage.TempPrefix) {
					continue
				}
				name := path.Join(dir, fi.Name())
				if links {
					// ReadDir may describe a link by its target.
					lfi, lerr := lstat(ctx, fsys, name)
					if lerr != nil {
						continue
					}
					fi = lfi
				}
				switch {
				case fi.IsDir():
					if err := walk(name, false); err != nil {
						return err
					}
				case fi.Mode().IsRegular():
					bytes += fi.Size()
					files++
				}
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	if err := walk(".", true); err != nil {
		return 0, 0, err
	}
	return bytes, files, nil
}

// rel is the vpath.Path of a name in storage's form. The package's names
// come from vpath values (and renames of them), so they are always valid.
func rel(name string) vpath.Path {
	p, err := vpath.FromRel(name)
	if err != nil {
		panic("quota: invalid name " + name)
	}
	return p
}

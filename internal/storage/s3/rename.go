package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/vpath"
)

// renameState names the object a directory rename keeps in its target
// while it runs; its body is the source's key prefix. A rename that finds
// it for the same source continues into the partly filled target.
const renameState = storage.TempPrefix + "rename"

// copiers is how many objects of a directory rename are copied at once.
const copiers = 8

// Rename renames a file (a server-side copy, then the source's delete) or
// a directory (every object below it, page by page, each deleted only once
// its copy exists). A directory rename that fails midway returns an error
// matching storage.ErrPartial; repeating it finishes the job.
func (f *FS) Rename(ctx context.Context, from, to vpath.Path) error {
	return f.rename(ctx, from, to, false)
}

// RenameNoReplace renames like Rename but fails with fs.ErrExist when to
// exists: the copy of a file completes only if the name is free
// (If-None-Match); a directory's target is claimed by its state object.
func (f *FS) RenameNoReplace(ctx context.Context, from, to vpath.Path) error {
	return f.rename(ctx, from, to, true)
}

func (f *FS) rename(ctx context.Context, from, to vpath.Path, noReplace bool) error {
	if from.IsRoot() || to.IsRoot() {
		return fs.ErrPermission
	}
	// A directory rename makes directories as it goes: lists of them made
	// before or during it are void.
	f.b.dirs.reset()
	defer f.b.dirs.reset()
	fk, err := f.key(from)
	if err != nil {
		return err
	}
	tk, err := f.key(to)
	if err != nil {
		return err
	}
	if fk == tk {
		return nil
	}
	if strings.HasPrefix(tk, fk+"/") {
		return storage.ErrBadName
	}
	var (
		src, dst         entry
		serr, derr, perr error
		parent           bool
	)
	both(func() { src, serr = f.lookup(ctx, fk, true) }, func() {
		both(func() { dst, derr = f.lookup(ctx, tk, true) }, func() { parent, perr = f.dirExists(ctx, f.parentDir(to)) })
	})
	for _, err := range []error{serr, derr, perr} {
		if err != nil {
			return err
		}
	}
	switch {
	case !src.dir && src.head == nil:
		return fs.ErrNotExist
	case !parent:
		return fs.ErrNotExist
	case src.dir:
		return f.renameDir(ctx, fk, tk, dst, noReplace)
	case dst.dir && noReplace, dst.head != nil && noReplace:
		return fs.ErrExist
	case dst.dir:
		return storage.ErrIsDir
	}
	meta := cloneMeta(src.head.Metadata)
	if _, ok := meta[metaMtime]; !ok && src.head.LastModified != nil {
		meta[metaMtime] = formatMtime(*src.head.LastModified) // the copy is newer
	}
	if err := f.b.copyObject(ctx, fk, tk, src.head, meta, noReplace); err != nil {
		return err
	}
	// The copy is newer than the time it keeps: listings learn it from
	// the target directory's times object.
	if err := f.b.recordVersion(ctx, tk, meta[metaMtime]); err != nil {
		f.b.log.Warn("s3: recording a renamed file's time failed; listings show the copy's LastModified", "path", tk, "err", err)
	}
	if err := f.b.deleteObject(ctx, fk); err != nil {
		return fmt.Errorf("%w: %s copied but not removed: %w", storage.ErrPartial, fk, err)
	}
	return nil
}

// renameDir copies every object under fk/ to tk/ and deletes each source
// once its page's copies exist; the marker of fk goes last, then the state
// object.
func (f *FS) renameDir(ctx context.Context, fk, tk string, dst entry, noReplace bool) error {
	from, to := fk+"/", tk+"/"
	state := to + renameState
	if dst.head != nil {
		if noReplace {
			return fs.ErrExist
		}
		return storage.ErrNotDir
	}
	if dst.dir {
		cont, err := f.continuing(ctx, state, from)
		if err != nil {
			return err
		}
		if !cont {
			if noReplace {
				return fs.ErrExist
			}
			objs, err := f.probe(ctx, to, 3)
			if err != nil {
				return err
			}
			for _, o := range objs {
				if k := aws.ToString(o.Key); k != to && k != to+timesName {
					return storage.ErrNotEmpty
				}
			}
		}
	}
	if len(state) > MaxKeyBytes {
		return storage.ErrNameTooLong
	}
	// The state object claims the target (If-None-Match), so two renames
	// never fill one directory; a continuation finds its own.
	cctx, cancel := f.b.call(ctx)
	_, err := f.b.client.PutObject(cctx, &s3.PutObjectInput{
		Bucket: &f.b.bucket, Key: &state, Body: strings.NewReader(from), IfNoneMatch: aws.String("*"),
	})
	cancel()
	if err = f.b.wrap("PutObject", state, err); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return err
		}
		if cont, cerr := f.continuing(ctx, state, from); cerr != nil || !cont {
			return fs.ErrExist
		}
	}
	if j := f.b.journal; j != nil {
		if err := j.RenameStarted(context.WithoutCancel(ctx), from, to); err != nil {
			f.b.log.Warn("s3: journal: recording a rename failed", "from", from, "to", to, "err", err)
		}
	}
	if err := f.moveAll(ctx, from, to); err != nil {
		return fmt.Errorf("%w: renaming %s to %s: %w", storage.ErrPartial, from, to, err)
	}
	if err := f.b.deleteObject(ctx, state); err != nil {
		return fmt.Errorf("%w: %w", storage.ErrPartial, err)
	}
	if j := f.b.journal; j != nil {
		if err := j.RenameEnded(context.WithoutCancel(ctx), from, to); err != nil {
			f.b.log.Warn("s3: journal: recording the end of a rename failed", "from", from, "to", to, "err", err)
		}
	}
	return nil
}

// continuing reports whether state records a rename from source.
func (f *FS) continuing(ctx context.Context, state, source string) (bool, error) {
	r, err := f.b.get(ctx, state, 0, -1, nil)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, MaxKeyBytes+1))
	if err != nil {
		return false, err
	}
	return string(b) == source, nil
}

// moveAll copies each page of keys under from to under to, then deletes
// that page's sources; from's own marker is deleted last.
func (f *FS) moveAll(ctx context.Context, from, to string) error {
	var token *string
	marker := false
	for {
		cctx, cancel := f.b.call(ctx)
		out, err := f.b.client.ListObjectsV2(cctx, &s3.ListObjectsV2Input{
			Bucket: &f.b.bucket, Prefix: &from, MaxKeys: aws.Int32(pageSize), ContinuationToken: token,
		})
		cancel()
		if err != nil {
			return f.b.wrap("ListObjectsV2", from, err)
		}
		var del []types.ObjectIdentifier
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			first error
			sem   = make(chan struct{}, copiers)
		)
		for _, o := range out.Contents {
			k := aws.ToString(o.Key)
			if k == from {
				marker = true
			}
			dk := to + k[len(from):]
			if len(dk) > MaxKeyBytes {
				return fmt.Errorf("%s: %w", k, storage.ErrNameTooLong)
			}
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				err := f.copyListed(ctx, k, dk, o)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					if first == nil {
						first = err
					}
					return
				}
				if k != from {
					del = append(del, types.ObjectIdentifier{Key: aws.String(k)})
				}
			}()
		}
		wg.Wait()
		// What was copied goes even when something else failed.
		if err := f.deleteKeys(ctx, del); err != nil {
			return err
		}
		if first != nil {
			return first
		}
		token = out.NextContinuationToken
		if !aws.ToBool(out.IsTruncated) || token == nil {
			break
		}
	}
	if marker {
		return f.b.deleteObject(ctx, from)
	}
	return nil
}

// copyListed copies one listed object, keeping its metadata: CopyObject
// up to 5 GiB, in parts above (which needs its metadata from a HEAD).
func (f *FS) copyListed(ctx context.Context, src, dst string, o types.Object) error {
	if strings.HasSuffix(src, "/") {
		// A directory marker: engines that keep directories as such
		// (versitygw's posix backend) refuse to copy one.
		meta := map[string]string{}
		if h, err := f.head(ctx, src); err == nil {
			meta = h.Metadata
		}
		cctx, cancel := f.b.call(ctx)
		defer cancel()
		_, err := f.b.client.PutObject(cctx, &s3.PutObjectInput{
			Bucket: &f.b.bucket, Key: &dst, Body: strings.NewReader(""),
			ContentType: aws.String("application/x-directory"), Metadata: meta,
		})
		return f.b.wrap("PutObject", dst, err)
	}
	if aws.ToInt64(o.Size) <= maxCopyObject {
		cctx, cancel := context.WithTimeout(ctx, f.b.copyTimeout(aws.ToInt64(o.Size)))
		defer cancel()
		_, err := f.b.client.CopyObject(cctx, &s3.CopyObjectInput{
			Bucket: &f.b.bucket, Key: &dst, CopySource: f.b.copySource(src),
			MetadataDirective: types.MetadataDirectiveCopy,
		})
		return f.b.wrapCopy("CopyObject", dst, err)
	}
	h, err := f.head(ctx, src)
	if err != nil {
		return err
	}
	return f.b.copyObject(ctx, src, dst, h, h.Metadata, false)
}

// deleteKeys removes keys in batches (DeleteObjects).
func (f *FS) deleteKeys(ctx context.Context, keys []types.ObjectIdentifier) error {
	for len(keys) > 0 {
		n := min(len(keys), 1000)
		cctx, cancel := f.b.call(ctx)
		out, err := f.b.client.DeleteObjects(cctx, &s3.DeleteObjectsInput{
			Bucket: &f.b.bucket, Delete: &types.Delete{Objects: keys[:n], Quiet: aws.Bool(true)},
		})
		cancel()
		if err != nil {
			return f.b.wrap("DeleteObjects", aws.ToString(keys[0].Key), err)
		}
		if len(out.Errors) > 0 {
			e := out.Errors[0]
			return fmt.Errorf("s3 DeleteObjects %s: %s: %s", aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message))
		}
		keys = keys[n:]
	}
	return nil
}

package s3store

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/vpath"
)

// pageSize is the number of keys asked for per listing page.
const pageSize = 1000

// Lister turns the ListObjectsV2 pages (delimiter "/") of the directory
// whose keys start with Prefix into entries. It is pure, so it is fuzzed
// on odd key sets. Rules:
//   - the directory's own marker (the key Prefix) is skipped;
//   - a name that is empty, ".", "..", not UTF-8, holds "/", NUL, CR or
//     LF, starts with storage.TempPrefix, or whose key does not start
//     with Prefix is skipped;
//   - an object and a common prefix of one name ("f" and "f/…") give one
//     entry, the directory; an object is held back until the listing has
//     passed where its prefix would sort (at most one name per byte of
//     key length is held);
//   - a name repeated by the service is listed once.
type Lister struct {
	Prefix  string
	pending []*info // objects held back; each name a prefix of the next
	ready   []*info
	last    string // the last sort key taken
}

// Add takes one page. S3 returns each list sorted and the two together in
// key order.
func (l *Lister) Add(objs []types.Object, prefixes []types.CommonPrefix) {
	i, j := 0, 0
	for i < len(objs) || j < len(prefixes) {
		if j >= len(prefixes) || i < len(objs) && aws.ToString(objs[i].Key) < aws.ToString(prefixes[j].Prefix) {
			o := objs[i]
			i++
			name, ok := l.name(aws.ToString(o.Key))
			if !ok {
				continue
			}
			mt := dirTime
			if o.LastModified != nil {
				mt = o.LastModified.UTC()
			}
			l.take(name, &info{name: name, size: aws.ToInt64(o.Size), mtime: mt})
			continue
		}
		p := aws.ToString(prefixes[j].Prefix)
		j++
		if !strings.HasSuffix(p, "/") {
			continue
		}
		name, ok := l.name(strings.TrimSuffix(p, "/"))
		if !ok {
			continue
		}
		l.take(name+"/", &info{name: name, dir: true, mtime: dirTime})
	}
}

// name returns the entry name of key, or false when it is not listed.
func (l *Lister) name(key string) (string, bool) {
	if !strings.HasPrefix(key, l.Prefix) {
		return "", false
	}
	n := key[len(l.Prefix):]
	if n == "" || n == "." || n == ".." || strings.ContainsAny(n, "/\x00\r\n") ||
		!utf8.ValidString(n) || strings.HasPrefix(n, storage.TempPrefix) {
		return "", false
	}
	return n, true
}

// take adds the entry whose sort key is sk (a directory's ends in "/").
func (l *Lister) take(sk string, e *info) {
	if sk == l.last {
		return
	}
	l.last = sk
	// Held objects whose directory would sort before sk can come no more.
	for len(l.pending) > 0 {
		top := l.pending[len(l.pending)-1]
		if sk == top.name+"/" {
			l.pending = l.pending[:len(l.pending)-1] // the directory wins
			break
		}
		if strings.HasPrefix(sk, top.name) && sk < top.name+"/" {
			break
		}
		l.ready = append(l.ready, top)
		l.pending = l.pending[:len(l.pending)-1]
	}
	if e.dir {
		l.ready = append(l.ready, e)
	} else {
		l.pending = append(l.pending, e)
	}
}

// Finish releases what is held back: the listing ended.
func (l *Lister) Finish() {
	for i := len(l.pending) - 1; i >= 0; i-- {
		l.ready = append(l.ready, l.pending[i])
	}
	l.pending = nil
}

// Take returns up to n ready entries.
func (l *Lister) Take(n int) []fs.FileInfo {
	n = min(n, len(l.ready))
	out := make([]fs.FileInfo, n)
	for i := range n {
		out[i] = l.ready[i]
	}
	l.ready = l.ready[n:]
	if len(l.ready) == 0 {
		l.ready = nil
	}
	return out
}

// Ready is the number of entries Take can return.
func (l *Lister) Ready() int { return len(l.ready) }

// dirIter streams one directory, a page at a time.
type dirIter struct {
	f      *FS
	ctx    context.Context
	l      Lister
	times  map[string]timeEntry // the directory's times object
	token  *string
	page   *s3.ListObjectsV2Output
	done   bool
	closed bool
}

func (f *FS) ReadDir(ctx context.Context, p vpath.Path) (storage.DirIter, error) {
	prefix := f.root
	if !p.IsRoot() {
		key, err := f.key(p)
		if err != nil {
			return nil, err
		}
		prefix = key + "/"
	}
	it := &dirIter{f: f, ctx: ctx, l: Lister{Prefix: prefix}}
	var (
		page      *s3.ListObjectsV2Output
		err, terr error
	)
	both(func() { page, err = it.fetch() }, func() {
		if !f.b.lastMod {
			it.times, _, terr = f.b.loadTimes(ctx, prefix)
		}
	})
	if err == nil {
		err = terr
	}
	if err != nil {
		return nil, err
	}
	if !p.IsRoot() && len(page.Contents) == 0 && len(page.CommonPrefixes) == 0 {
		key, _ := f.key(p)
		if _, err := f.head(ctx, key); err == nil {
			return nil, storage.ErrNotDir
		}
		return nil, fs.ErrNotExist
	}
	it.page = page
	return it, nil
}

// fetch gets the next page under the per-call deadline.
func (it *dirIter) fetch() (*s3.ListObjectsV2Output, error) {
	b := it.f.b
	cctx, cancel := b.call(it.ctx)
	defer cancel()
	out, err := b.client.ListObjectsV2(cctx, &s3.ListObjectsV2Input{
		Bucket: &b.bucket, Prefix: &it.l.Prefix, Delimiter: aws.String("/"),
		MaxKeys: aws.Int32(pageSize), ContinuationToken: it.token,
	})
	if err != nil {
		return nil, b.wrap("ListObjectsV2", it.l.Prefix, err)
	}
	it.token = out.NextContinuationToken
	if !aws.ToBool(out.IsTruncated) || it.token == nil {
		it.done = true
	}
	return out, nil
}

func (it *dirIter) Next(n int) ([]fs.FileInfo, error) {
	if it.closed {
		return nil, errors.New("s3: listing closed")
	}
	if n <= 0 {
		n = 1
	}
	for it.l.Ready() == 0 {
		if it.page == nil {
			if it.done {
				it.l.Finish()
				if it.l.Ready() == 0 {
					return nil, io.EOF
				}
				break
			}
			page, err := it.fetch()
			if err != nil {
				return nil, err
			}
			it.page = page
		}
		page := it.page
		it.page = nil
		it.applyTimes(page.Contents)
		it.l.Add(page.Contents, page.CommonPrefixes)
	}
	return it.l.Take(n), nil
}

// applyTimes replaces the LastModified of a page's objects by the times
// the directory's times object records for exactly those versions.
func (it *dirIter) applyTimes(objs []types.Object) {
	if len(it.times) == 0 {
		return
	}
	for i := range objs {
		k := aws.ToString(objs[i].Key)
		if !strings.HasPrefix(k, it.l.Prefix) {
			continue
		}
		if e, ok := it.times[k[len(it.l.Prefix):]]; ok && e.matches(objs[i].ETag, objs[i].LastModified) {
			objs[i].LastModified = aws.Time(time.Unix(0, e.Mtime).UTC())
		}
	}
}

func (it *dirIter) Close() error {
	it.closed = true
	it.page = nil
	return nil
}

package s3store

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// The look-up before a whole upload must tell that a new name is not a
// directory, and a directory without a marker is only seen in a listing.
// A listing of one name is one cheap request on AWS, but on versitygw's
// posix backend every ListObjectsV2 reads and sorts the whole parent
// directory, whatever its prefix, delimiter or MaxKeys (backend/walk.go:
// quickWalk): 8 ms of its CPU a request at 10,000 files, against 0.2 for a
// HEAD. So for a directory that many new names are uploaded into, the
// backend lists its subdirectories once and answers from that list for a
// while (SubdirsTTL), with a HEAD of the name's marker beside the HEAD of
// the name: only a directory without a marker that another writer than
// this server makes meanwhile goes unseen (an upload then puts a file
// beside it, as when it is made while the upload's data arrives).
const (
	// SubdirsTTL is how long a list of a directory's subdirectories
	// answers, from the start of the listing that made it.
	SubdirsTTL = 5 * time.Second
	// SubdirsAfter is how many look-ups of new names within SubdirsTTL
	// make a directory worth listing.
	SubdirsAfter = 8
	// subdirsPages bounds that listing: a larger directory is looked up
	// name by name.
	subdirsPages = 32
	// subdirsMax bounds the subdirectories kept of one directory, and
	// subdirsDirs the directories kept.
	subdirsMax  = 1000
	subdirsDirs = 256
)

// dirCache holds the subdirectory lists of busy directories.
type dirCache struct {
	mu   sync.Mutex
	now  func() time.Time
	gen  uint64               // counts resets, guarded by mu
	dirs map[string]*dirState // by prefix ("…/d/"), guarded by mu
}

type dirState struct {
	misses  int       // look-ups of new names since since
	since   time.Time // start of the misses' window
	listed  time.Time // start of the last listing; zero: none
	subdirs map[string]bool
	ok      bool // subdirs is complete (the listing fitted the bounds)
	listing bool // a listing is running
}

// known says whether name is a subdirectory of dir, when a fresh list of
// them holds the answer.
func (c *dirCache) known(dir, name string) (isDir, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.dirs[dir]
	if d == nil || !d.ok || c.now().Sub(d.listed) >= SubdirsTTL {
		return false, false
	}
	return d.subdirs[name], true
}

// miss records a look-up of a new name in dir, and says whether the caller
// is to list dir's subdirectories (with the generation to hand to done).
func (c *dirCache) miss(dir string) (list bool, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	d := c.dirs[dir]
	if d == nil {
		if c.dirs == nil || len(c.dirs) >= subdirsDirs {
			c.prune(now)
		}
		d = &dirState{since: now}
		c.dirs[dir] = d
	}
	if now.Sub(d.since) >= SubdirsTTL {
		d.misses, d.since = 0, now
	}
	d.misses++
	if d.listing || d.misses < SubdirsAfter || now.Sub(d.listed) < SubdirsTTL {
		return false, c.gen
	}
	d.listing, d.listed = true, now
	return true, c.gen
}

// prune drops the states that answer nothing any more, or all of them
// when too many are fresh.
func (c *dirCache) prune(now time.Time) {
	for k, d := range c.dirs {
		if !d.listing && now.Sub(d.since) >= SubdirsTTL && now.Sub(d.listed) >= SubdirsTTL {
			delete(c.dirs, k)
		}
	}
	if c.dirs == nil || len(c.dirs) >= subdirsDirs {
		c.dirs = map[string]*dirState{}
	}
}

// done records the listing that miss asked for; a reset since it began
// voids it.
func (c *dirCache) done(dir string, gen uint64, subdirs map[string]bool, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.dirs[dir]
	if d == nil || gen != c.gen {
		return
	}
	d.listing = false
	d.subdirs, d.ok = subdirs, ok
}

// reset forgets every list: this server made or moved a directory.
func (c *dirCache) reset() {
	c.mu.Lock()
	c.gen++
	c.dirs = nil
	c.mu.Unlock()
}

// listSubdirs lists the subdirectories of dir (common prefixes with
// delimiter "/", markers included); ok is false when dir has more entries
// than subdirsPages pages or more subdirectories than subdirsMax.
func (f *FS) listSubdirs(ctx context.Context, dir string) (subdirs map[string]bool, ok bool, err error) {
	subdirs = map[string]bool{}
	var token *string
	for range subdirsPages {
		cctx, cancel := f.b.call(ctx)
		out, err := f.b.client.ListObjectsV2(cctx, &s3.ListObjectsV2Input{
			Bucket: &f.b.bucket, Prefix: &dir, Delimiter: aws.String("/"), ContinuationToken: token,
		})
		cancel()
		if err != nil {
			return nil, false, f.b.wrap("ListObjectsV2", dir, err)
		}
		for _, p := range out.CommonPrefixes {
			subdirs[strings.TrimSuffix(strings.TrimPrefix(aws.ToString(p.Prefix), dir), "/")] = true
		}
		if len(subdirs) > subdirsMax {
			return nil, false, nil
		}
		if !aws.ToBool(out.IsTruncated) || out.NextContinuationToken == nil {
			return subdirs, true, nil
		}
		token = out.NextContinuationToken
	}
	return nil, false, nil
}

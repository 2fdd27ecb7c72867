package s3store_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	s3store "github.com/ferryftp/ferry/internal/storage/s3"
)

// pages plays ListObjectsV2 with delimiter "/" over keys under prefix:
// sorted, each page up to size keys and prefixes.
func pages(keys []string, prefix string, size int) [][2]any {
	slices.Sort(keys)
	keys = slices.Compact(keys)
	type item struct {
		k   string
		dir bool
	}
	var items []item
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		rest := k[len(prefix):]
		if i := strings.Index(rest, "/"); i >= 0 {
			p := prefix + rest[:i+1]
			if len(items) > 0 && items[len(items)-1].dir && items[len(items)-1].k == p {
				continue
			}
			items = append(items, item{p, true})
			continue
		}
		items = append(items, item{k, false})
	}
	var out [][2]any
	for len(items) > 0 {
		n := min(size, len(items))
		var objs []types.Object
		var pfx []types.CommonPrefix
		for _, it := range items[:n] {
			if it.dir {
				pfx = append(pfx, types.CommonPrefix{Prefix: aws.String(it.k)})
			} else {
				objs = append(objs, types.Object{Key: aws.String(it.k), Size: aws.Int64(1)})
			}
		}
		out = append(out, [2]any{objs, pfx})
		items = items[n:]
	}
	return out
}

// listAll runs a Lister over the pages of keys.
func listAll(t *testing.T, keys []string, prefix string, size int) map[string]bool {
	l := &s3store.Lister{Prefix: prefix}
	got := map[string]bool{} // name -> is a directory
	take := func() {
		for _, fi := range l.Take(1 << 20) {
			n := fi.Name()
			if n == "" || n == "." || n == ".." || strings.ContainsAny(n, "/\x00\r\n") || strings.HasPrefix(n, ".ferry-upload-") {
				t.Fatalf("listed bad name %q (keys %q)", n, keys)
			}
			if _, dup := got[n]; dup {
				t.Fatalf("listed %q twice (keys %q)", n, keys)
			}
			got[n] = fi.IsDir()
		}
	}
	for _, p := range pages(keys, prefix, size) {
		l.Add(p[0].([]types.Object), p[1].([]types.CommonPrefix))
		take()
	}
	l.Finish()
	take()
	return got
}

func TestListerOddKeys(t *testing.T) {
	keys := []string{
		"p/d/", "p/d/a//b", "p/d/x/../y", "p/d/./z", "p/d/.", "p/d/..", "p/d/dir/", "p/d/dir/in",
		"p/d/f", "p/d/f/g", "p/d/f!", "p/d/f-1", "p/d/f-1/x", "p/d/g", "p/d/.ferry-upload-x",
		"p/d/bad\nname", "p/d/\xff", "p/dd", "p/d",
	}
	for _, size := range []int{1, 2, 3, 1000} {
		got := listAll(t, slices.Clone(keys), "p/d/", size)
		want := map[string]bool{"a": true, "x": true, "dir": true, "f": true, "f!": false, "f-1": true, "g": false}
		if len(got) != len(want) {
			t.Errorf("pages of %d: listed %v, want %v", size, got, want)
		}
		for n, dir := range want {
			if d, ok := got[n]; !ok || d != dir {
				t.Errorf("pages of %d: %q listed %v (dir %v), want dir %v", size, n, ok, d, dir)
			}
		}
	}
}

// FuzzLister lists arbitrary key sets (one key per line) in pages of
// any size: no bad name, no duplicate, no escape from the prefix, and an
// object that is also a prefix is listed once, as the directory.
func FuzzLister(f *testing.F) {
	f.Add("p/a//b\np/x/../y\np/dir/\np/f\np/f/g", 2)
	f.Fuzz(func(t *testing.T, in string, size int) {
		if size <= 0 || size > 50 || len(in) > 4096 {
			return
		}
		keys := strings.Split(in, "\n")
		got := listAll(t, keys, "p/", size)
		for _, k := range keys {
			rest, ok := strings.CutPrefix(k, "p/")
			if !ok {
				continue
			}
			if i := strings.Index(rest, "/"); i > 0 {
				if dir, ok := got[rest[:i]]; ok && !dir {
					t.Fatalf("%q is a prefix but listed as a file (keys %q)", rest[:i], keys)
				}
			}
		}
	})
}

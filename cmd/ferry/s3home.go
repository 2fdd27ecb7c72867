package main

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/ferryftp/ferry/internal/escape"
)

// On S3 a user's home is a key prefix below s3_prefix. The user store
// keeps homes as absolute clean paths, so a prefix is kept with a leading
// slash: "/home/alice", "/teams/blue".

// s3HomeOf returns the stored form of a --home given on S3: "teams/blue"
// and "/teams/blue" are both "/teams/blue". The prefix must be a slash path
// without empty, "." or ".." elements.
func s3HomeOf(home string) (string, error) {
	p := strings.TrimPrefix(home, "/")
	if !fs.ValidPath(p) || p == "." || strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", fmt.Errorf("home %s refused: on S3 a home is a key prefix, a slash path without empty, . or .. elements, like home/alice", escape.Display(home))
	}
	return "/" + p, nil
}

// s3Location maps a home as the user store keeps it to a key prefix of
// the bucket (below s3_prefix). DATA/home/NAME and DATA/public, which
// `ferry user add` without --storage s3 records and the local layout
// uses, are home/NAME and public; another path inside the data directory
// (its tls/, the user database) is refused; any other path /P is the
// prefix P. data is the absolute data directory.
func s3Location(data, home string) (string, error) {
	if rel, err := filepath.Rel(data, home); err == nil && filepath.IsAbs(home) && rel != ".." && !strings.HasPrefix(rel, "../") {
		rel = filepath.ToSlash(rel)
		if rel == "public" || strings.HasPrefix(rel, "home/") {
			return rel, nil
		}
		return "", fmt.Errorf("home %s is the data directory or inside it, not a home: give the user a key prefix (ferry user set NAME --home /home/NAME)", escape.Display(home))
	}
	p, err := s3HomeOf(home)
	if err != nil || !strings.HasPrefix(home, "/") {
		return "", fmt.Errorf("home %s is not a key prefix like /home/alice", escape.Display(home))
	}
	return p[1:], nil
}

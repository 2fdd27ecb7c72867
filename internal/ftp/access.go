package ftp

import (
	"github.com/ferryftp/ferry/internal/access"
	"github.com/ferryftp/ferry/internal/vpath"
)

const (
	verbList      = access.List
	verbDownload  = access.Download
	verbUpload    = access.Upload
	verbOverwrite = access.Overwrite
	verbAppend    = access.Append
	verbDelete    = access.Delete
	verbRename    = access.Rename
	verbMkdir     = access.Mkdir
	verbRmdir     = access.Rmdir
	verbChmod     = access.Chmod
)

// allow is the one permission check of every command: anonymous users read
// (and may only upload into the drop box when one is configured), named
// users have their rules, names can be denied for upload.
func (s *session) allow(v access.Verb, p vpath.Path) error {
	if s.anon {
		if box := s.site.DropBox; s.site.hasDropBox() && p.Within(box) && !p.IsRoot() {
			// A drop box: files go in, nothing comes out or is listed.
			if v == verbUpload && p != box {
				return s.uploadName(p)
			}
			if v == verbList && p == box {
				return nil // entering it is fine; its listing is empty
			}
			return errDenied
		}
		if v&access.Read == v {
			return nil
		}
		return errDenied
	}
	if !s.rules.Allowed(access.All, p.String(), v) {
		return errDenied
	}
	if v == verbUpload || v == verbOverwrite || v == verbAppend {
		return s.uploadName(p)
	}
	if v == verbRename {
		return nil
	}
	return nil
}

func (s *session) uploadName(p vpath.Path) error {
	if s.site.DenyUpload.Match(p.Base()) {
		return errDenyUpload
	}
	return nil
}

// errDenyUpload refuses a name that deny_upload_patterns matches.
var errDenyUpload = reply(553, "Uploads of this file name are not allowed.")

// Package dbjournal is the S3 backend's Journal (s3store.Journal) in the
// database (package db), shared by every node on it: multipart uploads in
// progress (s3_uploads) and directory renames in progress (s3_renames),
// each with the node that started it, so that any node can clean up or
// finish what another one started.
package dbjournal

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"time"

	"github.com/ferryftp/ferry/internal/db"
	s3store "github.com/ferryftp/ferry/internal/storage/s3"
)

// Journal is an s3store.Journal on a database. Its zero value is unbound:
// the S3 backend is opened before the database at start, so the journal is
// given to it first and bound (Bind) once the database and the node are
// there; until then every call fails with ErrUnbound (the backend logs it).
type Journal struct {
	mu   sync.RWMutex
	d    *sql.DB  // guarded by mu
	node *db.Node // guarded by mu
}

var _ s3store.Journal = (*Journal)(nil)

// ErrUnbound is the error of a Journal not bound yet.
var ErrUnbound = errors.New("dbjournal: no database yet")

// New returns a Journal bound to d, recording entries as node's.
func New(d *db.DB, node *db.Node) *Journal {
	j := &Journal{}
	j.Bind(d, node)
	return j
}

// Bind makes j record in d, as node's.
func (j *Journal) Bind(d *db.DB, node *db.Node) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.d, j.node = d.SQL(), node
}

func (j *Journal) bound() (*sql.DB, *db.Node, error) {
	j.mu.RLock()
	defer j.mu.RUnlock()
	if j.d == nil {
		return nil, nil, ErrUnbound
	}
	return j.d, j.node, nil
}

// UploadStarted records a multipart upload as this node's.
func (j *Journal) UploadStarted(ctx context.Context, key, uploadID string) error {
	d, node, err := j.bound()
	if err != nil {
		return err
	}
	_, err = d.ExecContext(ctx, `INSERT INTO s3_uploads (object_key, upload_id, node, started_ns) VALUES ($1, $2, $3, $4)
		ON CONFLICT (object_key, upload_id) DO NOTHING`, key, uploadID, node.ID(), time.Now().UnixNano())
	return err
}

// UploadEnded forgets a multipart upload (completed or aborted).
func (j *Journal) UploadEnded(ctx context.Context, key, uploadID string) error {
	d, _, err := j.bound()
	if err != nil {
		return err
	}
	_, err = d.ExecContext(ctx, `DELETE FROM s3_uploads WHERE object_key = $1 AND upload_id = $2`, key, uploadID)
	return err
}

// Uploads returns the uploads that are abandoned: those whose node is gone
// (no heartbeat within the node timeout, or no row: released), whatever
// their age, and those started before the time whatever their node (an
// abort that failed on a live node).
func (j *Journal) Uploads(ctx context.Context, before time.Time) ([]s3store.JournalUpload, error) {
	d, node, err := j.bound()
	if err != nil {
		return nil, err
	}
	rows, err := d.QueryContext(ctx, `SELECT object_key, upload_id, started_ns FROM s3_uploads u
		WHERE started_ns < $1
		OR NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = u.node AND n.heartbeat_ns >= $2)
		ORDER BY started_ns`, before.UnixNano(), node.LiveSince().UnixNano())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []s3store.JournalUpload
	for rows.Next() {
		var u s3store.JournalUpload
		var ns int64
		if err := rows.Scan(&u.Key, &u.UploadID, &ns); err != nil {
			return nil, err
		}
		u.Started = time.Unix(0, ns)
		out = append(out, u)
	}
	return out, rows.Err()
}

// RenameStarted records a directory rename as this node's; a node that
// continues another's takes it over.
func (j *Journal) RenameStarted(ctx context.Context, from, to string) error {
	d, node, err := j.bound()
	if err != nil {
		return err
	}
	_, err = d.ExecContext(ctx, `INSERT INTO s3_renames (from_prefix, to_prefix, node, started_ns) VALUES ($1, $2, $3, $4)
		ON CONFLICT (from_prefix, to_prefix) DO UPDATE SET node = excluded.node`, from, to, node.ID(), time.Now().UnixNano())
	return err
}

// RenameEnded forgets a finished directory rename.
func (j *Journal) RenameEnded(ctx context.Context, from, to string) error {
	d, _, err := j.bound()
	if err != nil {
		return err
	}
	_, err = d.ExecContext(ctx, `DELETE FROM s3_renames WHERE from_prefix = $1 AND to_prefix = $2`, from, to)
	return err
}

// Rename is a directory rename in progress.
type Rename struct {
	From, To string // key prefixes
	Node     string // the node that runs it (or ran it)
	Started  time.Time
	Gone     bool // its node is gone: nobody runs it
}

// Renames returns the directory renames in progress, oldest first.
func (j *Journal) Renames(ctx context.Context) ([]Rename, error) {
	d, node, err := j.bound()
	if err != nil {
		return nil, err
	}
	rows, err := d.QueryContext(ctx, `SELECT from_prefix, to_prefix, node, started_ns,
		CASE WHEN EXISTS (SELECT 1 FROM nodes n WHERE n.id = r.node AND n.heartbeat_ns >= $1) THEN 0 ELSE 1 END
		FROM s3_renames r ORDER BY started_ns`, node.LiveSince().UnixNano())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Rename
	for rows.Next() {
		var r Rename
		var ns, gone int64
		if err := rows.Scan(&r.From, &r.To, &r.Node, &ns, &gone); err != nil {
			return nil, err
		}
		r.Started, r.Gone = time.Unix(0, ns), gone == 1
		out = append(out, r)
	}
	return out, rows.Err()
}

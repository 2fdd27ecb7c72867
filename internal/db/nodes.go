package db

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Default node settings, for the zero values of NodeOptions.
const (
	DefaultHeartbeat   = 5 * time.Second
	DefaultNodeTimeout = 30 * time.Second
)

// NodeOptions are the settings of StartNode.
type NodeOptions struct {
	// Heartbeat is how often the node writes its heartbeat and looks for
	// gone nodes; DefaultHeartbeat when 0.
	Heartbeat time.Duration
	// Timeout is how old another node's heartbeat may be before it is
	// gone and its reservations are released; DefaultNodeTimeout when 0.
	// It must exceed Heartbeat (StartNode refuses otherwise); several
	// heartbeats, so that a slow database does not declare a live node
	// gone. Clocks of the nodes must agree to well within it (NTP).
	Timeout time.Duration
	// Info describes the process in the nodes table (host, pid, version).
	Info string
	// Log receives the releases of gone nodes; nil discards.
	Log *slog.Logger
}

// Reaper releases what a gone node held, in the transaction that deletes
// its nodes row, so that exactly one live node releases it, once.
type Reaper func(ctx context.Context, tx *sql.Tx, node string) error

// Node is this process in the nodes table: a row with a heartbeat that
// the node refreshes every Heartbeat. Every heartbeat also looks for nodes
// whose heartbeat is older than Timeout; for each, the first live node to
// delete its row runs the Reapers in that transaction. Close runs them for
// the node itself (a clean stop releases at once).
type Node struct {
	d    *DB
	id   string
	opts NodeOptions

	mu      sync.Mutex // guards reapers
	reapers []Reaper

	stop context.CancelFunc
	done chan struct{}
}

// StartNode registers this process as a node and starts its heartbeat,
// which runs until Close.
func (d *DB) StartNode(ctx context.Context, o NodeOptions) (*Node, error) {
	if o.Heartbeat <= 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultNodeTimeout
	}
	if o.Timeout <= o.Heartbeat {
		return nil, fmt.Errorf("db: node timeout %v must exceed the heartbeat %v", o.Timeout, o.Heartbeat)
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	var b [6]byte
	rand.Read(b[:])
	host, _ := os.Hostname()
	n := &Node{d: d, id: fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:])), opts: o, done: make(chan struct{})}
	now := time.Now().UnixNano()
	if _, err := d.sql.ExecContext(ctx, `INSERT INTO nodes (id, info, started_ns, heartbeat_ns) VALUES ($1, $2, $3, $3)`, n.id, o.Info, now); err != nil {
		return nil, fmt.Errorf("db: registering the node: %w", err)
	}
	var hctx context.Context
	hctx, n.stop = context.WithCancel(context.WithoutCancel(ctx))
	go n.run(hctx)
	return n, nil
}

// ID is the node's id in the nodes table.
func (n *Node) ID() string { return n.id }

// Timeout is the age of a heartbeat after which a node is gone.
func (n *Node) Timeout() time.Duration { return n.opts.Timeout }

// OnGone adds a Reaper, run for every gone node (and for this one at
// Close).
func (n *Node) OnGone(r Reaper) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.reapers = append(n.reapers, r)
}

func (n *Node) run(ctx context.Context) {
	defer close(n.done)
	t := time.NewTicker(n.opts.Heartbeat)
	defer t.Stop()
	for {
		n.Beat(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Beat writes the heartbeat once and releases the nodes that are gone; the
// heartbeat does it every Heartbeat. A node whose row was deleted (it was
// taken for gone: a pause longer than Timeout) registers again under the
// same id: what it held was released, and its uploads in progress count
// anew from their next reservation.
func (n *Node) Beat(ctx context.Context) {
	now := time.Now().UnixNano()
	res, err := n.d.sql.ExecContext(ctx, `UPDATE nodes SET heartbeat_ns = $1 WHERE id = $2`, now, n.id)
	if err == nil {
		if k, _ := res.RowsAffected(); k == 0 {
			n.opts.Log.Warn("this node was taken for gone (no heartbeat within node_timeout): its quota reservations were released", "node", n.id)
			_, err = n.d.sql.ExecContext(ctx, `INSERT INTO nodes (id, info, started_ns, heartbeat_ns) VALUES ($1, $2, $3, $3)`, n.id, n.opts.Info, now)
		}
	}
	if err != nil {
		if ctx.Err() == nil {
			n.opts.Log.Warn("node heartbeat failed", "node", n.id, "err", err)
		}
		return
	}
	if _, err := n.ReapGone(ctx); err != nil && ctx.Err() == nil {
		n.opts.Log.Warn("releasing gone nodes failed", "err", err)
	}
}

// ReapGone releases every node whose heartbeat is older than Timeout and
// returns their ids.
func (n *Node) ReapGone(ctx context.Context) ([]string, error) {
	cutoff := time.Now().Add(-n.opts.Timeout).UnixNano()
	rows, err := n.d.sql.QueryContext(ctx, `SELECT id FROM nodes WHERE heartbeat_ns < $1 AND id <> $2`, cutoff, n.id)
	if err != nil {
		return nil, err
	}
	var gone []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		gone = append(gone, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var reaped []string
	for _, id := range gone {
		ok, err := n.reap(ctx, id, cutoff)
		if err != nil {
			return reaped, err
		}
		if ok {
			n.opts.Log.Info("released a gone node", "node", id)
			reaped = append(reaped, id)
		}
	}
	return reaped, nil
}

// reap deletes node id's row if its heartbeat is still older than cutoff
// (another node may have taken it, or it came back) and runs the reapers
// in the same transaction.
func (n *Node) reap(ctx context.Context, id string, cutoff int64) (bool, error) {
	tx, err := n.d.sql.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM nodes WHERE id = $1 AND heartbeat_ns < $2`, id, cutoff)
	if err != nil {
		return false, err
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return false, nil
	}
	if err := n.runReapers(ctx, tx, id); err != nil {
		return false, err
	}
	return true, tx.Commit()
}

func (n *Node) runReapers(ctx context.Context, tx *sql.Tx, id string) error {
	n.mu.Lock()
	rs := append([]Reaper(nil), n.reapers...)
	n.mu.Unlock()
	for _, r := range rs {
		if err := r(ctx, tx, id); err != nil {
			return err
		}
	}
	return nil
}

// Close stops the heartbeat, releases what this node still holds and
// deletes its row. Call it after the work that reserves has ended.
func (n *Node) Close(ctx context.Context) error {
	n.stop()
	<-n.done
	tx, err := n.d.sql.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM nodes WHERE id = $1`, n.id); err != nil {
		return err
	}
	if err := n.runReapers(ctx, tx, n.id); err != nil {
		return err
	}
	return tx.Commit()
}

// LiveSince is the oldest heartbeat of a live node: nodes with an older
// one are gone.
func (n *Node) LiveSince() time.Time { return time.Now().Add(-n.opts.Timeout) }

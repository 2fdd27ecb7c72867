package db_test

import (
	"context"
	"database/sql"
	"sync"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/db"
)

// TestNodes: a timeout not above the heartbeat is refused; a node that
// stops beating is released once, by a live node, with its reapers run in
// the transaction that deletes its row; Close releases a node itself.
func TestNodes(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			url := e.url(t)
			d := open(t, url, db.Options{})
			if _, err := d.StartNode(t.Context(), db.NodeOptions{Heartbeat: time.Second, Timeout: time.Second}); err == nil {
				t.Fatal("a timeout equal to the heartbeat was accepted")
			}
			dead := open(t, url, db.Options{})
			const timeout = time.Second
			a, err := dead.StartNode(t.Context(), db.NodeOptions{Heartbeat: timeout / 4, Timeout: timeout})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { a.Close(context.Background()) })
			b, err := d.StartNode(t.Context(), db.NodeOptions{Heartbeat: timeout / 10, Timeout: 2 * time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var reaped []string
			b.OnGone(func(ctx context.Context, tx *sql.Tx, node string) error {
				var n int
				if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM nodes WHERE id = $1`, node).Scan(&n); err != nil || n != 0 {
					t.Errorf("reaper of %s: its row is still there (%d, %v)", node, n, err)
				}
				mu.Lock()
				reaped = append(reaped, node)
				mu.Unlock()
				return nil
			})
			// b's own timeout is two hours: a, stopped now, is not gone to it.
			dead.Close()
			if gone, err := b.ReapGone(t.Context()); err != nil || len(gone) != 0 {
				t.Fatalf("ReapGone within the timeout = %v, %v", gone, err)
			}
			c, err := d.StartNode(t.Context(), db.NodeOptions{Heartbeat: timeout / 4, Timeout: timeout})
			if err != nil {
				t.Fatal(err)
			}
			c.OnGone(func(ctx context.Context, tx *sql.Tx, node string) error {
				mu.Lock()
				reaped = append(reaped, "c:"+node)
				mu.Unlock()
				return nil
			})
			deadline := time.Now().Add(wait)
			for {
				mu.Lock()
				n := len(reaped)
				mu.Unlock()
				if n > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the stopped node was never released")
				}
				time.Sleep(timeout / 10)
			}
			if err := b.Close(t.Context()); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			got := append([]string(nil), reaped...)
			mu.Unlock()
			want := []string{"c:" + a.ID(), b.ID()}
			if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
				t.Fatalf("reaped %v, want %v", got, want)
			}
			c.Close(t.Context())
		})
	}
}

package db

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Change notifications
//
// Notify(ctx, channel, payload) tells every Listen(ctx, channel) of every
// process on the same database that something changed; the payload is a
// hint (at most 7999 bytes on PostgreSQL), not a durable message: a listener
// must be able to reload what it caches from the tables.
//
// PostgreSQL: NOTIFY/LISTEN. Each Listen holds one connection of its own
// (outside the pool), reconnecting with backoff when it breaks; after a
// reconnect it delivers "" (a lost-notifications marker: reload everything),
// since notifications sent while it was away are gone.
//
// SQLite (one machine): Notify delivers its payload to the listeners of the
// same *DB at once, in process. Writes by other processes on the same file
// (the CLI's `ferry ban del`) are seen by a poll, every SQLitePollInterval,
// of PRAGMA data_version on a connection of Listen's own (outside the
// pool): a change delivers
// "" (something changed: reload). Writes of the same process through other
// connections also change data_version, so expect spurious "".
//
// The channel returned by Listen has a small buffer; a listener that does
// not keep up loses payloads but is then sent "" once there is room.

// SQLitePollInterval is how often a SQLite Listen looks for other
// processes' writes.
const SQLitePollInterval = 250 * time.Millisecond

var channelName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Listen returns a channel of the payloads notified on channel (a lower-case
// SQL identifier such as "ferry_bans") until ctx ends, when it is closed.
func (d *DB) Listen(ctx context.Context, channel string) (<-chan string, error) {
	if !channelName.MatchString(channel) {
		return nil, fmt.Errorf("db: channel name %q is not a lower-case identifier", channel)
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(d.closed, cancel)
	out := make(chan string, 64)
	fail := func(err error) (<-chan string, error) {
		stop()
		cancel()
		return nil, err
	}
	if d.dialect == SQLite {
		// A handle of its own, outside the pool: data_version must be read
		// on one connection, and Listen must not take one of pool_size.
		conn, err := sql.Open("sqlite", d.dsn)
		if err != nil {
			return fail(err)
		}
		conn.SetMaxOpenConns(1)
		var v int64
		if err := conn.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v); err != nil {
			conn.Close()
			return fail(err)
		}
		in := d.hub.subscribe(channel)
		go func() {
			defer cancel()
			defer close(out)
			defer conn.Close()
			defer d.hub.unsubscribe(channel, in)
			t := time.NewTicker(SQLitePollInterval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case p := <-in:
					deliver(out, p)
				case <-t.C:
					var nv int64
					if err := conn.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&nv); err == nil && nv != v {
						v = nv
						deliver(out, "")
					}
				}
			}
		}()
		return out, nil
	}
	conn, err := d.listenConn(ctx, channel)
	if err != nil {
		return fail(err)
	}
	go func() {
		defer cancel()
		d.pgListen(ctx, channel, conn, out)
	}()
	return out, nil
}

// deliver sends p without blocking; when the buffer is full the oldest
// payload makes room for "" (reload).
func deliver(out chan string, p string) {
	select {
	case out <- p:
		return
	default:
	}
	select {
	case <-out:
	default:
	}
	select {
	case out <- "":
	default:
	}
}

func (d *DB) listenConn(ctx context.Context, channel string) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, d.pgcfg)
	if err != nil {
		return nil, &UnreachableError{Display: d.display, Err: err}
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

func (d *DB) pgListen(ctx context.Context, channel string, conn *pgx.Conn, out chan string) {
	defer close(out)
	backoff := 100 * time.Millisecond
	for {
		for conn != nil {
			n, err := conn.WaitForNotification(ctx)
			if err != nil {
				conn.Close(context.Background())
				conn = nil
				break
			}
			deliver(out, n.Payload)
		}
		if ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		c, err := d.listenConn(ctx, channel)
		if err != nil {
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		conn, backoff = c, 100*time.Millisecond
		deliver(out, "")
	}
}

// Notify sends payload to the listeners of channel (see Listen), in a
// statement of its own. To notify atomically with a change on PostgreSQL,
// run SELECT pg_notify($1, $2) in the change's transaction instead: it is
// delivered at commit.
func (d *DB) Notify(ctx context.Context, channel, payload string) error {
	if !channelName.MatchString(channel) {
		return fmt.Errorf("db: channel name %q is not a lower-case identifier", channel)
	}
	if d.dialect == SQLite {
		d.hub.publish(channel, payload)
		return nil
	}
	if _, err := d.sql.ExecContext(ctx, `SELECT pg_notify($1, $2)`, channel, payload); err != nil {
		return fmt.Errorf("db: notify %s: %w", channel, err)
	}
	return nil
}

// hub delivers SQLite notifications within one process.
type hub struct {
	mu   sync.Mutex
	subs map[string]map[chan string]struct{} // guarded by mu
}

func newHub() *hub { return &hub{subs: map[string]map[chan string]struct{}{}} }

func (h *hub) subscribe(channel string) chan string {
	c := make(chan string, 64)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs[channel] == nil {
		h.subs[channel] = map[chan string]struct{}{}
	}
	h.subs[channel][c] = struct{}{}
	return c
}

func (h *hub) unsubscribe(channel string, c chan string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs[channel], c)
}

func (h *hub) publish(channel, payload string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.subs[channel] {
		deliver(c, payload)
	}
}

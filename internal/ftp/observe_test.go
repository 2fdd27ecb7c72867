package ftp

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is an observer that keeps every event; gone is closed at the
// first disconnect.
type recorder struct {
	mu     sync.Mutex
	events []Event
	gone   chan struct{}
	once   sync.Once
}

func newRecorder() *recorder { return &recorder{gone: make(chan struct{})} }

func (r *recorder) Observe(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	if e.Kind == KindDisconnect {
		r.once.Do(func() { close(r.gone) })
	}
}

// waitGone waits for the disconnect event.
func (r *recorder) waitGone(t *testing.T) {
	t.Helper()
	select {
	case <-r.gone:
	case <-time.After(10 * time.Second):
		t.Fatalf("no disconnect event: %v", r.all())
	}
}

func (r *recorder) all() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// describe renders an event as "kind detail" for comparisons.
func describe(e Event) string {
	switch e.Kind {
	case KindCommand:
		return fmt.Sprintf("command %s %d", e.Cmd, e.Code)
	case KindLogin:
		return fmt.Sprintf("login %s %s %s", e.User, e.Result, e.Method)
	case KindData:
		return "data " + e.Result
	case KindTransfer:
		return fmt.Sprintf("transfer %s %s %s %d %s", e.Cmd, e.Path, e.Direction, e.Bytes, e.Result)
	}
	return e.Kind.String()
}

// TestObserverEventsInOrder: a login and an upload produce their events in
// the order they happened, with the session's fields filled in.
func TestObserverEventsInOrder(t *testing.T) {
	eachBackend(t, testObserverEventsInOrder)
}

func testObserverEventsInOrder(t *testing.T, be backend) {
	ts := startOn(t, be, nil)
	rec := newRecorder()
	sub := ts.srv.Observe(rec, 0)
	c := dial(t, ts.addr)
	c.login("alice", "secret")
	c.cmd("TYPE I", 200)
	c.stor("STOR", "up.bin", []byte("0123456789"))
	c.cmd("QUIT", 221)
	c.expectEOF()
	rec.waitGone(t)
	var got []string
	for _, e := range rec.all() {
		got = append(got, describe(e))
		if e.Session == "" || !e.Remote.IsValid() || e.Time.IsZero() {
			t.Errorf("event %s lacks the session's fields: %+v", describe(e), e)
		}
	}
	want := []string{
		"connect",
		"command USER 331",
		"login alice ok password",
		"command PASS 230",
		"command TYPE 200",
		"data listening",
		"command EPSV 229",
		"command STOR 0", // answered by the transfer: 150, then 226
		"data opened",
		"transfer STOR /up.bin upload 10 ok",
		"command QUIT 221",
		"disconnect",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if ev := rec.all(); ev[len(ev)-1].User != "alice" {
		t.Errorf("disconnect user %q, want alice", ev[len(ev)-1].User)
	}
	if sub.Dropped() != 0 {
		t.Errorf("a fast observer dropped %d events", sub.Dropped())
	}
}

// TestObserverSlowNeverBlocks: an observer that never returns holds up no
// session; what its full queue cannot take is dropped and counted exactly.
func TestObserverSlowNeverBlocks(t *testing.T) {
	ts := startServer(t, nil)
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	slow := ts.srv.Observe(ObserverFunc(func(Event) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
	}), 1)
	defer func() {
		close(release)
		ts.srv.StopObserving(slow)
	}()
	all := newRecorder()
	fast := ts.srv.Observe(all, 10000)

	c := dial(t, ts.addr)
	<-entered // the slow observer holds the connect event
	c.login("alice", "secret")
	for range 200 {
		c.cmd("NOOP", 200) // each reply comes whatever the observer does
	}
	c.cmd("QUIT", 221)
	all.waitGone(t) // every event of the session is out
	n := uint64(len(all.all()))
	// One event is in the slow observer's hands, one in its queue.
	if got := slow.Dropped(); got != n-2 {
		t.Errorf("slow observer dropped %d of %d events, want %d", got, n, n-2)
	}
	if fast.Dropped() != 0 {
		t.Errorf("the fast observer dropped %d events", fast.Dropped())
	}
}

// TestSessionSnapshotsDuringTransfer: snapshots read from other goroutines
// while an upload runs show the user, the directory and the bytes received
// so far; -race checks that reading them is safe.
func TestSessionSnapshotsDuringTransfer(t *testing.T) {
	eachBackend(t, testSessionSnapshotsDuringTransfer)
}

func testSessionSnapshotsDuringTransfer(t *testing.T, be backend) {
	ts := startOn(t, be, nil)
	c := loggedIn(t, ts)
	c.cmd("MKD sub", 257)
	c.cmd("CWD sub", 250)
	d := c.pasv()
	c.cmd("STOR big.bin", 150)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, s := range ts.srv.SessionSnapshots() {
					if s.Transfer != nil && s.Transfer.Bytes < 0 {
						t.Error("negative progress")
					}
				}
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()

	payload := make([]byte, 300<<10)
	sent := 0
	for _, want := range []int{100 << 10, 300 << 10} {
		if _, err := d.Write(payload[sent:want]); err != nil {
			t.Fatal(err)
		}
		sent = want
		// The server's progress follows what it has received; nothing
		// signals that, so poll the snapshot (the thing under test).
		deadline := time.Now().Add(10 * time.Second)
		for {
			snaps := ts.srv.SessionSnapshots()
			if len(snaps) != 1 {
				t.Fatalf("%d sessions, want 1", len(snaps))
			}
			s := snaps[0]
			if s.User != "alice" || !s.LoggedIn || s.Cwd != "/sub" || s.Transfer == nil {
				t.Fatalf("snapshot during the upload: %+v", s)
			}
			if x := s.Transfer; x.Cmd != "STOR" || x.Path != "/sub/big.bin" || x.Direction != "upload" || x.Started.IsZero() {
				t.Fatalf("transfer snapshot: %+v", x)
			}
			if s.Transfer.Bytes == int64(want) {
				break
			}
			if s.Transfer.Bytes > int64(want) || time.Now().After(deadline) {
				t.Fatalf("progress %d bytes, want %d", s.Transfer.Bytes, want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	d.Close()
	c.expect(226)
	c.cmd("NOOP", 200) // the session has handled the end of the transfer
	if s := ts.srv.SessionSnapshots(); len(s) != 1 || s[0].Transfer != nil {
		t.Errorf("after the transfer: %+v", s)
	}
}

// gateWriter blocks every Write until open is closed.
type gateWriter struct {
	open chan struct{}
	buf  syncBuffer
}

func (g *gateWriter) Write(p []byte) (int, error) {
	<-g.open
	return g.buf.Write(p)
}

// TestLogObserverReportsDrops: a log that cannot keep up holds up no
// session, and the lines it lost are reported once it catches up.
func TestLogObserverReportsDrops(t *testing.T) {
	w := &gateWriter{open: make(chan struct{})}
	ts := startServer(t, func(_ *Site, srv *Server) {
		srv.Logger = slog.New(slog.NewTextHandler(w, nil))
		srv.LogQueue = 1
	})
	c := dial(t, ts.addr) // its connect line blocks the log
	c.login("alice", "secret")
	for range 20 {
		c.cmd("NOOP", 200)
	}
	close(w.open)
	c.cmd("QUIT", 221)
	c.expectEOF()
	ts.logText()
	if log := w.buf.String(); !strings.Contains(log, "log events dropped") {
		t.Errorf("no report of the dropped lines:\n%s", log)
	}
}

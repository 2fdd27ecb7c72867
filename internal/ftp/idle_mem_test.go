package ftp

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// idleMemSessions is how many sessions TestIdleSessionMemory holds: enough
// that the server's fixed costs vanish in the figure per session.
const idleMemSessions = 2000

// idleMem is what the runtime holds, from runtime/metrics.
type idleMem struct {
	stacks, objects uint64
	goroutines      int
}

func readIdleMem() idleMem {
	s := []metrics.Sample{
		{Name: "/memory/classes/heap/stacks:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
	}
	metrics.Read(s)
	return idleMem{s[0].Value.Uint64(), s[1].Value.Uint64(), runtime.NumGoroutine()}
}

// settledIdleMem waits for the job workers to end (workerIdle after the
// last job; they are the server's, not the sessions'), then collects
// garbage until the figures stop falling: each GC shrinks a goroutine's
// stack by half at most, if it uses a quarter of it.
func settledIdleMem(t *testing.T) idleMem {
	t.Helper()
	for limit := time.Now().Add(time.Minute); idleWorkers.Load() > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(limit) {
			t.Fatalf("%d job workers still waiting after a minute", idleWorkers.Load())
		}
	}
	runtime.GC()
	m := readIdleMem()
	for range 4 {
		runtime.GC()
		n := readIdleMem()
		if n.stacks >= m.stacks && n.objects >= m.objects {
			return n
		}
		m = n
	}
	return m
}

// loadClients is TestLoadClientProcess running in a child process, holding
// sessions to a server of this one.
type loadClients struct {
	t     *testing.T
	ctx   context.Context
	cmd   *exec.Cmd
	stdin io.Writer
	lines chan string
}

// startLoadClients logs n sessions in to addr as name (anonymous when
// pass is "") from a child process and waits until all are logged in.
func startLoadClients(t *testing.T, ctx context.Context, addr string, n int, name, pass string) *loadClients {
	t.Helper()
	spec := addr + "," + strconv.Itoa(n)
	if pass != "" {
		spec += "," + name + "," + pass
	}
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestLoadClientProcess$", "-test.v=false")
	cmd.Env = append(os.Environ(), "FERRY_LOAD_CLIENT="+spec)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			cmd.Wait()
		}
	})
	lc := &loadClients{t: t, ctx: ctx, cmd: cmd, stdin: stdin, lines: make(chan string)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lc.lines <- sc.Text()
		}
		close(lc.lines)
	}()
	lc.await("READY")
	return lc
}

// await waits for the client process's line want.
func (lc *loadClients) await(want string) {
	lc.t.Helper()
	for {
		select {
		case l, ok := <-lc.lines:
			if !ok {
				lc.t.Fatalf("client process ended before %q", want)
			}
			if strings.HasPrefix(l, "ERR ") {
				lc.t.Fatalf("client process: %s", l)
			}
			if l == want {
				return
			}
		case <-lc.ctx.Done():
			lc.t.Fatalf("waiting for %q from the client process: %v", want, lc.ctx.Err())
		}
	}
}

// noopAndClose has every session answer NOOP, then closes them.
func (lc *loadClients) noopAndClose() {
	lc.t.Helper()
	io.WriteString(lc.stdin, "NOOP\n")
	lc.await("NOOPED")
	io.WriteString(lc.stdin, "CLOSE\n")
	lc.await("CLOSED")
	if err := lc.cmd.Wait(); err != nil {
		lc.t.Fatalf("client process: %v", err)
	}
}

// TestIdleSessionMemory holds idleMemSessions logged-in idle sessions,
// anonymous (sharing one open root, as the daemon's anonymous sessions do)
// and named (each with its own root), and bounds what the Go runtime holds
// for each: goroutine stacks and live heap objects after garbage
// collection. docs/benchmarks.md accounts for the bytes. The clients run in
// another process and the server in a child test process of its own, so
// that nothing else allocates in the process measured.
func TestIdleSessionMemory(t *testing.T) {
	if !isolated(t) {
		return
	}
	// Bounds per session, with some margin over what was measured: two
	// goroutines on the smallest stack, 2 KiB (4 KiB with the race
	// detector), and 4.1 KiB of heap objects (docs/benchmarks.md).
	stackMax, objMax := uint64(5<<10), uint64(5<<10)
	if raceDetector {
		stackMax = 10 << 10
	}
	for _, tc := range []struct{ name, user, pass string }{
		{"anonymous", "anonymous", ""},
		{"named", "alice", "secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := loadRaiseNOFILE(t, idleMemSessions, 3)
			ts := startServer(t, func(c *Site, s *Server) {
				c.MaxSessions, c.MaxSessionsPerIP = 0, 0
				s.Logger = slog.New(slog.DiscardHandler)
				shareAnonymousRoot(t, c)
			})
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			base := settledIdleMem(t)
			lc := startLoadClients(t, ctx, ts.addr, n, tc.user, tc.pass)
			if got := ts.srv.Sessions(); got != n {
				t.Fatalf("server holds %d sessions, want %d", got, n)
			}
			held := settledIdleMem(t)
			per := func(a, b uint64) float64 { return (float64(a) - float64(b)) / float64(n) }
			stacks, objects := per(held.stacks, base.stacks), per(held.objects, base.objects)
			goroutines := float64(held.goroutines-base.goroutines) / float64(n)
			t.Logf("%d %s sessions, race detector %v: per session %.2f goroutines, %.0f B of stacks, %.0f B of heap objects",
				n, tc.name, raceDetector, goroutines, stacks, objects)
			lc.noopAndClose()
			// Two per session, the waiter and the reader; a few more may be
			// jobs that have not yet exited.
			if extra := held.goroutines - base.goroutines - 2*n; extra > 10 {
				t.Errorf("%d goroutines for %d idle sessions, want 2 each (the waiter and the reader)", held.goroutines-base.goroutines, n)
			}
			if stacks > float64(stackMax) {
				t.Errorf("goroutine stacks: %.0f B per idle session, want at most %d", stacks, stackMax)
			}
			if objects > float64(objMax) {
				t.Errorf("live heap: %.0f B per idle session, want at most %d", objects, objMax)
			}
			if n < idleMemSessions {
				t.Errorf("held only %d sessions, not %d: RLIMIT_NOFILE could not be raised", n, idleMemSessions)
			}
		})
	}
}

package faults

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestFaultLoginFloodStaysBounded: many clients sending wrong passwords at
// once must cost the server the memory of auth_hash_memory, not of one
// argon2id check (19 MiB) per client: the checks wait for their share of
// the budget. Forty such clients once grew the server by over 700 MiB. Half
// the clients use a name that does not exist, whose dummy check waits in
// the same queue.
func TestFaultLoginFloodStaysBounded(t *testing.T) {
	const (
		clients = 60
		rounds  = 3
		// hashBudget is the server's auth_hash_memory: three checks of
		// 19 MiB at once.
		hashBudget = 64 << 20
		// budgetKiB bounds the growth of the server's peak RSS: four
		// times the hash budget, for the garbage collector's heap goal
		// (each check allocates afresh) and sixty sessions. Measured:
		// about 120 MiB with the budget, 1190 MiB without it.
		budgetKiB = 4 * hashBudget >> 10
	)
	data := t.TempDir()
	addUser(t, data, "alice", "secret")
	srv := startFerry(t, data, "--auth-hash-memory", strconv.Itoa(hashBudget),
		"--max-login-failures", "0", "--ban-threshold", "0",
		"--max-sessions-per-ip", "0", "--anonymous=false", "--login-timeout", "10m")
	pid := srv.cmd.Process.Pid

	// Warm up: one right and one wrong login, so the baseline includes
	// what one check costs (code paths, the heap goal).
	c := dial(t, srv.Addr)
	c.cmd("USER alice", 331)
	c.cmd("PASS wrong", 530)
	c.login("alice", "secret")
	c.cmd("QUIT", 221)
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		t.Fatal(err)
	}
	before := procStatusKiB(t, pid, "VmHWM")

	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for i := range clients {
		name := "alice"
		if i%2 == 1 {
			name = "nobody"
		}
		wg.Go(func() { errs <- floodLogins(srv.Addr, name, rounds) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	peak := procStatusKiB(t, pid, "VmHWM")
	t.Logf("server RSS before %d KiB, peak after %d KiB (+%d KiB for %d clients × %d wrong logins, budget %d KiB)",
		before, peak, peak-before, clients, rounds, budgetKiB)
	if peak-before > budgetKiB {
		t.Errorf("%d clients sending wrong passwords grew the server's peak RSS by %d KiB, budget %d KiB",
			clients, peak-before, budgetKiB)
	}
}

// floodLogins sends rounds wrong logins as name on one connection; each
// must get 530.
func floodLogins(addr, name string, rounds int) error {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Minute))
	r := bufio.NewReader(conn)
	reply := func() (string, error) {
		line, err := r.ReadString('\n')
		return strings.TrimRight(line, "\r\n"), err
	}
	if l, err := reply(); err != nil || !strings.HasPrefix(l, "220 ") {
		return fmt.Errorf("greeting %q: %v", l, err)
	}
	for i := range rounds {
		for _, step := range []struct{ line, want string }{{"USER " + name, "331 "}, {"PASS wrong" + strconv.Itoa(i), "530 "}} {
			if _, err := fmt.Fprintf(conn, "%s\r\n", step.line); err != nil {
				return err
			}
			if l, err := reply(); err != nil || !strings.HasPrefix(l, step.want) {
				return fmt.Errorf("%s: got %q, %v; want %s", step.line, l, err, step.want)
			}
		}
	}
	return nil
}

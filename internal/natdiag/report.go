package natdiag

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/ferryftp/ferry/internal/atomicfile"
)

// FileName is the findings file a running server keeps in its data
// directory for `ferry diagnose`.
const FileName = "diagnostics.json"

// Report is the findings file's content.
type Report struct {
	PID      int       `json:"pid"`
	Started  time.Time `json:"started"`
	Updated  time.Time `json:"updated"` // rewritten at least every HeartbeatEvery while the server runs
	Stopped  bool      `json:"stopped,omitempty"`
	Findings []Finding `json:"findings"`
}

// HeartbeatEvery is how often a running server rewrites its report even
// when nothing changed, so that a stale file tells of a stopped server.
const HeartbeatEvery = time.Minute

// WriteReport replaces the file name with r atomically (a reader never sees
// half a file); the file is 0600: it names clients' addresses.
func WriteReport(name string, r Report) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(name, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("natdiag: %w", err)
	}
	return nil
}

// ReadReport reads a findings file.
func ReadReport(name string) (Report, error) {
	var r Report
	b, err := os.ReadFile(name)
	if err != nil {
		return r, fmt.Errorf("natdiag: %w", err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("natdiag: %s: %w", name, err)
	}
	return r, nil
}

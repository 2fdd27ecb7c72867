package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryftp/ferry/internal/config"
)

func TestRunConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.toml", "listen = \":21\"\nban_allow = [\"10.0.0.0/8\"]\n")
	example := write("example.toml", config.Example())
	bad := write("bad.toml", "listn = \":21\"\npassive_ports = \"10-20\"\nmax_line_bytes = \"big\"\n")
	broken := write("broken.toml", "listen = \n")
	missing := filepath.Join(dir, "missing.toml")

	tests := []struct {
		name      string
		args      []string
		code      int
		stdout    []string // each must appear
		stderr    []string
		quietOut  bool // stdout must be empty
		errOutput bool // stderr may hold text
	}{
		{"no subcommand", nil, 2, nil, []string{"Usage:", "config check FILE", "config example"}, true, true},
		{"unknown subcommand", []string{"lint"}, 2, nil, []string{`unknown command "lint"`, "Usage:"}, true, true},
		{"help", []string{"help"}, 0, []string{"config check FILE"}, nil, false, false},
		{"check without file", []string{"check"}, 2, nil, []string{"Usage: ferry config check FILE"}, true, true},
		{"check two files", []string{"check", good, bad}, 2, nil, []string{"Usage: ferry config check FILE"}, true, true},
		{"check good", []string{"check", good}, 0, []string{good + ": ok\n"}, nil, false, false},
		{"check example", []string{"check", example}, 0, []string{example + ": ok\n"}, nil, false, false},
		{"check bad", []string{"check", bad}, 1, nil, []string{
			bad + `:1: unknown key "listn" (did you mean "listen"?)` + "\n",
			bad + `:3: max_line_bytes: want an integer, got string "big"` + "\n",
			bad + `:2: passive_ports: "10-20": want 1024 <= LO <= HI <= 65535` + "\n",
		}, true, true},
		{"check broken", []string{"check", broken}, 1, nil, []string{broken + ":1: "}, true, true},
		{"check missing", []string{"check", missing}, 1, nil, []string{"no such file"}, true, true},
		{"example", []string{"example"}, 0, []string{"listen = \":2121\"\n", "# "}, nil, false, false},
		{"example extra", []string{"example", "x"}, 2, nil, []string{"Usage: ferry config example"}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := runConfig(tt.args, &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, stderr.String())
			}
			for _, w := range tt.stdout {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout %q lacks %q", stdout.String(), w)
				}
			}
			for _, w := range tt.stderr {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr %q lacks %q", stderr.String(), w)
				}
			}
			if tt.quietOut && stdout.Len() > 0 {
				t.Errorf("stdout: %q", stdout.String())
			}
			if !tt.errOutput && stderr.Len() > 0 {
				t.Errorf("stderr: %q", stderr.String())
			}
		})
	}

	var stdout bytes.Buffer
	runConfig([]string{"example"}, &stdout, &bytes.Buffer{})
	if stdout.String() != config.Example() {
		t.Error("`ferry config example` differs from config.Example()")
	}
}

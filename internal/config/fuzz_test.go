package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary files to the strict loader: it must never panic,
// and a file it accepts must leave a Config that Validate can judge.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(Example()))
	for _, s := range []string{"", "listen = 1", "listn = \"x\"", "[a]\nb = 1", "ban_allow = [\"::1\", 3]",
		"data_timeout = \"-5s\"", "passive_ports = \"2000-1000\"", "a.b.c = 1", "x = [[1]]", "\"\\u0000\" = 1",
		"[storage]\nbackend = 1\nx = 2", "[[vhost]]\nname = \"a\"\n[[vhost]]\nbanner = 3", "vhost = [{name = \"a\"}]",
		"[metrics.x]\ny = 1", "storage = []"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "f.toml")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c := Defaults()
		if err := Load(p, &c); err == nil {
			_ = c.Validate()
		}
	})
}

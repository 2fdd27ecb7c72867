package config

import (
	"os"
	"strings"
	"testing"
)

// TestDocumented keeps docs/configuration.md in step with the struct: every
// key must have its row.
func TestDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fields() {
		if !strings.Contains(string(doc), "| `"+f.key+"` |") {
			t.Errorf("docs/configuration.md has no row for %q", f.key)
		}
	}
}

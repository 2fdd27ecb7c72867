package config

import (
	"os"
	"strings"
	"testing"
)

// TestDocumented keeps docs/configuration.md in step with the struct: every
// key, and every key of every table, must have its row.
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
	for _, tb := range tables() {
		for _, f := range tb.fields {
			if k := tb.key + "." + f.key; !strings.Contains(string(doc), "| `"+k+"` |") {
				t.Errorf("docs/configuration.md has no row for %q", k)
			}
		}
	}
}

package config

import "strings"

// Example returns a commented TOML file that sets every key to its default,
// each preceded by its help text. Loading it over anything gives Defaults().
func Example() string {
	var b strings.Builder
	b.WriteString(wrap("Ferry configuration (TOML). Every key is optional: a key left out keeps the "+
		"default shown here. Each key is also a flag of `ferry serve` (max_line_bytes is "+
		"--max-line-bytes) and flags override this file. Durations are strings like "+
		`"30s", "5m" or "1h30m"; lists are arrays of strings. `+
		"Check a file with `ferry config check FILE`.", 78, "# "))
	def := Defaults()
	for _, f := range fields() {
		b.WriteString("\n")
		b.WriteString(wrap(f.help, 78, "# "))
		b.WriteString(f.key + " = " + f.toml(&def) + "\n")
	}
	return b.String()
}

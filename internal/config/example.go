package config

import (
	"reflect"
	"strings"
)

// Example returns a commented TOML file that sets every key to its default,
// each preceded by its help text; the tables come last, as TOML wants, and
// an array of tables that is empty by default ([[vhost]]) is shown
// commented out. Loading it over anything gives Defaults().
func Example() string {
	var b strings.Builder
	b.WriteString(wrap("Ferry configuration (TOML). Every key is optional: a key left out keeps the "+
		"default shown here. Each key outside the tables at the end is also a flag of `ferry serve` "+
		"(max_line_bytes is --max-line-bytes), so are the keys of [storage] (backend is --storage, "+
		"s3_bucket --s3-bucket), and flags override this file. Durations are strings like "+
		`"30s", "5m" or "1h30m"; lists are arrays of strings. `+
		"Check a file with `ferry config check FILE`.", 78, "# "))
	def := Defaults()
	for _, f := range fields() {
		b.WriteString("\n")
		b.WriteString(wrap(f.help, 78, "# "))
		b.WriteString(f.key + " = " + f.toml(&def) + "\n")
	}
	for _, t := range tables() {
		b.WriteString("\n")
		v := t.value(&def)
		if t.array {
			b.WriteString(wrap("[["+t.key+"]]: "+t.help+".", 78, "# "))
			elem := reflect.New(t.elem).Elem()
			if v.Len() > 0 {
				elem = v.Index(0)
			}
			b.WriteString("# [[" + t.key + "]]\n")
			for _, f := range t.fields {
				b.WriteString(wrap(f.help, 78, "#   "))
				b.WriteString("# " + f.key + " = " + f.tomlOf(elem.Field(f.index)) + "\n")
			}
			continue
		}
		b.WriteString(wrap("["+t.key+"]: "+t.help+".", 78, "# "))
		b.WriteString("[" + t.key + "]\n")
		for _, f := range t.fields {
			help := f.help
			if f.flag != "" {
				help += " (flag --" + f.flag + ")"
			}
			b.WriteString(wrap(help, 78, "# "))
			b.WriteString(f.key + " = " + f.tomlOf(v.Field(f.index)) + "\n")
		}
	}
	return b.String()
}

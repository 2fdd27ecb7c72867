package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// kind is how a Config field is read from TOML and from a flag.
type kind int

const (
	kindString   kind = iota // TOML string; flag text as is
	kindBool                 // TOML boolean; flag --x or --x=false
	kindInt                  // TOML integer in the range of int
	kindInt64                // TOML integer
	kindDuration             // TOML string like "30s"; flag the same
	kindStrings              // TOML array of strings; flag comma separated
)

// typeName is the word shown in usage and errors for a kind.
func (k kind) typeName() string {
	switch k {
	case kindString:
		return "string"
	case kindBool:
		return "boolean"
	case kindInt, kindInt64:
		return "integer"
	case kindDuration:
		return "duration"
	case kindStrings:
		return "list"
	}
	return "?"
}

// field describes one Config field, taken from its tags.
type field struct {
	key   string // TOML key, from the `toml` tag
	flag  string // flag name without dashes, from the `flag` tag
	help  string // one-line help, from the `help` tag
	index int    // index in Config
	kind  kind
}

var (
	durationType    = reflect.TypeFor[Duration]()
	rawDurationType = reflect.TypeFor[time.Duration]()
)

// fields lists the fields of Config in declaration order. A field without
// the three tags, a duplicate name or an unsupported type is a programming
// error and panics on first use (the package tests catch it).
var fields = sync.OnceValue(func() []field {
	t := reflect.TypeFor[Config]()
	out := make([]field, 0, t.NumField())
	seen := map[string]string{}
	for i := range t.NumField() {
		sf := t.Field(i)
		f := field{
			key:   sf.Tag.Get("toml"),
			flag:  sf.Tag.Get("flag"),
			help:  sf.Tag.Get("help"),
			index: i,
		}
		if !sf.IsExported() || f.key == "" || f.flag == "" || f.help == "" {
			panic(fmt.Sprintf("config: field %s needs toml, flag and help tags", sf.Name))
		}
		for _, name := range []string{"key " + f.key, "flag " + f.flag} {
			if prev, dup := seen[name]; dup {
				panic(fmt.Sprintf("config: fields %s and %s share the %s", prev, sf.Name, name))
			}
			seen[name] = sf.Name
		}
		switch {
		case sf.Type == durationType:
			f.kind = kindDuration
		case sf.Type == rawDurationType:
			panic(fmt.Sprintf("config: field %s: use config.Duration, not time.Duration", sf.Name))
		case sf.Type.Kind() == reflect.String:
			f.kind = kindString
		case sf.Type.Kind() == reflect.Bool:
			f.kind = kindBool
		case sf.Type.Kind() == reflect.Int:
			f.kind = kindInt
		case sf.Type.Kind() == reflect.Int64:
			f.kind = kindInt64
		case sf.Type.Kind() == reflect.Slice && sf.Type.Elem().Kind() == reflect.String:
			f.kind = kindStrings
		default:
			panic(fmt.Sprintf("config: field %s has unsupported type %s", sf.Name, sf.Type))
		}
		out = append(out, f)
	}
	return out
})

// fieldByKey returns the field with TOML key k.
func fieldByKey(k string) (field, bool) {
	for _, f := range fields() {
		if f.key == k {
			return f, true
		}
	}
	return field{}, false
}

// fieldByFlag returns the field with flag name n.
func fieldByFlag(n string) (field, bool) {
	for _, f := range fields() {
		if f.flag == n {
			return f, true
		}
	}
	return field{}, false
}

// value returns the addressable field f of c.
func (f field) value(c *Config) reflect.Value {
	return reflect.ValueOf(c).Elem().Field(f.index)
}

// toml renders the field's value in c as a TOML value.
func (f field) toml(c *Config) string {
	v := f.value(c)
	switch f.kind {
	case kindString:
		return quoteTOML(v.String())
	case kindBool:
		return strconv.FormatBool(v.Bool())
	case kindInt, kindInt64:
		return strconv.FormatInt(v.Int(), 10)
	case kindDuration:
		return quoteTOML(v.Interface().(Duration).String())
	case kindStrings:
		items := make([]string, v.Len())
		for i := range items {
			items[i] = quoteTOML(v.Index(i).String())
		}
		return "[" + strings.Join(items, ", ") + "]"
	}
	panic("unreachable")
}

// quoteTOML returns s as a TOML basic string. Go's strconv.Quote is not used
// because some of its escapes (\a, \v, \x..) are not TOML.
func quoteTOML(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == utf8.RuneError:
			b.WriteString(`\uFFFD`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

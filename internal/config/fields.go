package config

import (
	"fmt"
	"reflect"
	"slices"
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

// field describes one Config field, taken from its tags, or one key of a
// table (then index is in the table's struct). Every flat field is a flag;
// a table's key is one only when it has a `flag` tag ([storage] keys are:
// --storage, --s3-bucket ...).
type field struct {
	key   string // TOML key, from the `toml` tag
	flag  string // flag name without dashes, from the `flag` tag; "" for a table key without one
	help  string // one-line help, from the `help` tag
	index int    // index in Config (or in the table's struct)
	kind  kind
	// table is the index in Config of the table holding the key, or -1
	// for a flat field; path is the key as problems name it: "listen",
	// "storage.s3_bucket".
	table int
	path  string
}

// table describes a Config field that is a TOML table ([storage], a struct)
// or an array of tables ([[vhost]], a slice of structs). Tables are set only
// in the file: they are not flags.
type table struct {
	key    string // TOML name, from the `toml` tag
	help   string // one-line help, from the `help` tag
	index  int    // index in Config
	array  bool   // an array of tables
	elem   reflect.Type
	fields []field // its keys, in declaration order
}

var (
	durationType    = reflect.TypeFor[Duration]()
	rawDurationType = reflect.TypeFor[time.Duration]()
)

// layout is Config's fields, read from its tags once: the flat ones (keys and
// flags) and the tables.
type layout struct {
	fields     []field
	tables     []table
	tableFlags []field // the table keys that are flags too
}

// fields lists the flat fields of Config in declaration order. A field
// without its tags, a duplicate name or an unsupported type is a programming
// error and panics on first use (the package tests catch it).
func fields() []field { return configLayout().fields }

// tables lists the tables of Config in declaration order.
func tables() []table { return configLayout().tables }

// flagFields lists every field that is a flag: the flat fields in
// declaration order, then the table keys that have a flag tag.
func flagFields() []field {
	l := configLayout()
	return append(slices.Clone(l.fields), l.tableFlags...)
}

var configLayout = sync.OnceValue(func() layout {
	t := reflect.TypeFor[Config]()
	var l layout
	seen := map[string]string{}
	dup := func(owner, name string) {
		if prev, ok := seen[name]; ok {
			panic(fmt.Sprintf("config: fields %s and %s share the %s", prev, owner, name))
		}
		seen[name] = owner
	}
	for i := range t.NumField() {
		sf := t.Field(i)
		elem, array := sf.Type, false
		if elem.Kind() == reflect.Slice && elem.Elem().Kind() == reflect.Struct {
			elem, array = elem.Elem(), true
		}
		if elem.Kind() == reflect.Struct && elem != durationType {
			tb := table{key: sf.Tag.Get("toml"), help: sf.Tag.Get("help"), index: i, array: array, elem: elem}
			if !sf.IsExported() || tb.key == "" || tb.help == "" || sf.Tag.Get("flag") != "" {
				panic(fmt.Sprintf("config: table %s needs toml and help tags and no flag", sf.Name))
			}
			dup(sf.Name, "key "+tb.key)
			sub := map[string]bool{}
			for j := range elem.NumField() {
				f := newField(elem.Field(j), j, false)
				if sub[f.key] {
					panic(fmt.Sprintf("config: table %s has two keys %s", sf.Name, f.key))
				}
				if array && f.flag != "" {
					panic(fmt.Sprintf("config: key %s of the array of tables %s cannot be a flag", f.key, sf.Name))
				}
				sub[f.key] = true
				f.table, f.path = i, tb.key+"."+f.key
				if f.flag != "" {
					dup(sf.Name+"."+elem.Field(j).Name, "flag "+f.flag)
					l.tableFlags = append(l.tableFlags, f)
				}
				tb.fields = append(tb.fields, f)
			}
			l.tables = append(l.tables, tb)
			continue
		}
		f := newField(sf, i, true)
		dup(sf.Name, "key "+f.key)
		dup(sf.Name, "flag "+f.flag)
		l.fields = append(l.fields, f)
	}
	return l
})

// newField reads the tags and kind of struct field sf at index i; a flat
// Config field (flat) needs a flag tag, a table's key may have one.
func newField(sf reflect.StructField, i int, flat bool) field {
	f := field{key: sf.Tag.Get("toml"), flag: sf.Tag.Get("flag"), help: sf.Tag.Get("help"), index: i, table: -1}
	f.path = f.key
	if !sf.IsExported() || f.key == "" || f.help == "" || (flat && f.flag == "") {
		panic(fmt.Sprintf("config: field %s needs toml and help tags, and a flag tag when it is not in a table", sf.Name))
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
	return f
}

// tableByKey returns the table named k.
func tableByKey(k string) (table, bool) {
	for _, t := range tables() {
		if t.key == k {
			return t, true
		}
	}
	return table{}, false
}

// sub returns the key k of table t.
func (t table) sub(k string) (field, bool) {
	for _, f := range t.fields {
		if f.key == k {
			return f, true
		}
	}
	return field{}, false
}

// value returns the addressable table field of c: a struct, or a slice of
// structs for an array.
func (t table) value(c *Config) reflect.Value {
	return reflect.ValueOf(c).Elem().Field(t.index)
}

// fieldByKey returns the field with TOML key k.
func fieldByKey(k string) (field, bool) {
	for _, f := range fields() {
		if f.key == k {
			return f, true
		}
	}
	return field{}, false
}

// fieldByFlag returns the field, flat or in a table, with flag name n.
func fieldByFlag(n string) (field, bool) {
	for _, f := range flagFields() {
		if f.flag == n {
			return f, true
		}
	}
	return field{}, false
}

// value returns the addressable field f of c; for a key of a table (not
// of an array of tables) the key in c's table.
func (f field) value(c *Config) reflect.Value {
	if f.table >= 0 {
		return reflect.ValueOf(c).Elem().Field(f.table).Field(f.index)
	}
	return reflect.ValueOf(c).Elem().Field(f.index)
}

// toml renders the field's value in c as a TOML value.
func (f field) toml(c *Config) string { return f.tomlOf(f.value(c)) }

// tomlOf renders v, a value of the field's kind, as a TOML value.
func (f field) tomlOf(v reflect.Value) string {
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

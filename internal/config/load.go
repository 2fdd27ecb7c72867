package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Problem is one thing wrong with a configuration: a key the file must not
// have, a value of the wrong type, or a value that Validate refuses. Load,
// Validate, Check and Resolve return their problems joined with errors.Join;
// each element is a *Problem unless the file could not be read at all.
type Problem struct {
	File string // the TOML file the value came from; "" if not from a file
	Line int    // 1-based line of Key in File; 0 if unknown
	Flag string // the flag, without dashes, that set the value; "" if none
	Env  string // the environment variable that set the value; "" if none
	Key  string // the TOML key concerned; "" if the problem is about the whole file
	Msg  string // what is wrong; it names Key
}

// Error returns Msg prefixed by where the value came from:
// "ferry.toml:12: unknown key \"listn\"" or "--passive-ports: passive_ports: ...".
func (p *Problem) Error() string {
	switch {
	case p.File != "" && p.Line > 0:
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
	case p.File != "":
		return p.File + ": " + p.Msg
	case p.Flag != "":
		return "--" + p.Flag + ": " + p.Msg
	case p.Env != "":
		return p.Env + ": " + p.Msg
	}
	return p.Msg
}

// Load reads the TOML file at path into c. Decoding is strict: a key that is
// not a Config field (or, inside a table such as [storage] or [[vhost]], not
// a key of that table) is an error naming the key and its line, and so is a
// value of the wrong type; every such problem is reported, not just the
// first. Table keys are named "storage.backend" and, in the n-th (from 1)
// [[vhost]] table, "vhost[n].name". Keys absent from the file keep the value c had. On error c is left
// unchanged. Load does not validate; see Validate and Check.
func Load(path string, c *Config) error {
	tmp := *c
	if _, problems := load(path, &tmp); len(problems) > 0 {
		return errors.Join(problems...)
	}
	*c = tmp
	return nil
}

// Check loads path over Defaults and validates the result, reporting the
// problems of both steps at once; a problem with a value from the file
// names its line. It is what `ferry config check FILE` runs.
func Check(path string) (Config, error) {
	c := Defaults()
	lines, problems := load(path, &c)
	for _, p := range c.problems() {
		p.File, p.Line = path, lines[p.Key]
		if p.Line == 0 {
			p.File = "" // the value is a default
		}
		problems = append(problems, p)
	}
	return c, errors.Join(problems...)
}

// load decodes path into c, applying every value that decodes cleanly, and
// returns the line of each known key found and the problems met.
func load(path string, c *Config) (lines map[string]int, problems []error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, []error{err}
	}
	var top map[string]toml.Primitive
	md, err := toml.Decode(string(data), &top)
	if err != nil {
		if pe, ok := errors.AsType[toml.ParseError](err); ok {
			return nil, []error{&Problem{File: path, Line: pe.Position.Line, Msg: pe.Message}}
		}
		return nil, []error{&Problem{File: path, Msg: err.Error()}}
	}
	lines = map[string]int{}
	for _, k := range topKeys(md.Keys()) {
		prim := top[k]
		line := keyLine(&md, prim, toml.Key{k})
		if t, ok := tableByKey(k); ok {
			problems = append(problems, t.load(path, string(data), &md, prim, line, c, lines)...)
			continue
		}
		f, known := fieldByKey(k)
		if !known {
			problems = append(problems, &Problem{File: path, Line: line, Key: k, Msg: unknownKey(k)})
			continue
		}
		lines[k] = line
		var raw any
		err := md.PrimitiveDecode(prim, &raw)
		if err == nil {
			err = f.set(f.value(c), raw)
		}
		if err != nil {
			problems = append(problems, &Problem{File: path, Line: line, Key: k, Msg: k + ": " + err.Error()})
		}
	}
	return lines, problems
}

// load decodes the table t (held by prim, whose key is on line) into c,
// recording the line of each key in lines, and returns the problems met.
func (t table) load(path, src string, md *toml.MetaData, prim toml.Primitive, line int, c *Config, lines map[string]int) []error {
	var problems []error
	bad := func(key string, line int, msg string) {
		problems = append(problems, &Problem{File: path, Line: line, Key: key, Msg: msg})
	}
	// Decoding a Primitive into a map does not check its type: look first.
	var raw any
	md.PrimitiveDecode(prim, &raw)
	var elems []map[string]toml.Primitive
	if t.array {
		if !isTableArray(raw) || md.PrimitiveDecode(prim, &elems) != nil {
			bad(t.key, line, t.key+": "+wrongType("an array of tables [["+t.key+"]]", raw).Error())
			return problems
		}
	} else {
		var m map[string]toml.Primitive
		if _, ok := raw.(map[string]any); !ok || md.PrimitiveDecode(prim, &m) != nil {
			bad(t.key, line, t.key+": "+wrongType("a table ["+t.key+"]", raw).Error())
			return problems
		}
		elems = []map[string]toml.Primitive{m}
	}
	// BurntSushi/toml keeps one position per key path, so the keys of
	// the n-th [[vhost]] are found in the source, below its header.
	headers := arrayHeaders(src, t.key)
	out := t.value(c)
	if t.array {
		out.Set(reflect.MakeSlice(out.Type(), 0, len(elems)))
	}
	for i, m := range elems {
		name, from, to := t.key, 0, 0
		elem := reflect.New(t.elem).Elem()
		if t.array {
			name = fmt.Sprintf("%s[%d]", t.key, i+1)
			if i < len(headers) {
				from = headers[i]
				if i+1 < len(headers) {
					to = headers[i+1]
				}
				lines[name] = from
			} else {
				lines[name] = line
			}
		} else {
			elem.Set(out)
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		kline := func(k string) int {
			if t.array {
				if l := keyLineIn(src, from, to, k); l > 0 {
					return l
				}
				return lines[name]
			}
			return keyLine(md, m[k], toml.Key{t.key, k})
		}
		slices.SortFunc(keys, func(a, b string) int { return kline(a) - kline(b) })
		for _, k := range keys {
			key, l := name+"."+k, kline(k)
			f, ok := t.sub(k)
			if !ok {
				bad(key, l, t.unknownKey(name, k))
				continue
			}
			lines[key] = l
			var raw any
			err := md.PrimitiveDecode(m[k], &raw)
			if err == nil {
				err = f.set(elem.Field(f.index), raw)
			}
			if err != nil {
				bad(key, l, key+": "+err.Error())
			}
		}
		if t.array {
			out.Set(reflect.Append(out, elem))
		} else {
			out.Set(elem)
		}
	}
	return problems
}

// isTableArray reports an array of tables, [[x]] or x = [{...}, {...}].
func isTableArray(raw any) bool {
	switch v := raw.(type) {
	case []map[string]any:
		return true
	case []any:
		for _, e := range v {
			if _, ok := e.(map[string]any); !ok {
				return false
			}
		}
		return true
	}
	return false
}

// arrayHeaders returns the 1-based lines of the "[[name]]" headers in src.
func arrayHeaders(src, name string) []int {
	var out []int
	for i, l := range strings.Split(src, "\n") {
		l = strings.TrimSpace(l)
		if rest, ok := strings.CutPrefix(l, "[["); ok {
			if h, _, ok := strings.Cut(rest, "]]"); ok && strings.TrimSpace(h) == name {
				out = append(out, i+1)
			}
		}
	}
	return out
}

// keyLineIn returns the line of "key =" in src between the lines from and
// to (exclusive; 0: the end), or 0.
func keyLineIn(src string, from, to int, key string) int {
	for i, l := range strings.Split(src, "\n") {
		n := i + 1
		if n <= from || (to > 0 && n >= to) {
			continue
		}
		if k, _, ok := strings.Cut(l, "="); ok && strings.Trim(strings.TrimSpace(k), `"'`) == key {
			return n
		}
	}
	return 0
}

// topKeys returns the distinct top-level keys of a document in the order they
// first appear.
func topKeys(all []toml.Key) []string {
	var out []string
	for _, k := range all {
		if !slices.Contains(out, k[0]) {
			out = append(out, k[0])
		}
	}
	return out
}

// probe is decoded into to learn a key's line: the decoder wraps the error
// UnmarshalTOML returns in a toml.ParseError holding the key's position.
// BurntSushi/toml v1.6.0 has no other public way to ask where a key is.
type probe struct{}

var errProbe = errors.New("probe")

func (probe) UnmarshalTOML(any) error { return errProbe }

// keyLine returns the line where the value of key (held by p) is, or 0.
func keyLine(md *toml.MetaData, p toml.Primitive, key toml.Key) int {
	err := md.PrimitiveDecode(p, &probe{})
	if pe, ok := errors.AsType[toml.ParseError](err); ok && pe.Position.Line > 0 {
		return pe.Position.Line
	}
	// An implicit table ("a.b = 1" or a header [a.b] makes "a" one) has no
	// position of its own: use that of its first sub-key.
	var sub map[string]toml.Primitive
	if md.PrimitiveDecode(p, &sub) != nil {
		return 0
	}
	for _, k := range md.Keys() {
		if len(k) > len(key) && slices.Equal(k[:len(key)], key) {
			if sp, ok := sub[k[len(key)]]; ok {
				return keyLine(md, sp, k[:len(key)+1])
			}
		}
	}
	return 0
}

// set stores raw, a value decoded from TOML, in v (the field f of a Config
// or of a table), or says why it cannot.
func (f field) set(v reflect.Value, raw any) error {
	switch f.kind {
	case kindString:
		if s, ok := raw.(string); ok {
			v.SetString(s)
			return nil
		}
		return wrongType("a string", raw)
	case kindBool:
		if b, ok := raw.(bool); ok {
			v.SetBool(b)
			return nil
		}
		return wrongType("true or false", raw)
	case kindInt, kindInt64:
		n, ok := raw.(int64)
		if !ok {
			return wrongType("an integer", raw)
		}
		if v.OverflowInt(n) {
			return fmt.Errorf("%d is out of range", n)
		}
		v.SetInt(n)
		return nil
	case kindDuration:
		s, ok := raw.(string)
		if !ok {
			return wrongType(`a duration string like "30s"`, raw)
		}
		d, err := parseDuration(s)
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(Duration{d}))
		return nil
	case kindStrings:
		arr, ok := raw.([]any)
		if !ok {
			return wrongType("an array of strings", raw)
		}
		var list []string // nil for [], as in Defaults
		for i, e := range arr {
			s, ok := e.(string)
			if !ok {
				return fmt.Errorf("element %d: %w", i+1, wrongType("a string", e))
			}
			list = append(list, s)
		}
		v.Set(reflect.ValueOf(list))
		return nil
	}
	panic("unreachable")
}

// wrongType says that raw is not what was wanted.
func wrongType(want string, raw any) error {
	var got string
	switch x := raw.(type) {
	case string:
		got = fmt.Sprintf("string %q", x)
	case int64:
		got = fmt.Sprintf("integer %d", x)
	case float64:
		got = fmt.Sprintf("float %v", x)
	case bool:
		got = fmt.Sprintf("boolean %v", x)
	case []any:
		got = "an array"
	case map[string]any:
		got = "a table"
	case []map[string]any:
		got = "an array of tables"
	case time.Time:
		got = "a date-time"
	default:
		got = fmt.Sprintf("a %T", x) // local dates and times
	}
	return fmt.Errorf("want %s, got %s", want, got)
}

// unknownKey says k is not a setting, suggesting the nearest key or table.
func unknownKey(k string) string {
	keys := make([]string, 0, len(fields())+len(tables()))
	for _, f := range fields() {
		keys = append(keys, f.key)
	}
	for _, t := range tables() {
		keys = append(keys, t.key)
	}
	return fmt.Sprintf("unknown key %q", k) + suggest(k, keys)
}

// unknownKey says k is not a key of the table, whose element is called
// name ("storage", "vhost[2]").
func (t table) unknownKey(name, k string) string {
	keys := make([]string, len(t.fields))
	for i, f := range t.fields {
		keys[i] = f.key
	}
	return fmt.Sprintf("unknown key %q", name+"."+k) + suggest(k, keys)
}

// suggest returns " (did you mean ...?)" naming the key nearest to k, or "".
func suggest(k string, keys []string) string {
	norm := strings.ToLower(strings.ReplaceAll(k, "-", "_"))
	best, bestDist := "", 3 // suggest only within an edit distance of 2
	for _, key := range keys {
		if d := editDistance(norm, key); d < bestDist {
			best, bestDist = key, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

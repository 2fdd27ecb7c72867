package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// BindFlags registers every field of c that is a flag (every flat field and
// the table keys with a flag tag) on fs: the name is the field's `flag` tag, the usage its `help` tag and the default c's current
// value; parsing writes straight into c. Booleans take --x or --x=false;
// durations "30s"; a list flag is comma separated, replaces the default on
// its first use and appends on later ones ("" clears the list).
//
// The function returned lists, after fs.Parse, the flag names of c's fields
// that were set on the command line, in field declaration order.
func BindFlags(fs *flag.FlagSet, c *Config) func() []string {
	for _, f := range flagFields() {
		fs.Var(&flagValue{f: f, v: f.value(c)}, f.flag, f.help)
	}
	return func() []string {
		var set []string
		fs.Visit(func(fl *flag.Flag) {
			if _, ok := fieldByFlag(fl.Name); ok {
				set = append(set, fl.Name)
			}
		})
		order := map[string]int{}
		for i, f := range flagFields() {
			order[f.flag] = i
		}
		slices.SortFunc(set, func(a, b string) int { return order[a] - order[b] })
		return set
	}
}

// flagValue is the flag.Value of one Config field.
type flagValue struct {
	f       field
	v       reflect.Value // the field; invalid in the zero flagValue
	listSet bool          // a list flag was set once: later uses append
}

func (x *flagValue) IsBoolFlag() bool { return x.f.kind == kindBool }

func (x *flagValue) String() string {
	if !x.v.IsValid() {
		return ""
	}
	return x.f.text(x.v)
}

func (x *flagValue) Get() any { return x.v.Interface() }

func (x *flagValue) Set(s string) error {
	switch x.f.kind {
	case kindString:
		x.v.SetString(s)
	case kindBool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return errors.New("want true or false")
		}
		x.v.SetBool(b)
	case kindInt, kindInt64:
		n, err := strconv.ParseInt(s, 10, x.v.Type().Bits())
		if err != nil {
			return errors.New("want an integer")
		}
		x.v.SetInt(n)
	case kindDuration:
		d, err := parseDuration(s)
		if err != nil {
			return err
		}
		x.v.Set(reflect.ValueOf(Duration{d}))
	case kindStrings:
		var list []string
		if x.listSet {
			list = slices.Clone(x.v.Interface().([]string))
		}
		x.listSet = true
		for item := range strings.SplitSeq(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				list = append(list, item)
			}
		}
		x.v.Set(reflect.ValueOf(list))
	}
	return nil
}

// text renders the field value v as a flag would be written.
func (f field) text(v reflect.Value) string {
	switch f.kind {
	case kindString:
		return v.String()
	case kindBool:
		return strconv.FormatBool(v.Bool())
	case kindInt, kindInt64:
		return strconv.FormatInt(v.Int(), 10)
	case kindDuration:
		return v.Interface().(Duration).String()
	case kindStrings:
		return strings.Join(v.Interface().([]string), ",")
	}
	panic("unreachable")
}

// Resolve builds the settings of `ferry serve` from its arguments (without
// the program and command names): Defaults, then the TOML file named by
// --config if given, then the flags set on the command line, which override
// the file. The result is validated; the error joins every problem of the
// file and of validation, each naming where the value came from.
//
// For -h or --help Resolve writes a usage listing every flag to stderr and
// returns flag.ErrHelp. Resolve writes nothing else: a bad flag is returned
// as the flag package's error.
func Resolve(args []string, progName string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet(progName, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var file string
	fs.StringVar(&file, "config", "", "TOML settings file; flags given too override it")
	var database string
	fs.StringVar(&database, "database", "", databaseHelp)
	fromFlags := Defaults()
	setFlags := BindFlags(fs, &fromFlags)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			writeUsage(stderr, progName)
		}
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q (settings are flags like --listen=:21)", fs.Arg(0))
	}

	c := Defaults()
	var lines map[string]int
	var problems []error
	if file != "" {
		lines, problems = load(file, &c)
	}
	byKey := map[string]string{} // key → flag that set it
	for _, name := range setFlags() {
		f, _ := fieldByFlag(name)
		f.value(&c).Set(f.value(&fromFlags))
		byKey[f.path] = name
	}
	// --database is the one flag of a table key: `ferry user`, `ferry ban`
	// and `ferry db` take it too, so that all name the same database alike.
	// FERRY_DATABASE comes between the file and the flag.
	fromEnv := false
	if env := os.Getenv(DatabaseEnv); env != "" {
		c.Database.URL = env
		fromEnv = true
	}
	fs.Visit(func(fl *flag.Flag) {
		if fl.Name == "database" {
			c.Database.URL = database
			byKey["database.url"] = "database"
			fromEnv = false
		}
	})
	for _, p := range c.problems() {
		if fl, ok := byKey[p.Key]; ok {
			p.Flag = fl
		} else if p.Key == "database.url" && fromEnv {
			p.Env = DatabaseEnv
		} else if lines[p.Key] > 0 {
			p.File, p.Line = file, lines[p.Key]
		}
		problems = append(problems, p)
	}
	if len(problems) > 0 {
		return Config{}, errors.Join(problems...)
	}
	return c, nil
}

// databaseHelp is the help of --database, which sets database.url.
const databaseHelp = "the [database] url, where users and bans are kept: sqlite:PATH (a relative PATH is inside the data directory) or postgres://USER:PASSWORD@HOST:PORT/DB?sslmode=require (or a key=value DSN); over FERRY_DATABASE, which is over the file"

// writeUsage writes the help of `ferry serve`: every flag in declaration
// order with its help and default.
func writeUsage(w io.Writer, progName string) {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: %s [flags]\n\n", progName)
	b.WriteString(wrap("Settings come from the defaults, then the --config file, then the flags given here. "+
		"Every flag is also a key of the file: --max-line-bytes is max_line_bytes, "+
		"and --storage and --s3-bucket are backend and s3_bucket in its [storage] table. "+
		"`ferry config example` prints a commented file with every key and its default.", 78, ""))
	b.WriteString("\nFlags:\n  --config FILE\n")
	b.WriteString(wrap("TOML settings file; flags given too override it", 78, "        "))
	b.WriteString("  --database URL\n")
	b.WriteString(wrap(databaseHelp+" (default \""+DefaultDatabaseURL+"\")", 78, "        "))
	def := Defaults()
	for _, f := range flagFields() {
		b.WriteString("  --" + f.flag)
		switch f.kind {
		case kindBool:
		case kindStrings:
			b.WriteString(" list")
		case kindInt, kindInt64:
			b.WriteString(" int")
		default:
			b.WriteString(" " + f.kind.typeName())
		}
		b.WriteString("\n")
		words := strings.Fields(f.help)
		if f.table >= 0 {
			words = append(words, "(the "+f.path+" key)")
		}
		if f.kind == kindStrings {
			words = append(words, "(comma", "separated)")
		}
		if v := f.value(&def); !v.IsZero() && (f.kind != kindStrings || v.Len() > 0) {
			dv := f.text(v)
			if f.kind == kindString {
				dv = strconv.Quote(dv)
			}
			words = append(words, "(default "+dv+")") // kept on one line
		}
		b.WriteString(wrapWords(words, 78, "        "))
	}
	io.WriteString(w, b.String())
}

// wrap breaks text into lines of at most width bytes (a longer word stays
// whole), each starting with indent and ending with a newline.
func wrap(text string, width int, indent string) string {
	return wrapWords(strings.Fields(text), width, indent)
}

// wrapWords is wrap for text already split into the units to keep whole.
func wrapWords(words []string, width int, indent string) string {
	var b strings.Builder
	line := indent
	for _, w := range words {
		if line != indent && len(line)+1+len(w) > width {
			b.WriteString(line + "\n")
			line = indent
		}
		if line != indent {
			line += " "
		}
		line += w
	}
	b.WriteString(line + "\n")
	return b.String()
}

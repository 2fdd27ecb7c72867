package wire

import (
	"io/fs"
	"strconv"
	"strings"
)

// Facts is a set of MLST/MLSD facts (RFC 3659 §7.5).
type Facts uint16

const (
	FactType      Facts = 1 << iota // type: file, dir, cdir, pdir, OS.unix=symlink (§7.5.1)
	FactSize                        // size in octets; files only (§7.5.7)
	FactModify                      // modify: last modification, UTC time-val (§7.5.3)
	FactPerm                        // perm: what the user may do (§7.5.5)
	FactUnique                      // unique: an identifier for the object (§7.5.2)
	FactUnixMode                    // UNIX.mode: octal permission bits, a widespread OS extension
	FactUnixOwner                   // UNIX.owner: the owner's numeric user ID (ProFTPD's OS extension)
	FactUnixGroup                   // UNIX.group: the numeric group ID

	// DefaultFacts is the initial selection, which RFC 3659 §7.8 lets the
	// server choose: every fact but UNIX.owner and UNIX.group, which a
	// client asks for with OPTS MLST.
	DefaultFacts = FactType | FactSize | FactModify | FactPerm | FactUnique | FactUnixMode
	// AllFacts is every fact Ferry knows.
	AllFacts = DefaultFacts | FactUnixOwner | FactUnixGroup
)

// factNames is every fact in output order, with the name it is written as.
var factNames = [...]struct {
	fact Facts
	name string
}{
	{FactType, "type"},
	{FactSize, "size"},
	{FactModify, "modify"},
	{FactPerm, "perm"},
	{FactUnique, "unique"},
	{FactUnixMode, "UNIX.mode"},
	{FactUnixOwner, "UNIX.owner"},
	{FactUnixGroup, "UNIX.group"},
}

// String returns the selected facts in canonical order and spelling, each
// followed by ';' ("type;size;"), as the 200 reply to OPTS MLST lists them
// (RFC 3659 §7.9). The empty set gives "".
func (f Facts) String() string {
	var b strings.Builder
	for _, n := range factNames {
		if f&n.fact != 0 {
			b.WriteString(n.name)
			b.WriteByte(';')
		}
	}
	return b.String()
}

// Entry is one object in an MLST or MLSD reply.
type Entry struct {
	Name string      // the pathname (MLST) or entry name (MLSD); Info.Name() when empty
	Info fs.FileInfo // size, modify and UNIX.mode come from here; may be nil
	// Type is the type fact: "file", "dir", "cdir", "pdir" or
	// "OS.unix=symlink". When empty it is derived from Info: "file", "dir",
	// "OS.unix=symlink", or for special files "OS.unix=fifo", "socket",
	// "chardev", "blockdev" or "special".
	Type   string
	Perm   string // the perm fact, e.g. "adfrw"; omitted when empty
	Unique string // the unique fact; omitted when empty
	// Owner and Group are the UNIX.owner and UNIX.group facts (numeric
	// IDs); each is omitted when empty.
	Owner, Group string
}

// AppendFacts appends an entry's facts and name (RFC 3659 §7.2):
//
//	type=file;size=12;modify=20260101120000;perm=adfrw;unique=abc;UNIX.mode=0644;UNIX.owner=1000;UNIX.group=1000; name
//
// Facts appear in that order, only those in want and known for the entry
// (size only for type=file; perm, unique, UNIX.owner and UNIX.group only
// when set; size, modify and UNIX.mode only with Info), each followed by
// ';', then one space and the name. There is no CRLF: the caller ends the
// line, and prefixes the space of an MLST reply line. Fact values are
// framing-safe: control bytes, spaces and ';' in Type, Perm, Unique, Owner
// or Group become '?'. The name is written as it is, byte for byte (it need
// not be UTF-8); the engine must not pass names containing CR or LF.
func AppendFacts(buf []byte, e Entry, want Facts) []byte {
	typ := e.Type
	if typ == "" {
		typ = infoType(e.Info)
	}
	if want&FactType != 0 && typ != "" {
		buf = appendFact(buf, "type=", typ)
	}
	if want&FactSize != 0 && typ == "file" && e.Info != nil {
		buf = append(buf, "size="...)
		buf = strconv.AppendInt(buf, e.Info.Size(), 10)
		buf = append(buf, ';')
	}
	if want&FactModify != 0 && e.Info != nil {
		buf = append(buf, "modify="...)
		buf = AppendTime(buf, e.Info.ModTime())
		buf = append(buf, ';')
	}
	if want&FactPerm != 0 && e.Perm != "" {
		buf = appendFact(buf, "perm=", e.Perm)
	}
	if want&FactUnique != 0 && e.Unique != "" {
		buf = appendFact(buf, "unique=", e.Unique)
	}
	if want&FactUnixMode != 0 && e.Info != nil {
		buf = append(buf, "UNIX.mode="...)
		buf = appendUnixMode(buf, e.Info.Mode())
		buf = append(buf, ';')
	}
	if want&FactUnixOwner != 0 && e.Owner != "" {
		buf = appendFact(buf, "UNIX.owner=", e.Owner)
	}
	if want&FactUnixGroup != 0 && e.Group != "" {
		buf = appendFact(buf, "UNIX.group=", e.Group)
	}
	buf = append(buf, ' ')
	name := e.Name
	if name == "" && e.Info != nil {
		name = e.Info.Name()
	}
	return append(buf, name...)
}

// infoType derives the type fact. Special files get OS.unix types (RFC 3659
// §7.5.1 allows OS-specific values) so that no client takes a FIFO or a
// device for a regular file it can download.
func infoType(fi fs.FileInfo) string {
	if fi == nil {
		return ""
	}
	m := fi.Mode()
	switch {
	case m.IsRegular():
		return "file"
	case m.IsDir():
		return "dir"
	case m&fs.ModeSymlink != 0:
		return "OS.unix=symlink"
	case m&fs.ModeNamedPipe != 0:
		return "OS.unix=fifo"
	case m&fs.ModeSocket != 0:
		return "OS.unix=socket"
	case m&fs.ModeCharDevice != 0:
		return "OS.unix=chardev"
	case m&fs.ModeDevice != 0:
		return "OS.unix=blockdev"
	}
	return "OS.unix=special"
}

// appendFact appends name (with its '='), value made safe, and ';'.
func appendFact(buf []byte, name, value string) []byte {
	buf = append(buf, name...)
	for i := 0; i < len(value); i++ {
		c := value[i]
		if c <= ' ' || c == ';' || c == 0x7f {
			c = '?'
		}
		buf = append(buf, c)
	}
	return append(buf, ';')
}

// appendUnixMode appends the four-digit octal Unix mode, e.g. "0644", "4755".
func appendUnixMode(buf []byte, m fs.FileMode) []byte {
	v := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return append(buf, byte('0'+v>>9&7), byte('0'+v>>6&7), byte('0'+v>>3&7), byte('0'+v&7))
}

// ParseOptsMLST parses the fact list of "OPTS MLST type;size;" (RFC 3659
// §7.9): fact names separated by ';', case-insensitive, unknown ones and
// those not in offered ignored, an empty list selecting none. It returns
// the selection and its canonical rendering ("type;size;") for the
// "200 MLST OPTS …" reply.
func ParseOptsMLST(arg string, offered Facts) (Facts, string) {
	var f Facts
	for name := range strings.SplitSeq(arg, ";") {
		name = strings.Trim(name, " ")
		for _, n := range factNames {
			if strings.EqualFold(name, n.name) {
				f |= n.fact
			}
		}
	}
	f &= offered
	return f, f.String()
}

// FeatFacts renders the MLST line of a FEAT reply (RFC 3659 §7.8): every
// offered fact, each followed by '*' when selected and by ';', e.g.
// "type*;size*;modify*;perm;unique;UNIX.mode;".
func FeatFacts(offered, selected Facts) string {
	var b strings.Builder
	for _, n := range factNames {
		if offered&n.fact == 0 {
			continue
		}
		b.WriteString(n.name)
		if selected&n.fact != 0 {
			b.WriteByte('*')
		}
		b.WriteByte(';')
	}
	return b.String()
}

package wire

import "testing"

func TestSplit(t *testing.T) {
	tests := []struct{ line, verb, arg string }{
		{"", "", ""},
		{"noop", "NOOP", ""},
		{"NOOP", "NOOP", ""},
		{"NoOp", "NOOP", ""},
		{"RETR  a b ", "RETR", " a b "},
		{"retr file name.txt", "RETR", "file name.txt"},
		{"STOR ", "STOR", ""},
		{" NOOP", "", "NOOP"},
		{"site chmod 755 x", "SITE", "chmod 755 x"},
		{"xmkd\tdir", "XMKD\tDIR", ""},
		// ASCII only: U+0131 (dotless i) upper-cases to 'I' in Unicode and must not.
		{"l\u0131st", "L\u0131ST", ""},
		{"r\xffetr x", "R\xffETR", "x"},
		{"USER \xff\xfe", "USER", "\xff\xfe"},
	}
	for _, tt := range tests {
		verb, arg := Split(tt.line)
		if verb != tt.verb || arg != tt.arg {
			t.Errorf("Split(%q) = (%q, %q), want (%q, %q)", tt.line, verb, arg, tt.verb, tt.arg)
		}
	}
}

func TestSplitAllocs(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { Split("RETR some file") }); n != 0 {
		t.Errorf("Split of an upper-case verb allocates %v times, want 0", n)
	}
}

func TestParseListArgs(t *testing.T) {
	tests := []struct {
		arg, path string
		all       bool
	}{
		{"", "", false},
		{"dir", "dir", false},
		{" dir with spaces ", " dir with spaces ", false}, // no flags: unchanged
		{"-l", "", false},
		{"-la", "", true},
		{"-a", "", true},
		{"-A", "", true},
		{"-aL", "", true},
		{"-l dir", "dir", false},
		{"-la dir", "dir", true},
		{"-l -a dir", "dir", true},
		{"-l  -a   my dir ", "my dir ", true},
		{"-la ", "", true},
		{"  -la x", "x", true},
		{"-R", "", false},
		{"-", "-", false},
		{"-foo.txt", "-foo.txt", false},
		{"-l -foo.txt", "-foo.txt", false},
		{"-1", "-1", false},
		{"-l-a", "-l-a", false},
		{"-- -la", "-la", false},
		{"-a -- -la", "-la", true},
		{"--", "", false},
		{"-l dir -a", "dir -a", false},
		{"dir -a", "dir -a", false},
		{"-l\tdir", "-l\tdir", false},
		{"-é", "-é", false},
	}
	for _, tt := range tests {
		path, all := ParseListArgs(tt.arg)
		if path != tt.path || all != tt.all {
			t.Errorf("ParseListArgs(%q) = (%q, %v), want (%q, %v)", tt.arg, path, all, tt.path, tt.all)
		}
	}
}

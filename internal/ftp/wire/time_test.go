package wire

import (
	"testing"
	"time"
)

func TestAppendTime(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC), "20260101120000"},
		{time.Date(2026, 1, 1, 0, 30, 0, 999999999, cet), "20251231233000"},
		{time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), "19700101000000"},
		{time.Date(999, 12, 31, 23, 59, 59, 0, time.UTC), "09991231235959"},
		{time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), "99991231235959"},
		{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), "100000101000000"},
		{time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), "-0001" + "0101000000"},
	}
	for _, tt := range tests {
		if got := string(AppendTime(nil, tt.t)); got != tt.want {
			t.Errorf("AppendTime(%v) = %q, want %q", tt.t, got, tt.want)
		}
	}
}

// FuzzAppendTime checks the hand-written digits against time.Format.
func FuzzAppendTime(f *testing.F) {
	f.Add(int64(0), int64(0))
	f.Add(int64(1767268800), int64(999999999))
	f.Add(int64(253402300799), int64(0))  // 9999-12-31 23:59:59
	f.Add(int64(-62135596800), int64(0))  // 0001-01-01
	f.Add(int64(-62167219200), int64(-1)) // before year 0
	f.Fuzz(func(t *testing.T, sec, nsec int64) {
		tm := time.Unix(sec, nsec)
		if got, want := string(AppendTime([]byte("x"), tm)), "x"+tm.UTC().Format(timeLayout); got != want {
			t.Fatalf("AppendTime(%v) = %q, want %q", tm, got, want)
		}
	})
}

func TestParseTime(t *testing.T) {
	d := func(y int, mo time.Month, dd, h, mi, s, ns int) time.Time {
		return time.Date(y, mo, dd, h, mi, s, ns, time.UTC)
	}
	tests := []struct {
		s    string
		want time.Time
		ok   bool
	}{
		{"20260101120000", d(2026, 1, 1, 12, 0, 0, 0), true},
		{"19700101000000", d(1970, 1, 1, 0, 0, 0, 0), true},
		{"00000101000000", d(0, 1, 1, 0, 0, 0, 0), true},
		{"99991231235959", d(9999, 12, 31, 23, 59, 59, 0), true},
		{"20240229000000", d(2024, 2, 29, 0, 0, 0, 0), true},
		{"20260101120000.5", d(2026, 1, 1, 12, 0, 0, 500000000), true},
		{"20260101120000.123", d(2026, 1, 1, 12, 0, 0, 123000000), true},
		{"20260101120000.000000001", d(2026, 1, 1, 12, 0, 0, 1), true},
		{"20260101120000.1234567891234", d(2026, 1, 1, 12, 0, 0, 123456789), true},
		{"20161231235960", d(2017, 1, 1, 0, 0, 0, 0), true}, // leap second (RFC 3659 allows 60)

		{"", time.Time{}, false},
		{"2026010112000", time.Time{}, false},
		{"202601011200000", time.Time{}, false},
		{"20260101120000.", time.Time{}, false},
		{"20260101120000,5", time.Time{}, false},
		{"20260101120000.5Z", time.Time{}, false},
		{"20260101120000Z", time.Time{}, false},
		{" 20260101120000", time.Time{}, false},
		{"20260101120000 ", time.Time{}, false},
		{"2026-01-01T12:00:00Z", time.Time{}, false},
		{"20261301120000", time.Time{}, false},
		{"20260001120000", time.Time{}, false},
		{"20260100120000", time.Time{}, false},
		{"20260132120000", time.Time{}, false},
		{"20250229120000", time.Time{}, false},
		{"20260431120000", time.Time{}, false},
		{"20260101240000", time.Time{}, false},
		{"20260101126000", time.Time{}, false},
		{"20260101120061", time.Time{}, false},
		{"+2026010112000", time.Time{}, false},
		{"2026010112000x", time.Time{}, false},
		{"２0260101120000", time.Time{}, false},
	}
	for _, tt := range tests {
		got, err := ParseTime(tt.s)
		if tt.ok {
			if err != nil || !got.Equal(tt.want) || got.Location() != time.UTC {
				t.Errorf("ParseTime(%q) = %v, %v; want %v", tt.s, got, err, tt.want)
			}
		} else if err != ErrSyntax {
			t.Errorf("ParseTime(%q) = %v, %v; want ErrSyntax", tt.s, got, err)
		}
	}
}

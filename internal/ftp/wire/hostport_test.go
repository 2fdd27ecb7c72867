package wire

import (
	"math/rand/v2"
	"net/netip"
	"strconv"
	"testing"
)

func TestParsePORT(t *testing.T) {
	ok := func(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
	tests := []struct {
		arg  string
		want netip.AddrPort
		err  error
	}{
		{"192,168,1,2,4,1", ok("192.168.1.2:1025"), nil},
		{"127,0,0,1,0,21", ok("127.0.0.1:21"), nil},
		{"0,0,0,0,0,0", ok("0.0.0.0:0"), nil}, // syntactically fine; the engine refuses it
		{"255,255,255,255,255,255", ok("255.255.255.255:65535"), nil},
		{"  10,0,0,1,200,10  ", ok("10.0.0.1:51210"), nil},
		{"010,001,000,001,000,021", ok("10.1.0.1:21"), nil},
		{"", netip.AddrPort{}, ErrSyntax},
		{" ", netip.AddrPort{}, ErrSyntax},
		{"1,2,3,4,5", netip.AddrPort{}, ErrSyntax},
		{"1,2,3,4,5,6,7", netip.AddrPort{}, ErrSyntax},
		{"1,2,3,4,5,256", netip.AddrPort{}, ErrSyntax},
		{"256,2,3,4,5,6", netip.AddrPort{}, ErrSyntax},
		{"1,2,3,4,5,-6", netip.AddrPort{}, ErrSyntax},
		{"1,2,3,4,5,+6", netip.AddrPort{}, ErrSyntax},
		{"1,2,3,4,5,0006", netip.AddrPort{}, ErrSyntax},
		{"1, 2,3,4,5,6", netip.AddrPort{}, ErrSyntax},
		{"1,2,3,4,5 ,6", netip.AddrPort{}, ErrSyntax},
		{"1,2,3,4,5,6,", netip.AddrPort{}, ErrSyntax},
		{",1,2,3,4,5", netip.AddrPort{}, ErrSyntax},
		{"1,,3,4,5,6", netip.AddrPort{}, ErrSyntax},
		{"1.2.3.4,5,6", netip.AddrPort{}, ErrSyntax},
		{"a,b,c,d,e,f", netip.AddrPort{}, ErrSyntax},
		{"1,2,3,4,5,6\t", netip.AddrPort{}, ErrSyntax},
		{"(1,2,3,4,5,6)", netip.AddrPort{}, ErrSyntax},
		{"１,2,3,4,5,6", netip.AddrPort{}, ErrSyntax}, // full-width digit
	}
	for _, tt := range tests {
		got, err := ParsePORT(tt.arg)
		if got != tt.want || err != tt.err {
			t.Errorf("ParsePORT(%q) = %v, %v; want %v, %v", tt.arg, got, err, tt.want, tt.err)
		}
	}
}

func TestFormatPASV(t *testing.T) {
	tests := []struct{ ap, want string }{
		{"192.168.1.2:1025", "192,168,1,2,4,1"},
		{"0.0.0.0:0", "0,0,0,0,0,0"},
		{"255.255.255.255:65535", "255,255,255,255,255,255"},
		{"[::ffff:10.0.0.1]:21", "10,0,0,1,0,21"},
	}
	for _, tt := range tests {
		if got := FormatPASV(netip.MustParseAddrPort(tt.ap)); got != tt.want {
			t.Errorf("FormatPASV(%s) = %q, want %q", tt.ap, got, tt.want)
		}
	}
	for _, ap := range []netip.AddrPort{netip.MustParseAddrPort("[::1]:21"), {}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("FormatPASV(%v) did not panic", ap)
				}
			}()
			FormatPASV(ap)
		}()
	}
}

func TestPORTRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		var b [4]byte
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		ap := netip.AddrPortFrom(netip.AddrFrom4(b), uint16(rng.UintN(65536)))
		got, err := ParsePORT(FormatPASV(ap))
		if err != nil || got != ap {
			t.Fatalf("ParsePORT(FormatPASV(%v)) = %v, %v", ap, got, err)
		}
	}
}

func TestParseEPRT(t *testing.T) {
	ok := func(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
	none := netip.AddrPort{}
	tests := []struct {
		arg  string
		want netip.AddrPort
		err  error
	}{
		{"|1|132.235.1.2|6275|", ok("132.235.1.2:6275"), nil},
		{"|2|1080::8:800:200C:417A|5282|", ok("[1080::8:800:200c:417a]:5282"), nil},
		{"|2|::1|1|", ok("[::1]:1"), nil},
		{"|2|::ffff:1.2.3.4|21|", ok("[::ffff:1.2.3.4]:21"), nil},
		{"!1!10.0.0.1!65535!", ok("10.0.0.1:65535"), nil},
		{"~2~fe80::1~80~", ok("[fe80::1]:80"), nil},
		{" |1|10.0.0.1|80| ", ok("10.0.0.1:80"), nil},
		{"|1|10.0.0.1|00080|", ok("10.0.0.1:80"), nil},
		{"a1a10.0.0.1a80a", ok("10.0.0.1:80"), nil},

		{"", none, ErrSyntax},
		{"|", none, ErrSyntax},
		{"||", none, ErrSyntax},
		{"|||", none, ErrSyntax},
		{"||||", none, ErrSyntax},
		{"|1|10.0.0.1|80", none, ErrSyntax},
		{"1|10.0.0.1|80|", none, ErrSyntax},
		{"|1|10.0.0.1|80|x|", none, ErrSyntax},
		{"|1|10.0.0.1|80||", none, ErrSyntax},
		{"|1|10.0.0.1!80!", none, ErrSyntax},
		{" 1 10.0.0.1 80 ", none, ErrSyntax},
		{"\x7f1\x7f10.0.0.1\x7f80\x7f", none, ErrSyntax},
		{"\x201\x2010.0.0.1\x2080\x20", none, ErrSyntax},
		{"5150.0.0.15805", none, ErrSyntax},  // digit delimiter
		{".1.10.0.0.1.80.", none, ErrSyntax}, // delimiter clashes with the address
		{":2:::1:80:", none, ErrSyntax},
		{"|1|::1|80|", none, ErrSyntax},
		{"|1|::ffff:1.2.3.4|80|", none, ErrSyntax},
		{"|2|10.0.0.1|80|", none, ErrSyntax},
		{"|2|fe80::1%eth0|80|", none, ErrSyntax},
		{"|2|fe80::1%25eth0|80|", none, ErrSyntax},
		{"|1|10.0.0.1|0|", none, ErrSyntax},
		{"|1|10.0.0.1|65536|", none, ErrSyntax},
		{"|1|10.0.0.1|-1|", none, ErrSyntax},
		{"|1|10.0.0.1|+80|", none, ErrSyntax},
		{"|1|10.0.0.1||", none, ErrSyntax},
		{"|1|10.0.0.1|080000|", none, ErrSyntax},
		{"|1|010.0.0.1|80|", none, ErrSyntax},
		{"|1|10.0.0|80|", none, ErrSyntax},
		{"|1| 10.0.0.1|80|", none, ErrSyntax},
		{"|1|host.example|80|", none, ErrSyntax},
		{"||10.0.0.1|80|", none, ErrSyntax},
		{"|x|10.0.0.1|80|", none, ErrSyntax},
		{"|3|10.0.0.1|80|", none, ErrUnsupportedProto},
		{"|01|10.0.0.1|80|", none, ErrUnsupportedProto},
		{"|17|whatever|80|", none, ErrUnsupportedProto},
	}
	for _, tt := range tests {
		got, err := ParseEPRT(tt.arg)
		if got != tt.want || err != tt.err {
			t.Errorf("ParseEPRT(%q) = %v, %v; want %v, %v", tt.arg, got, err, tt.want, tt.err)
		}
	}
}

func TestEPRTRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 10000 {
		var a netip.Addr
		proto := "1"
		if i%2 == 0 {
			var b [4]byte
			for j := range b {
				b[j] = byte(rng.UintN(256))
			}
			a = netip.AddrFrom4(b)
		} else {
			var b [16]byte
			for j := range b {
				b[j] = byte(rng.UintN(256))
				if rng.UintN(3) == 0 {
					b[j] = 0 // exercise "::" compression
				}
			}
			a = netip.AddrFrom16(b)
			proto = "2"
		}
		ap := netip.AddrPortFrom(a, uint16(1+rng.UintN(65535)))
		arg := "|" + proto + "|" + a.String() + "|" + strconv.Itoa(int(ap.Port())) + "|"
		got, err := ParseEPRT(arg)
		if err != nil || got != ap {
			t.Fatalf("ParseEPRT(%q) = %v, %v; want %v", arg, got, err, ap)
		}
	}
}

func TestFormatEPSV(t *testing.T) {
	for port, want := range map[uint16]string{0: "(|||0|)", 21: "(|||21|)", 65535: "(|||65535|)"} {
		if got := FormatEPSV(port); got != want {
			t.Errorf("FormatEPSV(%d) = %q, want %q", port, got, want)
		}
	}
}

func TestParseEPSV(t *testing.T) {
	tests := []struct {
		arg  string
		want EPSVArg
		err  error
	}{
		{"", EPSVAny, nil},
		{"  ", EPSVAny, nil},
		{"1", EPSV4, nil},
		{"2", EPSV6, nil},
		{" 2 ", EPSV6, nil},
		{"ALL", EPSVAll, nil},
		{"all", EPSVAll, nil},
		{"aLl", EPSVAll, nil},
		{"3", EPSVAny, ErrEPSVProto},
		{"0", EPSVAny, ErrEPSVProto},
		{"01", EPSVAny, ErrEPSVProto},
		{"99999999999999999999", EPSVAny, ErrEPSVProto},
		{"AL", EPSVAny, ErrSyntax},
		{"ALL1", EPSVAny, ErrSyntax},
		{"A LL", EPSVAny, ErrSyntax},
		{"-1", EPSVAny, ErrSyntax},
		{"1 2", EPSVAny, ErrSyntax},
		{"|1|", EPSVAny, ErrSyntax},
		{"\x00", EPSVAny, ErrSyntax},
	}
	for _, tt := range tests {
		got, err := ParseEPSV(tt.arg)
		if got != tt.want || err != tt.err {
			t.Errorf("ParseEPSV(%q) = %v, %v; want %v, %v", tt.arg, got, err, tt.want, tt.err)
		}
	}
	if ErrEPSVProto != ErrUnsupportedProto {
		t.Error("ErrEPSVProto and ErrUnsupportedProto differ")
	}
}

func TestEPSVArgString(t *testing.T) {
	for _, a := range []EPSVArg{EPSVAny, EPSV4, EPSV6, EPSVAll} {
		if got, err := ParseEPSV(a.String()); got != a || err != nil {
			t.Errorf("ParseEPSV(%q) = %v, %v; want %v", a.String(), got, err, a)
		}
	}
	if s := EPSVArg(9).String(); s != "EPSVArg(9)" {
		t.Errorf("EPSVArg(9).String() = %q", s)
	}
}

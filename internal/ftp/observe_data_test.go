package ftp

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestObserverDataEvents: the data-connection events carry what a NAT
// diagnosis needs: the mode, the listener, the advertised address, the
// listeners in use, who connected, and listeners that were never used or
// never reached.
func TestObserverDataEvents(t *testing.T) {
	ts := startServer(t, func(c *Site, _ *Server) {
		c.PublicIP = netip.MustParseAddr("127.0.0.9")
		c.DataTimeout = 300 * time.Millisecond
	})
	rec := newRecorder()
	ts.srv.Observe(rec, 0)
	c := dial(t, ts.addr)
	c.login("alice", "secret")
	c.cmd("PASV", 227)
	c.listing("LIST") // EPSV: closes the PASV listener unused
	c.cmd("PASV", 227)
	c.cmd("LIST", 425) // nobody connects: 425 after the data timeout
	c.cmd("PORT 127,0,0,2,200,10", 504)
	c.cmd("QUIT", 221)
	c.expectEOF()
	rec.waitGone(t)

	var data []Event
	for _, e := range rec.all() {
		if e.Kind == KindData {
			data = append(data, e)
		}
	}
	var got []string
	for _, e := range data {
		got = append(got, e.Cmd+" "+e.Result+" "+e.Reason)
	}
	want := []string{"PASV listening ", "PASV unused ", "EPSV listening ", "EPSV opened ",
		"PASV listening ", "PASV refused timeout", "PORT refused active address"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("data events %q, want %q", got, want)
	}
	client := c.conn.LocalAddr().(*net.TCPAddr).AddrPort().Addr()
	pasv, epsv, opened, timeout := data[0], data[2], data[3], data[5]
	if pasv.Peer.Addr() != netip.MustParseAddr("127.0.0.9") || pasv.Peer.Port() != pasv.Local.Port() ||
		pasv.Local.Addr() != netip.MustParseAddr("127.0.0.1") || pasv.InUse < 1 {
		t.Errorf("PASV listening: local %s advertised %s in use %d", pasv.Local, pasv.Peer, pasv.InUse)
	}
	if data[1].Local != pasv.Local {
		t.Errorf("unused names %s, want %s", data[1].Local, pasv.Local)
	}
	if epsv.Peer != epsv.Local {
		t.Errorf("EPSV advertised %s, want the listener %s", epsv.Peer, epsv.Local)
	}
	if opened.Peer.Addr() != client {
		t.Errorf("opened from %s, want %s", opened.Peer, client)
	}
	if timeout.Local.Port() != data[4].Local.Port() {
		t.Errorf("timeout names %s, listener was %s", timeout.Local, data[4].Local)
	}
	if p := data[6].Peer; p.String() != "127.0.0.2:51210" {
		t.Errorf("active target %s", p)
	}
	// Every listener closed: none is counted as open any more.
	if n := ts.srv.PassiveInUse(); n != 0 {
		t.Errorf("passive listeners counted open after the session: %d", n)
	}
}

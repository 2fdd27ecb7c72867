package tlsbind

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/big"
	"net"
	"testing"
	"time"
)

func testBase(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"ferry.test"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// handshake runs one handshake over loopback TCP and returns the server
// side; the client reads until the server closes, which takes in the TLS
// 1.3 tickets sent after the handshake.
func handshake(t *testing.T, server, client *tls.Config) *tls.Conn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	errc := make(chan error, 1)
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			errc <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		cc := tls.Client(c, client)
		if err := cc.Handshake(); err != nil {
			errc <- err
			return
		}
		_, err = io.ReadAll(cc)
		errc <- err
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	sc := tls.Server(c, server)
	if err := sc.Handshake(); err != nil {
		t.Fatal(err)
	}
	sc.Write([]byte{0})
	sc.CloseWrite()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return sc
}

// TestBinding: a data connection that resumes its own control session's
// ticket passes; a fresh handshake and another session's ticket are refused.
func TestBinding(t *testing.T) {
	base := testBase(t)
	mine, other := New(base), New(base)
	client := func(cache tls.ClientSessionCache) *tls.Config {
		return &tls.Config{InsecureSkipVerify: true, ServerName: "ferry.test", ClientSessionCache: cache}
	}
	own, foreign := tls.NewLRUClientSessionCache(4), tls.NewLRUClientSessionCache(4)
	handshake(t, mine.Control(), client(own))
	handshake(t, other.Control(), client(foreign))

	for _, tc := range []struct {
		name  string
		cache tls.ClientSessionCache
		ok    bool
	}{{"own", own, true}, {"fresh", nil, false}, {"foreign", foreign, false}} {
		cfg, b := mine.Data()
		sc := handshake(t, cfg, client(tc.cache))
		if why := b.Refusal(sc); (why == "") != tc.ok {
			t.Errorf("%s ticket: refusal %q, want ok=%v", tc.name, why, tc.ok)
		}
	}
}

package acme

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"time"
)

// ServeTLSALPN answers TLS-ALPN-01 challenges (RFC 8737) on ln until it is
// closed: each connection gets m's challenge certificate in its handshake
// and is closed; nothing else is spoken. Handshakes are bounded by ten
// seconds, and run one goroutine each.
func ServeTLSALPN(ln net.Listener, m *Manager, log *slog.Logger) error {
	cfg := m.ChallengeTLSConfig()
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			tc := tls.Server(c, cfg)
			if err := tc.Handshake(); err != nil {
				log.Debug("TLS-ALPN-01 handshake failed", "remote", c.RemoteAddr().String(), "err", err)
			}
		}()
	}
}

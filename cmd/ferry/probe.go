package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/ferryftp/ferry/internal/certs"
	"github.com/ferryftp/ferry/internal/escape"
	"github.com/ferryftp/ferry/internal/natdiag"
)

const probeUsage = `Usage:
  ferry probe HOST[:PORT] [--user NAME [--password-stdin]] [--ca FILE] [--timeout D]

Tests an FTP server from the outside, as a client does: the control
connection and banner, the login (anonymous unless --user; the password is
read from standard input), PASV and EPSV data connections, whether PASV
advertises the address the client connected to, AUTH TLS, and protected
(PROT P) data connections with and without TLS session reuse. Run it from
another network than the server's to see what Internet clients see. PORT
defaults to 21. Each check prints ok, warn or FAIL with the reason and, for
a problem, the fix. Exit status: 0 no check failed, 1 a check failed, 2
usage error.
`

// verdict is one check's outcome.
type verdict struct {
	check  string
	status string // "ok", "warn", "FAIL", "skip"
	reason string
	fix    string
}

// prober runs the checks against one server.
type prober struct {
	addr     string // host:port of the control connection
	user     string
	password string
	timeout  time.Duration
	roots    *x509.CertPool // nil: the system's
	host     string         // for the TLS server name
	out      []verdict
}

func (p *prober) add(check, status, reason, fix string) {
	p.out = append(p.out, verdict{check, status, reason, fix})
}

// runProbe runs `ferry probe` (args start after "probe").
func runProbe(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("ferry probe", flag.ContinueOnError)
	fset.SetOutput(stderr)
	fset.Usage = func() { io.WriteString(stderr, probeUsage) }
	user := fset.String("user", "", "log in as this user (password from standard input); default anonymous")
	pwStdin := fset.Bool("password-stdin", false, "read the password from standard input (implied by --user)")
	caFile := fset.String("ca", "", "PEM file of the CA that signs the server's certificate; default the system's roots")
	timeout := fset.Duration("timeout", 10*time.Second, "time each connection and reply may take")
	var pos []string
	rest := args
	for {
		if err := fset.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		if fset.NArg() == 0 {
			break
		}
		pos = append(pos, fset.Arg(0))
		rest = fset.Args()[1:]
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "ferry probe: want one HOST[:PORT], got %d arguments\n%s", len(pos), probeUsage)
		return 2
	}
	if *timeout <= 0 {
		fmt.Fprintf(stderr, "ferry probe: --timeout must be positive\n")
		return 2
	}
	addr, host, err := probeAddr(pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "ferry probe: %s\n", errText(err))
		return 2
	}
	p := &prober{addr: addr, host: host, timeout: *timeout, user: "anonymous", password: "probe@ferry.invalid"}
	if *pwStdin && *user == "" {
		fmt.Fprintf(stderr, "ferry probe: --password-stdin needs --user\n")
		return 2
	}
	if *user != "" {
		p.user = *user
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && line == "" {
			fmt.Fprintf(stderr, "ferry probe: reading the password from standard input: %v\n", err)
			return 2
		}
		p.password = strings.TrimRight(line, "\r\n")
	}
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			fmt.Fprintf(stderr, "ferry probe: %s\n", errText(err))
			return 2
		}
		p.roots = x509.NewCertPool()
		if !p.roots.AppendCertsFromPEM(pem) {
			fmt.Fprintf(stderr, "ferry probe: %s: no PEM certificates\n", escape.Display(*caFile))
			return 2
		}
	}
	p.run()
	fmt.Fprintf(stdout, "ferry probe %s\n", escape.Display(addr))
	failed := false
	for _, v := range p.out {
		fmt.Fprintf(stdout, "%-5s %-16s %s\n", v.status, v.check, escape.Display(v.reason))
		if v.fix != "" {
			fmt.Fprintf(stdout, "      %-16s fix: %s\n", "", escape.Display(v.fix))
		}
		failed = failed || v.status == "FAIL"
	}
	if failed {
		return 1
	}
	return 0
}

// probeAddr reads HOST[:PORT] (or [v6]:PORT), the port defaulting to 21.
func probeAddr(s string) (addr, host string, err error) {
	if s == "" || strings.ContainsAny(s, "/ \t") {
		return "", "", fmt.Errorf("%q is not HOST[:PORT]", s)
	}
	if h, port, err := net.SplitHostPort(s); err == nil {
		if h == "" || port == "" {
			return "", "", fmt.Errorf("%q is not HOST[:PORT]", s)
		}
		return s, h, nil
	}
	if strings.Count(s, ":") > 1 && !strings.HasPrefix(s, "[") {
		return net.JoinHostPort(s, "21"), s, nil // a bare IPv6 address
	}
	if strings.Contains(s, ":") {
		return "", "", fmt.Errorf("%q is not HOST[:PORT]", s)
	}
	return net.JoinHostPort(s, "21"), s, nil
}

// run makes every check in order; a failed control connection or login
// skips the rest.
func (p *prober) run() {
	f, ok := p.connect("control")
	if !ok {
		return
	}
	defer f.Close()
	if !p.login(f, "login") {
		return
	}
	p.pasv(f)
	if err := p.epsv(f, nil, "epsv-data"); err == nil {
		p.add("epsv-data", "ok", "listed over EPSV", "")
	} else if !p.has("epsv-data") {
		p.add("epsv-data", "FAIL", "listing over EPSV: "+err.Error(), "")
	}
	f.cmd("QUIT")
	p.tlsChecks()
}

func (p *prober) connect(check string) (*ftpConn, bool) {
	f, code, text, err := dialFTP(p.addr, p.timeout)
	switch {
	case err != nil:
		p.add(check, "FAIL", "cannot connect: "+err.Error(),
			"check the host and port, that the server runs (listen) and that a firewall lets the port through")
		return nil, false
	case code != 220:
		f.Close()
		p.add(check, "FAIL", fmt.Sprintf("greeting %d %s", code, firstLine(text)),
			"the server refuses connections (limits, a ban, or it is shutting down)")
		return nil, false
	}
	p.add(check, "ok", fmt.Sprintf("connected to %s: %d %s", f.remoteAddr(), code, firstLine(text)), "")
	return f, true
}

func (p *prober) login(f *ftpConn, check string) bool {
	code, text, err := f.cmd("USER %s", p.user)
	if err == nil && code == 331 {
		code, text, err = f.cmd("PASS %s", p.password)
	}
	switch {
	case err != nil:
		p.add(check, "FAIL", "login: "+err.Error(), "")
		return false
	case code != 230:
		fix := "check the user name and password"
		if p.user == "anonymous" {
			fix = "anonymous logins are off: use --user NAME, or enable anonymous on the server"
		}
		if code == 530 && strings.Contains(text, "TLS") {
			fix = "the server demands TLS before login (tls_required): the TLS checks below show whether that works"
		}
		p.add(check, "FAIL", fmt.Sprintf("%s: %d %s", p.user, code, firstLine(text)), fix)
		return false
	}
	p.add(check, "ok", fmt.Sprintf("logged in as %s", p.user), "")
	f.cmd("TYPE I")
	return true
}

// pasv checks PASV: the advertised address, then a listing over it.
func (p *prober) pasv(f *ftpConn) {
	code, text, err := f.cmd("PASV")
	if err != nil || code != 227 {
		p.add("pasv", "FAIL", fmt.Sprintf("PASV: %d %s %v", code, firstLine(text), errOrEmpty(err)),
			"the server refuses PASV; IPv4 clients that need it fail")
		return
	}
	adv, err := parsePASV(text)
	if err != nil {
		p.add("pasv", "FAIL", err.Error(), "the server's 227 reply is malformed")
		return
	}
	ctl := f.remoteAddr().Addr().Unmap()
	same := adv.Addr() == ctl
	switch {
	case same:
		p.add("pasv-address", "ok", fmt.Sprintf("PASV advertises %s, the address this client connected to", adv.Addr()), "")
	case natdiag.Classify(adv.Addr()) != natdiag.Public && natdiag.Classify(ctl) == natdiag.Public:
		p.add("pasv-address", "FAIL", fmt.Sprintf("PASV advertises %s, a %s address, to a client that reached the server at %s",
			adv.Addr(), natdiag.Classify(adv.Addr()), ctl),
			fmt.Sprintf("set public_host (--public-host) to %s, the server's public address or name", ctl))
	default:
		p.add("pasv-address", "warn", fmt.Sprintf("PASV advertises %s, not %s, the address this client connected to", adv.Addr(), ctl),
			"fine when the server has several addresses and the advertised one is reachable (see pasv-data)")
	}
	d, derr := net.DialTimeout("tcp", adv.String(), p.timeout)
	if derr != nil {
		// Tell a wrong address from a closed port: try the port on the
		// address the control connection reached.
		alt := netip.AddrPortFrom(ctl, adv.Port())
		if !same {
			if d2, err := net.DialTimeout("tcp", alt.String(), p.timeout); err == nil {
				verdictFix := fmt.Sprintf("set public_host (--public-host) to %s (the address clients connect to), or leave it empty to advertise the address the client reached", ctl)
				if err := p.list(f, d2, nil); err != nil {
					p.add("pasv-data", "FAIL", fmt.Sprintf("cannot connect to %s, the PASV address (%v); port %d on %s works, so the advertised address is wrong", adv, derr, adv.Port(), ctl), verdictFix)
					return
				}
				p.add("pasv-data", "FAIL", fmt.Sprintf("cannot connect to %s, the PASV address (%v), while the same port on %s works: the advertised address is wrong (EPSV, which carries no address, is unaffected)", adv, derr, ctl), verdictFix)
				return
			}
		}
		f.cmd("ABOR")
		p.add("pasv-data", "FAIL", fmt.Sprintf("cannot connect to %s: %v", adv, derr),
			"open and forward the passive port range (passive_ports) to the server in its firewall or NAT")
		return
	}
	if err := p.list(f, d, nil); err != nil {
		p.add("pasv-data", "FAIL", "listing over PASV: "+err.Error(), "")
		return
	}
	p.add("pasv-data", "ok", fmt.Sprintf("listed over PASV (%s)", adv), "")
}

// epsv checks EPSV: a listing over a data connection to the control
// address; with cfg, a protected one.
func (p *prober) epsv(f *ftpConn, cfg *tls.Config, check string) error {
	code, text, err := f.cmd("EPSV")
	if err != nil || code != 229 {
		p.add(check, "FAIL", fmt.Sprintf("EPSV: %d %s %v", code, firstLine(text), errOrEmpty(err)),
			"the server refuses EPSV (RFC 2428); clients behind NAT and IPv6 clients need it")
		return errors.New("no EPSV")
	}
	port, err := parseEPSV(text)
	if err != nil {
		p.add(check, "FAIL", err.Error(), "the server's 229 reply is malformed")
		return err
	}
	target := netip.AddrPortFrom(f.remoteAddr().Addr().Unmap(), port)
	d, err := net.DialTimeout("tcp", target.String(), p.timeout)
	if err != nil {
		f.cmd("ABOR")
		p.add(check, "FAIL", fmt.Sprintf("cannot connect to %s: %v", target, err),
			"open and forward the passive port range (passive_ports) to the server in its firewall or NAT")
		return err
	}
	if err := p.list(f, d, cfg); err != nil {
		return err
	}
	return nil
}

// list runs LIST over the data connection d (protected with cfg when set).
func (p *prober) list(f *ftpConn, d net.Conn, cfg *tls.Config) error {
	defer d.Close()
	code, text, err := f.cmd("LIST")
	if err != nil {
		return err
	}
	if code != 150 && code != 125 {
		return fmt.Errorf("LIST: %d %s", code, firstLine(text))
	}
	var r io.Reader = d
	if cfg != nil {
		tc := tls.Client(d, cfg)
		tc.SetDeadline(time.Now().Add(p.timeout))
		if err := tc.Handshake(); err != nil {
			code, text, rerr := f.read()
			if rerr == nil {
				return fmt.Errorf("data TLS handshake: %v; then %d %s", err, code, firstLine(text))
			}
			return fmt.Errorf("data TLS handshake: %v", err)
		}
		r = tc
	}
	d.SetReadDeadline(time.Now().Add(p.timeout))
	n, _ := io.Copy(io.Discard, r)
	code, text, err = f.read()
	if err != nil {
		return err
	}
	if code != 226 && code != 250 {
		return &replyErr{code, firstLine(text)}
	}
	_ = n
	return nil
}

// replyErr is a final reply that is not success.
type replyErr struct {
	code int
	text string
}

func (e *replyErr) Error() string { return fmt.Sprintf("%d %s", e.code, e.text) }

// tlsChecks: AUTH TLS on a new connection, then protected listings with
// and without resuming the control connection's TLS session.
func (p *prober) tlsChecks() {
	f, code, _, err := dialFTP(p.addr, p.timeout)
	if err != nil || code != 220 {
		p.add("auth-tls", "FAIL", "cannot connect again", "")
		return
	}
	defer f.Close()
	code, text, err := f.cmd("AUTH TLS")
	if err != nil || code != 234 {
		p.add("auth-tls", "FAIL", fmt.Sprintf("AUTH TLS: %d %s %v", code, firstLine(text), errOrEmpty(err)),
			"the server offers no TLS: give it a certificate (Ferry: tls_cert and tls_key, acme_domains, or its self-signed one)")
		p.add("prot-p-reuse", "skip", "no TLS", "")
		p.add("prot-p-no-reuse", "skip", "no TLS", "")
		return
	}
	cache := tls.NewLRUClientSessionCache(4)
	verified := true
	cfg := &tls.Config{ServerName: p.host, RootCAs: p.roots, ClientSessionCache: cache, NextProtos: []string{"ftp"}}
	var leaf *x509.Certificate
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		leaf = cs.PeerCertificates[0]
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: p.roots, Intermediates: inter, DNSName: p.host}); err != nil {
			verified = false
		}
		return nil
	}
	cs, err := f.startTLS(cfg)
	if err != nil {
		p.add("auth-tls", "FAIL", "TLS handshake: "+err.Error(), "the server's TLS setup is broken (certificate, versions)")
		return
	}
	fp := certs.Describe(leaf).Fingerprint
	if verified {
		p.add("auth-tls", "ok", fmt.Sprintf("%s, certificate for %s verified (SHA-256 %s)", tls.VersionName(cs.Version), p.host, fp), "")
	} else {
		p.add("auth-tls", "warn", fmt.Sprintf("%s, but the certificate is not trusted for %s (self-signed or another name); SHA-256 %s",
			tls.VersionName(cs.Version), p.host, fp),
			"clients ask users to trust it: compare the fingerprint with ferry cert show, or use a CA's certificate (acme_domains)")
	}
	// Named, so that the server's own diagnosis shows the refusal below
	// as the probe's.
	f.cmd("CLNT ferry-probe")
	if !p.login(f, "tls-login") {
		return
	}
	if c, _, _ := f.cmd("PBSZ 0"); c != 200 {
		p.add("prot-p-reuse", "FAIL", "PBSZ 0 refused", "")
		return
	}
	if c, t, _ := f.cmd("PROT P"); c != 200 {
		p.add("prot-p-reuse", "FAIL", fmt.Sprintf("PROT P: %d %s", c, firstLine(t)), "the server cannot protect data connections")
		return
	}
	if err := p.epsv(f, cfg, "prot-p-reuse"); err != nil {
		if !p.has("prot-p-reuse") {
			p.add("prot-p-reuse", "FAIL", "protected listing resuming the session: "+err.Error(),
				"the server should accept a data connection that resumes the control connection's TLS session")
		}
		return
	}
	p.add("prot-p-reuse", "ok", "protected listing over a data connection that resumed the TLS session", "")
	// A fresh handshake, no resumption: servers that demand reuse refuse.
	fresh := cfg.Clone()
	fresh.ClientSessionCache = nil
	err = p.epsv(f, fresh, "prot-p-no-reuse")
	var re *replyErr
	switch {
	case err == nil:
		p.add("prot-p-no-reuse", "warn", "a protected data connection without TLS session reuse was accepted",
			"whoever reaches a passive port first can take a transfer over: require session reuse (Ferry: tls_session_reuse = \"required\")")
	case errors.As(err, &re) && (re.code == 522 || re.code == 425 || re.code == 426):
		p.add("prot-p-no-reuse", "ok", fmt.Sprintf("refused without session reuse (%d), as a secure server does; clients that cannot resume need tls_reuse_exempt", re.code), "")
	case p.has("prot-p-no-reuse"):
	default:
		p.add("prot-p-no-reuse", "ok", "refused without session reuse: "+err.Error(), "")
	}
}

func (p *prober) has(check string) bool {
	for _, v := range p.out {
		if v.check == check {
			return true
		}
	}
	return false
}

func errOrEmpty(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

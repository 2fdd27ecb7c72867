package natdiag

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Kind says what an Observation reports.
type Kind uint8

// The kinds of Observation.
const (
	Connect        Kind = iota + 1 // a control connection: Client, Local
	ClientName                     // the client named itself (CLNT): Name
	PassiveOpen                    // PASV or EPSV answered: Mode, Local (the listener), Advertised, InUse
	PassiveFull                    // PASV or EPSV found no free passive port: Mode
	DataOpened                     // a data connection opened: Mode, Peer
	DataTimeout                    // nobody connected to a passive listener in time: Mode, Local
	DataUnused                     // a passive listener was closed before any transfer used it: Mode, Local
	DataForeign                    // a passive connection from another address was refused: Mode, Peer
	ActiveMismatch                 // PORT or EPRT named another address than the client's: Mode, Peer
	ReuseRefused                   // a protected data connection did not resume the control session: Name, when the client sent CLNT
	Disconnect                     // the session ended
)

// Observation is one thing the server saw, made from an engine event.
type Observation struct {
	Kind    Kind
	Time    time.Time
	Session string     // the session's ID
	Client  netip.Addr // the control connection's client address
	// Mode is the command that set the data connection up: PASV, EPSV,
	// PORT or EPRT.
	Mode       string
	Local      netip.AddrPort // Connect: the address the client reached; passive kinds: the listener
	Advertised netip.AddrPort // PassiveOpen: the address and port the reply told the client
	Peer       netip.AddrPort // DataOpened, DataForeign: who connected; ActiveMismatch: the target named
	InUse      int            // PassiveOpen: passive listeners open on the server, this one included
	Name       string         // ClientName, ReuseRefused: what CLNT said
}

// The finding IDs.
const (
	IDPasvPrivate     = "pasv_private_address"
	IDPasvWrong       = "pasv_wrong_address"
	IDPasvUnreachable = "pasv_unreachable"
	IDPassiveExhaust  = "passive_exhaustion"
	IDPeerMismatch    = "data_peer_mismatch"
	IDClientNAT       = "client_port_nat"
	IDReuseRefused    = "tls_reuse_refused"
)

// IDs lists every finding ID, a closed set (metrics labels use it).
var IDs = []string{IDPasvPrivate, IDPasvWrong, IDPasvUnreachable, IDPassiveExhaust, IDPeerMismatch, IDClientNAT, IDReuseRefused}

// Finding is one diagnosed problem.
type Finding struct {
	ID       string `json:"id"`
	Severity string `json:"severity"` // "error": clients fail; "warning": some may
	Summary  string `json:"summary"`
	// Evidence is what the server saw, with counts and examples.
	Evidence string `json:"evidence"`
	// Setting is the setting to change (a key of the configuration file,
	// a command, or the client's).
	Setting string `json:"setting"`
	// Advice says how to change it.
	Advice    string    `json:"advice"`
	Count     int       `json:"count"`             // observations behind the finding in its window
	Clients   []string  `json:"clients,omitempty"` // up to three example clients
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

// Options configures an Analyzer. Zero values take the defaults named.
type Options struct {
	// PassiveLo and PassiveHi are the passive_ports range; 0 means the
	// operating system picks (the range cannot be nearly exhausted then).
	PassiveLo, PassiveHi uint16
	// PublicHost is the public_host setting as written, for the advice.
	PublicHost string
	// PublicNetworks are treated as public whatever their class.
	PublicNetworks []netip.Prefix
	// Window is how far back observations count; 15 minutes.
	Window time.Duration
	// Keep is how long a finding stays listed after it was last seen; 24 hours.
	Keep time.Duration
	// ReportEvery is the least time between two reports of one finding; 1 hour.
	ReportEvery time.Duration
	// MinWrongAddress is the PASV timeouts that, with EPSV working, make
	// pasv_wrong_address; 3.
	MinWrongAddress int
	// MinUnreachable and MinUnreachableSessions are the passive timeouts,
	// and the distinct sessions they come from, that make pasv_unreachable
	// when no passive connection succeeds; 5 and 3.
	MinUnreachable         int
	MinUnreachableSessions int
	// MinPeerMismatch is the refused foreign data connections that make
	// data_peer_mismatch; 3.
	MinPeerMismatch int
	// ExhaustionRatio is the share of the passive range in use that makes
	// passive_exhaustion; 0.9.
	ExhaustionRatio float64
	// Report, when set, is called (outside the Analyzer's lock, on the
	// goroutine of Observe) when a finding is first made and then at most
	// once per ReportEvery while it is seen again: for the log and metrics.
	Report func(Finding)
	// Changed, when set, is called after any finding changed.
	Changed func()
}

// maxSessions bounds the per-session state kept; sessions beyond it are
// analyzed without their CLNT name and TLS state.
const maxSessions = 100000

// maxRecords bounds each window's records.
const maxRecords = 4096

// Analyzer holds the observations of the last Window and the findings.
// It is safe for concurrent use.
type Analyzer struct {
	opt Options
	cls classifier

	mu       sync.Mutex
	sessions map[string]*sessionInfo
	win      map[string]*window // by rule input: "pasv-timeout", "epsv-ok", ...
	findings map[string]*Finding
	reported map[string]time.Time
	maxInUse int
	changed  bool // a finding changed since Observe last looked
}

type sessionInfo struct {
	client netip.Addr
	name   string
}

// New returns an Analyzer.
func New(o Options) *Analyzer {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.MinWrongAddress, 3)
	def(&o.MinUnreachable, 5)
	def(&o.MinUnreachableSessions, 3)
	def(&o.MinPeerMismatch, 3)
	if o.Window <= 0 {
		o.Window = 15 * time.Minute
	}
	if o.Keep <= 0 {
		o.Keep = 24 * time.Hour
	}
	if o.ReportEvery <= 0 {
		o.ReportEvery = time.Hour
	}
	if o.ExhaustionRatio <= 0 || o.ExhaustionRatio > 1 {
		o.ExhaustionRatio = 0.9
	}
	return &Analyzer{
		opt:      o,
		cls:      classifier{public: slices.Clone(o.PublicNetworks)},
		sessions: map[string]*sessionInfo{},
		win:      map[string]*window{},
		findings: map[string]*Finding{},
		reported: map[string]time.Time{},
	}
}

// Reconfigure takes the passive range, public host and public networks of
// o (after a reload); the observations and findings so far stay.
func (a *Analyzer) Reconfigure(o Options) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.opt.PassiveLo, a.opt.PassiveHi, a.opt.PublicHost = o.PassiveLo, o.PassiveHi, o.PublicHost
	a.cls = classifier{public: slices.Clone(o.PublicNetworks)}
}

// record is one observation kept in a window.
type record struct {
	t       time.Time
	session string
	client  netip.Addr
	detail  string // what the rule reports: an address, a client name
}

// window is the records of one rule input over the last Window.
type window struct{ recs []record }

func (w *window) add(r record, since time.Time) {
	w.trim(since)
	if len(w.recs) >= maxRecords {
		w.recs = w.recs[1:]
	}
	w.recs = append(w.recs, r)
}

func (w *window) trim(since time.Time) {
	i := 0
	for i < len(w.recs) && w.recs[i].t.Before(since) {
		i++
	}
	w.recs = w.recs[i:]
}

func (w *window) sessions() int {
	seen := map[string]bool{}
	for _, r := range w.recs {
		seen[r.session] = true
	}
	return len(seen)
}

// clients returns up to three distinct example clients, newest first.
func (w *window) clients() []string {
	var out []string
	for i := len(w.recs) - 1; i >= 0 && len(out) < 3; i-- {
		s := w.recs[i].client.String()
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// details counts the records by detail, most frequent first.
func (w *window) details() []string {
	n := map[string]int{}
	for _, r := range w.recs {
		n[r.detail]++
	}
	keys := make([]string, 0, len(n))
	for k := range n {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if n[keys[i]] != n[keys[j]] {
			return n[keys[i]] > n[keys[j]]
		}
		return keys[i] < keys[j]
	})
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = fmt.Sprintf("%s (%d)", k, n[k])
	}
	return out
}

// w returns the window named name, trimmed to now.
func (a *Analyzer) w(name string, now time.Time) *window {
	w := a.win[name]
	if w == nil {
		w = &window{}
		a.win[name] = w
	}
	w.trim(now.Add(-a.opt.Window))
	return w
}

// Observe takes one observation.
func (a *Analyzer) Observe(o Observation) {
	if o.Time.IsZero() {
		o.Time = time.Now()
	}
	a.mu.Lock()
	raised := a.observe(o)
	changed := a.changed
	a.changed = false
	a.mu.Unlock()
	for _, f := range raised {
		if a.opt.Report != nil {
			a.opt.Report(f)
		}
	}
	// A standing finding's counts change without a new report too.
	if changed && a.opt.Changed != nil {
		a.opt.Changed()
	}
}

// observe applies o and returns the findings to report; a.mu is held.
func (a *Analyzer) observe(o Observation) []Finding {
	now := o.Time
	since := now.Add(-a.opt.Window)
	rec := record{t: now, session: o.Session, client: o.Client.Unmap()}
	si := a.sessions[o.Session]
	switch o.Kind {
	case Connect:
		if len(a.sessions) < maxSessions {
			a.sessions[o.Session] = &sessionInfo{client: o.Client.Unmap()}
		}
		return nil
	case ClientName:
		if si != nil {
			si.name = clip(o.Name, 60)
		}
		return nil
	case Disconnect:
		delete(a.sessions, o.Session)
		return nil
	}
	var out []Finding
	switch o.Kind {
	case PassiveOpen:
		if o.Mode == "PASV" {
			adv := o.Advertised.Addr()
			if a.cls.isPublic(rec.client) && !a.cls.isPublic(adv) {
				rec.detail = adv.String()
				w := a.w("pasv-private", now)
				w.add(rec, since)
				out = a.raise(out, IDPasvPrivate, now, w, a.pasvPrivate(w, adv))
			}
		}
		if o.InUse > a.maxInUse {
			a.maxInUse = o.InUse
		}
		if size := a.rangeSize(); size > 0 && float64(o.InUse) >= a.opt.ExhaustionRatio*float64(size) {
			rec.detail = fmt.Sprintf("%d of %d", o.InUse, size)
			w := a.w("passive-busy", now)
			w.add(rec, since)
			out = a.raise(out, IDPassiveExhaust, now, w, a.exhaustion(w, o.InUse, false))
		}
	case PassiveFull:
		w := a.w("passive-busy", now)
		rec.detail = "no free port"
		w.add(rec, since)
		out = a.raise(out, IDPassiveExhaust, now, w, a.exhaustion(w, 0, true))
	case DataOpened:
		switch o.Mode {
		case "PASV":
			a.w("pasv-ok", now).add(rec, since)
		case "EPSV":
			a.w("epsv-ok", now).add(rec, since)
		}
	case DataTimeout, DataUnused:
		// Both are a passive reply nobody connected to: a client that
		// cannot reach the address gives up before its transfer command,
		// or sends it and waits.
		rec.detail = o.Local.String()
		switch o.Mode {
		case "PASV":
			a.w("pasv-timeout", now).add(rec, since)
		case "EPSV":
			a.w("epsv-timeout", now).add(rec, since)
		default:
			return nil
		}
		out = a.passiveRules(out, now)
	case DataForeign:
		rec.detail = o.Peer.Addr().Unmap().String() + " for " + rec.client.String()
		w := a.w("foreign", now)
		w.add(rec, since)
		if len(w.recs) >= a.opt.MinPeerMismatch {
			out = a.raise(out, IDPeerMismatch, now, w, a.peerMismatch(w))
		}
	case ActiveMismatch:
		target := o.Peer.Addr().Unmap()
		rec.detail = fmt.Sprintf("%s %s (%s) from %s", o.Mode, target, a.cls.class(target), rec.client)
		w := a.w("active", now)
		w.add(rec, since)
		out = a.raise(out, IDClientNAT, now, w, a.clientNAT(w))
	case ReuseRefused:
		rec.detail = rec.client.String()
		switch {
		case o.Name != "":
			rec.detail = fmt.Sprintf("%q", clip(o.Name, 60))
		case si != nil && si.name != "":
			rec.detail = fmt.Sprintf("%q", si.name)
		}
		w := a.w("reuse", now)
		w.add(rec, since)
		out = a.raise(out, IDReuseRefused, now, w, a.reuse(w))
	}
	return out
}

// passiveRules evaluates pasv_wrong_address and pasv_unreachable.
func (a *Analyzer) passiveRules(out []Finding, now time.Time) []Finding {
	pt, po := a.w("pasv-timeout", now), a.w("pasv-ok", now)
	et, eo := a.w("epsv-timeout", now), a.w("epsv-ok", now)
	if len(pt.recs) >= a.opt.MinWrongAddress && len(eo.recs) > 0 && len(po.recs) == 0 {
		out = a.raise(out, IDPasvWrong, now, pt, a.pasvWrong(pt, eo))
	}
	all := &window{recs: append(slices.Clone(pt.recs), et.recs...)}
	if len(all.recs) >= a.opt.MinUnreachable && all.sessions() >= a.opt.MinUnreachableSessions &&
		len(po.recs) == 0 && len(eo.recs) == 0 {
		out = a.raise(out, IDPasvUnreachable, now, all, a.unreachable(all, len(pt.recs), len(et.recs)))
	}
	return out
}

func (a *Analyzer) rangeSize() int {
	if a.opt.PassiveLo == 0 {
		return 0
	}
	return int(a.opt.PassiveHi) - int(a.opt.PassiveLo) + 1
}

func (a *Analyzer) rangeText() string {
	if a.opt.PassiveLo == 0 {
		return "any port (passive_ports is empty)"
	}
	return fmt.Sprintf("%d-%d", a.opt.PassiveLo, a.opt.PassiveHi)
}

func (a *Analyzer) windowText() string { return a.opt.Window.String() }

// raise updates the finding id with f's texts and the window's evidence,
// and adds it to out when it is due to be reported.
func (a *Analyzer) raise(out []Finding, id string, now time.Time, w *window, f Finding) []Finding {
	f.ID = id
	f.Count = len(w.recs)
	f.Clients = w.clients()
	f.LastSeen = now
	f.FirstSeen = now
	if old := a.findings[id]; old != nil && now.Sub(old.LastSeen) <= a.opt.Keep {
		f.FirstSeen = old.FirstSeen
	}
	a.findings[id] = &f
	a.changed = true
	if last, ok := a.reported[id]; !ok || now.Sub(last) >= a.opt.ReportEvery {
		a.reported[id] = now
		out = append(out, f)
	}
	return out
}

// Findings returns the findings seen within Keep of now, by ID.
func (a *Analyzer) Findings(now time.Time) []Finding {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []Finding
	for _, f := range a.findings {
		if now.Sub(f.LastSeen) <= a.opt.Keep {
			g := *f
			g.Clients = slices.Clone(f.Clients)
			out = append(out, g)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// ---- the texts of the findings ----

func (a *Analyzer) pasvPrivate(w *window, adv netip.Addr) Finding {
	f := Finding{
		Severity: "error",
		Summary:  "PASV tells clients from the Internet to connect to a " + a.cls.class(adv).String() + " address",
		Evidence: fmt.Sprintf("in the last %s, %d PASV replies to public clients advertised %s, a %s address they cannot reach",
			a.windowText(), len(w.recs), strings.Join(w.details(), ", "), a.cls.class(adv)),
		Setting: "public_host",
	}
	if a.opt.PublicHost == "" {
		f.Advice = "public_host is empty, so PASV advertises the address the client reached on this host, which is behind NAT: " +
			"set public_host (--public-host) to the server's public address or name. EPSV clients are not affected."
	} else {
		f.Advice = fmt.Sprintf("public_host = %q gives %s: set public_host (--public-host) to the server's public address or name. "+
			"EPSV clients are not affected.", a.opt.PublicHost, adv)
	}
	return f
}

func (a *Analyzer) pasvWrong(pt, eo *window) Finding {
	f := Finding{
		Severity: "error",
		Summary:  "PASV data connections never arrive while EPSV ones work",
		Evidence: fmt.Sprintf("in the last %s, %d PASV data connections never arrived (listeners %s), "+
			"while %d EPSV data connections succeeded and no PASV one did",
			a.windowText(), len(pt.recs), strings.Join(firstN(pt.details(), 3), ", "), len(eo.recs)),
		Setting: "public_host",
	}
	cur := "is empty (PASV advertises the address the client reached)"
	if a.opt.PublicHost != "" {
		cur = fmt.Sprintf("is %q", a.opt.PublicHost)
	}
	f.Advice = "EPSV replies carry no address and work, so the address in PASV replies is wrong: public_host " + cur +
		". Set public_host (--public-host) to the address clients connect to; if it is right, the passive range " +
		a.rangeText() + " is forwarded to another host than this one."
	return f
}

func (a *Analyzer) unreachable(all *window, pasv, epsv int) Finding {
	return Finding{
		Severity: "error",
		Summary:  "Passive data ports are not reachable",
		Evidence: fmt.Sprintf("in the last %s, %d passive data connections (%d PASV, %d EPSV) from %d sessions never arrived, "+
			"and none succeeded", a.windowText(), len(all.recs), pasv, epsv, all.sessions()),
		Setting: "passive_ports",
		Advice: "A firewall or NAT drops connections to the passive range " + a.rangeText() +
			": open and forward that TCP range to this host (and publish it in Docker or Kubernetes), " +
			"or set passive_ports (--passive-ports) to the range that is forwarded.",
	}
}

func (a *Analyzer) exhaustion(w *window, inUse int, full bool) Finding {
	size := a.rangeSize()
	ev := fmt.Sprintf("in the last %s, %d times the passive range was nearly or fully in use (%s); most listeners open at once: %d",
		a.windowText(), len(w.recs), strings.Join(firstN(w.details(), 3), ", "), a.maxInUse)
	f := Finding{
		Severity: "warning",
		Summary:  "The passive port range is nearly exhausted",
		Evidence: ev,
		Setting:  "passive_ports",
	}
	if full {
		f.Severity = "error"
		f.Summary = "The passive port range is exhausted: PASV and EPSV fail with 425"
	}
	if size > 0 {
		f.Advice = fmt.Sprintf("Widen passive_ports (--passive-ports), now %s (%d ports), and forward the new range: "+
			"it needs more ports than the transfers started in four minutes (closed ports linger in TIME_WAIT at the clients).",
			a.rangeText(), size)
	} else {
		f.Advice = "The operating system has no free port for passive listeners: raise its ephemeral range " +
			"(net.ipv4.ip_local_port_range) or set passive_ports (--passive-ports) to a wide range of its own."
	}
	return f
}

func (a *Analyzer) peerMismatch(w *window) Finding {
	return Finding{
		Severity: "error",
		Summary:  "Data connections come from another address than their control connection",
		Evidence: fmt.Sprintf("in the last %s, %d passive data connections were refused because they came from another address: %s",
			a.windowText(), len(w.recs), strings.Join(firstN(w.details(), 3), ", ")),
		Setting: "the load balancer's source-address handling (or per user: ferry user set NAME --allow-fxp)",
		Advice: "A NAT or load balancer with several outside addresses is between the clients and Ferry: make it keep one " +
			"source address per client (sticky source NAT, or TCP pass-through that keeps the client's address), or forward " +
			"with the PROXY protocol (ftp.Server.WrapListener when Ferry is embedded). For trusted users, " +
			"ferry user set NAME --allow-fxp turns the address check off.",
	}
}

func (a *Analyzer) clientNAT(w *window) Finding {
	return Finding{
		Severity: "warning",
		Summary:  "Clients send PORT/EPRT with an address other than their own (client behind NAT)",
		Evidence: fmt.Sprintf("in the last %s, %d active-mode targets refused with 504: %s",
			a.windowText(), len(w.recs), strings.Join(firstN(w.details(), 3), ", ")),
		Setting: "the client's transfer mode: passive",
		Advice: "The client is behind NAT and asks the server to connect back to its private address, which cannot work: " +
			"set the client to passive mode (FileZilla: Transfer mode Passive; curl: without -P; lftp: set ftp:passive-mode on). " +
			"Ferry accepts other targets only for users with --allow-fxp.",
	}
}

func (a *Analyzer) reuse(w *window) Finding {
	return Finding{
		Severity: "warning",
		Summary:  "Protected data connections refused: the client did not resume its TLS session",
		Evidence: fmt.Sprintf("in the last %s, %d data connections refused (522), by client: %s",
			a.windowText(), len(w.recs), strings.Join(firstN(w.details(), 5), ", ")),
		Setting: "tls_reuse_exempt",
		Advice: "These clients do not resume the control connection's TLS session on their data connections: upgrade them, " +
			"or add their networks to tls_reuse_exempt (--tls-reuse-exempt, e.g. [\"" + firstClient(w) + "/32\"]); " +
			"tls_session_reuse = \"optional\" turns the check off for every client.",
	}
}

func firstClient(w *window) string {
	if c := w.clients(); len(c) > 0 {
		return c[0]
	}
	return "192.0.2.7"
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("and %d more", len(s)-n))
	}
	return s
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

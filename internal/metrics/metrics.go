// Package metrics turns the engine's events into Prometheus metrics, served
// in the text exposition format at /metrics. Every label value comes from a
// closed set fixed at start (the command table's verbs, the event package's
// reasons, directions and results), so the number of series is bounded
// whatever clients send; per-user series are off unless asked for, and then
// capped (PerUser).
package metrics

import (
	"crypto/tls"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ferryftp/ferry/internal/event"
	"github.com/ferryftp/ferry/internal/natdiag"
)

// Options configure Metrics. The functions are called on each scrape, from
// the scraping goroutine; a nil one leaves its family out.
type Options struct {
	// Version is the build's version, for ferry_build_info.
	Version string
	// Verbs are the command table's verbs: ferry_commands_total has a
	// series per verb and reply class, any other verb counting as "other".
	Verbs []string
	// PerUser, when > 0, exports per-user transfer series for the PerUser
	// busiest users (by bytes moved since start); the rest are added up
	// under the user label OtherUser.
	PerUser int
	// Sessions reports the open control connections (ferry_sessions).
	Sessions func() int
	// PassivePorts reports the size of the passive port range; 0 when
	// the operating system picks the ports.
	PassivePorts func() int
	// PassiveInUse reports the passive listeners open now.
	PassiveInUse func() int
	// CertExpiry reports when the current TLS certificate expires.
	CertExpiry func() time.Time
	// BansActive reports the addresses banned now.
	BansActive func() int
	// NoRuntime leaves out the Go runtime and process collectors (go_*,
	// process_*), for tests that count series exactly.
	NoRuntime bool
}

// OtherUser is the user label of the users beyond the PerUser busiest: a
// value no account can have (user names hold no parentheses).
const OtherUser = "(other)"

// Metrics is a Prometheus registry fed by events: its Observe is an engine
// observer (ftp.Server.Observe).
type Metrics struct {
	reg   *prometheus.Registry
	verbs map[string]bool

	sessionsTotal   prometheus.Counter
	connRefused     *prometheus.CounterVec
	logins          *prometheus.CounterVec
	loginFailures   *prometheus.CounterVec
	commands        *prometheus.CounterVec
	transfers       *prometheus.CounterVec
	transferBytes   *prometheus.CounterVec
	transferSeconds *prometheus.HistogramVec
	dataOpened      prometheus.Counter
	dataRefused     *prometheus.CounterVec
	pasvExhausted   prometheus.Counter
	tlsHandshakes   *prometheus.CounterVec
	tlsFailures     *prometheus.CounterVec
	bans            *prometheus.CounterVec
	changes         *prometheus.CounterVec
	refusals        *prometheus.CounterVec
	reloads         *prometheus.CounterVec
	findings        *prometheus.CounterVec

	users *userCollector // nil unless PerUser > 0
}

// Closed label sets.
var (
	replyClasses     = []string{"1xx", "2xx", "3xx", "4xx", "5xx"}
	directions       = []string{"download", "upload", "list"}
	transferResults  = []string{"ok", "aborted", "failed"}
	loginMethods     = []string{"password", "certificate", "anonymous"}
	loginResults     = []string{"ok", "failed", "refused", "busy"}
	loginReasons     = event.LoginReasons
	connectReasons   = []string{"banned", "max_sessions", "max_sessions_per_ip", "other"}
	dataReasons      = []string{"wrong_peer", "active_address", "timeout", "connect_failed", "no_passive_port", "tls_reuse", "tls_failed"}
	tlsChannels      = []string{"control", "data"}
	tlsVersions      = []string{"1.2", "1.3", "other"}
	banReasons       = []string{"failed_logins", "protocol_errors"}
	changeOps        = []string{"delete", "mkdir", "rmdir", "rename", "chmod", "mtime"}
	refusalReasons   = []string{event.RefusedPermission, event.RefusedQuota, event.RefusedPattern, event.RefusedTLSRequired, event.RefusedPolicy}
	reloadResults    = []string{"success", "failure"}
	durationBuckets  = []float64{.01, .1, .5, 1, 5, 10, 30, 60, 300, 900, 3600, 21600}
	otherVerb        = "other"
	noReplyClass     = "none"
	perUserDirection = []string{"download", "upload"}
)

// New returns the metrics, every series of a closed label set present at
// zero, so that increase() sees the first event.
func New(o Options) *Metrics {
	m := &Metrics{reg: prometheus.NewPedanticRegistry(), verbs: map[string]bool{}}
	for _, v := range o.Verbs {
		m.verbs[strings.ToUpper(v)] = true
	}
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
		m.reg.MustRegister(c)
		return c
	}
	vec := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		m.reg.MustRegister(c)
		return c
	}
	gaugeFunc := func(name, help string, f func() float64) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}

	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ferry_build_info", Help: "Build information: always 1."}, []string{"version", "goversion"})
	info.WithLabelValues(o.Version, runtime.Version()).Set(1)
	m.reg.MustRegister(info)
	gaugeFunc("ferry_start_time_seconds", "When the server started, in seconds since the epoch.", func() float64 { return float64(start.Unix()) })
	if o.Sessions != nil {
		gaugeFunc("ferry_sessions", "Open control connections.", func() float64 { return float64(o.Sessions()) })
	}
	m.sessionsTotal = counter("ferry_sessions_total", "Control connections accepted.")
	m.connRefused = vec("ferry_connections_refused_total", "Control connections refused at connect, by reason.", "reason")
	m.logins = vec("ferry_logins_total", "Login attempts, by method and result.", "method", "result")
	m.loginFailures = vec("ferry_login_failures_total", "Failed or refused logins, by reason; an unknown user and a wrong password are both credentials.", "reason")
	m.commands = vec("ferry_commands_total", "Commands, by verb (the command table's, or other) and reply class (none for a transfer's, counted when it ends).", "command", "class")
	m.transfers = vec("ferry_transfers_total", "Transfers ended, by direction and result.", "direction", "result")
	m.transferBytes = vec("ferry_transfer_bytes_total", "Bytes moved by transfers, partial ones included, by direction.", "direction")
	m.transferSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "ferry_transfer_duration_seconds", Help: "Transfer durations, by direction.", Buckets: durationBuckets,
	}, []string{"direction"})
	m.reg.MustRegister(m.transferSeconds)
	m.dataOpened = counter("ferry_data_connections_opened_total", "Data connections opened.")
	m.dataRefused = vec("ferry_data_connections_refused_total", "Data connections refused or failed, by reason.", "reason")
	if o.PassivePorts != nil {
		gaugeFunc("ferry_passive_ports", "Ports in the passive range; 0 when the operating system picks them.", func() float64 { return float64(o.PassivePorts()) })
	}
	if o.PassiveInUse != nil {
		gaugeFunc("ferry_passive_ports_in_use", "Passive listeners open now.", func() float64 { return float64(o.PassiveInUse()) })
	}
	m.pasvExhausted = counter("ferry_passive_port_exhausted_total", "PASV and EPSV refused because no passive port was free.")
	m.tlsHandshakes = vec("ferry_tls_handshakes_total", "TLS handshakes completed, by channel and version.", "channel", "version")
	m.tlsFailures = vec("ferry_tls_handshake_failures_total", "TLS handshakes failed, by channel.", "channel")
	if o.CertExpiry != nil {
		gaugeFunc("ferry_tls_certificate_expiry_timestamp_seconds", "When the current TLS certificate expires, in seconds since the epoch.", func() float64 {
			return float64(o.CertExpiry().Unix())
		})
	}
	m.bans = vec("ferry_bans_total", "Addresses banned, by reason.", "reason")
	if o.BansActive != nil {
		gaugeFunc("ferry_bans_active", "Addresses banned now.", func() float64 { return float64(o.BansActive()) })
	}
	m.changes = vec("ferry_changes_total", "Changes clients made to their trees, by operation.", "op")
	m.refusals = vec("ferry_refusals_total", "Operations refused by policy, by reason.", "reason")
	m.reloads = vec("ferry_config_reloads_total", "Configuration reloads, by result.", "result")
	m.findings = vec("ferry_nat_findings_total", "Passive-mode and NAT problems the diagnosis reported (ferry diagnose), by finding.", "finding")
	if !o.NoRuntime {
		m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	if o.PerUser > 0 {
		m.users = newUserCollector(o.PerUser)
		m.reg.MustRegister(m.users)
	}

	// Every series of a closed set, at zero.
	for _, r := range connectReasons {
		m.connRefused.WithLabelValues(r)
	}
	for _, meth := range loginMethods {
		for _, r := range loginResults {
			m.logins.WithLabelValues(meth, r)
		}
	}
	for _, r := range loginReasons {
		m.loginFailures.WithLabelValues(r)
	}
	for _, d := range directions {
		m.transferBytes.WithLabelValues(d)
		m.transferSeconds.WithLabelValues(d)
		for _, r := range transferResults {
			m.transfers.WithLabelValues(d, r)
		}
	}
	for _, r := range dataReasons {
		m.dataRefused.WithLabelValues(r)
	}
	for _, ch := range tlsChannels {
		m.tlsFailures.WithLabelValues(ch)
		for _, v := range tlsVersions {
			m.tlsHandshakes.WithLabelValues(ch, v)
		}
	}
	for _, r := range banReasons {
		m.bans.WithLabelValues(r)
	}
	for _, op := range changeOps {
		m.changes.WithLabelValues(op)
	}
	for _, r := range refusalReasons {
		m.refusals.WithLabelValues(r)
	}
	for _, r := range reloadResults {
		m.reloads.WithLabelValues(r)
	}
	for _, id := range natdiag.IDs {
		m.findings.WithLabelValues(id)
	}
	return m
}

var start = time.Now()

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Gatherer is the registry, for tests and embedders.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// Reloaded counts a configuration reload: err nil for one that took effect.
// The reload command calls it.
func (m *Metrics) Reloaded(err error) {
	if err != nil {
		m.reloads.WithLabelValues("failure").Inc()
		return
	}
	m.reloads.WithLabelValues("success").Inc()
}

// Observe counts one event. It is an engine observer: it runs on the
// observer's own goroutine, never a session's.
func (m *Metrics) Observe(e event.Event) {
	switch e.Kind {
	case event.KindConnect:
		if e.Result == "ok" {
			m.sessionsTotal.Inc()
			return
		}
		m.connRefused.WithLabelValues(connectReason(e.Reason)).Inc()
	case event.KindLogin:
		method := e.Method
		if !slices.Contains(loginMethods, method) {
			method = "password"
		}
		result := e.Result
		if !slices.Contains(loginResults, result) {
			result = "failed"
		}
		m.logins.WithLabelValues(method, result).Inc()
		if result == "failed" || result == "refused" {
			m.loginFailures.WithLabelValues(event.LoginReason(e)).Inc()
		}
	case event.KindCommand:
		if e.Code != 0 {
			m.commands.WithLabelValues(m.verb(e.Cmd), replyClass(e.Code)).Inc()
		}
	case event.KindTransfer:
		dir := e.Direction
		if !slices.Contains(directions, dir) {
			return
		}
		result := e.Result
		if !slices.Contains(transferResults, result) {
			result = "failed"
		}
		m.commands.WithLabelValues(m.verb(e.Cmd), replyClass(e.Code)).Inc()
		m.transfers.WithLabelValues(dir, result).Inc()
		m.transferBytes.WithLabelValues(dir).Add(float64(e.Bytes))
		m.transferSeconds.WithLabelValues(dir).Observe(e.Duration.Seconds())
		if m.users != nil && dir != "list" && e.User != "" {
			m.users.add(e.User, dir, e.Bytes)
		}
	case event.KindData:
		if e.Result == "opened" {
			m.dataOpened.Inc()
			return
		}
		if r := dataReason(e.Reason); r != "" {
			m.dataRefused.WithLabelValues(r).Inc()
			if r == "no_passive_port" {
				m.pasvExhausted.Inc()
			}
		}
	case event.KindTLS:
		ch := "control"
		if e.Conn == "data" {
			ch = "data"
		}
		switch e.Result {
		case "ok":
			v := "other"
			if e.TLS != nil {
				switch e.TLS.Version {
				case tls.VersionTLS12:
					v = "1.2"
				case tls.VersionTLS13:
					v = "1.3"
				}
			}
			m.tlsHandshakes.WithLabelValues(ch, v).Inc()
		case "refused":
			// The handshake completed, then the reuse policy refused it.
			m.dataRefused.WithLabelValues("tls_reuse").Inc()
		default:
			m.tlsFailures.WithLabelValues(ch).Inc()
			if ch == "data" {
				m.dataRefused.WithLabelValues("tls_failed").Inc()
			}
		}
	case event.KindBan:
		m.bans.WithLabelValues(event.BanReason(e)).Inc()
	case event.KindChange:
		if op := changeOp(e.Cmd); op != "" {
			m.changes.WithLabelValues(op).Inc()
		}
	case event.KindRefused:
		if slices.Contains(refusalReasons, e.Reason) {
			m.refusals.WithLabelValues(e.Reason).Inc()
		}
	case event.KindFinding:
		if slices.Contains(natdiag.IDs, e.Reason) {
			m.findings.WithLabelValues(e.Reason).Inc()
		}
	}
}

// verb is the command label of a verb: itself when in the table, else
// "other".
func (m *Metrics) verb(v string) string {
	if v = strings.ToUpper(v); m.verbs[v] {
		return v
	}
	return otherVerb
}

func replyClass(code int) string {
	if code >= 100 && code < 600 {
		return replyClasses[code/100-1]
	}
	return noReplyClass
}

// connectReason maps the engine's refusal of a connection to its label.
func connectReason(r string) string {
	switch {
	case r == "banned":
		return "banned"
	case strings.Contains(r, "Too many users"):
		return "max_sessions"
	case strings.Contains(r, "from your address"):
		return "max_sessions_per_ip"
	}
	return "other"
}

func dataReason(r string) string {
	switch r {
	case event.DataForeignAddress:
		return "wrong_peer"
	case event.DataActiveAddress:
		return "active_address"
	case event.DataTimeout:
		return "timeout"
	case event.DataConnectFailed:
		return "connect_failed"
	case event.DataNoPassivePort:
		return "no_passive_port"
	}
	return ""
}

func changeOp(cmd string) string {
	switch cmd {
	case "DELE":
		return "delete"
	case "MKD", "XMKD":
		return "mkdir"
	case "RMD", "XRMD":
		return "rmdir"
	case "RNTO":
		return "rename"
	case "SITE CHMOD":
		return "chmod"
	case "MFMT", "MDTM":
		return "mtime"
	}
	return ""
}

// ---- per-user series ----

// userCollector exports the bytes moved by the max busiest users and folds
// the others into OtherUser. It keeps a total per user that has moved data
// (accounts, never names clients try), and picks the busiest at each
// scrape: when the set changes, OtherUser's counter can go down, which
// Prometheus reads as a counter reset.
type userCollector struct {
	max   int
	desc  *prometheus.Desc
	mu    sync.Mutex
	bytes map[string]*[2]int64 // guarded by mu: download, upload
}

func newUserCollector(max int) *userCollector {
	return &userCollector{
		max:   max,
		desc:  prometheus.NewDesc("ferry_user_transfer_bytes_total", "Bytes moved by the busiest users' transfers, by direction; the other users are added up as user=\""+OtherUser+"\".", []string{"user", "direction"}, nil),
		bytes: map[string]*[2]int64{},
	}
}

func (u *userCollector) add(user, dir string, n int64) {
	i := 0
	if dir == "upload" {
		i = 1
	}
	u.mu.Lock()
	b := u.bytes[user]
	if b == nil {
		b = new([2]int64)
		u.bytes[user] = b
	}
	b[i] += n
	u.mu.Unlock()
}

func (u *userCollector) Describe(ch chan<- *prometheus.Desc) { ch <- u.desc }

func (u *userCollector) Collect(ch chan<- prometheus.Metric) {
	type total struct {
		user string
		b    [2]int64
	}
	u.mu.Lock()
	all := make([]total, 0, len(u.bytes))
	for name, b := range u.bytes {
		all = append(all, total{name, *b})
	}
	u.mu.Unlock()
	slices.SortFunc(all, func(a, b total) int {
		if d := (b.b[0] + b.b[1]) - (a.b[0] + a.b[1]); d != 0 {
			if d > 0 {
				return 1
			}
			return -1
		}
		return strings.Compare(a.user, b.user)
	})
	var other [2]int64
	for i, t := range all {
		if i >= u.max {
			other[0] += t.b[0]
			other[1] += t.b[1]
			continue
		}
		for d, dir := range perUserDirection {
			ch <- prometheus.MustNewConstMetric(u.desc, prometheus.CounterValue, float64(t.b[d]), t.user, dir)
		}
	}
	for d, dir := range perUserDirection {
		ch <- prometheus.MustNewConstMetric(u.desc, prometheus.CounterValue, float64(other[d]), OtherUser, dir)
	}
}

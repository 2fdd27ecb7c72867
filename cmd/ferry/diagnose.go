package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ferryftp/ferry/internal/config"
	"github.com/ferryftp/ferry/internal/escape"
	"github.com/ferryftp/ferry/internal/ftp"
	"github.com/ferryftp/ferry/internal/natdiag"
)

// diagnosis is the running server's NAT diagnosis.
type diagnosis struct {
	a      *natdiag.Analyzer
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	rep    natdiag.Report // PID and start; guarded by mu
}

// diagOptions are the analyzer's settings from cfg.
func diagOptions(cfg config.Config) natdiag.Options {
	lo, hi := cfg.PassiveRange()
	return natdiag.Options{
		PassiveLo:      uint16(lo),
		PassiveHi:      uint16(hi),
		PublicHost:     cfg.PublicHost,
		PublicNetworks: cfg.DiagnosePublicPrefixes(),
	}
}

// startDiagnosis feeds the server's events to a NAT diagnosis: findings
// are logged (at most once an hour each), published as KindFinding events
// (for metrics) and kept in DATA/diagnostics.json for `ferry diagnose`
// until stop.
func startDiagnosis(srv *ftp.Server, cfg config.Config, log *slog.Logger) *diagnosis {
	changed := make(chan struct{}, 1)
	o := diagOptions(cfg)
	o.Report = func(f natdiag.Finding) {
		log.Warn("NAT diagnosis: "+f.Summary, "finding", f.ID, "evidence", f.Evidence,
			"setting", f.Setting, "advice", f.Advice)
		srv.Publish(ftp.Event{Kind: ftp.KindFinding, Reason: f.ID, Detail: f.Summary})
	}
	o.Changed = func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &diagnosis{a: natdiag.New(o), cancel: cancel, done: make(chan struct{})}
	sub := srv.Observe(ftp.ObserverFunc(func(e ftp.Event) {
		if o, ok := observation(e); ok {
			d.a.Observe(o)
		}
	}), 0)
	file := filepath.Join(cfg.Data, natdiag.FileName)
	d.rep = natdiag.Report{PID: os.Getpid(), Started: time.Now().UTC()}
	write := func(stopped bool) {
		rep := d.report()
		rep.Stopped = stopped
		if err := natdiag.WriteReport(file, rep); err != nil {
			log.Warn("NAT diagnosis: cannot write the findings file", "err", err)
		}
	}
	go func() {
		defer close(d.done)
		defer srv.StopObserving(sub)
		tick := time.NewTicker(natdiag.HeartbeatEvery)
		defer tick.Stop()
		write(false)
		for {
			select {
			case <-changed:
				write(false)
			case <-tick.C:
				write(false)
			case <-ctx.Done():
				write(true)
				return
			}
		}
	}()
	return d
}

// report is the findings as of now.
func (d *diagnosis) report() natdiag.Report {
	d.mu.Lock()
	rep := d.rep
	d.mu.Unlock()
	rep.Updated = time.Now().UTC()
	rep.Findings = d.a.Findings(time.Now())
	return rep
}

// diagnoseJSON answers the control socket's "diagnose": the findings as
// of now, as JSON.
func (d *daemon) diagnoseJSON() (string, error) {
	if d.diag == nil {
		return "", errors.New("no NAT diagnosis runs")
	}
	b, err := json.Marshal(d.diag.report())
	return string(b), err
}

// reconfigure applies a reloaded configuration's passive range, public
// host and public networks to the analysis.
func (d *diagnosis) reconfigure(cfg config.Config) {
	if d != nil {
		d.a.Reconfigure(diagOptions(cfg))
	}
}

// stop ends the diagnosis after the server: the findings file is written a
// last time, marked stopped.
func (d *diagnosis) stop() {
	d.cancel()
	<-d.done
}

// observation turns an engine event into what the diagnosis reads.
func observation(e ftp.Event) (natdiag.Observation, bool) {
	o := natdiag.Observation{Time: e.Time, Session: e.Session, Client: e.Remote.Addr().Unmap(), Mode: e.Cmd}
	switch e.Kind {
	case ftp.KindConnect:
		if e.Result != "ok" {
			return o, false
		}
		o.Kind, o.Local = natdiag.Connect, e.Local
	case ftp.KindDisconnect:
		o.Kind = natdiag.Disconnect
	case ftp.KindClient:
		o.Kind, o.Name, o.Mode = natdiag.ClientName, e.Client, ""
	case ftp.KindTLS:
		if e.Conn != "data" || e.Result != "refused" {
			return o, false
		}
		o.Kind, o.Mode, o.Name = natdiag.ReuseRefused, "", e.Client
	case ftp.KindData:
		o.Local, o.Peer = e.Local, e.Peer
		switch e.Result {
		case "listening":
			o.Kind, o.Advertised, o.InUse, o.Peer = natdiag.PassiveOpen, e.Peer, e.InUse, netip.AddrPort{}
		case "opened":
			o.Kind = natdiag.DataOpened
		case "unused":
			o.Kind = natdiag.DataUnused
		case "refused":
			switch e.Reason {
			case "timeout":
				o.Kind = natdiag.DataTimeout
			case "foreign address":
				o.Kind = natdiag.DataForeign
			case "active address":
				o.Kind = natdiag.ActiveMismatch
			case "no passive port":
				o.Kind = natdiag.PassiveFull
			default:
				return o, false
			}
		default:
			return o, false
		}
	default:
		return o, false
	}
	return o, true
}

const diagnoseUsage = `Usage:
  ferry diagnose [--data DIR] [--json]   print a running server's NAT and passive-mode findings

It asks the server running on the data directory DIR (default ./ferry-data)
through its control socket DIR/ferry.sock; when none answers, it reads
DIR/diagnostics.json, which the server rewrites when a finding changes and
every minute, and marks stopped at shutdown. Exit status: 0 no findings, 1
at least one, 2 usage error, or no server and no findings file.
`

// runDiagnose runs `ferry diagnose` (args start after "diagnose").
func runDiagnose(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("ferry diagnose", flag.ContinueOnError)
	fset.SetOutput(stderr)
	fset.Usage = func() { io.WriteString(stderr, diagnoseUsage) }
	data := fset.String("data", config.Defaults().Data, "data directory of the server")
	asJSON := fset.Bool("json", false, "print the findings file as JSON")
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fset.NArg() > 0 {
		fmt.Fprintf(stderr, "ferry diagnose: unexpected argument %q\n%s", escape.Display(fset.Arg(0)), diagnoseUsage)
		return 2
	}
	rep, live, err := readFindings(*data)
	if err != nil {
		fmt.Fprintf(stderr, "ferry diagnose: %s\n(is a server running with --data %s?)\n", errText(err), escape.Display(*data))
		return 2
	}
	status := 0
	if len(rep.Findings) > 0 {
		status = 1
	}
	if *asJSON {
		b, _ := json.MarshalIndent(rep, "", "  ")
		fmt.Fprintf(stdout, "%s\n", b)
		return status
	}
	age := time.Since(rep.Updated).Round(time.Second)
	switch {
	case rep.Stopped:
		fmt.Fprintf(stdout, "The server (pid %d) stopped at %s; its last findings:\n", rep.PID, rep.Updated.Format(time.RFC3339))
	case age > 3*natdiag.HeartbeatEvery:
		fmt.Fprintf(stdout, "Warning: the findings file was last written %s ago (pid %d): the server may not be running.\n", age, rep.PID)
	case live:
		fmt.Fprintf(stdout, "Server pid %d, running since %s; findings as of now (%s, from its control socket).\n", rep.PID,
			rep.Started.Format(time.RFC3339), rep.Updated.Format(time.RFC3339))
	default:
		fmt.Fprintf(stdout, "Server pid %d, running since %s; findings as of %s (from %s).\n", rep.PID,
			rep.Started.Format(time.RFC3339), rep.Updated.Format(time.RFC3339), natdiag.FileName)
	}
	if len(rep.Findings) == 0 {
		fmt.Fprintln(stdout, "No problems found with passive mode, NAT or TLS session reuse.")
		return 0
	}
	for _, f := range rep.Findings {
		fmt.Fprintf(stdout, "\n[%s] %s: %s\n", strings.ToUpper(f.Severity), f.ID, escape.Display(f.Summary))
		fmt.Fprintf(stdout, "  evidence: %s\n", escape.Display(f.Evidence))
		if len(f.Clients) > 0 {
			fmt.Fprintf(stdout, "  clients:  %s\n", escape.Display(strings.Join(f.Clients, ", ")))
		}
		fmt.Fprintf(stdout, "  seen:     %s to %s\n", f.FirstSeen.UTC().Format(time.RFC3339), f.LastSeen.UTC().Format(time.RFC3339))
		fmt.Fprintf(stdout, "  setting:  %s\n", escape.Display(f.Setting))
		fmt.Fprintf(stdout, "  fix:      %s\n", escape.Display(f.Advice))
	}
	return status
}

// readFindings asks the running server on data for its findings through
// the control socket (live is true then), or reads the findings file.
func readFindings(data string) (rep natdiag.Report, live bool, err error) {
	a, serr := askControl(filepath.Join(data, controlSocketName), "diagnose")
	if serr == nil && a.OK {
		if err := json.Unmarshal([]byte(a.Message), &rep); err == nil {
			return rep, true, nil
		}
	}
	rep, err = natdiag.ReadReport(filepath.Join(data, natdiag.FileName))
	return rep, false, err
}

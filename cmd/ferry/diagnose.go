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
	rep := natdiag.Report{PID: os.Getpid(), Started: time.Now().UTC()}
	write := func(stopped bool) {
		rep.Updated, rep.Stopped = time.Now().UTC(), stopped
		rep.Findings = d.a.Findings(time.Now())
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

A running server keeps what it diagnosed in DIR/diagnostics.json (default
./ferry-data), rewritten when a finding changes and every minute. Exit
status: 0 no findings, 1 at least one, 2 usage error or no findings file.
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
	name := filepath.Join(*data, natdiag.FileName)
	rep, err := natdiag.ReadReport(name)
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
	default:
		fmt.Fprintf(stdout, "Server pid %d, running since %s; findings as of %s.\n", rep.PID,
			rep.Started.Format(time.RFC3339), rep.Updated.Format(time.RFC3339))
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

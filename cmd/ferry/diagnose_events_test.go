package main

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ferryftp/ferry/internal/config"
	"github.com/ferryftp/ferry/internal/ftp"
	"github.com/ferryftp/ferry/internal/natdiag"
)

// TestDiagnosisPublishesFindings: a finding reaches the other observers
// (metrics) as a KindFinding event naming it, once per report.
func TestDiagnosisPublishesFindings(t *testing.T) {
	srv := &ftp.Server{}
	if err := srv.SetSite(&ftp.Site{
		Settings: ftp.Settings{Banner: "x", Anonymous: true, AnonymousRoot: t.TempDir(), LoginTimeout: testDeadline,
			IdleTimeout: testDeadline, DataTimeout: testDeadline, MaxLineBytes: 4096, MaxLoginFailures: 3},
		Auth: refuseAll{},
	}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []ftp.Event
	srv.Observe(ftp.ObserverFunc(func(e ftp.Event) {
		if e.Kind == ftp.KindFinding {
			mu.Lock()
			got = append(got, e)
			mu.Unlock()
		}
	}), 0)
	cfg := config.Defaults()
	cfg.Data = t.TempDir()
	cfg.PassivePorts = "0"
	d := startDiagnosis(srv, cfg, slog.New(slog.DiscardHandler))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln, false)
	f, _, _, err := dialFTP(ln.Addr().String(), testDeadline)
	if err != nil {
		t.Fatal(err)
	}
	mustCmd(t, f, 331, "USER anonymous")
	mustCmd(t, f, 230, "PASS x@example.com")
	mustCmd(t, f, 504, "PORT 10,1,2,3,200,1")
	mustCmd(t, f, 504, "PORT 10,1,2,3,200,2") // seen again within the hour: not reported again
	mustCmd(t, f, 221, "QUIT")
	f.Close()
	srv.Shutdown(context.Background())
	d.stop()
	deadline := time.Now().Add(testDeadline)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0].Reason != natdiag.IDClientNAT || got[0].Detail == "" {
		t.Fatalf("finding events %+v", got)
	}
	rep, err := natdiag.ReadReport(filepath.Join(cfg.Data, natdiag.FileName))
	if err != nil || !rep.Stopped || len(rep.Findings) != 1 || rep.Findings[0].Count != 2 {
		t.Errorf("report %+v %v", rep, err)
	}
}

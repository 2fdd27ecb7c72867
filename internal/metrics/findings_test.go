package metrics_test

import (
	"strings"
	"testing"

	"github.com/ferryftp/ferry/internal/ftp"
	"github.com/ferryftp/ferry/internal/metrics"
	"github.com/ferryftp/ferry/internal/natdiag"
)

// A diagnosis published on the server (as ferry serve publishes natdiag's
// findings) is counted by finding; an ID outside the closed set is not.
func TestFindingsCounted(t *testing.T) {
	s := start(t, metrics.Options{})
	out := s.scrape(t)
	for _, id := range natdiag.IDs {
		if !strings.Contains(out, `ferry_nat_findings_total{finding="`+id+`"} 0`) {
			t.Errorf("no zero series for %s", id)
		}
	}
	s.srv.Publish(ftp.Event{Kind: ftp.KindFinding, Reason: natdiag.IDPasvWrong, Detail: "PASV data never arrives"})
	s.srv.Publish(ftp.Event{Kind: ftp.KindFinding, Reason: natdiag.IDPasvWrong, Detail: "again"})
	s.srv.Publish(ftp.Event{Kind: ftp.KindFinding, Reason: "made_up", Detail: "not a finding"})
	out = s.scrape(t)
	if !strings.Contains(out, `ferry_nat_findings_total{finding="pasv_wrong_address"} 2`) {
		t.Errorf("pasv_wrong_address not counted twice:\n%s", grepLines(out, "ferry_nat_findings_total"))
	}
	if strings.Contains(out, "made_up") {
		t.Error("an unknown finding ID became a label")
	}
	promtool(t, out)
}

func grepLines(out, prefix string) string {
	var b strings.Builder
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

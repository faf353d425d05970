package daemon

import (
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tcpcryptd/tcpcrypt/rules"
)

func TestRulesWithSource(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Rules = []rules.Policy{{Port: 443, Side: rules.SideLocal}}
	cfg.RulesFrom = "/etc/tcpcrypt/tcpcryptd.conf"
	d := newDaemon(cfg, slog.New(slog.DiscardHandler))
	d.stateRules = []rules.Policy{{Port: 25, Side: rules.SideRemote, Mode: rules.ModeRequired}}
	d.internal = []rules.Policy{{Port: 7, Side: rules.SideLocal}}
	want := []SourcedRule{
		{rules.Policy{Port: 443, Side: rules.SideLocal}, "/etc/tcpcrypt/tcpcryptd.conf"},
		{rules.Policy{Port: 25, Side: rules.SideRemote, Mode: rules.ModeRequired}, SourceState},
		{rules.Policy{Port: 7, Side: rules.SideLocal}, SourceDaemon},
	}
	if diff := cmp.Diff(want, d.RulesWithSource(), cmp.Comparer(func(a, b rules.Policy) bool { return a == b })); diff != "" {
		t.Errorf("RulesWithSource (-want +got):\n%s", diff)
	}
	d.cfg.RulesFrom = ""
	if got := d.RulesWithSource()[0].Source; got != SourceCommandLine {
		t.Errorf("rules without a file: source %q, want %q", got, SourceCommandLine)
	}
}

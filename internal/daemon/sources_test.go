package daemon

import (
	"fmt"
	"log/slog"
	"slices"
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

// TestBackendRulesSource: rules.list names each operator rule's source and
// leaves out the daemon's own ports.
func TestBackendRulesSource(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Rules = []rules.Policy{{Port: 443, Side: rules.SideLocal}}
	cfg.RulesFrom = "/etc/tcpcrypt/tcpcryptd.conf"
	d := newDaemon(cfg, slog.New(slog.DiscardHandler))
	d.stateRules = []rules.Policy{{Port: 25, Side: rules.SideRemote, Mode: rules.ModeRequired}}
	d.internal = []rules.Policy{{Port: 7, Side: rules.SideLocal}}
	got, err := backend{d}.Rules(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var srcs []string
	for _, r := range got {
		srcs = append(srcs, fmt.Sprintf("%d %s", r.Port, r.Source))
	}
	if want := []string{"443 /etc/tcpcrypt/tcpcryptd.conf", "25 state"}; !slices.Equal(srcs, want) {
		t.Errorf("rules.list sources %q, want %q", srcs, want)
	}
}

package daemon

import (
	"context"
	"maps"
	"testing"

	"github.com/tcpcryptd/tcpcrypt/ctl"
	"github.com/tcpcryptd/tcpcrypt/rules"
)

// ruleCounts follows the rules by origin as they change: configured, added
// at run time (state file), internal and temporary.
func TestRuleCounts(t *testing.T) {
	d, _, _ := testDaemon(t, 1)
	d.cfg.Rules = []rules.Policy{{Port: 443, Side: rules.SideLocal, Mode: rules.ModeOpportunistic}}
	want := map[string]int{"config": 1, "state": 0, "internal": 0, "temporary": 0}
	if got := d.ruleCounts(); !maps.Equal(got, want) {
		t.Fatalf("ruleCounts = %v, want %v", got, want)
	}
	if err := (backend{d}).AddRule(context.Background(), ctl.Rule{Port: 25, Side: "remote", Mode: "opportunistic"}); err != nil {
		t.Fatal(err)
	}
	id, err := d.addTemp(rules.Policy{Port: 7, Side: rules.SideLocal, Mode: rules.ModeOpportunistic})
	if err != nil {
		t.Fatal(err)
	}
	want["state"], want["temporary"] = 1, 1
	if got := d.ruleCounts(); !maps.Equal(got, want) {
		t.Errorf("after a rule added and a temporary one: %v, want %v", got, want)
	}
	d.removeTemp(id)
	want["temporary"] = 0
	if got := d.ruleCounts(); !maps.Equal(got, want) {
		t.Errorf("after the temporary rule went: %v, want %v", got, want)
	}
}

// The metrics options carry the daemon's own readiness, which starts as
// "starting" and follows SetReady.
func TestMetricsOptionsReadiness(t *testing.T) {
	d, _, _ := testDaemon(t, 1)
	o := d.metricsOptions(d.cfg, nil)
	if o.Readiness != &d.ready || o.Live == nil || o.Rules == nil || o.Version != "test" {
		t.Fatalf("metricsOptions = %+v: readiness, table check, rules or version missing", o)
	}
	if ok, why := o.Readiness.State(); ok || why != "starting" {
		t.Errorf("before Run is ready: %v %q, want not ready, starting", ok, why)
	}
	d.ready.SetReady()
	if ok, _ := o.Readiness.State(); !ok {
		t.Error("SetReady on the daemon does not reach the metrics options")
	}
}

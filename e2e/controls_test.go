package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// TestE2EResumeControls drives RFC 8548 §3.5's per-connection controls
// through real daemons: the second connection resumes the first's session;
// after `tcpcryptctl flush-cache` of the second, the third is a fresh key
// exchange; the fourth resumes the third's; under a rule with the noresume
// option the fifth is fresh again although a cached secret exists.
func TestE2EResumeControls(t *testing.T) {
	a, b := pair(t)
	a.startDaemon(t)
	b.startDaemon(t, "--rule", fmt.Sprintf("%d:both", port))
	a.mustCtl(t, "rules", "add", fmt.Sprint(port), "--side", "both")
	srv := b.serve(t, ap(b.v4, port))
	conn := func(i int, wantResumed bool) heldRun {
		t.Helper()
		r := runHeld(t, a, b, srv, ap(b.v4, port), "64K")
		checkIntact(t, r, 64<<10)
		checkEncrypted(t, r)
		if len(r.cliRows) != 1 || r.cliRows[0].Resumed != wantResumed {
			t.Fatalf("connection %d: client rows %+v, want one with resumed=%v", i, r.cliRows, wantResumed)
		}
		return r
	}
	conn(1, false)
	r2 := conn(2, true)
	// The connection has closed but its flow lingers: flush what it cached.
	out := a.mustCtl(t, "flush-cache", r2.held.Local, r2.held.Remote)
	if want := fmt.Sprintf("flushed 1 %s -> %s\n", r2.held.Local, r2.held.Remote); out != want {
		t.Fatalf("flush-cache printed %q, want %q", out, want)
	}
	conn(3, false)
	conn(4, true)
	a.mustCtl(t, "rules", "del", fmt.Sprint(port), "--side", "both")
	a.mustCtl(t, "rules", "add", fmt.Sprint(port), "--side", "both", "--option", "noresume")
	if rs := a.rules(t); len(rs) != 1 || len(rs[0].Options) != 1 || rs[0].Options[0] != "noresume" {
		t.Fatalf("rules after the change: %+v", rs)
	}
	conn(5, false)
	if n := a.counter(t, "engine_flows_resumed"); n != 2 {
		t.Errorf("client daemon resumed %d flows, want 2", n)
	}
	// A connection the daemon does not track: exit status 1, with the reason.
	if out, err := a.ctl(t, "flush-cache", "192.0.2.1:1", "192.0.2.2:2"); err == nil || !strings.Contains(out+err.Error(), "not tracked") {
		t.Errorf("flush-cache of an unknown connection: %q, %v", out, err)
	}
}

// TestE2EAppAwareRule: a rule with the appaware option (RFC 8547 §4.2
// mandatory application-aware mode) at the client falls back to plain TCP
// against a daemon that sends a = 0 (counted as app_aware_required), and
// encrypts once the server's rule has the option too (both send a = 1).
func TestE2EAppAwareRule(t *testing.T) {
	a, b := pair(t)
	a.startDaemon(t, "--rule", fmt.Sprintf("%d:both+appaware", port))
	b.startDaemon(t)
	b.mustCtl(t, "rules", "add", fmt.Sprint(port), "--side", "both")
	srv := b.serve(t, ap(b.v4, port))
	r := runHeld(t, a, b, srv, ap(b.v4, port), "64K")
	checkIntact(t, r, 64<<10)
	checkPlain(t, r)
	if n := a.counter(t, "engine_fallback_app_aware_required"); n != 1 {
		t.Errorf("client fallbacks for app-aware mode: %d, want 1", n)
	}
	b.mustCtl(t, "rules", "del", fmt.Sprint(port), "--side", "both")
	b.mustCtl(t, "rules", "add", fmt.Sprint(port), "--side", "both", "--option", "appaware")
	r = runHeld(t, a, b, srv, ap(b.v4, port), "64K")
	checkIntact(t, r, 64<<10)
	checkEncrypted(t, r)
}

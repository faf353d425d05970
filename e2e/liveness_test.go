package e2e

import (
	"testing"
	"time"
)

// TestE2ELiveness: an idle encrypted connection between two real daemons is
// probed by rekeys (RFC 8548 §3.9): a's daemon, with --liveness 1s, starts a
// rekey with an empty frame each idle second; b's daemon, which does not
// probe (--liveness 1h), answers every one under its own new key (§3.8). The
// connection stays encrypted and intact across the probes.
func TestE2ELiveness(t *testing.T) {
	a, b := pair(t)
	a.startDaemon(t, "--rule", "5001:both", "--liveness", "1s")
	b.startDaemon(t, "--rule", "5001:both", "--liveness", "1h")
	t.Cleanup(func() { a.logCounters(t); b.logCounters(t) })
	srv := b.serve(t, ap(b.v4, port))
	p := a.send(t, ap(b.v4, port), true, "-up", "64K", "-down", "64K")
	held := waitHeld(t, p, 30*time.Second, a, b)
	p.waitEvent(t, 10*time.Second, "holding", 1)
	sess := waitSession(t, a, port, 10*time.Second)
	probes0, answers0 := a.counter(t, "engine_liveness_probes"), b.counter(t, "engine_rekeys")

	time.Sleep(3500 * time.Millisecond) // idle: no application bytes either way

	probes := a.counter(t, "engine_liveness_probes") - probes0
	answers := b.counter(t, "engine_rekeys") - answers0
	t.Logf("3.5 s idle: a sent %d liveness probes, b answered %d rekeys", probes, answers)
	if probes < 2 || probes > 4 {
		t.Errorf("a probed %d times in 3.5 s of idleness at --liveness 1s; want 2 to 4", probes)
	}
	if answers != probes {
		t.Errorf("b answered %d rekeys to a's %d probes", answers, probes)
	}
	if n := b.counter(t, "engine_liveness_probes"); n != 0 {
		t.Errorf("b (--liveness 1h) probed %d times", n)
	}
	for _, h := range []*host{a, b} {
		for _, name := range []string{"engine_abort_auth_failed", "engine_abort_retransmit_limit", "engine_abort_idle_timeout"} {
			if n := h.counter(t, name); n != 0 {
				t.Errorf("%s: %s = %d", h.name, name, n)
			}
		}
	}
	after := waitSession(t, a, port, 5*time.Second)
	if after.SessionID.String() != sess.SessionID.String() || after.Local != held.local() {
		t.Errorf("after the probes a lists %+v, want the same connection and session %s", after, sess.SessionID)
	}

	p.closeStdin()
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("transfer after the idle probes failed (exit %d): %s", code, tail(p.out.String(), 10))
	}
	srv.waitEvent(t, 20*time.Second, "conn", 1)
	if c := p.events(t, "conn"); len(c) != 1 || c[0].SessionID == "" {
		t.Errorf("client report %+v: want one encrypted connection", c)
	}
}

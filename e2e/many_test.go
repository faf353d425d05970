package e2e

import (
	"testing"
	"time"
)

// TestE2EManyConnections makes 1,000 short connections (8 at a time), then
// holds 100 open at once: every one completes intact and encrypted, the
// applications see a session id for each, tcnetstat lists all 100 held
// connections with matching session ids on both hosts (no truncated
// listing), and the daemons count every encrypted flow.
func TestE2EManyConnections(t *testing.T) {
	a, b := pair(t)
	a.startDaemon(t, "--rule", "5001:both")
	b.startDaemon(t, "--rule", "5001:both")
	defer a.logCounters(t)
	defer b.logCounters(t)
	addr := ap(b.v4, port)
	b.serve(t, addr, "-quiet")

	t.Run("1000 short", func(t *testing.T) {
		start := time.Now()
		_, sum := a.sendWait(t, addr, 150*time.Second, "-n", "1000", "-p", "8", "-up", "2K", "-down", "2K", "-quiet")
		t.Logf("1000 connections in %v (%.0f/s): %d ok, %d encrypted, errors %v",
			time.Since(start).Round(time.Millisecond), sum.ConnsPerS, sum.OK, sum.Encrypted, sum.Errors)
		if sum.OK != 1000 || sum.Encrypted != 1000 {
			t.Errorf("%d of 1000 completed, %d encrypted; errors %v", sum.OK, sum.Encrypted, sum.Errors)
		}
	})
	t.Run("100 concurrent", func(t *testing.T) {
		p := a.send(t, addr, true, "-n", "100", "-p", "100", "-up", "64K", "-down", "64K", "-id", "5000")
		held := p.waitEvent(t, 120*time.Second, "held", 100)
		p.waitEvent(t, 10*time.Second, "holding", 1)
		rowsA, rowsB := a.netstat(t), b.netstat(t)
		for _, h := range held {
			ra := rowsOf(rowsA, h.local(), h.remote())
			rb := rowsOf(rowsB, h.remote(), h.local())
			if h.SessionID == "" || len(ra) != 1 || len(rb) != 1 ||
				ra[0].SessionID.String() != h.SessionID || rb[0].SessionID.String() != h.SessionID {
				t.Errorf("connection %s: application session %q (%s); tcnetstat a %v, b %v", h.Local, h.SessionID, h.SessErr, ra, rb)
			}
		}
		p.closeStdin()
		if code := p.wait(t, 60*time.Second); code != 0 {
			t.Errorf("client exit %d: %v", code, p.events(t, "summary"))
		}
		sum := p.events(t, "summary")
		if len(sum) != 1 || sum[0].OK != 100 || sum[0].Encrypted != 100 {
			t.Errorf("summary %+v", sum)
		}
	})
	for _, h := range []*host{a, b} {
		if n := h.counter(t, "engine_flows_encrypted"); n < 1100 {
			t.Errorf("%s: engine_flows_encrypted = %d, want at least 1100", h.name, n)
		}
	}
}

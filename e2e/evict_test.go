package e2e

import (
	"slices"
	"testing"
	"time"
)

// TestE2EEvictedAnswerNeverPlain: a server daemon whose flow table is full
// evicts a connection after its SYN-ACK answered TCP-ENO but before the
// client's ACK arrived (what a SYN flood does to a real one). The client
// takes that connection for encrypted, so its next segments carry ENO and
// Init1; the server's daemon no longer knows the flow, and had it passed
// them, the server's kernel would complete the handshake with Init1 as the
// application's first bytes (and the application's answer would leave in
// plaintext). They must be dropped instead: the server application never
// sees that connection, its client is answered with a RST and fails at
// once, and the one that took the slot completes, encrypted. The client's ACKs are held back by a drop rule ahead of the
// daemon's input chain until the eviction has happened.
func TestE2EEvictedAnswerNeverPlain(t *testing.T) {
	a, b := pair(t)
	a.startDaemon(t, "--rule", "5001:both")
	b.startDaemon(t, "--rule", "5001:both", "--workers", "1", "--max-flows", "1")
	defer a.logCounters(t)
	defer b.logCounters(t)
	srv := b.serve(t, ap(b.v4, port))

	// Every non-SYN segment from a to the port is dropped at b before the
	// daemon sees it (input priority -200; the daemon's chain is at -150).
	b.must(t, "nft", "add", "table", "inet", "e2ehold")
	t.Cleanup(func() { b.run("nft", "delete", "table", "inet", "e2ehold") })
	b.must(t, "nft", "add", "chain", "inet", "e2ehold", "in", "{ type filter hook input priority -200 ; }")
	b.must(t, "nft", "add", "rule", "inet", "e2ehold", "in", "ip", "saddr", a.v4.String(),
		"tcp", "dport", "5001", "tcp", "flags", "&", "syn", "==", "0", "drop")

	// pollCounter waits up to d for a counter to reach min and reports
	// whether it did.
	pollCounter := func(h *host, name string, min uint64, d time.Duration) bool {
		t.Helper()
		var v uint64
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			if v = h.counter(t, name); v >= min {
				return true
			}
		}
		t.Errorf("%s: %s = %d after %v, want at least %d", h.name, name, v, d, min)
		return false
	}
	waitCounter := func(h *host, name string, min uint64, d time.Duration) {
		t.Helper()
		if !pollCounter(h, name, min, d) {
			t.FailNow()
		}
	}

	// Connection 1: the server's SYN-ACK answers ENO, the client's ACK
	// and Init1 are held back; the server's daemon tracks it half-open.
	first := a.send(t, ap(b.v4, port), false, "-up", "1K", "-down", "1K", "-timeout", "20s")
	waitCounter(a, "engine_flows_protected", 1, 10*time.Second) // the client settled ENO
	// Connection 2 needs the only slot: connection 1 is evicted.
	second := a.send(t, ap(b.v4, port), false, "-up", "64K", "-down", "64K")
	waitCounter(b, "engine_flows_evicted", 1, 10*time.Second)
	if n := b.counter(t, "engine_fallback_evicted"); n != 0 {
		t.Errorf("engine_fallback_evicted = %d: the evicted flow had answered ENO, it is no fallback", n)
	}

	// Let everything through: the client's engine resends Init1 (with
	// ENO) for both connections.
	b.must(t, "nft", "delete", "table", "inet", "e2ehold")
	pollCounter(b, "engine_drop_untracked_eno", 1, 15*time.Second)

	if code := second.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("the second connection failed (exit %d): %s", code, tail(second.out.String(), 5))
	}
	conns := second.events(t, "conn")
	if len(conns) != 1 || conns[0].Err != "" || conns[0].SessionID == "" {
		t.Fatalf("second connection: %+v; want one, intact and encrypted", conns)
	}
	// The evicted connection's client is answered with a RST and fails
	// at once, long before its key exchange would time out (30 s).
	if code := first.wait(t, 15*time.Second); code == 0 {
		t.Errorf("the evicted connection succeeded: %s", tail(first.out.String(), 5))
	} else if c := first.events(t, "conn"); len(c) != 1 || !slices.Contains(resetErrnos, c[0].Errno) {
		t.Errorf("the evicted connection ended with %+v; want a reset", c)
	}
	got := srv.events(t, "conn")
	if len(got) != 1 || got[0].Remote != conns[0].Local {
		t.Errorf("the server application saw %d connections %+v; want only the second (%s): the evicted one reached it", len(got), got, conns[0].Local)
	}
}

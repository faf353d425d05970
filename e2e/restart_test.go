package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/ctl"
	"github.com/tcpcryptd/tcpcrypt/e2e/internal/wiretap"
)

// slowTransfer is an encrypted transfer from a to b that is still running
// when the test acts on a daemon: 4 MiB/s for up to 100 s, captured on a's
// eth0, with at least 1 MiB of ciphertext seen so far.
type slowTransfer struct {
	a, b     *host
	tp       *wiretap.Tap
	srv, cli *proc
	sess     ctl.Conn
	before   wiretap.Stats
}

func startSlowTransfer(t *testing.T) slowTransfer {
	t.Helper()
	var x slowTransfer
	x.a, x.b = pair(t)
	x.a.startDaemon(t, "--rule", "5001:both")
	x.b.startDaemon(t, "--rule", "5001:both")
	t.Cleanup(func() { x.b.logCounters(t) })
	x.tp = x.a.tap(t, "eth0", port)
	x.srv = x.b.serve(t, ap(x.b.v4, port))
	x.cli = x.a.send(t, ap(x.b.v4, port), false, "-up", "400M", "-down", "0", "-rate", "4M", "-timeout", "60s")
	x.sess = waitSession(t, x.a, port, 10*time.Second)
	time.Sleep(time.Second)
	x.before = x.tp.Snapshot()
	if x.before.MarkerHits != 0 || x.before.PayloadBytes < 1<<20 {
		t.Fatalf("before acting on the daemon: %v; want encrypted traffic flowing", x.before)
	}
	return x
}

// checkPlain fails t if either application got a session id.
func checkPlain(t *testing.T, r heldRun) {
	t.Helper()
	if r.cli.SessionID != "" || r.srv.SessionID != "" {
		t.Errorf("connection is encrypted (session %s / %s); want plain TCP", r.cli.SessionID, r.srv.SessionID)
	}
	for _, rows := range [][]ctl.Conn{r.cliRows, r.srvRows} {
		for _, row := range rows {
			if len(row.SessionID) != 0 {
				t.Errorf("tcnetstat lists a session for a plain connection: %+v", row)
			}
		}
	}
}

// waitSession polls h's tcnetstat until a connection to or from port has a
// session id, and returns it.
func waitSession(t *testing.T, h *host, port uint16, d time.Duration) ctl.Conn {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		for _, c := range h.netstat(t) {
			if (c.Local.Port() == port || c.Remote.Port() == port) && len(c.SessionID) != 0 {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no encrypted connection on port %d after %v", h.name, port, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestE2EDaemonRestart restarts the client's daemon (SIGTERM, then start
// again) while a transfer runs. The connection's keys die with the daemon,
// so it must end in a reset, and none of its plaintext may appear on the
// wire, neither while the daemon is down nor after the restart. New connections are encrypted again.
func TestE2EDaemonRestart(t *testing.T) {
	x := startSlowTransfer(t)
	a, b, tp, srv, cli, sess, before := x.a, x.b, x.tp, x.srv, x.cli, x.sess, x.before

	a.stopDaemon(t)
	if a.hasTable(t, "tcpcrypt") {
		t.Errorf("table inet tcpcrypt still present after SIGTERM:\n%s", a.tables(t))
	}
	time.Sleep(time.Second)
	a.startDaemon(t, "--rule", "5001:both")
	ready := tp.Snapshot()
	down := ready.MarkerHits - before.MarkerHits
	t.Logf("while the daemon was down (about 1 s): %d captured segments with plaintext of the stream", down)

	// The connection must end (reset), not go on.
	code := cli.wait(t, 30*time.Second)
	time.Sleep(300 * time.Millisecond)
	st := stopTap(t, tp)
	if after := st.MarkerHits - ready.MarkerHits; after != 0 {
		t.Errorf("PLAINTEXT AFTER THE RESTART: %d captured segments of session %s contain stream plaintext", after, sess.SessionID)
	}
	conns := cli.events(t, "conn")
	if code == 0 || len(conns) != 1 {
		t.Fatalf("the transfer survived the restart (exit %d): %s", code, cli.out.String())
	}
	c := conns[0]
	t.Logf("transfer ended after %d bytes: phase %s, %s: %s", c.Sent, c.Phase, c.Errno, c.Err)
	if !slices.Contains(resetErrnos, c.Errno) {
		t.Errorf("the connection ended with %q (%s), want a reset", c.Errno, c.Err)
	}
	// On SIGTERM the daemon destroys the sockets it protects before it
	// removes its table, so nothing of the stream may leave in plaintext
	// while it is down either.
	if down != 0 {
		t.Errorf("PLAINTEXT WHILE THE DAEMON WAS STOPPED: %d captured segments of session %s contain stream plaintext", down, sess.SessionID)
	}

	// Service resumes: a new connection is encrypted.
	r := runHeld(t, a, b, srv, ap(b.v4, port), "1M")
	checkIntact(t, r, 1<<20)
	checkEncrypted(t, r)
}

// TestE2ERulesAtRuntime adds and removes rules with tcpcryptctl: they apply
// to new connections without a restart, survive a restart through the state
// file, and a stopped daemon leaves no table behind. A daemon killed with
// SIGKILL leaves its table; the next one cleans it up, destroys the
// connections the dead one encrypted, and serves again.
func TestE2ERulesAtRuntime(t *testing.T) {
	a, b := pair(t)
	a.startDaemon(t)
	b.startDaemon(t)
	srv := b.serve(t, ap(b.v4, port))
	addr := ap(b.v4, port)
	both := []*host{a, b}
	rule := ctl.Rule{Port: port, Side: ctl.SideBoth, Mode: ctl.ModeOpportunistic}

	t.Run("no rule: plain", func(t *testing.T) {
		r := runHeld(t, a, b, srv, addr, "256K")
		checkIntact(t, r, 256<<10)
		checkPlain(t, r)
	})
	t.Run("rule added: encrypted", func(t *testing.T) {
		for _, h := range both {
			h.mustCtl(t, "rules", "add", "5001", "--side", "both")
			if rs := h.rules(t); !slices.ContainsFunc(rs, rule.Equal) {
				t.Fatalf("%s: rules list %v lacks %v", h.name, rs, rule)
			}
		}
		r := runHeld(t, a, b, srv, addr, "256K")
		checkIntact(t, r, 256<<10)
		checkEncrypted(t, r)
	})
	t.Run("restart keeps the rule", func(t *testing.T) {
		for _, h := range both {
			h.stopDaemon(t)
			h.startDaemon(t)
			if rs := h.rules(t); !slices.ContainsFunc(rs, rule.Equal) {
				t.Fatalf("%s: after a restart, rules list %v lacks %v", h.name, rs, rule)
			}
		}
		r := runHeld(t, a, b, srv, addr, "256K")
		checkIntact(t, r, 256<<10)
		checkEncrypted(t, r)
	})
	t.Run("rule removed: plain", func(t *testing.T) {
		for _, h := range both {
			h.mustCtl(t, "rules", "del", "5001", "--side", "both")
			if rs := h.rules(t); len(rs) != 0 {
				t.Fatalf("%s: rules left after del: %v", h.name, rs)
			}
		}
		r := runHeld(t, a, b, srv, addr, "256K")
		checkIntact(t, r, 256<<10)
		checkPlain(t, r)
	})
	t.Run("daemon stopped: no table, plain", func(t *testing.T) {
		for _, h := range both {
			h.mustCtl(t, "rules", "add", "5001", "--side", "both")
		}
		a.stopDaemon(t)
		if a.hasTable(t, "tcpcrypt") {
			t.Fatalf("table inet tcpcrypt left behind after SIGTERM:\n%s", a.tables(t))
		}
		tp := a.tap(t, "eth0", port)
		r := runHeld(t, a, b, srv, addr, "256K")
		st := stopTap(t, tp)
		checkIntact(t, r, 256<<10)
		checkPlain(t, r)
		assertPlaintext(t, st)
	})
	t.Run("SIGKILL: stale table cleaned, service resumes", func(t *testing.T) {
		a.startDaemon(t) // the rule comes from the state file
		// A connection encrypted by the instance about to be killed.
		held := a.send(t, addr, true, "-up", "64K", "-down", "64K")
		h := held.waitEvent(t, 30*time.Second, "held", 1)[0]
		if h.SessionID == "" {
			t.Fatalf("held connection not encrypted: %s", h.SessErr)
		}
		a.killDaemon(t)
		if !a.hasTable(t, "tcpcrypt") {
			t.Fatalf("no table after SIGKILL; expected the dead daemon's table to remain:\n%s", a.tables(t))
		}
		a.startDaemon(t)
		if !strings.Contains(a.daemon.errb.String(), "previous instance") {
			t.Errorf("the new daemon did not report the stale table:\n%s", tail(a.daemon.errb.String(), 20))
		}
		if !a.hasTable(t, "tcpcrypt") {
			t.Fatalf("no table after the restart:\n%s", a.tables(t))
		}
		// The old connection was destroyed: closing it fails.
		held.closeStdin()
		held.wait(t, 30*time.Second)
		if c := held.events(t, "conn"); len(c) != 1 || c[0].Err == "" {
			t.Errorf("the connection of the killed daemon survived its restart: %+v", c)
		} else {
			t.Logf("old connection: phase %s, %s: %s", c[0].Phase, c[0].Errno, c[0].Err)
		}
		r := runHeld(t, a, b, srv, addr, "256K")
		checkIntact(t, r, 256<<10)
		checkEncrypted(t, r)
	})
}

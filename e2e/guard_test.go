package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestE2EKillKeepsEncrypted kills the client's daemon with SIGKILL (no clean
// up, the default fail-open) while an encrypted transfer runs. Its table
// stays behind, and the guard rules in it drop the encrypted flow's packets
// although the port's rule would let them bypass the missing daemon: not
// one segment with the stream's plaintext may leave, while the daemon is
// gone or after it is back. The new instance reads the flow from the stale
// guard set and destroys its socket; new connections are encrypted again.
func TestE2EKillKeepsEncrypted(t *testing.T) {
	x := startSlowTransfer(t)
	a, b, tp, srv, cli, sess, before := x.a, x.b, x.tp, x.srv, x.cli, x.sess, x.before

	a.killDaemon(t)
	if !a.hasTable(t, "tcpcrypt") {
		t.Fatalf("no table after SIGKILL:\n%s", a.tables(t))
	}
	// Without the guard, plaintext left within ~10 ms of the kill, for up
	// to 1.5 s (until the peer reset the connection).
	time.Sleep(2 * time.Second)
	down := tp.Snapshot()
	if n := down.MarkerHits - before.MarkerHits; n != 0 {
		t.Errorf("PLAINTEXT AFTER SIGKILL: %d captured segments of session %s contain stream plaintext", n, sess.SessionID)
	}
	t.Logf("while the daemon was dead (2 s): %d more payload bytes on the wire (retransmissions held back by the guard)",
		down.PayloadBytes-before.PayloadBytes)
	if !cli.running() {
		t.Errorf("the transfer ended while the daemon was dead: %s", tail(cli.out.String(), 3))
	}

	a.startDaemon(t, "--rule", "5001:both")
	log := a.daemon.errb.String()
	if !strings.Contains(log, "restart safety") || !strings.Contains(log, "protected=1") {
		t.Errorf("the new daemon did not report the dead one's protected flow:\n%s", tail(log, 20))
	}
	code := cli.wait(t, 30*time.Second)
	time.Sleep(300 * time.Millisecond)
	st := stopTap(t, tp)
	if n := st.MarkerHits - down.MarkerHits; n != 0 {
		t.Errorf("PLAINTEXT AFTER THE RESTART: %d captured segments of session %s contain stream plaintext", n, sess.SessionID)
	}
	conns := cli.events(t, "conn")
	if code == 0 || len(conns) != 1 {
		t.Fatalf("the transfer survived the kill and restart (exit %d): %s", code, cli.out.String())
	}
	if c := conns[0]; !slices.Contains(resetErrnos, c.Errno) {
		t.Errorf("the connection ended with %q (%s), want a reset", c.Errno, c.Err)
	} else {
		t.Logf("transfer ended after %d bytes: phase %s, %s", c.Sent, c.Phase, c.Errno)
	}
	r := runHeld(t, a, b, srv, ap(b.v4, port), "1M")
	checkIntact(t, r, 1<<20)
	checkEncrypted(t, r)
}

// TestE2ERuleChangeKeepsEncrypted changes the rules while an encrypted
// transfer runs: the port's rule deleted on the client, or an exclude for
// the client added on the server. The running connection keeps being
// encrypted to its end, intact and without one segment of plaintext; new
// connections follow the new rules (plain TCP).
func TestE2ERuleChangeKeepsEncrypted(t *testing.T) {
	a, b := pair(t)
	a.startDaemon(t)
	b.startDaemon(t)
	defer a.logCounters(t)
	srv := b.serve(t, ap(b.v4, port))
	addr := ap(b.v4, port)
	cover := func() {
		for _, h := range []*host{a, b} {
			if _, err := h.ctl(t, "rules", "add", "5001", "--side", "both"); err != nil && !strings.Contains(err.Error(), "duplicate") {
				t.Fatalf("%s: rules add: %v", h.name, err)
			}
		}
	}
	tests := []struct {
		name         string
		change, undo func()
	}{
		{"rules del on the client",
			func() { a.mustCtl(t, "rules", "del", "5001", "--side", "both") },
			cover},
		{"exclude added on the server",
			func() {
				b.mustCtl(t, "rules", "add", "5001", "--side", "local", "--mode", "exclude", "--prefix", a.v4.String()+"/32")
			},
			func() {
				b.mustCtl(t, "rules", "del", "5001", "--side", "local", "--mode", "exclude", "--prefix", a.v4.String()+"/32")
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cover()
			tp := a.tap(t, "eth0", port)
			before := len(srv.events(t, "conn"))
			const size = 12 << 20
			cli := a.send(t, addr, false, "-up", "12M", "-down", "0", "-rate", "4M", "-timeout", "60s")
			waitSession(t, a, port, 10*time.Second)
			time.Sleep(500 * time.Millisecond)
			tt.change()
			changed := tp.Snapshot()
			code := cli.wait(t, 60*time.Second)
			st := stopTap(t, tp)
			if st.MarkerHits != 0 {
				t.Errorf("PLAINTEXT AFTER THE RULE CHANGE: %d captured segments contain stream plaintext", st.MarkerHits)
			}
			if st.PayloadBytes-changed.PayloadBytes < 4<<20 {
				t.Errorf("only %d payload bytes after the change; want the rest of the transfer", st.PayloadBytes-changed.PayloadBytes)
			}
			conns := cli.events(t, "conn")
			if code != 0 || len(conns) != 1 || conns[0].Err != "" || conns[0].Sent != size {
				t.Fatalf("the transfer did not survive the rule change (exit %d): %s", code, tail(cli.out.String(), 3))
			}
			s := srv.waitEvent(t, 20*time.Second, "conn", before+1)[before]
			if s.Received != size || !s.Verified || s.RecvSHA256 != conns[0].SentSHA256 {
				t.Errorf("server got %d bytes (verified %v), want %d intact", s.Received, s.Verified, size)
			}
			// The change itself took effect: a new connection is plain.
			r := runHeld(t, a, b, srv, addr, "256K")
			checkIntact(t, r, 256<<10)
			checkPlain(t, r)
			tt.undo()
		})
	}
}

// TestE2EReloadKeepsEncrypted removes the port's rule from the client's
// configuration file and reloads it (SIGHUP) during an encrypted transfer:
// the transfer ends intact and without plaintext; a new connection is plain.
func TestE2EReloadKeepsEncrypted(t *testing.T) {
	a, b := pair(t)
	conf := filepath.Join(t.TempDir(), "tcpcryptd.conf")
	if err := os.WriteFile(conf, []byte("rule = 5001:both\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a.startDaemon(t, "--config", conf)
	b.startDaemon(t, "--rule", "5001:both")
	srv := b.serve(t, ap(b.v4, port))
	addr := ap(b.v4, port)
	tp := a.tap(t, "eth0", port)
	cli := a.send(t, addr, false, "-up", "12M", "-down", "0", "-rate", "4M", "-timeout", "60s")
	waitSession(t, a, port, 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	if err := os.WriteFile(conf, []byte("# no rules\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a.daemon.signal(syscall.SIGHUP)
	if !a.daemon.waitFor(10*time.Second, func(_, stderr string) bool { return strings.Contains(stderr, "reload: rules applied") }) {
		t.Fatalf("no reload logged:\n%s", tail(a.daemon.errb.String(), 10))
	}
	code := cli.wait(t, 60*time.Second)
	st := stopTap(t, tp)
	if st.MarkerHits != 0 {
		t.Errorf("PLAINTEXT AFTER THE RELOAD: %d captured segments contain stream plaintext", st.MarkerHits)
	}
	if conns := cli.events(t, "conn"); code != 0 || len(conns) != 1 || conns[0].Err != "" || conns[0].Sent != 12<<20 {
		t.Fatalf("the transfer did not survive the reload (exit %d): %s", code, tail(cli.out.String(), 3))
	}
	r := runHeld(t, a, b, srv, addr, "256K")
	checkIntact(t, r, 256<<10)
	checkPlain(t, r)
}

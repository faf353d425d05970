package e2e

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/ctl"
)

// TestE2EFallenBackVisible: a connection on a covered port whose peer has no
// tcpcryptd falls back to plain TCP, and stays visible while it lives:
// tcnetstat --json lists it as plain with its reason, tcpcryptctl sessid and
// the application's ctl.ConnInfo say "not encrypted" with the reason (not
// "not tracked"). Once the connection is closed, the next listing after the
// record's grace period no longer shows it (its socket is gone).
func TestE2EFallenBackVisible(t *testing.T) {
	a, b := pair(t) // a runs the daemon, b does not
	a.startDaemon(t, "--rule", "5001:both")
	defer a.logCounters(t)
	srvB := b.serve(t, ap(b.v4, port))
	srvA := a.serve(t, ap(a.v4, port))
	start := time.Now()

	for _, tc := range []struct {
		name     string
		cli, srv *host
		srvProc  *proc
		addr     string
		active   bool // the daemon's host opened the connection
	}{
		{"daemon to plain", a, b, srvB, ap(b.v4, port), true},
		{"plain to daemon", b, a, srvA, ap(a.v4, port), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runHeld(t, tc.cli, tc.srv, tc.srvProc, tc.addr, "256K")
			checkIntact(t, r, 256<<10)
			local, remote := r.held.local(), r.held.remote()
			rows, app := r.cliRows, r.cli
			if !tc.active {
				local, remote = remote, local
				rows, app = r.srvRows, r.srv
			}
			if len(rows) != 1 {
				t.Fatalf("tcnetstat --json on the daemon's host lists %s -> %s %d times, want once", local, remote, len(rows))
			}
			row := rows[0]
			if row.State != "plain" || row.FallbackReason != "no_peer_eno" || len(row.SessionID) != 0 ||
				row.Role != ctl.RoleNone || !strings.Contains(row.LastError, "no_peer_eno") {
				t.Errorf("tcnetstat row %+v; want state plain, fallback_reason no_peer_eno, no session", row)
			}
			// The application was told "not encrypted", with the reason,
			// naming the connection once.
			if !strings.Contains(app.SessErr, "not encrypted") || !strings.Contains(app.SessErr, "no_peer_eno") ||
				strings.Count(app.SessErr, local.String()) != 1 || strings.Contains(app.SessErr, "not tracked") {
				t.Errorf("application's ConnInfo error %q; want one \"not encrypted\" message with the reason", app.SessErr)
			}
			t.Logf("application: %s", app.SessErr)
		})
	}

	// tcpcryptctl sessid of a live fallen-back connection, and the text
	// listing: hold one more connection open.
	p := a.send(t, ap(b.v4, port), true, "-up", "1K", "-down", "1K")
	held := waitHeld(t, p, defaultXferTimeout, a, b)
	p.waitEvent(t, 10*time.Second, "holding", 1)
	_, err := a.ctl(t, "sessid", held.local().String(), held.remote().String())
	if err == nil || !strings.Contains(err.Error(), "not encrypted: fell back to plain TCP") || !strings.Contains(err.Error(), "no_peer_eno") ||
		strings.Count(err.Error(), held.local().String()) != 2 { // the command line, and the message once
		t.Errorf("tcpcryptctl sessid of a fallen-back connection: %v", err)
	}
	text := a.must(t, bin(t, "tcnetstat"), "-u", a.sock)
	if !lineHas(text, held.local().String(), "plain", "no_peer_eno") {
		t.Errorf("tcnetstat (text) lacks a plain no_peer_eno line for %s:\n%s", held.local(), text)
	}
	p.closeStdin()
	p.wait(t, 30*time.Second)

	// Closed connections leave the listing once the grace period (10 s after
	// the fallback) has passed and their sockets are gone (TIME_WAIT does
	// not count as open).
	time.Sleep(time.Until(start.Add(12 * time.Second)))
	deadline := time.Now().Add(15 * time.Second)
	for {
		var plain []ctl.Conn
		for _, c := range a.netstat(t) {
			if c.State == "plain" {
				plain = append(plain, c)
			}
		}
		if len(plain) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("closed fallen-back connections still listed: %+v", plain)
		}
		time.Sleep(time.Second)
	}
	if n := a.counter(t, "fallback_record_ended"); n < 3 {
		t.Errorf("fallback_record_ended = %d, want at least 3 (the closed connections)", n)
	}
}

// lineHas reports whether one line of text contains every word.
func lineHas(text string, words ...string) bool {
	for _, l := range strings.Split(text, "\n") {
		ok := true
		for _, w := range words {
			ok = ok && strings.Contains(l, w)
		}
		if ok {
			return true
		}
	}
	return false
}

// TestE2EWaitSession: both ends ask for their session right after Dial and
// Accept, before any data, with ctl.WaitSession against the real daemons:
// both get the same session id, the opener role A and the acceptor role B,
// matching tcnetstat on each host.
func TestE2EWaitSession(t *testing.T) {
	a, b := pair(t)
	a.startDaemon(t, "--rule", "5001:both")
	b.startDaemon(t, "--rule", "5001:both")
	defer a.logCounters(t)
	srv := b.serve(t, ap(b.v4, port), "-wait")
	for i := range 3 {
		r := runHeld(t, a, b, srv, ap(b.v4, port), "64K", "-wait", "-id", string(rune('1'+i)))
		checkIntact(t, r, 64<<10)
		c, s := r.cli, r.srv
		if c.SessErr != "" || s.SessErr != "" {
			t.Fatalf("WaitSession: client %q, server %q", c.SessErr, s.SessErr)
		}
		sid, err := hex.DecodeString(c.SessionID)
		if err != nil || len(sid) < 33 || c.SessionID != s.SessionID {
			t.Fatalf("session ids: client %q, server %q; want one id of 33+ bytes", c.SessionID, s.SessionID)
		}
		if c.Role != "A" || s.Role != "B" {
			t.Errorf("roles: client %q, server %q; want A and B", c.Role, s.Role)
		}
		if len(r.cliRows) != 1 || len(r.srvRows) != 1 || !bytes.Equal(r.cliRows[0].SessionID, sid) || !bytes.Equal(r.srvRows[0].SessionID, sid) {
			t.Errorf("tcnetstat rows %+v / %+v do not carry session %s", r.cliRows, r.srvRows, c.SessionID)
		}
	}
}

package e2e

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/ctl"
)

// heldRun is one connection made by `xfer send -hold`, inspected while it
// was still open and checked after it closed.
type heldRun struct {
	held     xferReport // client, at its hold point
	cli, srv xferReport // final reports of both ends
	exit     int        // client's exit status
	// Rows of this connection in tcnetstat --json while it was open, on
	// the client's and on the server's host (nil without a daemon there).
	cliRows, srvRows []ctl.Conn
}

// runHeld makes one connection from cli to addr (served by srv on srvHost),
// sending and receiving size bytes; while the connection is held open it
// reads tcnetstat on every host that runs a daemon.
func runHeld(t *testing.T, cli, srvHost *host, srv *proc, addr, size string, extra ...string) heldRun {
	t.Helper()
	before := len(srv.events(t, "conn"))
	p := cli.send(t, addr, true, append([]string{"-up", size, "-down", size}, extra...)...)
	var r heldRun
	r.held = waitHeld(t, p, xferTimeout(extra), cli, srvHost)
	p.waitEvent(t, 10*time.Second, "holding", 1)
	if cli.daemon != nil && cli.daemon.running() {
		r.cliRows = rowsOf(cli.netstat(t), r.held.local(), r.held.remote())
	}
	if srvHost.daemon != nil && srvHost.daemon.running() {
		r.srvRows = rowsOf(srvHost.netstat(t), r.held.remote(), r.held.local())
	}
	p.closeStdin()
	r.exit = p.wait(t, 30*time.Second)
	conns := p.events(t, "conn")
	if len(conns) != 1 {
		t.Fatalf("client printed %d conn reports", len(conns))
	}
	r.cli = conns[0]
	srvConns := srv.waitEvent(t, 20*time.Second, "conn", before+1)
	for _, s := range srvConns {
		if s.Remote == r.held.Local {
			r.srv = s
		}
	}
	if r.srv.Event == "" {
		t.Fatalf("no server report for the connection from %s", r.held.Local)
	}
	return r
}

// xferTimeout is the -timeout among xfer arguments, or the default the
// helpers pass.
func xferTimeout(extra []string) time.Duration {
	d := defaultXferTimeout
	for i, a := range extra {
		if a == "-timeout" && i+1 < len(extra) {
			if v, err := time.ParseDuration(extra[i+1]); err == nil {
				d = v
			}
		}
	}
	return d
}

// waitHeld waits until the client's connection reaches its hold point and
// returns its report. When the connection fails instead, or is slow, it
// logs the hosts' view of it (ss and tcnetstat) and fails t.
func waitHeld(t *testing.T, p *proc, timeout time.Duration, hosts ...*host) xferReport {
	t.Helper()
	deadline := time.Now().Add(timeout + 15*time.Second)
	slow := time.Now().Add(10 * time.Second)
	for {
		out := p.out.String()
		if strings.Contains(out, `"event":"held"`) {
			return p.events(t, "held")[0]
		}
		if strings.Contains(out, `"event":"conn"`) || !p.running() || time.Now().After(deadline) {
			t.Fatalf("the connection did not complete (%s running: %v):\n%s", p.name, p.running(), tail(out, 5))
		}
		if !slow.IsZero() && time.Now().After(slow) {
			slow = time.Time{}
			t.Logf("transfer still running after 10 s; the hosts' view:")
			for _, h := range hosts {
				logConnState(t, h)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logConnState logs ss and tcnetstat for the host's test connections.
func logConnState(t *testing.T, h *host) {
	t.Helper()
	if out, err := h.run("ss", "-tin"); err == nil {
		t.Logf("%s: ss -tin:\n%s", h.name, tail(out, 12))
	}
	if h.daemon != nil && h.daemon.running() {
		if out, err := h.run(bin(t, "tcnetstat"), "-u", h.sock); err == nil {
			t.Logf("%s: tcnetstat:\n%s", h.name, tail(out, 8))
		}
		h.logCounters(t)
	}
}

// rowsOf returns the tcnetstat rows of the connection local -> remote.
func rowsOf(conns []ctl.Conn, local, remote netip.AddrPort) []ctl.Conn {
	var out []ctl.Conn
	for _, c := range conns {
		if c.Local == local && c.Remote == remote {
			out = append(out, c)
		}
	}
	return out
}

// checkIntact fails t unless both streams of the connection arrived whole:
// the right length, the expected bytes in order, equal SHA-256 at both ends.
func checkIntact(t *testing.T, r heldRun, size uint64) {
	t.Helper()
	c, s := r.cli, r.srv
	if r.exit != 0 || c.Err != "" || s.Err != "" {
		t.Fatalf("transfer failed: client exit %d, client error %q (%s), server error %q (%s)", r.exit, c.Err, c.Phase, s.Err, s.Phase)
	}
	if c.Sent != size || c.Received != size || s.Sent != size || s.Received != size {
		t.Errorf("byte counts: client sent %d received %d, server sent %d received %d; want %d each", c.Sent, c.Received, s.Sent, s.Received, size)
	}
	if !c.Verified || !s.Verified {
		t.Errorf("content check: client verified %v, server verified %v", c.Verified, s.Verified)
	}
	if c.SentSHA256 != s.RecvSHA256 || c.RecvSHA256 != s.SentSHA256 || c.SentSHA256 == "" {
		t.Errorf("SHA-256 differ: client->server %s vs %s, server->client %s vs %s", c.SentSHA256, s.RecvSHA256, s.SentSHA256, c.RecvSHA256)
	}
	t.Logf("transfer: %d bytes each way in %.2fs, sha256 up %s… down %s…", size, c.Seconds, c.SentSHA256[:min(16, len(c.SentSHA256))], c.RecvSHA256[:min(16, len(c.RecvSHA256))])
}

// checkEncrypted fails t unless both applications got the same session id
// from the client library, with opposite roles, and both daemons' tcnetstat
// listed the connection, established, with that session id and role.
func checkEncrypted(t *testing.T, r heldRun) {
	t.Helper()
	c, s := r.cli, r.srv
	if c.SessionID == "" || s.SessionID == "" {
		t.Fatalf("no session id in the applications: client %q (%s), server %q (%s)", c.SessionID, c.SessErr, s.SessionID, s.SessErr)
	}
	if c.SessionID != s.SessionID {
		t.Errorf("session ids differ: client %s, server %s", c.SessionID, s.SessionID)
	}
	if len(c.SessionID) != 66 {
		t.Errorf("session id is %d hex digits, want 66 (33 bytes)", len(c.SessionID))
	}
	roles := []string{c.Role, s.Role}
	slices.Sort(roles)
	if !slices.Equal(roles, []string{"A", "B"}) {
		t.Errorf("roles: client %q, server %q; want A and B", c.Role, s.Role)
	}
	if c.TEP == "" || c.AEAD == "" || c.TEP != s.TEP || c.AEAD != s.AEAD {
		t.Errorf("algorithms: client %s/%s, server %s/%s", c.TEP, c.AEAD, s.TEP, s.AEAD)
	}
	for _, side := range []struct {
		name string
		rows []ctl.Conn
		app  xferReport
	}{{"client", r.cliRows, c}, {"server", r.srvRows, s}} {
		if len(side.rows) != 1 {
			t.Errorf("%s host: tcnetstat lists the connection %d times, want once", side.name, len(side.rows))
			continue
		}
		row := side.rows[0]
		if row.SessionID.String() != side.app.SessionID || row.Role.String() != side.app.Role {
			t.Errorf("%s host: tcnetstat session %s role %q; the application got %s role %q",
				side.name, row.SessionID, row.Role, side.app.SessionID, side.app.Role)
		}
		if row.State != "established" {
			t.Errorf("%s host: tcnetstat state %q, want established", side.name, row.State)
		}
	}
	t.Logf("session id %s (client %s, server %s), %s, %s", c.SessionID, c.Role, s.Role, c.TEP, c.AEAD)
}

package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/e2e/internal/wiretap"
)

// TestE2EPlainPeer: a host with tcpcryptd talks to a host without it, in
// both directions. TCP-ENO falls back: the connection is plain TCP, the
// bytes arrive untouched, the capture shows the plaintext, and the
// applications get no session id.
func TestE2EPlainPeer(t *testing.T) {
	a, b := pair(t) // a runs the daemon, b does not
	a.startDaemon(t, "--rule", "5001:both")
	defer a.logCounters(t)
	tp := a.tap(t, "eth0", port)
	srvB := b.serve(t, ap(b.v4, port))
	srvA := a.serve(t, ap(a.v4, port))

	for _, tc := range []struct {
		name     string
		cli, srv *host
		srvProc  *proc
		addr     string
	}{
		{"daemon to plain", a, b, srvB, ap(b.v4, port)},
		{"plain to daemon", b, a, srvA, ap(a.v4, port)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runHeld(t, tc.cli, tc.srv, tc.srvProc, tc.addr, "2M")
			checkIntact(t, r, 2<<20)
			for _, rep := range []xferReport{r.cli, r.srv} {
				if rep.SessionID != "" || rep.SessErr == "" {
					t.Errorf("%s: session id %q, lookup error %q; want no session", rep.Side, rep.SessionID, rep.SessErr)
				}
			}
			// The daemon's end: tracked without a session id, or not
			// tracked at all.
			rows := r.cliRows
			if tc.cli != a {
				rows = r.srvRows
			}
			for _, row := range rows {
				if len(row.SessionID) != 0 || row.State == "established" {
					t.Errorf("tcnetstat on the daemon's host: %+v; want a plain flow", row)
				}
			}
			t.Logf("client session lookup: %s", r.cli.SessErr)
		})
	}
	st := stopTap(t, tp)
	assertPlaintext(t, st)
	if n := a.counter(t, "engine_fallback_no_peer_eno"); n < 2 {
		t.Errorf("engine_fallback_no_peer_eno = %d, want 2 (one per connection)", n)
	}
	if n := a.counter(t, "engine_flows_encrypted"); n != 0 {
		t.Errorf("engine_flows_encrypted = %d, want 0", n)
	}
}

// resetErrnos are the ways a refused connection shows up in an application.
var resetErrnos = []string{"ECONNRESET", "ECONNREFUSED", "ECONNABORTED", "EPIPE"}

// TestE2ERequiredWithoutPeerDaemon: a port whose policy is "required" never
// carries plain TCP. Toward (and from) a peer without tcpcryptd the
// connection is refused or reset, nothing of the stream crosses the wire,
// and the daemon counts the reason.
func TestE2ERequiredWithoutPeerDaemon(t *testing.T) {
	a, b := pair(t)
	a.startDaemon(t, "--rule", "5002:remote:required", "--rule", "5003:local:required")
	defer a.logCounters(t)
	// What a sends on the covered ports: b, without a daemon, may send
	// plaintext toward a; a must not send any.
	tp2 := a.tapWith(t, "eth0", wiretap.Filter{Port: 5002, OutboundOnly: true})
	tp3 := a.tapWith(t, "eth0", wiretap.Filter{Port: 5003, OutboundOnly: true})
	b.serve(t, ap(b.v4, 5002))
	a.serve(t, ap(a.v4, 5003))

	for _, tc := range []struct {
		name string
		cli  *host
		addr string
	}{
		{"client side required", a, ap(b.v4, 5002)},
		{"server side required", b, ap(a.v4, 5003)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conns, sum := tc.cli.sendWait(t, tc.addr, 60*time.Second, "-up", "1M", "-down", "1M", "-timeout", "20s")
			if sum.Failed != 1 || len(conns) != 1 {
				t.Fatalf("connection was not refused: %+v", sum)
			}
			c := conns[0]
			if !slices.Contains(resetErrnos, c.Errno) {
				t.Errorf("connection failed in phase %q with %q (%s); want a reset or refusal", c.Phase, c.Errno, c.Err)
			}
			t.Logf("refused: phase %s, %s: %s", c.Phase, c.Errno, c.Err)
		})
	}
	st2, st3 := stopTap(t, tp2), stopTap(t, tp3)
	if st2.PayloadBytes != 0 || st3.PayloadBytes != 0 {
		t.Errorf("a sent payload on a required port without encryption: port 5002: %v; port 5003: %v", st2, st3)
	}
	st := a.status(t)
	var reasons []string
	var total uint64
	for k, v := range st.Counters {
		if v != 0 && strings.HasSuffix(k, "_required") {
			reasons = append(reasons, k)
			total += v
		}
	}
	if total < 2 {
		t.Errorf("no required-policy refusals counted (counters *_required: %v)", reasons)
	}
	t.Logf("counted: %v", reasons)
}

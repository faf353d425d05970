package e2e

import (
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/ctl/bind"
)

// bindResult is the last JSON line of e2e/cmd/bindpeer.
type bindResult struct {
	Event  string `json:"event"`
	Side   string `json:"side"`
	Local  string `json:"local"`
	Remote string `json:"remote"`
	OK     bool   `json:"ok"`
	Kind   string `json:"kind"`
	Err    string `json:"err"`
	SAS    string `json:"sas"`
	SASErr string `json:"sas_err"`
}

const bindKey = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

// bindpeer starts e2e/cmd/bindpeer on h with the host's daemon as its
// $TCPCRYPT_CTL; listen and relay modes wait until it listens.
func (h *host) bindpeer(t *testing.T, args ...string) *proc {
	t.Helper()
	argv := h.argv(append([]string{"env", "TCPCRYPT_CTL=" + h.sock, bin(t, "bindpeer")}, args...)...)
	p := startProc(t, "bindpeer-"+args[0]+"@"+h.name, false, argv...)
	if args[0] != "dial" && !p.waitFor(10*time.Second, func(out, _ string) bool { return strings.Contains(out, `"event":"listening"`) }) {
		t.Fatalf("bindpeer %s on %s does not listen:\n%s", args[0], h.name, tail(p.errb.String(), 10))
	}
	return p
}

// bindOutcome waits for p to exit and returns its result line.
func bindOutcome(t *testing.T, p *proc) bindResult {
	t.Helper()
	if code := p.wait(t, 40*time.Second); code != 0 {
		t.Fatalf("%s exited %d:\n%s", p.name, code, tail(p.errb.String(), 10))
	}
	for _, line := range strings.Split(p.out.String(), "\n") {
		var r bindResult
		if json.Unmarshal([]byte(line), &r) == nil && r.Event == "result" {
			return r
		}
	}
	t.Fatalf("%s printed no result:\n%s", p.name, tail(p.out.String(), 10))
	return bindResult{}
}

// TestE2EBindPSK runs bind.PSK between applications on two hosts with
// tcpcryptd, directly (both ends bind, with the same SAS, which tcnetstat
// --sas shows too), through a relay on a third host that terminates and
// re-originates TCP, so that each leg has its own tcpcrypt session (both
// ends detect it: ErrMismatch), and over a port no daemon covers
// (ErrNotEncrypted at both ends).
func TestE2EBindPSK(t *testing.T) {
	a, r, b := routed(t)
	for _, h := range []*host{a, r, b} {
		h.startDaemon(t, "--rule", "5001:both", "--rule", "5002:both")
	}
	server := ap(b.v4, 5001)

	t.Run("direct", func(t *testing.T) {
		srv := b.bindpeer(t, "listen", "-l", server, "-key", bindKey)
		cli := a.bindpeer(t, "dial", "-c", server, "-key", bindKey)
		c, s := bindOutcome(t, cli), bindOutcome(t, srv)
		if !c.OK || !s.OK {
			t.Fatalf("PSK: client %s %q, server %s %q; want both to succeed", c.Kind, c.Err, s.Kind, s.Err)
		}
		if c.SAS == "" || c.SAS != s.SAS || len(strings.Split(c.SAS, "-")) != bind.SASWords {
			t.Errorf("SAS: client %q (%s), server %q (%s); want the same eight words", c.SAS, c.SASErr, s.SAS, s.SASErr)
		}
		t.Logf("bound; SAS %s", c.SAS)
	})

	t.Run("sas in tcnetstat", func(t *testing.T) {
		// A connection held open (xfer -hold), and its row in tcnetstat
		// --json --sas at both ends.
		b.serve(t, ap(b.v4, 5002))
		p := a.send(t, ap(b.v4, 5002), true, "-up", "1000", "-down", "1000")
		held := waitHeld(t, p, defaultXferTimeout, a, b)
		sas := map[string]string{}
		for _, side := range []struct {
			h             *host
			local, remote netip.AddrPort
		}{{a, held.local(), held.remote()}, {b, held.remote(), held.local()}} {
			out := side.h.must(t, bin(t, "tcnetstat"), "-u", side.h.sock, "--json", "--sas")
			var rows []struct {
				Local, Remote netip.AddrPort
				SessionID     string `json:"session_id"`
				SAS           string `json:"sas"`
			}
			if err := json.Unmarshal([]byte(out), &rows); err != nil {
				t.Fatalf("%s: tcnetstat --json --sas: %v\n%s", side.h.name, err, out)
			}
			for _, row := range rows {
				if row.Local != side.local || row.Remote != side.remote {
					continue
				}
				sid, err := hex.DecodeString(row.SessionID)
				if err != nil || len(sid) != 33 || row.SAS != bind.SAS(sid) {
					t.Errorf("%s: session id %q, SAS %q; want 33 bytes and their SAS", side.h.name, row.SessionID, row.SAS)
				}
				sas[side.h.name] = row.SAS
			}
		}
		p.closeStdin()
		p.wait(t, 30*time.Second)
		if sas["a"] == "" || sas["a"] != sas["b"] {
			t.Errorf("tcnetstat --sas: %q on a, %q on b; want the same SAS", sas["a"], sas["b"])
		}
	})

	t.Run("relay in the middle", func(t *testing.T) {
		relayAddr := ap(netip.MustParseAddr("10.99.1.254"), 5002)
		srv := b.bindpeer(t, "listen", "-l", server, "-key", bindKey)
		rel := r.bindpeer(t, "relay", "-l", relayAddr, "-c", server)
		cli := a.bindpeer(t, "dial", "-c", relayAddr, "-key", bindKey)
		c, s := bindOutcome(t, cli), bindOutcome(t, srv)
		for _, res := range []bindResult{c, s} {
			if res.OK || res.Kind != "mismatch" {
				t.Errorf("%s: ok %v, %s %q; want ErrMismatch", res.Side, res.OK, res.Kind, res.Err)
			}
		}
		if c.SAS == "" || s.SAS == "" || c.SAS == s.SAS {
			t.Errorf("SAS: client %q (%s), server %q (%s); want two different strings, one per leg", c.SAS, c.SASErr, s.SAS, s.SASErr)
		}
		rel.wait(t, 30*time.Second)
		t.Logf("relay detected: client %q, server %q; SAS %s vs %s", c.Err, s.Err, c.SAS, s.SAS)
	})

	t.Run("plain TCP", func(t *testing.T) {
		plain := ap(b.v4, 5003) // no rule covers it
		srv := b.bindpeer(t, "listen", "-l", plain, "-key", bindKey)
		cli := a.bindpeer(t, "dial", "-c", plain, "-key", bindKey)
		c, s := bindOutcome(t, cli), bindOutcome(t, srv)
		for _, res := range []bindResult{c, s} {
			if res.OK || res.Kind != "not_encrypted" || res.SAS != "" {
				t.Errorf("%s: ok %v, %s %q, SAS %q; want ErrNotEncrypted", res.Side, res.OK, res.Kind, res.Err, res.SAS)
			}
		}
	})
}

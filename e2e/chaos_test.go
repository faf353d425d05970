package e2e

import (
	"encoding/json"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"
)

// chaosStats is chaosbox's "stopped" line.
type chaosStats struct {
	Event string `json:"event"`
	Stats struct {
		Packets    uint64 `json:"packets"`
		Dropped    uint64 `json:"dropped"`
		Reordered  uint64 `json:"reordered"`
		Duplicated uint64 `json:"duplicated"`
		HeldFull   uint64 `json:"held_full"`
	} `json:"stats"`
	VerdictErrs uint64 `json:"verdict_errors"`
	InjectErrs  uint64 `json:"inject_errors"`
}

// startChaos runs chaosbox on the router's forward hook with args, and
// waits until it reads its queue.
func (h *host) startChaos(t testing.TB, args ...string) *proc {
	t.Helper()
	p := startProc(h.root, "chaosbox@"+h.name, false, h.argv(append([]string{bin(t, "chaosbox")}, args...)...)...)
	if !p.waitFor(10*time.Second, func(stdout, _ string) bool { return strings.Contains(stdout, `"event":"ready"`) }) {
		t.Fatalf("chaosbox did not start:\n%s", p.errb.String())
	}
	return p
}

// stopChaos stops chaosbox and returns its counters.
func stopChaos(t *testing.T, p *proc) chaosStats {
	t.Helper()
	p.signal(syscall.SIGTERM)
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Errorf("chaosbox exit %d: %s", code, p.errb.String())
	}
	var st chaosStats
	for _, l := range strings.Split(p.out.String(), "\n") {
		if strings.Contains(l, `"event":"stopped"`) {
			if err := json.Unmarshal([]byte(l), &st); err != nil {
				t.Fatalf("chaosbox: %v", err)
			}
		}
	}
	if st.Event == "" {
		t.Fatalf("chaosbox printed no counters:\n%s", p.out.String())
	}
	t.Logf("chaosbox: %+v", st)
	return st
}

// plainPort is a port without a rule.
const plainPort = 5005

// TestE2EChaos sends transfers through a router running chaosbox, which
// impairs the forwarded packets from a seeded random source: loss (dropped
// verdicts), reordering (verdicts given late, after younger packets) and
// duplication (a copy sent through a raw socket). Each impairment gets its
// own run, so that a failure names the one that breaks the engine; every
// encrypted transfer must complete intact and encrypted, with no plaintext
// on the wire. A plain-TCP run through all impairments at once is the
// control: it shows that chaosbox itself keeps TCP working.
func TestE2EChaos(t *testing.T) {
	a, r, b := routed(t)
	a.startDaemon(t, "--rule", "5001:both")
	b.startDaemon(t, "--rule", "5001:both")
	defer a.logCounters(t)
	defer b.logCounters(t)
	all := []string{"-loss", "0.01", "-reorder", "0.02", "-dup", "0.01"}
	for _, tc := range []struct {
		name      string
		impair    []string
		addr      string
		encrypted bool
	}{
		{"plain all impairments", all, ap(b.v4, plainPort), false},
		{"clean", nil, ap(b.v4, port), true},
		{"duplication 1%", []string{"-dup", "0.01"}, ap(b.v4, port), true},
		{"reordering 2%", []string{"-reorder", "0.02"}, ap(b.v4, port), true},
		{"loss 1%", []string{"-loss", "0.01"}, ap(b.v4, port), true},
		{"all impairments ipv6", all, ap(b.v6, port), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const size = 4 << 20
			args := append([]string{"-hook", "forward", "-seed", "7"}, tc.impair...)
			chaos := r.startChaos(t, args...)
			p := netip.MustParseAddrPort(tc.addr).Port()
			tp := r.tap(t, "ethB", p)
			completed := false
			defer func() {
				cs := stopChaos(t, chaos)
				st := stopTap(t, tp)
				switch {
				case tc.encrypted && completed:
					assertCiphertext(t, st, 2*size)
				case tc.encrypted && st.MarkerHits != 0:
					t.Errorf("PLAINTEXT ON THE WIRE: %d segments with the marker", st.MarkerHits)
				}
				if cs.InjectErrs != 0 || cs.VerdictErrs != 0 {
					t.Errorf("chaosbox errors: %d inject, %d verdict", cs.InjectErrs, cs.VerdictErrs)
				}
				if len(tc.impair) > 0 && cs.Stats.Dropped+cs.Stats.Reordered+cs.Stats.Duplicated == 0 {
					t.Errorf("chaosbox impaired nothing: %+v", cs.Stats)
				}
			}()
			srv := b.serve(t, tc.addr)
			res := runHeld(t, a, b, srv, tc.addr, "4M", "-timeout", "20s")
			checkIntact(t, res, size)
			if !tc.encrypted {
				checkPlain(t, res)
				return
			}
			checkEncrypted(t, res)
			completed = true
		})
	}
}

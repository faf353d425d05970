package engine

import (
	"net/netip"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/crypto"
	"github.com/tcpcryptd/tcpcrypt/engine/enginetest"
)

// optsOnPort returns a Decide function that gives opts to connections with
// port at either end and plain Opportunistic to the others.
func optsOnPort(port uint16, opts Options) func(local, remote netip.AddrPort) Decision {
	return func(local, remote netip.AddrPort) Decision {
		d := Decision{Mode: Opportunistic}
		if local.Port() == port || remote.Port() == port {
			d.Options = opts
		}
		return d
	}
}

// controlsPair is two engines with resumption caches, A deciding with
// decA and B with decB (nil: Opportunistic, no options).
func controlsPair(t *testing.T, decA, decB func(local, remote netip.AddrPort) Decision) (*enginetest.Pair, *middle, *middle, *crypto.Cache, *crypto.Cache) {
	t.Helper()
	clock := func() time.Time { return time.Unix(0, 0) }
	cacheA, cacheB := crypto.NewCache(16, clock, 0), crypto.NewCache(16, clock, 0)
	cfgA, cfgB := Config{Cache: cacheA, Decide: decA}, Config{Cache: cacheB, Decide: decB}
	p, ma, mb := newPair(t, pairSetup{cfg: enginetest.Config{MTU: 1500}, engA: &cfgA, engB: &cfgB})
	return p, ma, mb, cacheA, cacheB
}

// TestControlsNoResume: a connection whose rule says noresume does a fresh
// key exchange although both ends hold a secret that would resume it, at
// either end of the connection (RFC 8548 §3.5, "ignore resumption"); the
// next connection without the option resumes.
func TestControlsNoResume(t *testing.T) {
	for _, side := range []string{"active", "passive"} {
		t.Run(side, func(t *testing.T) {
			dec := optsOnPort(444, Options{NoResume: true})
			decA, decB := dec, func(netip.AddrPort, netip.AddrPort) Decision { return Decision{Mode: Opportunistic} }
			if side == "passive" {
				decA, decB = decB, decA
			}
			p, ma, _, cacheA, cacheB := controlsPair(t, decA, decB)
			ctx := scenarioCtx(t)
			if err := p.Bulk(ctx, false, 443, 100000, 100000); err != nil {
				t.Fatal(err)
			}
			if cacheA.Len() != 1 || cacheB.Len() != 1 {
				t.Fatalf("after a fresh connection: %d and %d cached secrets, want 1 and 1", cacheA.Len(), cacheB.Len())
			}
			if err := p.Bulk(ctx, false, 444, 100000, 100000); err != nil {
				t.Fatal(err)
			}
			if i1, i2 := countInits(p); i1 != 2 || i2 != 2 {
				t.Errorf("Init1 x%d, Init2 x%d after the noresume connection, want 2 and 2 (a fresh exchange)", i1, i2)
			}
			if c := ma.counters(); c.FlowsResumed != 0 || c.FlowsEncrypted != 2 {
				t.Errorf("A: %s", ctrSummary(c))
			}
			// The third connection has no option and resumes.
			if err := p.Bulk(ctx, false, 445, 100000, 100000); err != nil {
				t.Fatal(err)
			}
			if c := ma.counters(); c.FlowsResumed != 1 || c.FlowsEncrypted != 3 {
				t.Errorf("A after a plain connection: %s, want one resumed", ctrSummary(c))
			}
		})
	}
}

// TestControlsNoCache: a nocache connection at A puts nothing in A's
// cache, so the next connection from A is a fresh exchange (RFC 8548 §3.5,
// "do not cache").
func TestControlsNoCache(t *testing.T) {
	p, ma, _, cacheA, cacheB := controlsPair(t, optsOnPort(443, Options{NoCache: true}), nil)
	ctx := scenarioCtx(t)
	if err := p.Bulk(ctx, false, 443, 100000, 100000); err != nil {
		t.Fatal(err)
	}
	if cacheA.Len() != 0 {
		t.Errorf("A cached %d secrets from a nocache connection", cacheA.Len())
	}
	if cacheB.Len() != 1 {
		t.Errorf("B (no option) cached %d secrets, want 1", cacheB.Len())
	}
	if err := p.Bulk(ctx, false, 446, 100000, 100000); err != nil {
		t.Fatal(err)
	}
	if i1, _ := countInits(p); i1 != 2 {
		t.Errorf("Init1 x%d, want 2: the second connection must be fresh", i1)
	}
	if c := ma.counters(); c.FlowsResumed != 0 || c.FlowsEncrypted != 2 {
		t.Errorf("A: %s", ctrSummary(c))
	}
}

// TestControlsFlushCache: flushing the cache state of a connection at A
// removes the secret it created, so the next connection between the same
// hosts is a fresh exchange; without the flush it resumes (RFC 8548 §3.5,
// "flush cache state").
func TestControlsFlushCache(t *testing.T) {
	for _, flush := range []bool{false, true} {
		t.Run(map[bool]string{false: "kept", true: "flushed"}[flush], func(t *testing.T) {
			p, ma, _, cacheA, _ := controlsPair(t, nil, nil)
			ctx := scenarioCtx(t)
			if err := p.Bulk(ctx, false, 443, 100000, 100000); err != nil {
				t.Fatal(err)
			}
			var fl Flow
			for _, fi := range ma.snapshot() {
				fl = Flow{Local: fi.Local, Remote: fi.Remote}
			}
			if !fl.Local.IsValid() {
				t.Fatal("A tracks no flow after the connection")
			}
			if flush {
				ma.mu.Lock()
				n, ok := ma.e.FlushCache(fl)
				_, okMissing := ma.e.FlushCache(Flow{Local: fl.Local, Remote: netip.AddrPortFrom(fl.Remote.Addr(), 1)})
				ma.mu.Unlock()
				if !ok || n != 1 {
					t.Fatalf("FlushCache(%v) = %d, %v; want 1, true", fl, n, ok)
				}
				if okMissing {
					t.Error("FlushCache of an untracked flow reported ok")
				}
				if cacheA.Len() != 0 {
					t.Fatalf("%d secrets cached after the flush", cacheA.Len())
				}
			}
			if err := p.Bulk(ctx, false, 447, 100000, 100000); err != nil {
				t.Fatal(err)
			}
			wantResumed, wantInit1 := uint64(1), 1
			if flush {
				wantResumed, wantInit1 = 0, 2
			}
			if c := ma.counters(); c.FlowsResumed != wantResumed || c.FlowsEncrypted != 2 {
				t.Errorf("A: %s, want %d resumed", ctrSummary(c), wantResumed)
			}
			if i1, _ := countInits(p); i1 != wantInit1 {
				t.Errorf("Init1 x%d, want %d", i1, wantInit1)
			}
		})
	}
}

// TestControlsMandatoryAppAware: a connection in mandatory
// application-aware mode (RFC 8547 §4.2) falls back to plain TCP when the
// peer sends a = 0 and is encrypted when the peer sends a = 1, whichever
// end opened it.
func TestControlsMandatoryAppAware(t *testing.T) {
	for _, tc := range []struct {
		name          string
		passive       bool // the option is at B (the passive opener)
		peerAppAware  bool
		wantEncrypted bool
	}{
		{"active/peer a=0", false, false, false},
		{"active/peer a=1", false, true, true},
		{"passive/peer a=0", true, false, false},
		{"passive/peer a=1", true, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mine := Config{Decide: optsOnPort(443, Options{MandatoryAppAware: true})}
			peer := Config{AppAware: tc.peerAppAware}
			cfgA, cfgB := mine, peer
			if tc.passive {
				cfgA, cfgB = peer, mine
			}
			p, ma, mb := newPair(t, pairSetup{cfg: enginetest.Config{MTU: 1500}, engA: &cfgA, engB: &cfgB})
			ctx := scenarioCtx(t)
			if err := p.Bulk(ctx, false, 443, 20000, 20000); err != nil {
				t.Fatal(err)
			}
			m := ma
			if tc.passive {
				m = mb
			}
			c := m.counters()
			if tc.wantEncrypted {
				if c.FlowsEncrypted != 1 || c.Fallbacks[FallbackAppAware] != 0 {
					t.Errorf("%s, want one encrypted flow", ctrSummary(c))
				}
				checkNoPlaintext(t, p, bulkData(20000, 20000))
				return
			}
			if c.FlowsEncrypted != 0 || c.Fallbacks[FallbackAppAware] != 1 {
				t.Errorf("%s, want one app-aware fallback and nothing encrypted", ctrSummary(c))
			}
			// The option applies to its rule only: another port encrypts.
			if err := p.Bulk(ctx, false, 448, 100000, 100000); err != nil {
				t.Fatal(err)
			}
			if c := m.counters(); c.FlowsEncrypted != 1 {
				t.Errorf("on a port without the option: %s, want one encrypted flow", ctrSummary(c))
			}
		})
	}
}

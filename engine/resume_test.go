package engine

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/crypto"
	"github.com/tcpcryptd/tcpcrypt/engine/enginetest"
)

// countInits counts wire payloads that start with an Init1 or Init2 magic.
func countInits(p *enginetest.Pair) (init1, init2 int) {
	caps, _ := p.Capture()
	for _, c := range caps {
		pl, ok := enginetest.TCPPayload(c.Pkt)
		if !ok || len(pl) < 8 {
			continue
		}
		switch binary.BigEndian.Uint32(pl) {
		case crypto.Init1Magic:
			init1++
		case crypto.Init2Magic:
			init2++
		}
	}
	return init1, init2
}

// TestScenarioResumption: the second and third connections between the
// same hosts resume (RFC 8548 §3.5): no Init messages on the wire, session
// ids with the v bit, each secret used once; a flushed cache at the
// passive end makes the next attempt a fresh exchange.
func TestScenarioResumption(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "v4", true: "v6"}[v6], func(t *testing.T) {
			clock := func() time.Time { return time.Unix(0, 0) }
			cacheA, cacheB := crypto.NewCache(16, clock, 0), crypto.NewCache(16, clock, 0)
			cfgA, cfgB := Config{Cache: cacheA}, Config{Cache: cacheB}
			p, ma, mb := newPair(t, pairSetup{cfg: enginetest.Config{MTU: 1500}, engA: &cfgA, engB: &cfgB})
			ctx := scenarioCtx(t)
			for i := 0; i < 3; i++ {
				if err := p.Bulk(ctx, v6, uint16(443+i), 100000, 100000); err != nil {
					t.Fatalf("connection %d: %v", i, err)
				}
			}
			if i1, i2 := countInits(p); i1 != 1 || i2 != 1 {
				t.Errorf("Init1 x%d, Init2 x%d on the wire, want one each (first connection only)", i1, i2)
			}
			ca, cb := ma.counters(), mb.counters()
			if ca.FlowsResumed != 2 || cb.FlowsResumed != 2 || ca.FlowsEncrypted != 3 {
				t.Errorf("A: %s\nB: %s", ctrSummary(ca), ctrSummary(cb))
			}
			if n := checkSessions(t, ma, mb); n != 3 {
				t.Errorf("%d shared session ids, want 3", n)
			}
			seen := map[string]bool{}
			resumed := 0
			for _, fi := range ma.snapshot() {
				if seen[string(fi.SessionID)] {
					t.Errorf("session id used twice")
				}
				seen[string(fi.SessionID)] = true
				if fi.Resumed {
					resumed++
					if fi.SessionID[0] != 0x80|crypto.TEPX25519 {
						t.Errorf("resumed session id starts %#x", fi.SessionID[0])
					}
				}
			}
			if resumed != 2 {
				t.Errorf("%d resumed flows at A", resumed)
			}
			// B forgets its secrets: A's offer finds nothing, and the
			// connection falls back to a fresh key exchange.
			cacheB.Clear()
			if err := p.Bulk(ctx, v6, 450, 100000, 100000); err != nil {
				t.Fatal(err)
			}
			if i1, _ := countInits(p); i1 != 2 {
				t.Errorf("Init1 x%d after a failed resumption, want 2", i1)
			}
			if ca := ma.counters(); ca.FlowsResumed != 2 || ca.FlowsEncrypted != 4 {
				t.Errorf("A: %s", ctrSummary(ca))
			}
			checkNoPlaintext(t, p, bulkData(100000, 100000))
		})
	}
}

package engine

import (
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/engine/enginetest"
	"github.com/tcpcryptd/tcpcrypt/packet"
)

// TestScriptRekey: past RekeyBytes the next frame carries the rekey bit
// under generation 1; the peer verifies it with the next key and answers
// at once with an empty rekey frame of its own (RFC 8548 §3.8).
func TestScriptRekey(t *testing.T) {
	s := newScript(t, Config{RekeyBytes: 100}, Config{})
	s.handshake()
	p0, ack := cISN.Add(1), sISN.Add(1)
	r := s.outA(s.cliSeg(p0, ack, packet.FlagACK, ackOpts, pattern(100, 0)))
	if payloadOf(t, r.Packet)[0]&1 != 0 {
		t.Fatal("first frame has the rekey bit")
	}
	want(t, s.inB(r.Packet), Replace)
	r = s.outA(s.cliSeg(p0.Add(100), ack, packet.FlagACK, ackOpts, pattern(50, 1)))
	if payloadOf(t, r.Packet)[0]&1 != 1 {
		t.Fatal("frame after RekeyBytes lacks the rekey bit")
	}
	r = s.inB(r.Packet)
	want(t, r, Replace)
	if got := payloadOf(t, r.Packet); len(got) != 50 {
		t.Fatalf("rekeyed frame delivered %d bytes", len(got))
	}
	if len(r.ToPeer) != 1 {
		t.Fatalf("B did not answer the rekey (%d packets)", len(r.ToPeer))
	}
	answer := payloadOf(t, r.ToPeer[0])
	if len(answer) != frameOverhead || answer[0]&1 != 1 {
		t.Fatalf("answer: %d bytes, control %#x", len(answer), answer[0])
	}
	// A opens the answer with its generation-1 key; nothing reaches its
	// stack, and the engine acknowledges the empty frame itself.
	r = s.inA(r.ToPeer[0])
	if r.Verdict == Replace && len(payloadOf(t, r.Packet)) != 0 {
		t.Fatal("empty frame delivered bytes")
	}
	if len(r.ToPeer) != 1 || view(t, r.ToPeer[0]).TCP.Ack() != ack.Add(init2Len+frameOverhead) {
		t.Fatalf("A did not acknowledge the empty frame")
	}
	// B keeps retransmitting its answer until it is acknowledged.
	s.now = s.now.Add(time.Second)
	if r := s.b.Tick(s.now); len(r.ToPeer) != 1 {
		t.Fatalf("unacknowledged rekey frame not retransmitted")
	}
	s.inB(s.a.Process(s.cliSeg(p0.Add(150), ack.Add(0), packet.FlagACK, ackOpts, nil), Outbound).Packet)
	if ca, cb := s.a.Counters(), s.b.Counters(); ca.Rekeys != 1 || cb.Rekeys != 1 || ca.Aborts != cb.Aborts {
		t.Errorf("rekeys A=%d B=%d, aborts %v / %v", ca.Rekeys, cb.Rekeys, ca.Aborts, cb.Aborts)
	}
	// Data keeps flowing both ways under the new generation.
	r = s.outB(s.srvSeg(ack, p0.Add(150), packet.FlagACK, ackOpts, pattern(70, 3)))
	want(t, r, Replace)
	r = s.inA(r.Packet)
	want(t, r, Replace)
	if got := payloadOf(t, r.Packet); len(got) != 70 || view(t, r.Packet).TCP.Seq() != ack {
		t.Fatalf("B->A after rekey: %d bytes at %#x", len(got), view(t, r.Packet).TCP.Seq())
	}
}

// TestScenarioRekey: frequent rekeys by volume and by time in a bulk
// transfer with loss; every rekey is answered and no frame fails.
func TestScenarioRekey(t *testing.T) {
	cfgA := Config{RekeyBytes: 64 << 10}
	cfgB := Config{RekeyInterval: 20 * time.Millisecond}
	p, ma, mb := newPair(t, pairSetup{
		cfg:  fastRTO(enginetest.Config{MTU: 1500, AToB: enginetest.Impairment{LossPct: 1}, BToA: enginetest.Impairment{LossPct: 1}}),
		engA: &cfgA, engB: &cfgB,
	})
	if err := p.Bulk(scenarioCtx(t), false, 443, 4<<20, 4<<20); err != nil {
		t.Fatalf("%v\nA: %s%s\nB: %s%s", err, ctrSummary(ma.counters()), ma.dump(), ctrSummary(mb.counters()), mb.dump())
	}
	ca, cb := ma.counters(), mb.counters()
	if ca.Rekeys < 10 || cb.Rekeys < 10 {
		t.Errorf("rekeys A=%d B=%d", ca.Rekeys, cb.Rekeys)
	}
	var aborts uint64
	for _, v := range append(ca.Aborts[:], cb.Aborts[:]...) {
		aborts += v
	}
	if aborts != 0 {
		t.Errorf("aborts: A %s / B %s", ctrSummary(ca), ctrSummary(cb))
	}
	if checkSessions(t, ma, mb) != 1 {
		t.Error("session ids differ")
	}
	checkNoPlaintext(t, p, bulkData(4<<20, 4<<20))
	t.Logf("rekeys A=%d B=%d", ca.Rekeys, cb.Rekeys)
}

// TestScenarioSimultaneousOpen: both ends open at once. With b=1 set in
// advance on exactly one end (RFC 8547 §4.3) the connection is encrypted;
// without, it falls back to plain TCP.
func TestScenarioSimultaneousOpen(t *testing.T) {
	for _, arranged := range []bool{true, false} {
		t.Run(map[bool]string{true: "b-bit-arranged", false: "no-roles"}[arranged], func(t *testing.T) {
			cfgA, cfgB := Config{SimOpenB: arranged}, Config{}
			p, ma, mb := newPair(t, pairSetup{cfg: enginetest.Config{MTU: 1500}, engA: &cfgA, engB: &cfgB})
			if err := p.SimultaneousOpen(scenarioCtx(t), false, 5001, 5002, 200000); err != nil {
				t.Fatalf("%v\nA: %s%s\nB: %s%s", err, ctrSummary(ma.counters()), ma.dump(), ctrSummary(mb.counters()), mb.dump())
			}
			n := checkSessions(t, ma, mb)
			ca, cb := ma.counters(), mb.counters()
			if arranged {
				if n != 1 {
					t.Errorf("%d shared session ids; A: %s B: %s", n, ctrSummary(ca), ctrSummary(cb))
				}
				checkNoPlaintext(t, p, indexPlaintext(enginetest.RandomBytes(6, 200000), enginetest.RandomBytes(7, 200000)))
				fa, fb := ma.snapshot(), mb.snapshot()
				if len(fa) != 1 || len(fb) != 1 || fa[0].Role == fb[0].Role {
					t.Errorf("roles: %+v / %+v", fa, fb)
				}
			} else if ca.FlowsEncrypted+cb.FlowsEncrypted != 0 || ca.Fallbacks[FallbackRoleClash] != 1 {
				t.Errorf("A: %s B: %s", ctrSummary(ca), ctrSummary(cb))
			}
		})
	}
}

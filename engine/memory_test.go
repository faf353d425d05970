package engine

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/engine/enginetest"
	"github.com/tcpcryptd/tcpcrypt/packet"
	"github.com/tcpcryptd/tcpcrypt/packet/seq"
)

// Memory a hostile peer can make the engine hold (DESIGN.md invariant 12).
// The client's engine A plays the hostile peer: the tests make it seal
// frames no honest engine would send (floods of empty or rekey frames), so
// that the server's engine B sees authentic frames at the right offsets.

// clientFlow and serverFlow are the two engines' flows of the script's
// connection.
func (s *script) clientFlow() *flow { return s.a.tab.flows[flowKey{local: s.cli, remote: s.srv}] }
func (s *script) serverFlow() *flow { return s.b.tab.flows[flowKey{local: s.srv, remote: s.cli}] }

// forgeEmpty makes A seal an empty frame at the end of its stream (with the
// rekey bit when rekey is set) and returns the segment carrying it to B.
func (s *script) forgeEmpty(rekey bool) []byte {
	s.t.Helper()
	f := s.clientFlow()
	if rekey && !f.enc.Rekey() {
		s.t.Fatal("A cannot rekey")
	}
	c0, c1, err := f.snd.appendEmpty(frameSpec{})
	if err != nil {
		s.t.Fatal(err)
	}
	b, err := f.snd.bytes(c0, c1)
	if err != nil {
		s.t.Fatal(err)
	}
	return s.a.buildToPeer(f, int64(c0), packet.FlagACK|packet.FlagPSH, b, false)
}

func liveRecvFrames(f *flow) int { return len(f.rcv.frames) - f.rcv.fh }

// checkMemory verifies the budget accounting between calls: the engine's
// charge is what its flows hold, and the budget (private to e unless the
// test shares it) agrees.
func checkMemory(t testing.TB, e *Engine) {
	t.Helper()
	sum := int64(0)
	for _, f := range e.tab.flows {
		if snd, rcv := f.memory(); int64(snd+rcv) != f.charged || int64(snd) != f.chargedSend {
			t.Fatalf("flow %v holds %d+%d bytes, charges %d (%d sending)", f.key, snd, rcv, f.charged, f.chargedSend)
		}
		sum += f.charged
	}
	if sum != e.MemoryUsed() {
		t.Fatalf("flows charge %d bytes, engine reports %d", sum, e.MemoryUsed())
	}
	if e.Budget().Used() < e.MemoryUsed() {
		t.Fatalf("budget %d below the engine's charge %d", e.Budget().Used(), e.MemoryUsed())
	}
}

// TestEmptyFrameFlood: while the server's stack leaves one delivered byte
// unacknowledged, a flood of verified empty frames costs B no record per
// frame (it merges them), and once the stack acknowledges the byte the
// wire ack covers every empty frame and the stream goes on correctly.
func TestEmptyFrameFlood(t *testing.T) {
	const n = 200000
	s := newScript(t, Config{}, Config{})
	s.handshake()
	p0, ack := cISN.Add(1), sISN.Add(1)
	r := s.inB(s.outA(s.cliSeg(p0, ack, packet.FlagACK|packet.FlagPSH, ackOpts, []byte{'x'})).Packet)
	want(t, r, Replace)
	if got := payloadOf(t, r.Packet); !bytes.Equal(got, []byte{'x'}) {
		t.Fatalf("delivered %q", got)
	}
	// The server's stack does not acknowledge the byte.
	for i := 0; i < n; i++ {
		r := s.inB(s.forgeEmpty(false))
		if r.Verdict == Replace && len(payloadOf(t, r.Packet)) != 0 {
			t.Fatalf("empty frame %d delivered bytes", i)
		}
	}
	fb := s.serverFlow()
	if got := liveRecvFrames(fb); got > 1 {
		t.Errorf("%d empty frames left %d records, want 1 (the unacknowledged byte's frame)", n, got)
	}
	// One smallest buffer for the unacknowledged byte, and its record.
	if got := s.b.MemoryUsed(); got > 1<<minBufShift+int64(recvFrameCost) {
		t.Errorf("B charges %d bytes after the flood", got)
	}
	// The stack acknowledges the byte: the wire ack covers all of it.
	r = s.outB(s.srvSeg(ack, p0.Add(1), packet.FlagACK, ackOpts, nil))
	want(t, r, Replace)
	wantAck := p0.Add(seq.Size(init1Len + 1 + frameOverhead + n*frameOverhead))
	if got := view(t, r.Packet).TCP.Ack(); got != wantAck {
		t.Errorf("wire ack %#x, want %#x", got, wantAck)
	}
	if got := liveRecvFrames(fb); got != 0 {
		t.Errorf("%d records after the stack's ack", got)
	}
	s.inA(r.Packet)
	// The stream goes on: new data is delivered at the next P position.
	r = s.inB(s.outA(s.cliSeg(p0.Add(1), ack, packet.FlagACK|packet.FlagPSH, ackOpts, []byte("hello"))).Packet)
	if r.Verdict != Replace {
		t.Fatalf("after the flood: verdict %v; B %s", r.Verdict, ctrSummary(s.b.Counters()))
	}
	if p := view(t, r.Packet); !bytes.Equal(p.Payload(), []byte("hello")) || p.TCP.Seq() != p0.Add(1) {
		t.Errorf("after the flood: %q at %#x", p.Payload(), p.TCP.Seq())
	}
}

// TestTinyFrameRecords: a peer sending one-byte frames that the local
// stack does not acknowledge leaves at most maxRecvFrames records; the
// stack's ack of everything still acknowledges every frame on the wire.
func TestTinyFrameRecords(t *testing.T) {
	const n = 3 * maxRecvFrames
	s := newScript(t, Config{}, Config{})
	s.handshake()
	p0, ack := cISN.Add(1), sISN.Add(1)
	var sent []byte
	for i := 0; i < n; i++ {
		b := []byte{byte(i)}
		r := s.inB(s.outA(s.cliSeg(p0.Add(seq.Size(i)), ack, packet.FlagACK|packet.FlagPSH, ackOpts, b)).Packet)
		want(t, r, Replace)
		sent = append(sent, payloadOf(t, r.Packet)...)
		if got := liveRecvFrames(s.serverFlow()); got > maxRecvFrames {
			t.Fatalf("after frame %d: %d records, bound %d", i, got, maxRecvFrames)
		}
	}
	if len(sent) != n {
		t.Fatalf("delivered %d bytes, want %d", len(sent), n)
	}
	for i, c := range sent {
		if c != byte(i) {
			t.Fatalf("byte %d delivered as %d", i, c)
		}
	}
	// Acknowledging half the bytes acknowledges the wire up to a frame
	// edge at most that far; acknowledging all acknowledges everything.
	wireEnd := p0.Add(seq.Size(init1Len + n*(1+frameOverhead)))
	r := s.outB(s.srvSeg(ack, p0.Add(n/2), packet.FlagACK, ackOpts, nil))
	if got := view(t, r.Packet).TCP.Ack(); got.Diff(p0.Add(seq.Size(init1Len+n/2*(1+frameOverhead)))) > 0 {
		t.Errorf("half ack went to the wire as %#x, past the frames acknowledged", got)
	}
	r = s.outB(s.srvSeg(ack, p0.Add(n), packet.FlagACK, ackOpts, nil))
	if got := view(t, r.Packet).TCP.Ack(); got != wireEnd {
		t.Errorf("wire ack %#x, want %#x", got, wireEnd)
	}
	if got := liveRecvFrames(s.serverFlow()); got != 0 {
		t.Errorf("%d records after the full ack", got)
	}
}

// TestRekeyFlood: each peer rekey makes B answer with an empty frame of
// its own (RFC 8548 §3.8), which it keeps until acknowledged. A peer that
// rekeys again and again and acknowledges none of the answers gets the
// connection aborted once maxEngineFrames answers are outstanding.
func TestRekeyFlood(t *testing.T) {
	s := newScript(t, Config{}, Config{})
	s.handshake()
	fb := s.serverFlow()
	for i := 0; i < maxEngineFrames; i++ {
		r := s.inB(s.forgeEmpty(true))
		if len(r.ToPeer) != 1 || len(payloadOf(t, r.ToPeer[0])) != frameOverhead {
			t.Fatalf("rekey %d: %d packets toward the peer, want one answer", i, len(r.ToPeer))
		}
		if fb.snd.engineLive != i+1 {
			t.Fatalf("rekey %d: %d answers kept", i, fb.snd.engineLive)
		}
	}
	if c := s.b.Counters(); c.Aborts[AbortRekeyFlood] != 0 || c.Rekeys != maxEngineFrames {
		t.Fatalf("before the bound: %s", ctrSummary(c))
	}
	r := s.inB(s.forgeEmpty(true))
	if r.Verdict != Drop {
		t.Errorf("rekey past the bound: verdict %v", r.Verdict)
	}
	if c := s.b.Counters(); c.Aborts[AbortRekeyFlood] != 1 {
		t.Errorf("no rekey_flood abort: %s", ctrSummary(c))
	}
	rstPeer, rstLocal := 0, 0
	for _, b := range r.ToPeer {
		if view(t, b).TCP.Flags()&packet.FlagRST != 0 {
			rstPeer++
		}
	}
	for _, b := range r.ToLocal {
		if view(t, b).TCP.Flags()&packet.FlagRST != 0 {
			rstLocal++
		}
	}
	if rstPeer == 0 || rstLocal == 0 {
		t.Errorf("abort sent %d RSTs to the peer, %d to the stack", rstPeer, rstLocal)
	}
	if fb.state != StateAborted || s.b.MemoryUsed() != 0 {
		t.Errorf("state %v, %d bytes still charged", fb.state, s.b.MemoryUsed())
	}
}

// TestRekeyAnswersResentTogether: unacknowledged rekey answers that follow
// each other in the stream are retransmitted in one segment, not one
// packet each.
func TestRekeyAnswersResentTogether(t *testing.T) {
	const n = 10
	s := newScript(t, Config{}, Config{})
	s.handshake()
	var first []byte
	for i := 0; i < n; i++ {
		r := s.inB(s.forgeEmpty(true))
		if i == 0 {
			first = payloadOf(t, r.ToPeer[0])
		}
	}
	s.now = s.now.Add(defaultInitRTO)
	r := s.b.Tick(s.now)
	if len(r.ToPeer) != 1 {
		t.Fatalf("RTO resent %d packets, want 1", len(r.ToPeer))
	}
	p := view(t, r.ToPeer[0])
	if got := p.Payload(); len(got) != n*frameOverhead || !bytes.Equal(got[:frameOverhead], first) {
		t.Errorf("resent %d bytes, want the %d answers (%d bytes) as first sent", len(got), n, n*frameOverhead)
	}
	if want := sISN.Add(1 + init2Len); p.TCP.Seq() != want {
		t.Errorf("resent at %#x, want %#x", p.TCP.Seq(), want)
	}
	if c := s.b.Counters(); c.Retransmits != 1 {
		t.Errorf("retransmits %d", c.Retransmits)
	}
}

// TestRetransmitLimit: B resends an unacknowledged rekey answer at most
// MaxRetransmits times in a row, then aborts; an acknowledgment of its
// frames starts the count again.
func TestRetransmitLimit(t *testing.T) {
	const limit = 3
	s := newScript(t, Config{}, Config{MaxRetransmits: limit})
	s.handshake()
	// tickRTO advances past the longest RTO and returns B's timer result.
	tickRTO := func() Result {
		s.now = s.now.Add(maxRTO)
		return s.b.Tick(s.now)
	}
	// A first rekey: its answer is resent twice, then A acknowledges it.
	r := s.inB(s.forgeEmpty(true))
	answer := r.ToPeer[0]
	for i := 0; i < limit-1; i++ {
		if r := tickRTO(); len(r.ToPeer) != 1 {
			t.Fatalf("retransmission %d: %d packets", i, len(r.ToPeer))
		}
	}
	ra := s.inA(answer)
	if len(ra.ToPeer) != 1 {
		t.Fatalf("A did not acknowledge the answer")
	}
	s.inB(ra.ToPeer[0])
	if fb := s.serverFlow(); fb.snd.engineLive != 0 || !fb.rtxAt.IsZero() {
		t.Fatalf("answer still pending after A's ack")
	}
	// A second rekey, never acknowledged: the count starts from zero.
	s.inB(s.forgeEmpty(true))
	for i := 0; i < limit; i++ {
		r := tickRTO()
		if len(r.ToPeer) != 1 || view(t, r.ToPeer[0]).TCP.Flags()&packet.FlagRST != 0 {
			t.Fatalf("second answer, retransmission %d: %d packets", i, len(r.ToPeer))
		}
	}
	if c := s.b.Counters(); c.Aborts[AbortRetransmitLimit] != 0 || c.Retransmits != 2*limit-1 {
		t.Fatalf("before the limit: %s", ctrSummary(c))
	}
	r = tickRTO()
	if c := s.b.Counters(); c.Aborts[AbortRetransmitLimit] != 1 || c.Retransmits != 2*limit-1 {
		t.Errorf("after the limit: %s", ctrSummary(c))
	}
	if len(r.ToPeer) == 0 || len(r.ToLocal) == 0 || s.serverFlow().state != StateAborted {
		t.Errorf("abort: %d/%d RSTs, state %v", len(r.ToPeer), len(r.ToLocal), s.serverFlow().state)
	}
	if r := tickRTO(); len(r.ToPeer) != 0 {
		t.Errorf("aborted flow still retransmits")
	}
}

// TestInitRetransmitLimit: an Init1 the peer never acknowledges is resent
// MaxRetransmits times, then the connection is aborted, even before the
// half-open timeout.
func TestInitRetransmitLimit(t *testing.T) {
	const limit = 2
	s := newScript(t, Config{MaxRetransmits: limit, HalfOpenTimeout: time.Hour}, Config{})
	init1 := s.clientUntilInit1()
	for i := 0; i < limit; i++ {
		s.now = s.now.Add(maxRTO)
		r := s.a.Tick(s.now)
		if len(r.ToPeer) != 1 || !bytes.Equal(payloadOf(t, r.ToPeer[0]), init1) {
			t.Fatalf("retransmission %d: %d packets", i, len(r.ToPeer))
		}
	}
	s.now = s.now.Add(maxRTO)
	s.a.Tick(s.now)
	if c := s.a.Counters(); c.Aborts[AbortRetransmitLimit] != 1 || c.Retransmits != limit {
		t.Errorf("counters %s", ctrSummary(c))
	}
}

// connect moves the script to a new client port and runs the handshake,
// so that both engines track one more flow.
func (s *script) connect(port uint16) {
	s.cli = netip.AddrPortFrom(s.cli.Addr(), port)
	s.handshake()
}

// TestMemoryBudgetShared: flows on two engines sharing one Budget each push
// out-of-order bytes. The total they keep stays within the out-of-order
// share of the budget, the refused bytes are counted, each engine reports
// its part, and in-order data still flows, on a flooded flow and a new one.
func TestMemoryBudgetShared(t *testing.T) {
	const (
		limit   = 1 << 20
		flows   = 8 // per engine
		segSize = 1000
		segs    = minFlowBuffer / segSize
		slack   = 64 << 10 // one segment's worth of lag, with records
	)
	budget := NewBudget(limit)
	cfgB := Config{Budget: budget, MaxFlowBuffer: minFlowBuffer}
	scripts := []*script{newScript(t, Config{}, cfgB), newScript(t, Config{}, cfgB)}
	for _, s := range scripts {
		for i := 0; i < flows; i++ {
			s.connect(uint16(41000 + i))
			p0, ack := cISN.Add(1), sISN.Add(1)
			s.outA(s.cliSeg(p0, ack, packet.FlagACK, ackOpts, pattern(segSize, 0))) // lost
			for k := 1; k < segs; k++ {
				w := s.outA(s.cliSeg(p0.Add(seq.Size(segSize*k)), ack, packet.FlagACK, ackOpts, pattern(segSize, byte(k)))).Packet
				s.inB(w)
				if u := budget.Used(); u > limit/4*oooQuarters+slack {
					t.Fatalf("budget holds %d bytes, out-of-order share %d", u, limit/4*oooQuarters)
				}
			}
		}
	}
	checkMemory(t, scripts[0].b)
	checkMemory(t, scripts[1].b)
	sum := scripts[0].b.MemoryUsed() + scripts[1].b.MemoryUsed()
	if sum != budget.Used() {
		t.Errorf("engines report %d bytes, budget %d", sum, budget.Used())
	}
	drops := scripts[0].b.Counters().Drops[DropMemory] + scripts[1].b.Counters().Drops[DropMemory]
	if drops == 0 {
		t.Errorf("no memory_limit drops with %d out-of-order bytes offered to a %d-byte budget",
			2*flows*(segs-1)*segSize, limit)
	}
	t.Logf("budget %d/%d bytes, %d memory drops", budget.Used(), limit, drops)
	// In-order data on a new flow is delivered.
	s := scripts[0]
	s.connect(42000)
	p0, ack := cISN.Add(1), sISN.Add(1)
	for k := 0; k < 10; k++ {
		r := s.inB(s.outA(s.cliSeg(p0.Add(seq.Size(segSize*k)), ack, packet.FlagACK, ackOpts, pattern(segSize, byte(k)))).Packet)
		want(t, r, Replace)
		if got := payloadOf(t, r.Packet); !bytes.Equal(got, pattern(segSize, byte(k))) {
			t.Fatalf("in-order segment %d: %d bytes delivered", k, len(got))
		}
		s.outB(s.srvSeg(ack, p0.Add(seq.Size(segSize*(k+1))), packet.FlagACK, ackOpts, nil))
	}
	// The first flow's missing segment arrives: it and everything the
	// budget let B keep behind it are delivered.
	s.cli = netip.AddrPortFrom(s.cli.Addr(), 41000)
	r := s.inB(s.outA(s.cliSeg(p0, ack, packet.FlagACK, ackOpts, pattern(segSize, 0))).Packet)
	want(t, r, Replace)
	got := payloadOf(t, r.Packet)
	for _, b := range r.ToLocal {
		got = append(got, payloadOf(t, b)...)
	}
	if len(got) < segSize || len(got)%segSize != 0 || !bytes.Equal(got[:segSize], pattern(segSize, 0)) {
		t.Fatalf("hole filled: %d bytes delivered", len(got))
	}
	for k := 1; k < len(got)/segSize; k++ {
		if !bytes.Equal(got[k*segSize:(k+1)*segSize], pattern(segSize, byte(k))) {
			t.Fatalf("segment %d delivered wrong", k)
		}
	}
	// Forgetting every flow gives all the memory back.
	for _, s := range scripts {
		for _, f := range s.b.tab.flows {
			s.b.forget(f)
		}
	}
	if budget.Used() != 0 || scripts[0].b.MemoryUsed() != 0 {
		t.Errorf("%d bytes still charged after every flow is gone", budget.Used())
	}
}

// TestMemoryPrunesOOOForInOrder: when the budget is used up, a flow's
// in-order bytes are admitted by discarding its own out-of-order runs.
func TestMemoryPrunesOOOForInOrder(t *testing.T) {
	const segSize = 1000
	budget := NewBudget(256 << 10)
	s := newScript(t, Config{}, Config{Budget: budget})
	s.handshake()
	p0, ack := cISN.Add(1), sISN.Add(1)
	s.outA(s.cliSeg(p0, ack, packet.FlagACK, ackOpts, pattern(segSize, 0))) // held back
	for k := 1; k < 100; k++ {
		s.inB(s.outA(s.cliSeg(p0.Add(seq.Size(segSize*k)), ack, packet.FlagACK, ackOpts, pattern(segSize, byte(k)))).Packet)
	}
	held := s.serverFlow().rcv.oooBytes
	if held == 0 {
		t.Fatal("no out-of-order bytes held")
	}
	// Something else takes the rest of the budget.
	budget.add(budget.Limit()-budget.Used(), 0)
	r := s.inB(s.outA(s.cliSeg(p0, ack, packet.FlagACK, ackOpts, pattern(segSize, 0))).Packet)
	want(t, r, Replace)
	if got := payloadOf(t, r.Packet); !bytes.Equal(got, pattern(segSize, 0)) {
		t.Errorf("in-order segment: %d bytes delivered, want %d", len(got), segSize)
	}
	if c := s.b.Counters(); c.OOOPruned != uint64(held) {
		t.Errorf("pruned %d out-of-order bytes, want %d", c.OOOPruned, held)
	}
	if s.serverFlow().rcv.oooBytes != 0 {
		t.Errorf("out-of-order bytes left after pruning")
	}
}

// TestSendMemoryLimit: new outbound data is dropped (TCP resends it) when
// the budget is used up, and framed once there is room.
func TestSendMemoryLimit(t *testing.T) {
	budget := NewBudget(1 << 20)
	s := newScript(t, Config{Budget: budget}, Config{})
	s.handshake()
	p0, ack := cISN.Add(1), sISN.Add(1)
	fill := budget.Limit() - budget.Used()
	budget.add(fill, 0)
	r := s.outA(s.cliSeg(p0, ack, packet.FlagACK, ackOpts, pattern(1000, 0)))
	want(t, r, Drop)
	if c := s.a.Counters(); c.Drops[DropMemory] != 1 {
		t.Errorf("drops %v", c.Drops)
	}
	budget.add(-fill, 0)
	r = s.outA(s.cliSeg(p0, ack, packet.FlagACK, ackOpts, pattern(1000, 0)))
	want(t, r, Replace)
	if got := s.a.MemoryUsed(); got < 1000 || got != budget.Used() {
		t.Errorf("A charges %d bytes, budget %d", got, budget.Used())
	}
}

// TestScenarioMemoryPressure: two real stacks move data both ways with
// loss (so out-of-order data piles up) through two engines that share a
// budget far smaller than their windows. The budget holds, bytes are
// refused and counted, and every byte still arrives intact.
func TestScenarioMemoryPressure(t *testing.T) {
	const limit = 128 << 10
	budget := NewBudget(limit)
	cfg := Config{Budget: budget}
	p, ma, mb := newPair(t, pairSetup{
		cfg:  fastRTO(enginetest.Config{MTU: 1500, AToB: enginetest.Impairment{LossPct: 2}, BToA: enginetest.Impairment{LossPct: 2}}),
		engA: &cfg, engB: &cfg,
	})
	if err := p.Bulk(scenarioCtx(t), false, 443, 4<<20, 4<<20); err != nil {
		t.Fatalf("%v\nA: %s%s\nB: %s%s", err, ctrSummary(ma.counters()), ma.dump(), ctrSummary(mb.counters()), mb.dump())
	}
	ca, cb := ma.counters(), mb.counters()
	peak := max(ma.peak, mb.peak)
	t.Logf("peak %d of %d bytes; memory drops A=%d B=%d, pruned A=%d B=%d", peak, limit,
		ca.Drops[DropMemory], cb.Drops[DropMemory], ca.OOOPruned, cb.OOOPruned)
	if peak > limit+2*maxPacket {
		t.Errorf("budget peaked at %d bytes, limit %d", peak, limit)
	}
	if ca.Drops[DropMemory]+cb.Drops[DropMemory] == 0 {
		t.Errorf("no memory_limit drops: the test does not press the budget")
	}
	if checkSessions(t, ma, mb) != 1 {
		t.Error("session ids differ")
	}
	checkNoPlaintext(t, p, bulkData(4<<20, 4<<20))
	ma.mu.Lock()
	checkMemory(t, ma.e)
	ma.mu.Unlock()
	mb.mu.Lock()
	checkMemory(t, mb.e)
	mb.mu.Unlock()
	if used := budget.Used(); used != ma.e.MemoryUsed()+mb.e.MemoryUsed() {
		t.Errorf("budget %d, engines %d + %d", used, ma.e.MemoryUsed(), mb.e.MemoryUsed())
	}
}

// TestOOOFloodHeap: many flows each pushing out-of-order bytes make the
// process hold about what the budget allows, not flows x MaxFlowBuffer: the
// budget counts real memory.
func TestOOOFloodHeap(t *testing.T) {
	const (
		limit   = 8 << 20
		flows   = 200
		segSize = 1400
		segs    = minFlowBuffer / segSize
	)
	budget := NewBudget(limit)
	s := newScript(t, Config{MaxFlowBuffer: minFlowBuffer}, Config{Budget: budget, MaxFlowBuffer: minFlowBuffer, MaxFlows: 2 * flows})
	for i := 0; i < flows; i++ {
		s.connect(uint16(20000 + i))
	}
	before := heapInUse()
	p0, ack := cISN.Add(1), sISN.Add(1)
	for i := 0; i < flows; i++ {
		s.cli = netip.AddrPortFrom(s.cli.Addr(), uint16(20000+i))
		s.outA(s.cliSeg(p0, ack, packet.FlagACK, ackOpts, pattern(segSize, 0))) // lost
		for k := 1; k < segs; k++ {
			s.inB(s.outA(s.cliSeg(p0.Add(seq.Size(segSize*k)), ack, packet.FlagACK, ackOpts, pattern(segSize, byte(k)))).Packet)
		}
	}
	// A's copies of what it sent are not B's memory.
	for _, f := range s.a.tab.flows {
		s.a.forget(f)
	}
	s.a = nil
	grown := int64(heapInUse()) - int64(before)
	offered := flows * (segs - 1) * segSize
	t.Logf("offered %d KiB out of order; budget %d KiB used; B's pool %d KiB; heap grew %d KiB",
		offered>>10, budget.Used()>>10, s.b.pool.bytes>>10, grown>>10)
	if budget.Used() > limit/4*oooQuarters+2*maxPacket {
		t.Errorf("budget holds %d bytes", budget.Used())
	}
	// What B holds is what it charges, plus its pool of free buffers, plus
	// slack for the records and the GC.
	if grown > budget.Used()+int64(s.b.pool.bytes)+limit/4 {
		t.Errorf("heap grew %d bytes; budget %d, pool %d", grown, budget.Used(), s.b.pool.bytes)
	}
	if c := s.b.Counters(); c.Drops[DropMemory] == 0 {
		t.Errorf("no memory drops")
	}
	checkMemory(t, s.b)
}

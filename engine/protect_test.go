package engine

import (
	"net/netip"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/packet"
	"github.com/tcpcryptd/tcpcrypt/packet/seq"
)

// protectLog runs one step and records the Protect and Unprotect lists of
// its Result by step name.
type protectLog struct {
	t         *testing.T
	protect   map[string][]Flow
	unprotect map[string][]Flow
}

func (l *protectLog) step(name string, r Result) Result {
	l.t.Helper()
	checkAll(l.t, r)
	if len(r.Protect) > 0 {
		l.protect[name] = append(l.protect[name], r.Protect...)
	}
	if len(r.Unprotect) > 0 {
		l.unprotect[name] = append(l.unprotect[name], r.Unprotect...)
	}
	return r
}

func newProtectLog(t *testing.T) *protectLog {
	return &protectLog{t: t, protect: map[string][]Flow{}, unprotect: map[string][]Flow{}}
}

func onlyAt(t *testing.T, what string, got map[string][]Flow, step string, f Flow) {
	t.Helper()
	for name, fl := range got {
		if name != step {
			t.Errorf("%s at %q: %v (want only at %q)", what, name, fl, step)
		}
	}
	if fl := got[step]; len(fl) != 1 || fl[0] != f {
		t.Errorf("%s at %q: %v, want [%v]", what, step, fl, f)
	}
}

// TestProtectPoints: each side asks for its flow to be protected in the
// Result of the segment that commits it to tcpcrypt (A: the SYN-ACK that
// settles ENO, before Init1 leaves; B: the Init1 it consumes), exactly
// once, and releases it only when the flow is forgotten after its linger,
// not when it is reset.
func TestProtectPoints(t *testing.T) {
	s := newScript(t, Config{}, Config{})
	la, lb := newProtectLog(t), newProtectLog(t)
	fa := Flow{Local: s.cli, Remote: s.srv}
	fb := Flow{Local: s.srv, Remote: s.cli}

	r := la.step("A SYN", s.outA(s.cliSeg(cISN, 0, packet.FlagSYN, synOpts, nil)))
	r = lb.step("B SYN", s.inB(r.Packet))
	r = lb.step("B SYN-ACK", s.outB(s.srvSeg(sISN, cISN.Add(1), packet.FlagSYN|packet.FlagACK, synOpts, nil)))
	r = la.step("A SYN-ACK", s.inA(r.Packet))
	if len(la.protect["A SYN-ACK"]) != 1 {
		t.Fatalf("A did not ask for protection when ENO was settled: %v", la.protect)
	}
	r = la.step("A Init1", s.outA(s.cliSeg(cISN.Add(1), sISN.Add(1), packet.FlagACK, ackOpts, nil)))
	r = lb.step("B Init1", s.inB(r.Packet))
	r = la.step("A Init2", s.inA(r.ToPeer[0]))
	lb.step("B ACK", s.inB(r.ToPeer[0]))
	onlyAt(t, "protect", la.protect, "A SYN-ACK", fa)
	onlyAt(t, "protect", lb.protect, "B Init1", fb)
	if c := s.a.Counters(); c.FlowsProtected != 1 {
		t.Errorf("A flows_protected %d, want 1", c.FlowsProtected)
	}

	// A reset keeps the protection while the dead flow lingers: its
	// stragglers must still come to the engine (and be dropped).
	p0, ack := cISN.Add(1), sISN.Add(1)
	r = la.step("A RST", s.outA(s.cliSeg(p0, ack, packet.FlagRST|packet.FlagACK, nil, nil)))
	lb.step("B RST", s.inB(r.Packet))
	if len(la.unprotect)+len(lb.unprotect) != 0 {
		t.Fatalf("unprotected on reset: %v %v", la.unprotect, lb.unprotect)
	}
	s.now = s.now.Add(defaultClose + time.Second)
	la.step("A linger over", s.a.Tick(s.now))
	lb.step("B linger over", s.b.Tick(s.now))
	onlyAt(t, "unprotect", la.unprotect, "A linger over", fa)
	onlyAt(t, "unprotect", lb.unprotect, "B linger over", fb)
	if s.a.NumFlows()+s.b.NumFlows() != 0 {
		t.Errorf("flows left: %d %d", s.a.NumFlows(), s.b.NumFlows())
	}
}

// TestFallbackNotProtected: a flow that falls back to plain TCP is never
// protected (fail-open and rule changes keep applying to it).
func TestFallbackNotProtected(t *testing.T) {
	s := newScript(t, Config{}, Config{})
	l := newProtectLog(t)
	l.step("A SYN", s.outA(s.cliSeg(cISN, 0, packet.FlagSYN, synOpts, nil)))
	l.step("A SYN-ACK", s.inA(s.srvSeg(sISN, cISN.Add(1), packet.FlagSYN|packet.FlagACK, synOpts, nil)))
	l.step("A ACK", s.outA(s.cliSeg(cISN.Add(1), sISN.Add(1), packet.FlagACK, ackOpts, nil)))
	if len(l.protect)+len(l.unprotect) != 0 {
		t.Errorf("fallen-back flow: protect %v unprotect %v", l.protect, l.unprotect)
	}
	if s.a.Counters().FlowsProtected != 0 {
		t.Errorf("flows_protected %d", s.a.Counters().FlowsProtected)
	}
}

// TestEvictProtectedAborts: only lingering and half-open flows are eviction
// victims, and the half-open ones include a client flow whose ENO was
// settled (protected, Init1 not yet sent). Evicting it aborts it (RST both
// ways) instead of forgetting it alive, which would let the application's
// first bytes pass in plaintext.
func TestEvictProtectedAborts(t *testing.T) {
	s := newScript(t, Config{MaxFlows: 1}, Config{})
	l := newProtectLog(t)
	r := l.step("A SYN", s.outA(s.cliSeg(cISN, 0, packet.FlagSYN, synOpts, nil)))
	s.inB(r.Packet)
	r = s.outB(s.srvSeg(sISN, cISN.Add(1), packet.FlagSYN|packet.FlagACK, synOpts, nil))
	l.step("A SYN-ACK", s.inA(r.Packet))
	first := Flow{Local: s.cli, Remote: s.srv}
	if fl := l.protect["A SYN-ACK"]; len(fl) != 1 || fl[0] != first {
		t.Fatalf("protect %v, want [%v]", l.protect, first)
	}
	// A second connection from the client needs the only slot.
	s.cli = netip.AddrPortFrom(s.cli.Addr(), 40001)
	r = l.step("SYN 2", s.outA(s.cliSeg(cISN.Add(7777), 0, packet.FlagSYN, synOpts, nil)))
	c := s.a.Counters()
	if c.FlowsEvicted != 1 {
		t.Fatalf("evicted %d, want 1", c.FlowsEvicted)
	}
	if c.Aborts[AbortEvicted] != 1 {
		t.Fatalf("abort_evicted %d, want 1: the protected flow was forgotten alive", c.Aborts[AbortEvicted])
	}
	var rstLocal, rstPeer bool
	for _, p := range r.ToLocal {
		rstLocal = rstLocal || view(t, p).TCP.Flags()&packet.FlagRST != 0
	}
	for _, p := range r.ToPeer {
		rstPeer = rstPeer || view(t, p).TCP.Flags()&packet.FlagRST != 0
	}
	if !rstLocal || !rstPeer {
		t.Errorf("eviction abort: RST to stack %v, to peer %v", rstLocal, rstPeer)
	}
	if fl := l.unprotect["SYN 2"]; len(fl) != 1 || fl[0] != first {
		t.Errorf("unprotect %v, want [%v]", l.unprotect, first)
	}
}

// TestEvictedAnswerDropsENO: a server flow whose SYN-ACK answered ENO is
// evicted from a full table before the client's ACK arrives. The client
// takes the connection for encrypted, so its ACK carries ENO and its Init1;
// passed untouched, they would complete the handshake in the local stack
// with Init1 as data, and the server's answer would leave in plaintext.
// They must be dropped, while an untracked segment without ENO still
// passes untouched (invariant 8).
func TestEvictedAnswerDropsENO(t *testing.T) {
	s := newScript(t, Config{}, Config{MaxFlows: 1})
	r := s.outA(s.cliSeg(cISN, 0, packet.FlagSYN, synOpts, nil))
	s.inB(r.Packet)
	r = s.outB(s.srvSeg(sISN, cISN.Add(1), packet.FlagSYN|packet.FlagACK, synOpts, nil))
	if packet.CountOption(view(t, r.Packet).TCP.Options(), packet.OptENO) != 1 {
		t.Fatal("the server's SYN-ACK does not answer ENO")
	}
	s.inA(r.Packet)
	init1 := s.outA(s.cliSeg(cISN.Add(1), sISN.Add(1), packet.FlagACK, ackOpts, nil)).Packet
	if packet.CountOption(view(t, init1).TCP.Options(), packet.OptENO) != 1 || len(view(t, init1).TCP.Payload()) == 0 {
		t.Fatal("the client's third segment does not carry ENO and Init1")
	}

	// Another client's SYN needs the server's only slot.
	cli := s.cli
	s.cli = netip.AddrPortFrom(s.cli.Addr(), 40001)
	s.inB(s.cliSeg(cISN.Add(9999), 0, packet.FlagSYN, synOpts, nil))
	if c := s.b.Counters(); c.FlowsEvicted != 1 {
		t.Fatalf("evicted %d, want 1", c.FlowsEvicted)
	}

	r = s.inB(init1)
	if r.Verdict != Drop || len(r.ToLocal) != 0 {
		t.Fatalf("the client's Init1 for the evicted flow: verdict %v, %d to the stack; want it dropped", r.Verdict, len(r.ToLocal))
	}
	// Answered with a RST at the segment's ACK number, which the
	// client's stack accepts (it is the next byte it sends from).
	if len(r.ToPeer) != 1 {
		t.Fatalf("%d packets toward the client, want one RST", len(r.ToPeer))
	}
	rst := view(t, r.ToPeer[0])
	if rst.TCP.Flags() != packet.FlagRST || rst.TCP.Seq() != view(t, init1).TCP.Ack() ||
		rst.SrcAddrPort() != s.srv || rst.DstAddrPort() != cli {
		t.Errorf("answer: %v -> %v flags %#x seq %v; want a RST from %v to %v at seq %v", rst.SrcAddrPort(), rst.DstAddrPort(),
			rst.TCP.Flags(), rst.TCP.Seq(), s.srv, cli, view(t, init1).TCP.Ack())
	}
	// The client's engine takes it for its flow's end and hands the RST
	// to its stack, so the application fails at once.
	if r := s.inA(r.ToPeer[0]); r.Verdict == Drop {
		t.Errorf("the client's engine dropped the RST: verdict %v", r.Verdict)
	}
	if c := s.a.Counters(); c.FlowsClosed != 1 {
		t.Errorf("client flows_closed %d after the RST, want 1", c.FlowsClosed)
	}
	if n := s.b.Counters().Drops[DropUntrackedENO]; n != 1 {
		t.Errorf("drop_untracked_eno %d, want 1", n)
	}

	// A segment of an untracked connection that carries no ENO is plain
	// TCP and none of the engine's business.
	s.cli = netip.AddrPortFrom(cli.Addr(), 40002)
	if r := s.inB(s.cliSeg(cISN, sISN, packet.FlagACK, nil, []byte("plain"))); r.Verdict != Accept {
		t.Errorf("untracked segment without ENO: verdict %v, want accept", r.Verdict)
	}
}

// TestEvictedHalfOpenFallback: a half-open flow evicted before ENO was
// settled goes on as plain TCP, so the engine reports a fallback with
// reason "evicted" (the daemon then answers "not encrypted" and why, not
// "not tracked"); a server flow whose SYN-ACK already answered ENO does not
// go on at all (TestEvictedAnswerDropsENO) and is not reported as one.
func TestEvictedHalfOpenFallback(t *testing.T) {
	var evs []Event
	cfgB := Config{MaxFlows: 1, Events: func(ev Event) { evs = append(evs, ev) }}
	s := newScript(t, Config{}, cfgB)
	fallbacks := func() (n int, last Event) {
		for _, ev := range evs {
			if ev.Kind == EventFallback {
				n++
				last = ev
			}
		}
		return n, last
	}

	// A SYN at the server, not answered yet, then another client's SYN.
	first := s.cli
	// The client's engine adds ENO to each SYN.
	syn := func(isn seq.Value) []byte { return s.outA(s.cliSeg(isn, 0, packet.FlagSYN, synOpts, nil)).Packet }
	s.inB(syn(cISN))
	s.cli = netip.AddrPortFrom(first.Addr(), 40001)
	s.inB(syn(cISN.Add(5000)))
	n, ev := fallbacks()
	if n != 1 || ev.Reason != "evicted" || ev.Remote != first {
		t.Fatalf("after evicting an unanswered SYN: %d fallbacks, last %+v; want one, evicted, for %v", n, ev, first)
	}
	if c := s.b.Counters(); c.Fallbacks[FallbackEvicted] != 1 || c.FlowsEvicted != 1 {
		t.Errorf("fallback_evicted %d, flows_evicted %d; want 1, 1", c.Fallbacks[FallbackEvicted], c.FlowsEvicted)
	}

	// The second SYN is answered with ENO, then a third client's SYN
	// evicts it: no fallback this time.
	r := s.outB(s.srvSeg(sISN, cISN.Add(5001), packet.FlagSYN|packet.FlagACK, synOpts, nil))
	if packet.CountOption(view(t, r.Packet).TCP.Options(), packet.OptENO) != 1 {
		t.Fatal("the SYN-ACK does not answer ENO")
	}
	s.cli = netip.AddrPortFrom(first.Addr(), 40002)
	s.inB(syn(cISN.Add(9000)))
	if c := s.b.Counters(); c.FlowsEvicted != 2 {
		t.Fatalf("flows_evicted %d, want 2", c.FlowsEvicted)
	}
	if n, ev := fallbacks(); n != 1 {
		t.Errorf("evicting a flow whose SYN-ACK answered ENO reported a fallback: %d, last %+v", n, ev)
	}
}

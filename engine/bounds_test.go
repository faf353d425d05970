package engine

import (
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/packet"
	"github.com/tcpcryptd/tcpcrypt/packet/seq"
)

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestSYNFlood: 100k SYNs with ENO from distinct tuples keep the table at
// its cap (oldest half-open flows are evicted), never evict an established
// flow, keep memory bounded, and expire by the half-open timeout.
func TestSYNFlood(t *testing.T) {
	const flows, syns = 10000, 100000
	s := newScript(t, Config{}, Config{MaxFlows: flows})
	s.handshake() // one established flow at B, which must survive
	before := heapInUse()
	syn := s.cliSeg(cISN, 0, packet.FlagSYN, withENO(synOpts, []byte{0x45, 3, 0x23}), nil)
	var p packet.Packet
	if err := packet.Parse(syn, &p); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < syns; i++ {
		// A distinct source address and port for every SYN.
		src := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		b := build(t, netip.AddrPortFrom(src, uint16(1024+i%60000)), s.srv, seq.Value(i), 0, packet.FlagSYN, 1000, withENO(synOpts, []byte{0x45, 3, 0x23}), nil)
		r := s.b.Process(b, Inbound)
		if r.Verdict != Replace {
			t.Fatalf("SYN %d: verdict %v", i, r.Verdict)
		}
		if n := s.b.NumFlows(); n > flows {
			t.Fatalf("after SYN %d: %d flows, cap %d", i, n, flows)
		}
	}
	if n := s.b.NumFlows(); n != flows {
		t.Errorf("%d flows, want the cap %d", n, flows)
	}
	if fi, ok := s.b.Lookup(s.srv, s.cli); !ok || fi.State != StateEstablished {
		t.Errorf("established flow evicted by the flood")
	}
	grown := heapInUse() - min(before, heapInUse())
	perFlow := grown / flows
	t.Logf("heap grew %d KiB for %d half-open flows (%d B each)", grown>>10, flows, perFlow)
	if perFlow > 4096 {
		t.Errorf("%d bytes per half-open flow", perFlow)
	}
	if c := s.b.Counters(); c.FlowsEvicted != syns-flows+1 {
		t.Errorf("evicted %d, want %d", c.FlowsEvicted, syns-flows+1)
	}
	// Half-open flows expire; the established one stays.
	s.now = s.now.Add(31 * time.Second)
	s.b.Tick(s.now)
	if n := s.b.NumFlows(); n != 1 {
		t.Errorf("%d flows after the half-open timeout, want 1", n)
	}
	if d := s.b.NextDeadline(); d.IsZero() || d.Sub(s.now) > 2*time.Hour {
		t.Errorf("next deadline in %v", d.Sub(s.now))
	}
}

// TestTableFullOfEstablished: with no half-open or lingering flow to
// evict, a new SYN is not tracked and passes untouched (plain TCP), or is
// dropped under Required.
func TestTableFullOfEstablished(t *testing.T) {
	s := newScript(t, Config{MaxFlows: 1}, Config{})
	s.handshake()
	other := netip.MustParseAddrPort("192.0.2.2:8443")
	r := s.a.Process(build(t, s.cli, other, 1, 0, packet.FlagSYN, 1000, synOpts, nil), Outbound)
	if r.Verdict != Accept || s.a.NumFlows() != 1 {
		t.Errorf("verdict %v, %d flows", r.Verdict, s.a.NumFlows())
	}
	if c := s.a.Counters(); c.Fallbacks[FallbackTableFull] != 1 {
		t.Errorf("fallbacks %v", c.Fallbacks)
	}
	s.a.cfg.Policy = func(_, _ netip.AddrPort) Mode { return Required }
	r = s.a.Process(build(t, s.cli, other, 1, 0, packet.FlagSYN, 1000, synOpts, nil), Outbound)
	if r.Verdict != Drop {
		t.Errorf("required SYN with a full table: %v", r.Verdict)
	}
}

// TestIdleTimeout: an idle encrypted flow is aborted (RST both ways), not
// silently forgotten, which would let its next segment out in plaintext.
func TestIdleTimeout(t *testing.T) {
	s := newScript(t, Config{IdleTimeout: time.Minute}, Config{})
	s.handshake()
	s.now = s.now.Add(59 * time.Second)
	if r := s.a.Tick(s.now); len(r.ToPeer)+len(r.ToLocal) != 0 || s.a.NumFlows() != 1 {
		t.Fatal("flow expired early")
	}
	s.now = s.now.Add(2 * time.Second)
	r := s.a.Tick(s.now)
	if len(r.ToPeer) == 0 || len(r.ToLocal) == 0 {
		t.Errorf("idle abort sent %d/%d RSTs", len(r.ToPeer), len(r.ToLocal))
	}
	// The aborted flow lingers (its stragglers get RSTs, not plaintext),
	// then is forgotten after CloseTimeout.
	if s.a.NumFlows() != 1 {
		t.Errorf("%d flows after idle timeout, want the aborted one lingering", s.a.NumFlows())
	}
	if c := s.a.Counters(); c.Aborts[AbortIdle] != 1 || c.FlowsExpired != 1 {
		t.Errorf("counters %s", ctrSummary(c))
	}
	s.now = s.now.Add(defaultClose)
	s.a.Tick(s.now)
	if s.a.NumFlows() != 0 {
		t.Errorf("%d flows after the linger", s.a.NumFlows())
	}
}

// TestCloseLinger: after both FINs are acknowledged the flow stays, still
// translating stragglers, for CloseTimeout.
func TestCloseLinger(t *testing.T) {
	s := newScript(t, Config{CloseTimeout: 10 * time.Second}, Config{CloseTimeout: 10 * time.Second})
	s.handshake()
	p0, ack := cISN.Add(1), sISN.Add(1)
	fin := s.outA(s.cliSeg(p0, ack, packet.FlagACK|packet.FlagFIN, ackOpts, nil)).Packet
	s.inB(fin)
	sfin := s.outB(s.srvSeg(ack, p0.Add(1), packet.FlagACK|packet.FlagFIN, ackOpts, nil)).Packet
	s.inA(sfin)
	last := s.outA(s.cliSeg(p0.Add(1), ack.Add(1), packet.FlagACK, ackOpts, nil)).Packet
	s.inB(last)
	for _, e := range []*Engine{s.a, s.b} {
		if fl := e.Snapshot(); len(fl) != 1 || fl[0].State != StateClosed {
			t.Fatalf("state %+v", fl)
		}
	}
	// The server's FIN again (our last ACK was lost): still translated.
	r := s.inA(sfin)
	if r.Verdict == Accept || len(r.ToPeer) != 1 {
		t.Fatalf("retransmitted FIN after close: %v, %d packets", r.Verdict, len(r.ToPeer))
	}
	if a := view(t, r.ToPeer[0]).TCP.Ack(); a != ack.Add(init2Len+frameOverhead+1) {
		t.Errorf("FIN re-acknowledged as %#x", a)
	}
	s.now = s.now.Add(11 * time.Second)
	s.a.Tick(s.now)
	s.b.Tick(s.now)
	if s.a.NumFlows()+s.b.NumFlows() != 0 {
		t.Errorf("closed flows not forgotten")
	}
}

// TestReassemblyBound: out-of-order bytes past MaxFlowBuffer are dropped
// and counted; what is kept stays within the bound.
func TestReassemblyBound(t *testing.T) {
	s := newScript(t, Config{}, Config{MaxFlowBuffer: minFlowBuffer})
	s.handshake()
	p0, ack := cISN.Add(1), sISN.Add(1)
	// Skip the first segment so that everything after it is out of order.
	s.outA(s.cliSeg(p0, ack, packet.FlagACK, ackOpts, pattern(1000, 0)))
	for i := 1; i < 400; i++ {
		w := s.outA(s.cliSeg(p0.Add(seq.Size(1000*i)), ack, packet.FlagACK, ackOpts, pattern(1000, byte(i)))).Packet
		s.inB(w)
		if got := s.b.BufferedBytes(); got > 2*minFlowBuffer {
			t.Fatalf("B buffers %d bytes", got)
		}
	}
	if c := s.b.Counters(); c.Drops[DropRecvOverflow] == 0 {
		t.Errorf("no overflow drops: %s", ctrSummary(c))
	}
}

// TestForgetClosed: ForgetClosed removes a closed flow at once and releases
// its protection, and leaves live and aborted flows alone.
func TestForgetClosed(t *testing.T) {
	s := newScript(t, Config{}, Config{})
	s.handshake()
	fa := Flow{Local: s.cli, Remote: s.srv}
	if _, ok := s.a.ForgetClosed(fa); ok || s.a.NumFlows() != 1 {
		t.Fatalf("an established flow was forgotten")
	}
	p0, ack := cISN.Add(1), sISN.Add(1)
	s.inB(s.outA(s.cliSeg(p0, ack, packet.FlagACK|packet.FlagFIN, ackOpts, nil)).Packet)
	s.inA(s.outB(s.srvSeg(ack, p0.Add(1), packet.FlagACK|packet.FlagFIN, ackOpts, nil)).Packet)
	s.inB(s.outA(s.cliSeg(p0.Add(1), ack.Add(1), packet.FlagACK, ackOpts, nil)).Packet)
	r, ok := s.a.ForgetClosed(fa)
	if !ok || s.a.NumFlows() != 0 {
		t.Fatalf("closed flow not forgotten: ok %v, %d flows", ok, s.a.NumFlows())
	}
	if len(r.Unprotect) != 1 || r.Unprotect[0] != fa {
		t.Errorf("Unprotect %v, want %v", r.Unprotect, fa)
	}
	if _, ok := s.a.ForgetClosed(fa); ok {
		t.Error("forgot a flow twice")
	}
	// An aborted flow keeps lingering (it answers stragglers with RSTs).
	s2 := newScript(t, Config{}, Config{})
	s2.handshake()
	s2.a.AbortFlow(fa, AbortInternal)
	if _, ok := s2.a.ForgetClosed(fa); ok || s2.a.NumFlows() != 1 {
		t.Error("an aborted flow was forgotten")
	}
}

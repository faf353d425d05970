package nfq

import (
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/florianl/go-nfqueue/v2"

	"github.com/tcpcryptd/tcpcrypt/engine"
)

// fakeGuard records calls; check runs inside each call, to look at what the
// worker has done so far.
type fakeGuard struct {
	mu                 sync.Mutex
	protect, unprotect []engine.Flow
	err                error
	check              func(op string)
}

func (g *fakeGuard) Protect(flows ...engine.Flow) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.check != nil {
		g.check("protect")
	}
	if g.err != nil {
		return g.err
	}
	g.protect = append(g.protect, flows...)
	return nil
}

func (g *fakeGuard) Unprotect(flows ...engine.Flow) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.check != nil {
		g.check("unprotect")
	}
	g.unprotect = append(g.unprotect, flows...)
	return nil
}

var (
	flowA = engine.Flow{Local: netip.MustParseAddrPort("10.0.0.1:40000"), Remote: netip.MustParseAddrPort("10.0.0.2:443")}
	flowB = engine.Flow{Local: netip.MustParseAddrPort("10.0.0.1:40001"), Remote: netip.MustParseAddrPort("10.0.0.2:443")}
)

// TestGuardOrder: the guard protects a Result's flows before anything of the
// Result reaches the kernel (the verdict may carry the first ciphertext, an
// injection the Init message), and releases forgotten flows only after.
func TestGuardOrder(t *testing.T) {
	var h *harness
	var bad []string
	g := &fakeGuard{}
	g.check = func(op string) {
		st := h.d.Stats()
		nv, np := st.Replaced, st.InjectedToPeer
		switch {
		case op == "protect" && (nv != 0 || np != 0):
			bad = append(bad, "protect after the verdict or the injection")
		case op == "unprotect" && (nv != 1 || np != 1):
			bad = append(bad, "unprotect before the verdict or the injection")
		}
	}
	h = newHarness(t, 1, script{guard: g, process: func(_ *fakeEngine, pkt []byte, _ engine.Dir) engine.Result {
		return engine.Result{Verdict: engine.Replace, Packet: append([]byte(nil), pkt...),
			ToPeer: [][]byte{{1}}, Protect: []engine.Flow{flowA}, Unprotect: []engine.Flow{flowB}}
	}})
	h.queues[0].Packet(1, HookLocalOut, tcpPkt(t, "10.0.0.1:40000", "10.0.0.2:443", 1, []byte("x")))
	if v := h.verdict(0); v.Verdict != nfqueue.NfAccept || v.Packet == nil {
		t.Fatalf("verdict %+v, want the replacement", v)
	}
	st := h.waitStats(func(s Stats) bool { return s.Protected == 1 })
	if st.GuardErrors != 0 {
		t.Errorf("guard errors %d", st.GuardErrors)
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(bad) != 0 {
		t.Errorf("order: %v", bad)
	}
	if len(g.protect) != 1 || g.protect[0] != flowA || len(g.unprotect) != 1 || g.unprotect[0] != flowB {
		t.Errorf("protect %v unprotect %v", g.protect, g.unprotect)
	}
}

// TestGuardFailureFailsClosed: when the guard cannot protect a flow, nothing
// of the Result leaves (its segment is dropped, its injections discarded),
// and the flow is aborted; the abort's RSTs do go out.
func TestGuardFailureFailsClosed(t *testing.T) {
	g := &fakeGuard{err: errors.New("netlink: no buffer space")}
	var aborted []engine.Flow
	var reasons []engine.AbortReason
	var mu sync.Mutex
	h := newHarness(t, 1, script{guard: g,
		process: func(_ *fakeEngine, pkt []byte, _ engine.Dir) engine.Result {
			return engine.Result{Verdict: engine.Replace, Packet: append([]byte(nil), pkt...),
				ToPeer: [][]byte{[]byte("init1")}, Protect: []engine.Flow{flowA}}
		},
		abort: func(_ *fakeEngine, f engine.Flow, r engine.AbortReason) (engine.Result, bool) {
			mu.Lock()
			aborted, reasons = append(aborted, f), append(reasons, r)
			mu.Unlock()
			return engine.Result{ToPeer: [][]byte{[]byte("rst-peer")}, ToLocal: [][]byte{[]byte("rst-local")}}, true
		}})
	h.queues[0].Packet(1, HookLocalOut, tcpPkt(t, "10.0.0.1:40000", "10.0.0.2:443", 1, []byte("x")))
	if v := h.verdict(0); v.Verdict != nfqueue.NfDrop {
		t.Fatalf("verdict %+v, want a drop", v)
	}
	select {
	case p := <-h.inj.Peer():
		if string(p) != "rst-peer" {
			t.Errorf("sent toward the peer %q, want only the abort's RST", p)
		}
	case <-time.After(testTimeout):
		t.Fatal("abort RST not sent")
	}
	if p := <-h.inj.Local(); string(p) != "rst-local" {
		t.Errorf("sent to the stack %q", p)
	}
	h.waitStats(func(s Stats) bool { return s.GuardErrors == 1 })
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if n := len(h.inj.Peer()); n != 0 {
		t.Errorf("%d more packets toward the peer", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(aborted) != 1 || aborted[0] != flowA || reasons[0] != engine.AbortGuard {
		t.Errorf("aborted %v (%v), want %v (guard)", aborted, reasons, flowA)
	}
}

// TestEnginePanicRecovered: a panic inside Process costs the segment (dropped)
// and its flow (aborted as internal), not the daemon: the next segment is
// processed as usual.
func TestEnginePanicRecovered(t *testing.T) {
	var mu sync.Mutex
	var aborted []engine.Flow
	h := newHarness(t, 1, script{
		process: func(_ *fakeEngine, pkt []byte, _ engine.Dir) engine.Result {
			if seqOf(pkt) == 666 {
				lo, hi := 500, 100
				_ = pkt[lo:hi] // the kind of bug issue 8 found
			}
			return engine.Result{Verdict: engine.Accept}
		},
		abort: func(_ *fakeEngine, f engine.Flow, r engine.AbortReason) (engine.Result, bool) {
			mu.Lock()
			defer mu.Unlock()
			if r == engine.AbortInternal {
				aborted = append(aborted, f)
			}
			return engine.Result{ToLocal: [][]byte{[]byte("rst")}}, true
		}})
	h.queues[0].Packet(1, HookLocalOut, tcpPkt(t, "10.0.0.1:40000", "10.0.0.2:443", 666, nil))
	if v := h.verdict(0); v.ID != 1 || v.Verdict != nfqueue.NfDrop {
		t.Fatalf("verdict after the panic %+v, want a drop of 1", v)
	}
	h.queues[0].Packet(2, HookLocalOut, tcpPkt(t, "10.0.0.1:40000", "10.0.0.2:443", 1, nil))
	if v := h.verdict(0); v.ID != 2 || v.Verdict != nfqueue.NfAccept {
		t.Fatalf("next verdict %+v, want an accept of 2", v)
	}
	h.waitStats(func(s Stats) bool { return s.Panics == 1 })
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(aborted) != 1 || aborted[0] != flowA {
		t.Errorf("aborted %v, want [%v]", aborted, flowA)
	}
}

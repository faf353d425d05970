package engine

import (
	"net/netip"
	"slices"

	"github.com/tcpcryptd/tcpcrypt/packet"
	"github.com/tcpcryptd/tcpcrypt/packet/seq"
)

// Aborts (RFC 8548 §3.3: "abort" is the RFC 793 ABORT: RST, destroy,
// notify the user). A rewriter notifies the user by a RST toward the local
// stack as well as toward the peer (DESIGN.md invariant 4).

// abort sends RSTs both ways, counts the reason and leaves the flow in
// StateAborted, dropping the segment s being processed (nil from a timer).
func (e *Engine) abort(f *flow, s *seg, r AbortReason) {
	e.abortErr(f, s, r, nil)
}

func (e *Engine) abortErr(f *flow, s *seg, r AbortReason, err error) {
	if f.state.dead() {
		return
	}
	e.ctr.Aborts[r]++
	f.abortReason = r
	if err != nil {
		f.lastErr = err
	}
	e.event(f, Event{Kind: EventAbort, Reason: r.String(), Err: err})
	e.resetPeer(f)
	e.resetLocal(f)
	if s != nil {
		e.drop(DropDead)
	}
	e.kill(f, StateAborted)
}

// kill ends the flow's life: held segments are dropped, buffers freed, and
// the flow lingers in state st (StateAborted or StateReset).
func (e *Engine) kill(f *flow, st State) {
	if !f.state.dead() && st == StateReset {
		e.ctr.FlowsClosed++
	}
	f.state = st
	f.rstBudget = engineRSTBudget
	e.dropHeld(f, DropDead)
	f.rtxAt, f.redeliverAt = seq0Time, seq0Time
	f.release()
}

// resetPeer sends RSTs toward the peer at the wire positions its receiver
// may be at: the end of what we sent and the start of what it has not
// acknowledged (RFC 5961 accepts only the exact one; a wrong one earns a
// challenge ACK, which onDead answers exactly).
func (e *Engine) resetPeer(f *flow) {
	if !f.peer.seen {
		return
	}
	if !f.local.seen {
		// We dropped the peer's SYN: answer it as a closed port would.
		e.toPeer(e.rstToPeer(f, 0, f.peer.isn.Add(1), true))
		return
	}
	ack := f.peer.isn.Add(1)
	if f.rcvReady {
		ack = seqAt(f.peer.isn, f.rcv.ackOut())
	}
	next := f.local.isn.Add(1)
	if f.sndReady {
		next = seqAt(f.local.isn, f.sndNextC())
	}
	e.toPeer(e.rstToPeer(f, next, ack, true))
	if f.sndReady {
		if una := seqAt(f.local.isn, int64(f.snd.cAcked)); una != next {
			e.toPeer(e.rstToPeer(f, una, ack, true))
		}
	}
}

// resetLocal sends RSTs toward the local stack at the P positions its
// rcv.nxt may be at: the end of what was handed to it (the frames an
// aborting segment completed never were), what it acknowledged, and the
// end of everything verified. RFC 5961 stacks take only the exact one, and
// answer a near miss with a rate-limited challenge ACK at best.
func (e *Engine) resetLocal(f *flow) {
	if !f.peer.seen || !f.local.seen {
		if f.local.seen && f.active {
			// The local stack is in SYN-SENT: a RST acking its SYN resets it.
			e.toLocal(e.rstToLocal(f, 0, f.local.isn.Add(1), true))
		}
		return
	}
	ack := f.local.isn.Add(1)
	if f.sndReady {
		ack = seqAt(f.local.isn, f.snd.pAckValue())
	}
	if !f.rcvReady {
		e.toLocal(e.rstToLocal(f, f.peer.isn.Add(1), ack, true))
		return
	}
	r := &f.rcv
	sent := int64(r.pToLocal)
	if r.finToLoc {
		sent++
	}
	next := int64(r.pNext)
	if r.finFrame {
		next++
	}
	cands := [...]int64{sent, int64(r.pAckLocal), next}
	for i, p := range cands {
		if !slices.Contains(cands[:i], p) {
			e.toLocal(e.rstToLocal(f, seqAt(f.peer.isn, p), ack, true))
		}
	}
}

func (e *Engine) rstToPeer(f *flow, sq, ack seq.Value, withACK bool) []byte {
	return buildRST(f.key.local, f.key.remote, sq, ack, withACK)
}

func (e *Engine) rstToLocal(f *flow, sq, ack seq.Value, withACK bool) []byte {
	return buildRST(f.key.remote, f.key.local, sq, ack, withACK)
}

// buildRST makes a RST from src to dst at sequence number sq, with ack when
// withACK is set; nil if the addresses cannot make a packet.
func buildRST(src, dst netip.AddrPort, sq, ack seq.Value, withACK bool) []byte {
	fl := packet.Fields{Src: src, Dst: dst, Seq: sq, Flags: packet.FlagRST}
	if withACK {
		fl.Ack, fl.Flags = ack, fl.Flags|packet.FlagACK
	}
	b, err := packet.Build(nil, &fl) // rare: not worth a pooled buffer
	if err != nil {
		return nil
	}
	return b
}

// onDead handles a segment of an aborted or reset flow: it is dropped, and
// a segment with an ACK is answered like a closed connection answers it
// (RFC 9293 §3.10.7.1: RST with seq = SEG.ACK), which is exact even when our
// own RST was not, so both ends do go away. The answers are bounded.
func (e *Engine) onDead(f *flow, s *seg) {
	e.drop(DropDead)
	if s.has(packet.FlagRST) || !s.has(packet.FlagACK) || f.rstBudget <= 0 {
		return
	}
	f.rstBudget--
	if s.dir == Outbound {
		e.toLocal(e.rstToLocal(f, s.ack, 0, false))
	} else {
		e.toPeer(e.rstToPeer(f, s.ack, 0, false))
	}
}

// AbortFlow aborts the live flow fl (RST toward both sides, counted as r),
// for a caller that cannot let it go on: it could not protect it
// (AbortGuard), or the engine failed on one of its segments. The flow
// lingers like any aborted flow. It reports false when no live flow has
// those endpoints.
func (e *Engine) AbortFlow(fl Flow, r AbortReason) (Result, bool) {
	e.begin()
	f := e.tab.flows[flowKey{local: fl.Local, remote: fl.Remote}]
	if f == nil || f.state.dead() {
		return e.finishTick(), false
	}
	now := e.cfg.Now()
	e.abort(f, nil, r)
	e.settle(f, now)
	return e.finishTick(), true
}

// ForgetClosed forgets the flow fl before its linger ends, if it is closed
// (both FINs acknowledged), for a caller that knows no straggler of it will
// come: the daemon's own loopback self-test connections. Any other flow is
// left alone and ok is false. The Result's Unprotect names fl if it was
// protected; the caller releases it.
func (e *Engine) ForgetClosed(fl Flow) (r Result, ok bool) {
	e.begin()
	f := e.tab.flows[flowKey{local: fl.Local, remote: fl.Remote}]
	if f == nil || f.state != StateClosed {
		return e.finishTick(), false
	}
	e.forget(f)
	return e.finishTick(), true
}

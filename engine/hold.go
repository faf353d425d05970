package engine

import (
	"time"

	"github.com/tcpcryptd/tcpcrypt/packet"
)

// Held segments: outbound data that cannot be framed yet because the keys
// do not exist (A before Init2, B before Init1). Holding is bounded per
// flow and in total, and in time; past a bound the segment is dropped and
// TCP retransmits it (DESIGN.md invariant 5).

var seq0Time time.Time

// hold keeps a copy of the segment and answers Hold.
func (e *Engine) hold(f *flow, s *seg, now time.Time) {
	n := len(s.raw)
	if f.heldBytes+n > e.cfg.MaxHeldPerFlow || e.heldTotal+n > e.cfg.MaxHeldTotal {
		e.drop(DropHeldOverflow)
		return
	}
	e.next++
	f.held = append(f.held, heldPkt{token: e.next, pkt: append([]byte(nil), s.p.Buf...), at: now})
	f.heldBytes += n
	e.heldTotal += n
	e.out.Verdict = Hold
	e.out.Token = e.next
	e.out.Packet = nil
}

// releaseHeld processes the held segments now that keys exist, in the
// order they were held, and reports each outcome in Result.Released.
func (e *Engine) releaseHeld(f *flow, now time.Time) {
	if len(f.held) == 0 {
		return
	}
	held := f.held
	f.held = nil
	e.heldTotal -= f.heldBytes
	f.heldBytes = 0
	saved := e.out
	e.out = Result{}
	for _, h := range held {
		e.out.Verdict, e.out.Packet, e.out.Token = Accept, nil, 0
		rel := Release{Token: h.token, Verdict: Drop}
		var p packet.Packet
		if err := packet.Parse(h.pkt, &p); err == nil && f.state.encrypting() {
			s := seg{
				p: &p, raw: h.pkt, dir: Outbound,
				flags: p.TCP.Flags(), seq: p.TCP.Seq(), ack: p.TCP.Ack(),
				opts: p.TCP.Options(), payload: p.TCP.Payload(),
			}
			e.outEncrypted(f, &s, now)
			switch e.out.Verdict {
			case Replace:
				rel.Verdict, rel.Packet = Replace, e.out.Packet
			case Drop:
				rel.Verdict = Drop
			default:
				// Accept would let plaintext out; Hold cannot happen
				// once keys exist. Either way: drop, TCP retransmits.
				rel.Verdict = Drop
			}
		}
		saved.ToPeer, saved.ToLocal = append(saved.ToPeer, e.out.ToPeer...), append(saved.ToLocal, e.out.ToLocal...)
		e.out.ToPeer, e.out.ToLocal = nil, nil
		saved.Released = append(saved.Released, rel)
		e.ctr.Released++
	}
	saved.Released = append(saved.Released, e.out.Released...)
	saved.ToPeer, saved.ToLocal = append(saved.ToPeer, e.out.ToPeer...), append(saved.ToLocal, e.out.ToLocal...)
	e.out = saved
}

// dropHeld settles every held segment with Drop.
func (e *Engine) dropHeld(f *flow, r DropReason) {
	for _, h := range f.held {
		e.out.Released = append(e.out.Released, Release{Token: h.token, Verdict: Drop})
		e.ctr.Released++
		e.ctr.Drops[r]++
	}
	e.heldTotal -= f.heldBytes
	f.held, f.heldBytes = nil, 0
}

// expireHeld drops segments held longer than HoldTimeout.
func (e *Engine) expireHeld(f *flow, now time.Time) {
	k := 0
	for k < len(f.held) && !now.Before(f.held[k].at.Add(e.cfg.HoldTimeout)) {
		h := f.held[k]
		e.out.Released = append(e.out.Released, Release{Token: h.token, Verdict: Drop})
		e.ctr.Released++
		e.ctr.Drops[DropHoldTimeout]++
		f.heldBytes -= len(h.pkt)
		e.heldTotal -= len(h.pkt)
		k++
	}
	if k > 0 {
		f.held = append(f.held[:0], f.held[k:]...)
	}
}

package engine

import (
	"errors"
	"time"

	"github.com/tcpcryptd/tcpcrypt/packet"
)

// Process handles one segment. pkt is borrowed for the duration of the call
// only: the engine copies whatever it keeps. It may write into pkt during
// the call (the AEAD reads a frame's flags byte from just before its data,
// see crypto.FrameKey.SealFrom) but restores every byte before it returns,
// so pkt must not be shared with anything running during the call. See
// Result for who owns what it returns.
func (e *Engine) Process(pkt []byte, dir Dir) Result {
	e.begin()
	now := e.cfg.Now()
	if dir == Outbound {
		e.ctr.PacketsOut++
	} else {
		e.ctr.PacketsIn++
	}
	p := &e.parsed // not on the heap for each call: seg keeps a pointer to it
	if err := packet.Parse(pkt, p); err != nil {
		if errors.Is(err, packet.ErrNotTCP) {
			return e.finish()
		}
		// A TCP segment we cannot rewrite may belong to an encrypted flow;
		// passing it could leak or inject plaintext, so it is dropped. But
		// one whose endpoints we can read and that belongs to no tracked
		// flow passes untouched (DESIGN.md invariant 8): the queue may hand
		// over a copy cut short (payloads past 65531 bytes, BIG TCP), and
		// dropping every retransmission of it would stall a connection
		// that is none of our business.
		if key, ok := rawFlowKey(pkt, dir); ok && e.tab.flows[key] == nil {
			return e.finish()
		}
		e.drop(DropUnparsable)
		return e.finish()
	}
	s := seg{
		p: p, raw: pkt, dir: dir,
		flags: p.TCP.Flags(), seq: p.TCP.Seq(), ack: p.TCP.Ack(),
		opts: p.TCP.Options(), payload: p.TCP.Payload(),
	}
	var key flowKey
	if dir == Outbound {
		key = flowKey{local: p.SrcAddrPort(), remote: p.DstAddrPort()}
	} else {
		key = flowKey{local: p.DstAddrPort(), remote: p.SrcAddrPort()}
	}
	f := e.tab.flows[key]
	if f == nil {
		switch {
		case s.flags&(packet.FlagSYN|packet.FlagACK|packet.FlagRST) == packet.FlagSYN:
			e.newFlow(key, &s, now)
		case dir == Inbound && s.flags&(packet.FlagSYN|packet.FlagRST) == 0 &&
			packet.CountOption(s.opts, packet.OptENO) > 0:
			// The peer carries ENO in a non-SYN segment, which it does only
			// while it takes the connection for encrypted (RFC 8547 §4.6):
			// it saw a SYN-ACK that answered ENO, made by this engine for a
			// flow since evicted from a full table, or by a daemon that ran
			// before this one. Passed untouched, its Init1 or frames would
			// reach the local stack as data, and the application's answer
			// would leave in plaintext. It is dropped, and answered as a
			// closed port answers a segment with an ACK (RFC 9293
			// §3.10.7.1: RST, seq = SEG.ACK), so that the peer gives up at
			// once instead of when its key exchange times out; one RST per
			// segment, as the kernel itself sends for stray segments.
			e.drop(DropUntrackedENO)
			if s.has(packet.FlagACK) {
				e.toPeer(buildRST(key.local, key.remote, s.ack, 0, false))
			}
		}
		return e.finish()
	}
	if f.state.dead() && s.flags&(packet.FlagSYN|packet.FlagACK|packet.FlagRST) == packet.FlagSYN && f.newISN(&s) {
		// A new ISN means a new connection (as TIME-WAIT reuse does):
		// the lingering flow ends and the SYN starts a fresh one.
		e.forget(f)
		e.newFlow(key, &s, now)
		return e.finish()
	}
	f.seen = now
	e.dispatch(f, &s, now)
	e.account(f)
	e.settle(f, now)
	return e.finish()
}

// newISN reports whether the SYN s is not a retransmission of the SYN the
// flow saw from the same side.
func (f *flow) newISN(s *seg) bool {
	side := &f.peer
	if s.dir == Outbound {
		side = &f.local
	}
	return !side.seen || s.seq != side.isn
}

// dispatch runs the handler of the flow's state.
func (e *Engine) dispatch(f *flow, s *seg, now time.Time) {
	switch f.state {
	case StateSynSent:
		e.onSynSent(f, s, now)
	case StateSynReceived:
		e.onSynReceived(f, s, now)
	case StateENOAgreed:
		e.onENOAgreed(f, s, now)
	case StateKeyExchange:
		e.onKeyExchange(f, s, now)
	case StateEstablished:
		e.onEstablished(f, s, now)
	case StateClosed:
		e.onClosed(f, s, now)
	case StateAborted, StateReset:
		e.onDead(f, s)
	}
}

// settle updates the flow's place in the table after a packet or timer:
// forgotten flows leave, others get their next deadline.
func (e *Engine) settle(f *flow, now time.Time) {
	if e.tab.flows[f.key] != f {
		return
	}
	if !f.protected && !f.state.dead() && (f.state == StateENOAgreed || f.state.encrypting()) {
		// From the first segment that commits this flow to tcpcrypt on,
		// no packet of it may bypass the engine.
		f.protected = true
		e.ctr.FlowsProtected++
		e.out.Protect = append(e.out.Protect, Flow{Local: f.key.local, Remote: f.key.remote})
	}
	e.tab.moved(f)
	e.tab.schedule(f, e.flowDeadline(f, now))
}

// Tick runs timers due at now: retransmissions of engine-made segments,
// re-delivery to the local stack, held-segment and flow timeouts. The
// Result's Verdict is unused.
func (e *Engine) Tick(now time.Time) Result {
	e.begin()
	for {
		f := e.tab.popDue(now)
		if f == nil {
			break
		}
		e.onTimer(f, now)
		e.account(f)
		e.settle(f, now)
	}
	return e.finishTick()
}

// NextDeadline returns when Tick should next run (zero: no timer pending).
func (e *Engine) NextDeadline() time.Time { return e.tab.nextDeadline() }

// newFlow starts tracking a connection on its first SYN.
func (e *Engine) newFlow(key flowKey, s *seg, now time.Time) {
	d := e.decide(key.local, key.remote)
	mode := d.Mode
	if mode == Exclude {
		// ENO disabled by configuration still discards SYN+ENO data
		// (RFC 8547 §4.7).
		e.discardSYNData(s)
		return
	}
	if e.tab.full() {
		if v := e.tab.victim(); v != nil {
			e.evict(v, now)
		} else {
			e.ctr.Fallbacks[FallbackTableFull]++
			e.event(&flow{key: key, mode: mode}, Event{Kind: EventFallback, Reason: FallbackTableFull.String()})
			if mode == Required {
				e.drop(DropRequired)
				return
			}
			e.discardSYNData(s)
			return
		}
	}
	f := &flow{key: key, mode: mode, opts: d.Options, created: now, seen: now, heapIdx: -1, urgP: -1}
	f.snd.q.pool, f.rcv.pend.pool, f.rcv.plain.pool = &e.pool, &e.pool, &e.pool
	f.active = s.dir == Outbound
	e.tab.add(f)
	e.ctr.FlowsTracked++
	if f.active {
		e.startActive(f, s, now)
	} else {
		e.startPassive(f, s, now)
	}
	e.settle(f, now)
}

// forget drops the flow from the table: its later packets pass untouched.
// Held segments are dropped (TCP retransmits them).
func (e *Engine) forget(f *flow) {
	if f.protected {
		f.protected = false
		e.out.Unprotect = append(e.out.Unprotect, Flow{Local: f.key.local, Remote: f.key.remote})
	}
	f.addTraffic(&e.ctr)
	e.dropHeld(f, DropDead)
	f.release()
	e.account(f)
	e.tab.remove(f)
}

// fallback forgets a flow whose ENO negotiation failed, so that it goes on
// as plain TCP (DESIGN.md invariant 8), or aborts it under Required.
func (e *Engine) fallback(f *flow, s *seg, r FallbackReason) {
	e.ctr.Fallbacks[r]++
	e.event(f, Event{Kind: EventFallback, Reason: r.String()})
	if f.mode == Required {
		e.abort(f, s, AbortRequired)
		return
	}
	e.forget(f)
	e.discardSYNData(s)
}

// discardSYNData keeps the payload of a received SYN or SYN-ACK that carries
// ENO from the local stack when the engine lets that segment go on as plain
// TCP (ENO failed or disabled): RFC 8547 §4.7 requires the data of a
// SYN+ENO segment to be discarded then, so that the stack acknowledges only
// the peer's ISN and takes data only from non-SYN segments. The segment is
// replaced by a copy without payload (IP length and checksums recomputed);
// a SYN without ENO, and any segment already given another verdict, is left
// alone. (Tracked flows lose their SYN data in passSYN.)
func (e *Engine) discardSYNData(s *seg) {
	if s == nil || s.dir != Inbound || !s.has(packet.FlagSYN) || len(s.payload) == 0 ||
		e.out.Verdict != Accept || packet.CountOption(s.opts, packet.OptENO) == 0 {
		return
	}
	out, err := e.rebuild(s.p, s.opts, nil, sameHdr(s))
	if err != nil {
		e.drop(DropRewrite)
		return
	}
	e.replace(out)
}

// evict makes room in a full table.
func (e *Engine) evict(f *flow, now time.Time) {
	e.ctr.FlowsEvicted++
	switch {
	case f.state.dead():
	case f.mode == Required || f.protected:
		// A required connection must not go on as plain TCP, and neither
		// may one that is (or was about to be) encrypted: forgetting it
		// alive would let its next bytes pass in plaintext.
		e.abort(f, nil, AbortEvicted)
	case !f.active && f.local.seen:
		// A server flow whose SYN-ACK answered ENO: its client takes the
		// connection for encrypted, and its next segment is dropped
		// (DropUntrackedENO) and answered with a RST, so it never
		// completes; not a fallback.
	default:
		// ENO was not settled yet: untracked, the connection goes on as
		// plain TCP. Say so, so that ctl answers "not encrypted" and why
		// rather than "not tracked".
		e.ctr.Fallbacks[FallbackEvicted]++
		e.event(f, Event{Kind: EventFallback, Reason: FallbackEvicted.String()})
	}
	e.forget(f)
}

// flowDeadline computes the flow's next timer.
func (e *Engine) flowDeadline(f *flow, now time.Time) time.Time {
	var d time.Time
	min := func(t time.Time) {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	switch {
	case f.state.dead():
		min(f.seen.Add(e.cfg.CloseTimeout))
	case f.state.halfOpen():
		min(f.created.Add(e.cfg.HalfOpenTimeout))
	default:
		min(f.seen.Add(e.cfg.IdleTimeout))
		min(e.livenessDue(f))
		if f.state == StateKeyExchange {
			min(f.created.Add(e.cfg.HalfOpenTimeout))
		}
	}
	if len(f.held) > 0 {
		min(f.held[0].at.Add(e.cfg.HoldTimeout))
	}
	min(f.rtxAt)
	min(f.redeliverAt)
	return d
}

// onTimer handles a flow whose deadline passed.
func (e *Engine) onTimer(f *flow, now time.Time) {
	switch {
	case f.state.dead():
		if !now.Before(f.seen.Add(e.cfg.CloseTimeout)) {
			// The end was counted when the flow died (closed, aborted,
			// expired): the linger's end is not another one.
			e.forget(f)
			return
		}
	case f.state.halfOpen():
		if !now.Before(f.created.Add(e.cfg.HalfOpenTimeout)) {
			e.ctr.FlowsExpired++
			if f.mode == Required || f.state == StateENOAgreed {
				// ENOAgreed: the peer expects encryption from our next
				// segment, so the flow must not go on in plaintext.
				f.seen = now
				e.abort(f, nil, AbortInitTimeout)
				return
			}
			e.forget(f)
			return
		}
	default:
		if !now.Before(f.seen.Add(e.cfg.IdleTimeout)) {
			// Forgetting an encrypted flow would let its next segment
			// pass in plaintext: abort it instead.
			// It lingers like every aborted flow: its stragglers are
			// dropped and answered with RSTs (onDead), never passed.
			e.ctr.FlowsExpired++
			f.seen = now
			e.abort(f, nil, AbortIdle)
			return
		}
		if f.state == StateKeyExchange && !now.Before(f.created.Add(e.cfg.HalfOpenTimeout)) {
			e.abort(f, nil, AbortInitTimeout)
			return
		}
	}
	e.probeLiveness(f, now)
	e.expireHeld(f, now)
	if !f.rtxAt.IsZero() && !now.Before(f.rtxAt) {
		e.retransmit(f, now)
	}
	if !f.redeliverAt.IsZero() && !now.Before(f.redeliverAt) {
		e.redeliver(f, now)
	}
}

// rawFlowKey reads the endpoints of a TCP packet from its headers alone
// (packet.Endpoints), without the length checks of packet.Parse, so that it
// works on a copy cut short and past IPv6 extension headers. Fragments and
// packets whose ports cannot be read give ok false.
func rawFlowKey(b []byte, dir Dir) (flowKey, bool) {
	src, dst, err := packet.Endpoints(b)
	if err != nil {
		return flowKey{}, false
	}
	if dir == Outbound {
		return flowKey{local: src, remote: dst}, true
	}
	return flowKey{local: dst, remote: src}, true
}

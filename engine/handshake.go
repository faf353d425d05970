package engine

import (
	"bytes"
	"time"

	"github.com/tcpcryptd/tcpcrypt/eno"
	"github.com/tcpcryptd/tcpcrypt/packet"
)

// TCP-ENO handshake (RFC 8547 §4.6; docs/engine-design.md "Handshake").

// sameHdr returns the segment's own header fields.
func sameHdr(s *seg) hdr {
	return hdr{seq: s.seq, ack: s.ack, flags: s.flags, window: s.p.TCP.Window(), urgent: s.p.TCP.Urgent()}
}

// startActive handles the local stack's SYN: it creates the flow's SYN-form
// ENO option, once, and appends it (retransmissions reuse the same bytes,
// §4.6).
func (e *Engine) startActive(f *flow, s *seg, now time.Time) {
	f.state = StateSynSent
	f.local.isn = s.seq
	f.local.seen = true
	f.local.synWnd = s.p.TCP.Window()
	synOptions(s.opts, &f.local)
	if len(s.payload) > 0 || packet.CountOption(s.opts, packet.OptTFO) > 0 {
		// SYN data or a Fast Open cookie conflicts with ENO (§4.7).
		e.fallback(f, s, FallbackSYNData)
		return
	}
	if packet.CountOption(s.opts, packet.OptENO) > 0 {
		// The local stack speaks ENO itself: stay out of its way.
		e.forget(f)
		return
	}
	var ob packet.OptionBuilder
	if _, err := editOptions(&ob, s.opts, &optEdit{}); err != nil {
		e.fallback(f, s, FallbackNoOptionSpace)
		return
	}
	budget := packet.MaxOptionsLen - ob.Len()
	extra := e.resumeOfferFor(f, budget)
	opt, err := eno.BuildSYN(e.enoConfig(f), budget, extra...)
	if err != nil && len(extra) > 0 {
		// No room for the resumption offer: it never leaves, so the
		// secret goes back to the cache.
		e.putBack(f.resume.entry)
		f.resume = nil
		opt, err = eno.BuildSYN(e.enoConfig(f), budget)
	}
	if err != nil {
		e.fallback(f, s, FallbackNoOptionSpace)
		return
	}
	raw, err := opt.Marshal(nil)
	if err != nil {
		e.fallback(f, s, FallbackNoOptionSpace)
		return
	}
	f.local.eno = raw
	e.sendSYNWithENO(f, s)
}

// sendSYNWithENO replaces the local SYN (or SYN-ACK) with a copy carrying
// our stored ENO option.
func (e *Engine) sendSYNWithENO(f *flow, s *seg) {
	var ob packet.OptionBuilder
	opts, err := editOptions(&ob, s.opts, &optEdit{dropENO: true, eno: f.local.eno})
	if err != nil {
		e.fallback(f, s, FallbackNoOptionSpace)
		return
	}
	out, err := e.rebuild(s.p, opts, nil, sameHdr(s))
	if err != nil {
		e.fallback(f, s, FallbackNoOptionSpace)
		return
	}
	e.replace(out)
}

// startPassive handles a peer's SYN: it records the peer's ENO option
// exactly as received and clamps the MSS the local stack sees.
func (e *Engine) startPassive(f *flow, s *seg, now time.Time) {
	f.state = StateSynReceived
	f.peer.isn = s.seq
	f.peer.seen = true
	f.peer.synWnd = s.p.TCP.Window()
	synOptions(s.opts, &f.peer)
	raw, cnt, _ := eno.FindENO(s.opts)
	switch {
	case cnt == 0:
		e.fallback(f, s, FallbackNoPeerENO)
		return
	case cnt > 1:
		e.fallback(f, s, FallbackDuplicateENO)
		return
	}
	opt, err := eno.ParseSYN(raw)
	if err != nil {
		e.fallback(f, s, FallbackMalformed)
		return
	}
	if opt.Vacuous() {
		e.fallback(f, s, FallbackVacuous) // RFC 8547 §4.6
		return
	}
	f.peer.eno = append([]byte(nil), raw...)
	f.peer.enoCnt = cnt
	f.peer.enoOpt = opt.Clone()
	f.peer.enoOpt.Raw = nil
	e.passSYN(f, s)
}

// passSYN lets the peer's SYN or SYN-ACK through with the MSS clamped by
// the worst per-segment growth (invariant 7) and to mssCeiling, and any SYN
// data removed
// (RFC 8547 §4.7: tcpcrypt defines no SYN data).
func (e *Engine) passSYN(f *flow, s *seg) {
	clamp := f.pmss()
	var ob packet.OptionBuilder
	opts, err := editOptions(&ob, s.opts, &optEdit{mss: clamp, addMSS: true})
	if err != nil {
		// No room to insert an MSS option: the local default (536/1220)
		// already leaves room for our growth.
		opts, err = editOptions(&ob, s.opts, &optEdit{mss: clamp})
		if err != nil {
			e.drop(DropRewrite)
			return
		}
	}
	out, err := e.rebuild(s.p, opts, nil, sameHdr(s))
	if err != nil {
		e.drop(DropRewrite)
		return
	}
	e.replace(out)
	if s.has(packet.FlagACK) {
		// What the stack now knows of the peer's ack and window, the
		// window in the scaled form later segments use (RFC 7323 §2.2).
		w := s.p.TCP.Window()
		if f.local.wscale >= 0 && f.peer.wscale >= 0 {
			w >>= uint(f.peer.wscale)
		}
		f.toLocalAck, f.toLocalWnd = s.ack, w
	}
}

// peerMSS is the MSS the peer announced, or the family default.
func (f *flow) peerMSS() int {
	if f.peer.mss != 0 {
		return int(f.peer.mss)
	}
	if f.key.local.Addr().Is4() {
		return 536
	}
	return 1220
}

// pmss is the MSS the local stack is given: the peer's minus the worst
// growth of one segment, so a full segment still fits after rewriting, and
// never above the family's mssCeiling, so that the stack's GSO packets fit
// in an NFQUEUE message.
func (f *flow) pmss() uint16 {
	ceil := mssCeilingV4
	if !f.key.local.Addr().Is4() {
		ceil = mssCeilingV6
	}
	return uint16(max(min(f.peerMSS()-segGrowth, ceil), 64))
}

// mssCeiling bounds the MSS the local stack is given on a tracked flow (see
// "MSS ceiling" in docs/engine-design.md). NFQUEUE hands us at most
// maxPacket bytes of a packet and the rest is lost (nfq counts it as
// truncated), so every packet the stack queues must fit in maxPacket. On
// loopback (MTU 65536) the peer announces an MSS near 65495, but Linux
// (6.10 and later: tcp_grow_skb) builds GSO packets of at least
// tcp_min_tso_segs (2) segments of the current MSS even when that exceeds
// 64 KiB, so a stack given an MSS above about 32 KiB sends packets NFQUEUE
// truncates; we would drop them (their flow is tracked) and the connection
// would crawl on retransmissions. Two segments of the ceiling, each grown
// by our worst per-segment growth, under an IP header and a TCP header with
// 40 option bytes, fit in maxPacket.
const (
	mssCeilingV4 = (maxPacket-ipv4HdrLen-maxTCPHdrLen)/minTSOSegs - segGrowth // 32699
	mssCeilingV6 = (maxPacket-ipv6HdrLen-maxTCPHdrLen)/minTSOSegs - segGrowth // 32689
	ipv4HdrLen   = 20
	ipv6HdrLen   = 40
	maxTCPHdrLen = 60
	minTSOSegs   = 2 // Linux's default net.ipv4.tcp_min_tso_segs
)

// onSynSent: the local stack opened actively and our SYN carried ENO.
func (e *Engine) onSynSent(f *flow, s *seg, now time.Time) {
	switch {
	case s.has(packet.FlagRST):
		e.forget(f)
	case s.dir == Outbound && s.has(packet.FlagSYN) && !s.has(packet.FlagACK):
		if s.seq != f.local.isn {
			// A new connection attempt on the same tuple.
			e.forget(f)
			e.newFlow(f.key, s, now)
			return
		}
		e.sendSYNWithENO(f, s) // identical option bytes (§4.6)
	case s.dir == Inbound && s.has(packet.FlagSYN) && s.has(packet.FlagACK):
		if s.ack != f.local.isn.Add(1) {
			return // not for this SYN; the local stack answers it
		}
		if f.simOpen {
			e.simOpenSYNACK(f, s, now)
			return
		}
		e.gotSYNACK(f, s)
	case s.dir == Inbound && s.has(packet.FlagSYN):
		e.simOpenSYN(f, s)
	case s.dir == Outbound && s.has(packet.FlagSYN) && s.has(packet.FlagACK) && f.simOpen:
		// Our SYN-ACK in a simultaneous open carries the very option of
		// our SYN (RFC 8547 §4.6).
		e.sendSYNWithENO(f, s)
		f.sentSYNACK = true
		e.simOpenStart(f, s, now)
	case len(s.payload) > 0:
		e.drop(DropInvalid) // no data before the handshake settles
	}
}

// simOpenSYN handles the peer's SYN crossing ours: a simultaneous open
// (RFC 8547 §4.3). Roles then come from the b bits, so it can only succeed
// if exactly one end set b=1 (Config.SimOpenB) in advance.
func (e *Engine) simOpenSYN(f *flow, s *seg) {
	raw, cnt, _ := eno.FindENO(s.opts)
	switch {
	case cnt == 0:
		e.fallback(f, s, FallbackNoPeerENO)
		return
	case cnt > 1:
		e.fallback(f, s, FallbackDuplicateENO)
		return
	}
	f.simOpen = true
	f.peer.isn = s.seq
	f.peer.seen = true
	f.peer.synWnd = s.p.TCP.Window()
	synOptions(s.opts, &f.peer)
	f.peer.eno = append([]byte(nil), raw...)
	f.peer.enoCnt = cnt
	e.passSYN(f, s)
}

// simOpenSYNACK settles ENO when the peer's SYN-ACK of a simultaneous open
// arrives.
func (e *Engine) simOpenSYNACK(f *flow, s *seg, now time.Time) {
	if f.neg.OK {
		e.passSYN(f, s)
		return
	}
	raw, cnt, _ := eno.FindENO(s.opts)
	res := eno.Negotiate(eno.Input{
		Config:          e.enoConfig(f),
		LocalSYN:        f.local.eno,
		PeerSYN:         f.peer.eno,
		PeerSYNENOCount: f.peer.enoCnt,
		PeerACKHasENO:   cnt > 0 && bytes.Equal(raw, f.peer.eno),
		Valid:           e.resumeValid(f),
	})
	if !res.OK {
		e.dropResumeOffer(f)
		e.fallback(f, s, fallbackFromENO(res.Reason))
		return
	}
	f.neg = res
	e.passSYN(f, s)
	e.simOpenStart(f, s, now)
}

// simOpenStart turns encryption on once we have both sent and received a
// SYN-ACK with ENO (RFC 8547 §4.6). Host A's Init1 goes out at once: its
// stack may have nothing to send.
func (e *Engine) simOpenStart(f *flow, s *seg, now time.Time) {
	if !f.sentSYNACK || !f.neg.OK || f.state != StateSynSent {
		return
	}
	f.carryENO = true
	switch f.neg.Role {
	case eno.RoleA:
		if e.startA(f, s) {
			e.sendInit(f, now)
		}
	case eno.RoleB:
		e.startB(f, s)
	}
}

// gotSYNACK settles ENO on the active side.
func (e *Engine) gotSYNACK(f *flow, s *seg) {
	f.peer.isn = s.seq
	f.peer.seen = true
	f.peer.synWnd = s.p.TCP.Window()
	synOptions(s.opts, &f.peer)
	raw, cnt, _ := eno.FindENO(s.opts)
	in := eno.Input{
		Config:          e.enoConfig(f),
		LocalSYN:        f.local.eno,
		PeerSYN:         raw,
		PeerSYNENOCount: cnt,
		PeerACKHasENO:   cnt > 0,
		Valid:           e.resumeValid(f),
	}
	res := eno.Negotiate(in)
	if !res.OK {
		e.dropResumeOffer(f)
		e.fallback(f, s, fallbackFromENO(res.Reason))
		return
	}
	f.neg = res
	f.peer.eno = append([]byte(nil), raw...)
	f.peer.enoCnt = cnt
	f.state = StateENOAgreed
	f.carryENO = true
	e.passSYN(f, s)
}

// onSynReceived: the peer's SYN carried ENO; the local stack answers it.
func (e *Engine) onSynReceived(f *flow, s *seg, now time.Time) {
	switch {
	case s.has(packet.FlagRST):
		e.forget(f)
	case s.dir == Inbound && s.has(packet.FlagSYN) && !s.has(packet.FlagACK):
		if s.seq != f.peer.isn {
			e.forget(f)
			e.newFlow(f.key, s, now)
			return
		}
		e.passSYN(f, s)
	case s.dir == Outbound && s.has(packet.FlagSYN) && s.has(packet.FlagACK):
		e.sendSYNACK(f, s)
	case s.dir == Inbound && s.has(packet.FlagACK) && !s.has(packet.FlagSYN):
		if !f.local.seen {
			return
		}
		res := eno.Negotiate(eno.Input{
			Config:          e.enoConfig(f),
			Passive:         true,
			LocalSYN:        f.local.eno,
			PeerSYN:         f.peer.eno,
			PeerSYNENOCount: f.peer.enoCnt,
			PeerACKHasENO:   eno.HasENO(s.opts),
			Valid:           e.resumeValid(f),
		})
		if !res.OK {
			e.dropResumeAnswer(f)
			e.fallback(f, s, fallbackFromENO(res.Reason))
			return
		}
		f.neg = res
		if !e.startB(f, s) {
			return
		}
		e.onKeyExchange(f, s, now)
	case len(s.payload) > 0:
		e.drop(DropInvalid)
	}
}

// sendSYNACK appends our answer to the local SYN-ACK; the answer is made
// once and reused for retransmissions (§4.6).
func (e *Engine) sendSYNACK(f *flow, s *seg) {
	if !f.local.seen {
		f.local.seen = true
		f.local.isn = s.seq
		f.local.synWnd = s.p.TCP.Window()
		synOptions(s.opts, &f.local)
		var ob packet.OptionBuilder
		if _, err := editOptions(&ob, s.opts, &optEdit{dropENO: true}); err != nil {
			e.fallback(f, s, FallbackNoOptionSpace)
			return
		}
		budget := packet.MaxOptionsLen - ob.Len()
		ans, ok := eno.AnswerWithin(e.enoConfig(f), f.peer.enoOpt, budget, e.resumeChoose(f))
		if !ok {
			e.fallback(f, s, e.noAnswerReason(f))
			return
		}
		raw, err := ans.Marshal(nil)
		if err != nil || len(raw) > budget {
			e.fallback(f, s, FallbackNoOptionSpace)
			return
		}
		f.local.eno = raw
		e.keepResumeAnswer(f, &ans)
	} else if s.seq != f.local.isn {
		return
	}
	e.sendSYNWithENO(f, s)
}

// onENOAgreed: the SYN-ACK settled ENO; encryption starts with the active
// side's next segment, which carries 45 02 (§4.6).
func (e *Engine) onENOAgreed(f *flow, s *seg, now time.Time) {
	switch {
	case s.has(packet.FlagRST):
		e.forget(f)
	case s.dir == Inbound && s.has(packet.FlagSYN) && s.has(packet.FlagACK):
		e.passSYN(f, s) // a retransmitted SYN-ACK
	case s.dir == Outbound && !s.has(packet.FlagSYN):
		if !e.startA(f, s) {
			return
		}
		e.onKeyExchange(f, s, now)
	case len(s.payload) > 0:
		e.drop(DropInvalid)
	}
}

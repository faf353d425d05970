package engine

import (
	"time"

	"github.com/tcpcryptd/tcpcrypt/eno"
	"github.com/tcpcryptd/tcpcrypt/packet"
	"github.com/tcpcryptd/tcpcrypt/packet/seq"
)

// Segments from the local stack on an encrypted flow (docs/engine-design.md
// "Sending").

// onKeyExchange: encryption is on, the Init messages are in flight.
func (e *Engine) onKeyExchange(f *flow, s *seg, now time.Time) {
	if s.dir == Outbound {
		e.outEncrypted(f, s, now)
	} else {
		e.inEncrypted(f, s, now)
	}
}

// onEstablished: keys exist both ways.
func (e *Engine) onEstablished(f *flow, s *seg, now time.Time) {
	if s.dir == Outbound {
		e.outEncrypted(f, s, now)
	} else {
		e.inEncrypted(f, s, now)
	}
	if f.state == StateEstablished && f.snd.finAcked && f.rcv.finLocal {
		f.state = StateClosed
		e.ctr.FlowsClosed++
	}
}

// onClosed: both FINs were acknowledged; stragglers (a retransmitted FIN
// whose ACK was lost, the ACK of it) are still translated until the flow
// expires.
func (e *Engine) onClosed(f *flow, s *seg, now time.Time) {
	if s.dir == Outbound {
		e.outEncrypted(f, s, now)
	} else {
		e.inEncrypted(f, s, now)
	}
}

// outEncrypted rewrites a segment of the local stack: P numbers become C
// numbers, new data becomes frames, retransmissions resend the exact bytes
// first sent.
func (e *Engine) outEncrypted(f *flow, s *seg, now time.Time) {
	if s.has(packet.FlagSYN) {
		if (!f.active || f.simOpen) && s.has(packet.FlagACK) && s.seq == f.local.isn {
			e.sendSYNWithENO(f, s) // retransmitted SYN-ACK: same answer
		} else {
			e.drop(DropInvalid)
		}
		return
	}
	if s.has(packet.FlagRST) {
		e.outRST(f, s)
		return
	}
	f.lastWnd, f.haveWnd = s.p.TCP.Window(), true
	if v, ok := tsOption(s.opts); ok {
		f.lastTSval = v
	}
	hasData := len(s.payload) > 0 || s.has(packet.FlagFIN)
	if hasData && !f.keys {
		// A waits for Init2, B for Init1 (RFC 8548 §3.3): no keys yet.
		e.hold(f, s, now)
		if f.wasA {
			e.sendInit(f, now)
		}
		return
	}
	h := hdr{flags: s.flags, window: s.p.TCP.Window()}
	h.ack = s.ack
	if s.has(packet.FlagACK) {
		h.ack = e.ackToPeer(f, s.ack, now)
	}
	var payload []byte
	switch {
	case !f.sndReady:
		// B before Init2: nothing of our C stream exists yet, and the
		// offsets of P and C agree.
		h.seq = s.seq
	case !hasData && f.wasA && f.initMsg != nil && !f.snd.initAcked():
		// A's Init1 rides on its pure ACKs until acknowledged; the first
		// of them is the third segment of the handshake.
		payload = f.initMsg
		h.seq = seqAt(f.local.isn, 0)
		h.flags |= packet.FlagPSH
		e.armRTX(f, now)
	case !hasData:
		off := offAt(f.local.isn, f.snd.pNext, s.seq)
		h.seq = seqAt(f.local.isn, f.snd.cPoint(off))
		h.flags &^= packet.FlagURG
		h.urgent = 0
	default:
		var r DropReason
		payload, r = e.frameOut(f, s, &h, now)
		if r != DropNone {
			e.drop(r)
			return
		}
	}
	var ob packet.OptionBuilder
	ed := optEdit{dropSACK: true, dropENO: true}
	var blocks [packet.MaxSACKBlocks][2]seq.Value
	if f.sackOK() && f.rcvReady {
		ed.sack = e.ourSACK(f, blocks[:0])
	}
	if f.carryENO {
		ed.eno = eno.NonSYN
	}
	opts, err := editOptions(&ob, s.opts, &ed)
	if err != nil {
		e.drop(DropRewrite)
		return
	}
	e.emitOut(f, s, h, opts, payload)
}

// ackToPeer translates the local stack's ack of the peer's stream to the
// wire (P -> C at frame edges) and records it.
func (e *Engine) ackToPeer(f *flow, ack seq.Value, now time.Time) seq.Value {
	if !f.rcvReady {
		return ack
	}
	before := f.rcv.pAckLocal
	c := f.rcv.onLocalAck(offAt(f.peer.isn, f.rcv.pAckLocal, ack))
	if f.rcv.pAckLocal > before {
		e.localProgress(f, now)
	}
	f.ackedToPeer = max(f.ackedToPeer, c)
	return seqAt(f.peer.isn, c)
}

// frameOut frames the new bytes of a data segment and returns the wire
// payload for it, filling h.seq, FIN and URG.
func (e *Engine) frameOut(f *flow, s *seg, h *hdr, now time.Time) ([]byte, DropReason) {
	sh := &f.snd
	off := offAt(f.local.isn, sh.pNext, s.seq)
	if off < 0 {
		return nil, DropInvalid
	}
	data := s.payload
	fin := s.has(packet.FlagFIN)
	s0 := uint64(off)
	e0 := s0 + uint64(len(data))
	urgAt := int64(-1)
	if s.has(packet.FlagURG) && s.p.TCP.Urgent() > 0 {
		urgAt = off + int64(s.p.TCP.Urgent()) - 1 // BSD: the pointer follows the urgent byte
	}
	h.flags &^= packet.FlagFIN | packet.FlagURG
	h.urgent = 0
	if (!fin && e0 <= sh.pAcked) || (fin && sh.finAcked) {
		// Wholly acknowledged already (a keep-alive with a garbage byte):
		// send no bytes, only the sequence number, which makes the peer
		// answer with an ACK.
		h.seq = seqAt(f.local.isn, sh.cPoint(off))
		return nil, DropNone
	}
	if s0 < sh.pNext && e0 > sh.pAcked {
		// The kernel resends bytes it framed before: the path loses
		// segments, so frames are one segment for a while.
		if sh.shrinkFrames() {
			e.ctr.FramesShrunk++
		}
	} else if e0 > sh.pNext && sh.growFrames() {
		e.ctr.FramesGrown++
	}
	if s0 < sh.pAcked {
		if e0 < sh.pAcked {
			// Only a FIN gets here: it says the stream ends below bytes
			// the peer already acknowledged, which no stack sends.
			return nil, DropInvalid
		}
		data = data[sh.pAcked-s0:]
		s0 = sh.pAcked
	}
	switch {
	case e0 > sh.pNext:
		if s0 > sh.pNext {
			return nil, DropGap // the kernel resends the hole first
		}
		if sh.fin {
			return nil, DropInvalid
		}
		fresh := data[sh.pNext-s0:]
		if sh.buffered()+len(fresh) > sendBufferFactor*e.cfg.MaxFlowBuffer {
			return nil, DropSendOverflow // the peer acknowledges nothing: TCP resends later
		}
		wire := len(fresh) + (len(fresh)/max(sh.chunk, 1)+1)*(frameHdrURG+frameTag)
		if !e.admitOut(f, sh.q.growth(wire)) {
			return nil, DropMemory
		}
		sh.q.reserve(wire)
		e.maybeRekey(f, now)
		// fresh ends the packet: its frames are sealed from where they are.
		buf, at := s.p.Buf, len(s.p.Buf)-len(fresh)
		if len(fresh) > 0 && &buf[at] != &fresh[0] {
			buf, at = fresh, 0 // not a suffix after all: seal a copy
		}
		if err := sh.frameFrom(buf, at, fin, urgAt); err != nil {
			e.abortErr(f, s, AbortInternal, err)
			return nil, DropDead
		}
		f.bytesSinceGen += uint64(len(fresh))
	case fin && !sh.fin:
		if e0 != sh.pNext {
			return nil, DropInvalid
		}
		if err := sh.frame(nil, true, -1); err != nil {
			e.abortErr(f, s, AbortInternal, err)
			return nil, DropDead
		}
	case fin && e0 != sh.pNext:
		return nil, DropInvalid
	}
	cs, ce := sh.cStart(s0), sh.cEnd(e0)
	payload, err := sh.bytes(cs, ce)
	if err != nil {
		return nil, DropInvalid
	}
	h.seq = seqAt(f.local.isn, int64(cs))
	if fin && sh.fin && ce == sh.cNext {
		h.flags |= packet.FlagFIN
	}
	if urgAt >= 0 {
		if u := sh.cPoint(urgAt+1) - int64(cs); u > 0 && u <= 0xffff {
			h.flags |= packet.FlagURG
			h.urgent = uint16(u)
		}
	}
	return payload, DropNone
}

// emitOut sends the rewritten segment: one Replace, split into more
// segments toward the peer when the wire payload outgrew the peer's MSS
// (a retransmission the kernel coalesced from several frames) or the
// 64 KiB packet limit.
func (e *Engine) emitOut(f *flow, s *seg, h hdr, opts, payload []byte) {
	hdrLen := s.p.IPHdrLen + packet.TCPHeaderLen + len(opts)
	mss := max(f.peerMSS()-len(opts), 64)
	gso := len(s.payload) > int(f.pmss())
	first := len(payload)
	switch {
	case gso:
		first = min(first, maxPacket-hdrLen)
	case first > mss:
		first = mss
	}
	lastFlags := h.flags
	more := first < len(payload)
	if more {
		h.flags &^= packet.FlagFIN | packet.FlagPSH
	}
	out, err := e.rebuild(s.p, opts, payload[:first], h)
	if err != nil {
		e.drop(DropRewrite)
		return
	}
	e.replace(out)
	for i := first; i < len(payload); {
		j := min(i+mss, len(payload))
		hh := h
		hh.seq = h.seq.Add(seq.Size(i))
		if j == len(payload) {
			hh.flags = lastFlags
		}
		if hh.urgent != 0 {
			hh.urgent, hh.flags = 0, hh.flags&^packet.FlagURG
		}
		b, err := e.rebuild(s.p, opts, payload[i:j], hh)
		if err != nil {
			return
		}
		e.toPeer(b)
		i = j
	}
}

// outRST translates the local stack's RST and moves the flow to
// StateReset. Its payload (if any) is not forwarded.
func (e *Engine) outRST(f *flow, s *seg) {
	h := sameHdr(s)
	if f.sndReady {
		off := offAt(f.local.isn, f.snd.pNext, s.seq)
		h.seq = seqAt(f.local.isn, f.snd.cPoint(off))
	}
	if s.has(packet.FlagACK) && f.rcvReady {
		h.ack = seqAt(f.peer.isn, f.rcv.onLocalAck(offAt(f.peer.isn, f.rcv.pAckLocal, s.ack)))
	}
	var ob packet.OptionBuilder
	opts, err := editOptions(&ob, s.opts, &optEdit{dropSACK: true, dropENO: true})
	if err != nil {
		opts = nil
	}
	out, err := e.rebuild(s.p, opts, nil, h)
	if err != nil {
		e.drop(DropRewrite)
	} else {
		e.replace(out)
	}
	e.kill(f, StateReset)
}

// ourSACK returns the reassembly buffer's out-of-order runs as SACK blocks
// (RFC 2018), which replace whatever the local stack said.
func (e *Engine) ourSACK(f *flow, dst [][2]seq.Value) [][2]seq.Value {
	var tmp [packet.MaxSACKBlocks][2]uint64
	n := packet.MaxSACKBlocks
	if f.tsOK() {
		n = 3
	}
	for _, b := range f.rcv.sackBlocks(tmp[:0], n) {
		dst = append(dst, [2]seq.Value{seqAt(f.peer.isn, int64(b[0])), seqAt(f.peer.isn, int64(b[1]))})
	}
	return dst
}

func (f *flow) sackOK() bool { return f.local.sackOK && f.peer.sackOK }
func (f *flow) tsOK() bool   { return f.local.ts && f.peer.ts }

// window is the raw window to put on engine-made segments toward the peer:
// the local stack's last one.
func (f *flow) window() uint16 {
	if f.haveWnd {
		return f.lastWnd
	}
	w := f.local.synWnd
	if f.local.wscale >= 0 && f.peer.wscale >= 0 {
		w >>= uint(f.local.wscale)
	}
	return max(w, 1)
}

// sndNextC is our current wire send position (snd.nxt in C).
func (f *flow) sndNextC() int64 {
	if !f.sndReady {
		return 0
	}
	n := int64(f.snd.cNext)
	if f.snd.fin {
		n++
	}
	return n
}

// buildToPeer makes a segment toward the peer at wire offset seqOff of our
// stream, acknowledging what we acknowledge, with the local stack's last
// window and timestamps.
func (e *Engine) buildToPeer(f *flow, seqOff int64, flags uint8, payload []byte, sack bool) []byte {
	var ob packet.OptionBuilder
	if f.tsOK() {
		var ts [8]byte
		putU32(ts[:], f.lastTSval)
		putU32(ts[4:], f.peerTSval)
		_ = ob.Add(packet.OptTimestamps, ts[:])
	}
	if f.carryENO {
		_ = ob.AddRaw(eno.NonSYN)
	}
	if sack && f.sackOK() && f.rcvReady {
		var blocks [packet.MaxSACKBlocks][2]seq.Value
		_ = addSACK(&ob, e.ourSACK(f, blocks[:0]))
	}
	return e.buildToPeerOpts(f, seqOff, flags, payload, ob.Bytes())
}

func (e *Engine) buildToPeerOpts(f *flow, seqOff int64, flags uint8, payload, opts []byte) []byte {
	ack := f.peer.isn.Add(1)
	if f.rcvReady {
		c := f.rcv.ackOut()
		f.ackedToPeer = max(f.ackedToPeer, c)
		ack = seqAt(f.peer.isn, c)
	}
	fl := packet.Fields{
		Src: f.key.local, Dst: f.key.remote,
		Seq: seqAt(f.local.isn, seqOff), Ack: ack,
		Flags: flags | packet.FlagACK, Window: f.window(),
		Options: opts, Payload: payload,
	}
	b, err := packet.Build(e.pkts.get(buildLen(&fl)), &fl)
	if err != nil {
		return nil
	}
	return b
}

// ackSegment is a pure ACK toward the peer made by the engine: it
// acknowledges bytes the local stack never saw (an Init message, empty
// frames) and reports out-of-order data with SACK, since the local stack
// does not see out-of-order segments and cannot send the duplicate ACKs
// the peer's fast retransmit needs.
func (e *Engine) ackSegment(f *flow) []byte {
	return e.buildToPeer(f, f.sndNextC(), packet.FlagACK, nil, true)
}

func putU32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}

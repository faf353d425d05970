package engine

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/tcpcryptd/tcpcrypt/crypto"
	"github.com/tcpcryptd/tcpcrypt/packet"
	"github.com/tcpcryptd/tcpcrypt/packet/seq"
)

// Segments from the peer on an encrypted flow (docs/engine-design.md
// "Receiving"): the wire bytes go into the reassembly buffer, and only
// whole verified frames reach the local stack (DESIGN.md invariant 4).

func (e *Engine) inEncrypted(f *flow, s *seg, now time.Time) {
	if s.has(packet.FlagSYN) {
		if (f.active && s.has(packet.FlagACK) || f.simOpen) && s.seq == f.peer.isn {
			e.passSYN(f, s) // our third segment was lost; the stack ACKs again
		} else {
			e.drop(DropInvalid)
		}
		return
	}
	f.carryENO = false // a non-SYN segment arrived (RFC 8547 §4.6)
	if s.has(packet.FlagRST) {
		e.inRST(f, s)
		return
	}
	if v, ok := tsOption(s.opts); ok {
		f.peerTSval = v
	}
	h := hdr{flags: s.flags &^ (packet.FlagFIN | packet.FlagURG | packet.FlagPSH), window: s.p.TCP.Window(), ack: s.ack}
	if s.has(packet.FlagACK) && f.sndReady {
		p, _ := f.snd.onAck(offAt(f.local.isn, f.snd.cAcked, s.ack))
		h.ack = seqAt(f.local.isn, p)
		e.ackedByPeer(f)
	}
	var blocks [packet.MaxSACKBlocks][2]seq.Value
	sack := e.peerSACK(f, s, blocks[:0])

	res := insDup
	pBefore, finBefore := f.rcv.pNext, f.rcv.finFrame
	// A keep-alive or zero-window probe sits below what we acknowledged;
	// the stack never sees it, so the engine answers it.
	probe := len(s.payload) == 0 && !s.has(packet.FlagFIN) &&
		offAt(f.peer.isn, f.rcv.cBase(), s.seq) < f.rcv.ackOut()
	if len(s.payload) > 0 || s.has(packet.FlagFIN) {
		c := offAt(f.peer.isn, f.rcv.cBase(), s.seq)
		data := s.payload
		if c < 0 {
			data = data[min(int64(len(data)), -c):]
			c = 0
		}
		if len(data) > 0 && uint64(c) == f.rcv.cBase() && f.rcv.buffered() == 0 && f.keys && !f.needPeerInit() {
			// The common case: in order, nothing buffered. Whole frames
			// are verified where they are; only the rest is stored.
			n, ok := e.consumeDirect(f, s, data, now)
			if !ok {
				return
			}
			if n > 0 {
				res = insInOrder
			}
			data, c = data[n:], c+int64(n)
		}
		if len(data) > 0 {
			if n, ooo := f.rcv.growth(uint64(c), len(data)); (n > 0 || ooo) && !e.admitIn(f, n, ooo) {
				res = insOverflow // the memory budget is used up: TCP resends
				e.ctr.Drops[DropMemory]++
			} else if res = f.rcv.insert(uint64(c), data); res == insOverflow {
				e.ctr.Drops[DropRecvOverflow]++
			}
		}
		if s.has(packet.FlagFIN) {
			fc := c + int64(len(data))
			if f.rcv.finC < 0 || fc < f.rcv.finC {
				f.rcv.finC = fc
			}
		}
	}
	if !e.consume(f, s, now) || !e.checkFIN(f, s) {
		return
	}
	delivered := f.rcv.pNext > pBefore || (f.rcv.finFrame && !finBefore)
	switch {
	case delivered:
		e.deliver(f, s, h, sack, pBefore, f.rcv.finFrame && !finBefore, now)
	case res == insDup && len(s.payload) > 0 && e.redeliverOnDup(f, s, h, sack, now):
		// The peer resent bytes the stack has not acknowledged: it
		// never took (all of) our delivery.
	case len(s.payload) == 0 && !s.has(packet.FlagFIN) && !probe:
		e.passAck(f, s, h, sack) // a pure ACK, duplicate ACKs included
	case h.ack != f.toLocalAck || h.window != f.toLocalWnd || len(sack) > 0:
		e.passAck(f, s, h, sack) // new ack information rides on bytes we keep
	default:
		e.drop(DropConsumed)
	}
	switch {
	case res == insOOO || (res == insDup && len(s.payload) > 0) || probe:
		e.toPeer(e.ackSegment(f))
	case !delivered && f.rcv.ackOut() > f.ackedToPeer:
		// We consumed bytes the stack never sees (an Init message, empty
		// frames): acknowledge them ourselves.
		e.toPeer(e.ackSegment(f))
	}
	if f.state.encrypting() && f.sndReady && f.snd.finAcked && f.rcv.finLocal {
		f.state = StateClosed
		e.ctr.FlowsClosed++
	}
}

// peerSACK maps the peer's SACK blocks inward to the P ranges of the whole
// frames they cover.
func (e *Engine) peerSACK(f *flow, s *seg, dst [][2]seq.Value) [][2]seq.Value {
	if !f.sndReady {
		return dst
	}
	bl, n := packet.SACKBlocks(s.opts)
	for i := 0; i < n; i++ {
		c0 := offAt(f.local.isn, f.snd.cAcked, bl[i][0])
		c1 := offAt(f.local.isn, f.snd.cAcked, bl[i][1])
		if c0 < 0 || c1 <= c0 {
			continue
		}
		if p0, p1, ok := f.snd.sackToP(uint64(c0), uint64(c1)); ok {
			dst = append(dst, [2]seq.Value{seqAt(f.local.isn, int64(p0)), seqAt(f.local.isn, int64(p1))})
		}
	}
	return dst
}

// consume takes the peer's Init message and every whole frame at the head
// of the reassembly buffer. It reports false if the flow was aborted.
func (e *Engine) consume(f *flow, s *seg, now time.Time) bool {
	if f.keys {
		// Size the plaintext buffer once for the frames about to be
		// delivered (decoding stops past MaxFlowBuffer).
		room := max(e.cfg.MaxFlowBuffer+maxFrameData-f.rcv.plain.size(), 0)
		f.rcv.reservePlain(wholeFramesData(f.rcv.inOrder()), room)
	}
	for {
		b := f.rcv.inOrder()
		if f.needPeerInit() {
			n, ok, err := crypto.InitLen(b)
			if err != nil {
				e.abortErr(f, s, AbortMalformedInit, err)
				return false
			}
			if !ok {
				return true
			}
			if n > maxInitLen {
				e.abortErr(f, s, AbortMalformedInit, errInitTooLong)
				return false
			}
			if len(b) < n {
				return true
			}
			msg := append([]byte(nil), b[:n]...)
			f.rcv.skipInit(n)
			if !e.gotPeerInit(f, s, msg, now) {
				return false
			}
			continue
		}
		if !f.keys {
			return true
		}
		n, ok := e.nextFrame(f, s, b)
		if n == 0 {
			return ok
		}
		if !e.openOne(f, s, b[:n], now) {
			return false
		}
	}
}

// nextFrame returns the length of the whole frame at the start of b, 0 if
// there is none yet or decoding pauses (plaintext buffer full). ok is false
// if the flow was aborted (a malformed header, a frame after FINp).
func (e *Engine) nextFrame(f *flow, s *seg, b []byte) (n int, ok bool) {
	if f.rcv.plain.size() >= e.cfg.MaxFlowBuffer || len(b) < crypto.FrameHeaderLen {
		return 0, true
	}
	clen := int(binary.BigEndian.Uint16(b[1:3]))
	if clen < minFrameClen {
		e.abortErr(f, s, AbortMalformedFrame, crypto.ErrMalformedFrame)
		return 0, false
	}
	n = crypto.FrameHeaderLen + clen
	if len(b) < n {
		return 0, true
	}
	if f.rcv.finFrame {
		e.abortErr(f, s, AbortDataAfterFIN, errDataAfterFIN)
		return 0, false
	}
	return n, true
}

// openOne verifies the whole frame at cBase (in the reassembly buffer, or
// still in the segment) and delivers its plaintext, which the AEAD writes
// straight into the plaintext buffer. It reports false if the flow was
// aborted.
func (e *Engine) openOne(f *flow, s *seg, frame []byte, now time.Time) bool {
	c0 := f.rcv.cBase()
	var tail []byte
	small := len(frame) <= len(e.scratch)-1
	if small {
		// Little or no data (an empty rekey or FINp frame): decrypt
		// aside, so that a flow that gets only empty frames holds no
		// plaintext buffer.
		tail = e.scratch[:1]
	} else {
		tail = f.rcv.plain.tailAfterByte(len(frame))
	}
	pl, tail, err := f.open.openFrame(tail, frame, c0)
	if err != nil {
		r := AbortInternal
		switch {
		case errors.Is(err, crypto.ErrAuth):
			r = AbortAuth
		case errors.Is(err, crypto.ErrMalformedFrame):
			r = AbortMalformedFrame
		}
		e.abortErr(f, s, r, err)
		return false
	}
	if small {
		f.rcv.plain.write(pl.Data)
	} else {
		f.rcv.plain.commit(tail)
	}
	if pl.URG {
		f.urgP = int64(f.rcv.pNext) + int64(pl.Urgent)
	}
	f.rcv.record(c0, c0+uint64(len(frame)), len(pl.Data), pl.FIN)
	f.rcv.consume(len(frame))
	if pl.Rekey {
		e.peerRekeyed(f, s, now)
		if f.state.dead() {
			return false
		}
	}
	return true
}

// consumeDirect verifies and delivers the whole frames at the start of
// data, a segment's bytes that start at cBase while nothing is buffered
// there, without copying them into the reassembly buffer first: only what
// is left (a partial frame) is stored. It returns how many bytes it
// consumed, and false if the flow was aborted.
func (e *Engine) consumeDirect(f *flow, s *seg, data []byte, now time.Time) (int, bool) {
	room := max(e.cfg.MaxFlowBuffer+maxFrameData-f.rcv.plain.size(), 0)
	f.rcv.reservePlain(wholeFramesData(data), room)
	done := 0
	for {
		n, ok := e.nextFrame(f, s, data[done:])
		if n == 0 {
			return done, ok
		}
		if !e.openOne(f, s, data[done:done+n], now) {
			return done, false
		}
		done += n
	}
}

// reservePlain sizes the plaintext buffer once for the data of the whole
// frames about to be opened (at most room), with the room openOne needs
// beyond the last frame's data (its header and tag, and one byte before).
func (r *recvHalf) reservePlain(data, room int) {
	if data > 0 {
		r.plain.reserve(min(data, room) + frameOverhead + 3)
	}
}

// wholeFramesData is an upper bound on the plaintext of the whole frames at
// the start of b (header fields unverified; it only sizes a buffer).
func wholeFramesData(b []byte) int {
	n := 0
	for len(b) >= crypto.FrameHeaderLen {
		clen := int(binary.BigEndian.Uint16(b[1:3]))
		if clen < minFrameClen || len(b) < crypto.FrameHeaderLen+clen {
			break
		}
		n += clen - minFrameClen
		b = b[crypto.FrameHeaderLen+clen:]
	}
	return n
}

var (
	errInitTooLong  = errors.New("engine: Init message_len over the bound")
	errDataAfterFIN = errors.New("engine: frame after the FINp frame")
	errFINNoFINp    = errors.New("engine: TCP FIN without a FINp frame")
)

// checkFIN aborts when the peer's TCP FIN is not where its verified FINp
// frame ends (RFC 8548 §3.7). It reports false if the flow was aborted.
func (e *Engine) checkFIN(f *flow, s *seg) bool {
	fc := f.rcv.finC
	if fc < 0 {
		return true
	}
	cb := int64(f.rcv.cBase())
	if (f.rcv.finFrame && cb != fc) || (!f.rcv.finFrame && cb >= fc) {
		e.abortErr(f, s, AbortFINWithoutFINp, errFINNoFINp)
		return false
	}
	return true
}

// deliver replaces the segment with the plaintext of the frames it
// completed, as one P segment (more if it exceeds the packet size limit).
func (e *Engine) deliver(f *flow, s *seg, h hdr, sack [][2]seq.Value, p0 uint64, fin bool, now time.Time) {
	data := f.rcv.plain.view(max(p0, f.rcv.plain.start()), f.rcv.pNext)
	h.flags |= packet.FlagPSH
	var ob packet.OptionBuilder
	opts, err := editOptions(&ob, s.opts, &optEdit{dropSACK: true, dropENO: true, sack: sack})
	if err != nil {
		e.drop(DropRewrite)
		return
	}
	e.sendToLocal(f, s, h, opts, p0, data, fin, true)
	f.lastDeliver = now
	if f.redeliverAt.IsZero() {
		f.redeliverAt = now.Add(e.redeliverRTO(f))
	}
}

// sendToLocal emits P bytes data at offset p0 toward the local stack: the
// first packet replaces s (when replace is set), the rest are injected.
func (e *Engine) sendToLocal(f *flow, s *seg, h hdr, opts []byte, p0 uint64, data []byte, fin, replace bool) {
	hdrLen := s.p.IPHdrLen + packet.TCPHeaderLen + len(opts)
	room := maxPacket - hdrLen
	base := h.flags &^ packet.FlagFIN
	for i := 0; ; {
		j := min(i+room, len(data))
		hh := h
		hh.seq = seqAt(f.peer.isn, int64(p0)+int64(i))
		hh.flags = base
		if j == len(data) && fin {
			hh.flags |= packet.FlagFIN
		}
		if f.urgP >= int64(p0)+int64(i) {
			if u := f.urgP + 1 - int64(p0) - int64(i); u > 0 && u <= 0xffff {
				hh.flags |= packet.FlagURG
				hh.urgent = uint16(u)
			}
		}
		b, err := e.rebuild(s.p, opts, data[i:j], hh)
		if err != nil {
			if replace && i == 0 {
				e.drop(DropRewrite)
			}
			return
		}
		if replace && i == 0 {
			e.replace(b)
		} else {
			e.toLocal(b)
		}
		f.toLocalAck, f.toLocalWnd = hh.ack, hh.window
		f.rcv.pToLocal = max(f.rcv.pToLocal, p0+uint64(j))
		f.rcv.finToLoc = f.rcv.finToLoc || hh.flags&packet.FlagFIN != 0
		if j == len(data) {
			return
		}
		i = j
	}
}

// passAck hands the stack the segment's acknowledgment only, at the P
// position it expects next.
func (e *Engine) passAck(f *flow, s *seg, h hdr, sack [][2]seq.Value) {
	next := int64(f.rcv.pNext)
	if f.rcv.finFrame {
		next++
	}
	h.seq = seqAt(f.peer.isn, next)
	var ob packet.OptionBuilder
	opts, err := editOptions(&ob, s.opts, &optEdit{dropSACK: true, dropENO: true, sack: sack})
	if err != nil {
		e.drop(DropRewrite)
		return
	}
	out, err := e.rebuild(s.p, opts, nil, h)
	if err != nil {
		e.drop(DropRewrite)
		return
	}
	e.replace(out)
	f.toLocalAck, f.toLocalWnd = h.ack, h.window
}

// inRST translates the peer's RST. Only a RST at exactly the next wire
// position maps to exactly the stack's next P position; any other maps
// off it, so the stack answers with a challenge ACK (RFC 5961) instead of
// a blind RST becoming easier to guess through us.
func (e *Engine) inRST(f *flow, s *seg) {
	h := sameHdr(s)
	c := offAt(f.peer.isn, f.rcv.cBase(), s.seq)
	exact := c == int64(f.rcv.cBase())
	next := int64(f.rcv.pNext)
	if f.rcv.finFrame {
		next++
	}
	switch {
	case exact:
		h.seq = seqAt(f.peer.isn, next)
	case c > int64(f.rcv.cBase()):
		h.seq = seqAt(f.peer.isn, next+(c-int64(f.rcv.cBase())))
	default:
		h.seq = seqAt(f.peer.isn, f.rcv.pPoint(c))
	}
	if s.has(packet.FlagACK) && f.sndReady {
		h.ack = seqAt(f.local.isn, f.snd.pAckValue())
	}
	out, err := e.rebuild(s.p, nil, nil, h)
	if err != nil {
		e.drop(DropRewrite)
		return
	}
	e.replace(out)
	if exact {
		e.kill(f, StateReset)
	}
}

// redeliverRTO is how long delivered plaintext may stay unacknowledged by
// the local stack before the engine delivers it again.
func (e *Engine) redeliverRTO(f *flow) time.Duration {
	return max(4*e.cfg.InitRTO, time.Second)
}

// localProgress notes that the local stack acknowledged more plaintext.
func (e *Engine) localProgress(f *flow, now time.Time) {
	_, d, fin := f.rcv.unacked()
	if len(d) == 0 && !fin {
		f.redeliverAt = time.Time{}
		return
	}
	f.redeliverAt = now.Add(e.redeliverRTO(f))
}

// redeliverOnDup answers a duplicate from the peer by delivering again the
// plaintext the local stack has not acknowledged. It reports whether it did.
func (e *Engine) redeliverOnDup(f *flow, s *seg, h hdr, sack [][2]seq.Value, now time.Time) bool {
	p0, d, fin := f.rcv.unacked()
	if len(d) == 0 && !fin {
		return false
	}
	if now.Sub(f.lastDeliver) < redeliverMinInterval {
		return false
	}
	var ob packet.OptionBuilder
	opts, err := editOptions(&ob, s.opts, &optEdit{dropSACK: true, dropENO: true, sack: sack})
	if err != nil {
		return false
	}
	h.flags |= packet.FlagPSH
	e.sendToLocal(f, s, h, opts, p0, d, fin, true)
	f.lastDeliver = now
	e.ctr.Redelivered++
	return true
}

// redeliver is the timer side of re-delivery: plaintext the local stack
// has not acknowledged for a while is injected again.
func (e *Engine) redeliver(f *flow, now time.Time) {
	f.redeliverAt = time.Time{}
	if !f.rcvReady || f.state.dead() {
		return
	}
	p0, d, fin := f.rcv.unacked()
	if len(d) == 0 && !fin {
		return
	}
	d = d[:min(len(d), maxPacket-200)]
	fin = fin && p0+uint64(len(d)) == f.rcv.pNext
	flags := packet.FlagACK | packet.FlagPSH
	if fin {
		flags |= packet.FlagFIN
	}
	e.toLocal(e.buildToLocal(f, int64(p0), flags, d))
	f.rcv.pToLocal = max(f.rcv.pToLocal, p0+uint64(len(d)))
	f.rcv.finToLoc = f.rcv.finToLoc || fin
	e.ctr.Redelivered++
	f.lastDeliver = now
	f.redeliverAt = now.Add(2 * e.redeliverRTO(f))
}

// buildToLocal makes a segment toward the local stack from the peer.
func (e *Engine) buildToLocal(f *flow, pOff int64, flags uint8, payload []byte) []byte {
	var ob packet.OptionBuilder
	if f.tsOK() {
		var ts [8]byte
		putU32(ts[:], f.peerTSval)
		putU32(ts[4:], f.lastTSval)
		_ = ob.Add(packet.OptTimestamps, ts[:])
	}
	ack := f.local.isn.Add(1)
	if f.sndReady {
		ack = seqAt(f.local.isn, f.snd.pAckValue())
	}
	w := f.toLocalWnd
	if w == 0 {
		w = max(f.peer.synWnd, 1)
	}
	fl := packet.Fields{
		Src: f.key.remote, Dst: f.key.local,
		Seq: seqAt(f.peer.isn, pOff), Ack: ack,
		Flags: flags, Window: w,
		Options: ob.Bytes(), Payload: payload,
	}
	if flags&packet.FlagRST != 0 {
		fl.Options, fl.Window = nil, 0
	}
	b, err := packet.Build(e.pkts.get(buildLen(&fl)), &fl)
	if err != nil {
		return nil
	}
	return b
}

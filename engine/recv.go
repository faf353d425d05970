package engine

import (
	"sort"

	"github.com/tcpcryptd/tcpcrypt/packet/seq"
)

// span is a run of out-of-order wire bytes.
type span struct {
	c0 uint64
	b  []byte
}

func (s *span) end() uint64 { return s.c0 + uint64(len(s.b)) }

// recvFrame records a consumed frame of the peer->local stream until the
// local stack acknowledges all of it.
type recvFrame struct {
	c0, c1 uint64
	p0, p1 uint64
	fin    bool
}

// insertResult says what recvHalf.insert did with a segment's bytes.
type insertResult uint8

const (
	insDup      insertResult = iota // nothing new: every byte was already held or consumed
	insInOrder                      // extended the in-order bytes at cBase
	insOOO                          // stored beyond a hole
	insOverflow                     // dropped (past the buffer bound)
)

// maxSpans bounds the number of out-of-order runs per flow.
const maxSpans = 64

// recvHalf is the peer->local direction of an encrypted flow: a bounded
// reassembly buffer in C space (only whole, verified frames leave it), the
// frames delivered to the local stack and their plaintext until the stack
// acknowledges them, and the mapping between local P acks and wire C acks.
type recvHalf struct {
	isn seq.Value // peer ISN

	pend     byteQueue // in-order wire bytes not yet consumed: [cBase, pend.end())
	ooo      []span    // out-of-order runs beyond pend.end(), sorted, disjoint
	oooBytes int
	lastC    uint64 // start of the most recently stored run (first SACK block)
	capBytes int    // bound on accepted bytes: offsets below cBase+capBytes

	frames []recvFrame // consumed frames not wholly acknowledged by the local stack
	fh     int
	plain  byteQueue // delivered plaintext [pAckLocal, pNext), kept for re-delivery

	pNext     uint64 // P offset after the last delivered byte
	pAckLocal uint64 // highest P ack from the local stack (FIN excluded)
	cAckOut   uint64 // wire ack matching pAckLocal, at a frame edge
	finFrame  bool   // a verified FINp frame was consumed: P FIN at pNext
	finLocal  bool   // the local stack acknowledged that FIN
	finC      int64  // wire offset of a TCP FIN seen from the peer, -1 if none
	pToLocal  uint64 // P offset after the last byte handed to the local stack
	finToLoc  bool   // the FIN was handed to the local stack

	frameCount uint64
	bytesIn    uint64
}

func (r *recvHalf) init(isn seq.Value, capBytes int) {
	r.isn = isn
	r.pend.reset(0)
	r.capBytes = capBytes
	r.finC = -1
}

// cBase is the first wire byte not yet consumed.
func (r *recvHalf) cBase() uint64 { return r.pend.start() }

// contigEnd is the end of the in-order bytes.
func (r *recvHalf) contigEnd() uint64 { return r.pend.end() }

// buffered is the number of wire bytes held (in order and out of order).
func (r *recvHalf) buffered() int { return r.pend.size() + r.oooBytes }

// inOrder returns the held in-order bytes from cBase (aliasing; valid until
// the next change).
func (r *recvHalf) inOrder() []byte { return r.pend.view(r.cBase(), r.pend.end()) }

// insert stores the wire bytes b at offset c.
func (r *recvHalf) insert(c uint64, b []byte) insertResult {
	end := r.pend.end()
	ce := c + uint64(len(b))
	if ce <= end {
		return insDup
	}
	if c < end {
		b = b[end-c:]
		c = end
	}
	limit := r.cBase() + uint64(r.capBytes)
	if ce > limit {
		if c >= limit {
			return insOverflow
		}
		b = b[:limit-c]
	}
	if c == end {
		r.pend.write(b)
		r.pullOOO()
		return insInOrder
	}
	if !r.insertOOO(c, b) {
		return insOverflow
	}
	return insOOO
}

// pullOOO moves runs that became contiguous onto the in-order bytes.
func (r *recvHalf) pullOOO() {
	k := 0
	for k < len(r.ooo) && r.ooo[k].c0 <= r.pend.end() {
		s := &r.ooo[k]
		if e := r.pend.end(); s.end() > e {
			r.pend.write(s.b[e-s.c0:])
		}
		r.oooBytes -= len(s.b)
		k++
	}
	if k > 0 {
		n := copy(r.ooo, r.ooo[k:])
		clear(r.ooo[n:])
		r.ooo = r.ooo[:n]
		if n == 0 {
			r.ooo = nil
		}
	}
}

// insertOOO stores the parts of [c, c+len(b)) that no run holds yet, then
// merges touching runs. It refuses (false) when the run count would exceed
// maxSpans.
func (r *recvHalf) insertOOO(c uint64, b []byte) bool {
	ce := c + uint64(len(b))
	i := sort.Search(len(r.ooo), func(i int) bool { return r.ooo[i].end() > c })
	pos := c
	added := false
	for pos < ce {
		if i < len(r.ooo) && r.ooo[i].c0 <= pos {
			pos = r.ooo[i].end()
			i++
			continue
		}
		gapEnd := ce
		if i < len(r.ooo) && r.ooo[i].c0 < ce {
			gapEnd = r.ooo[i].c0
		}
		piece := b[pos-c : gapEnd-c]
		if i > 0 && r.ooo[i-1].end() == pos {
			r.ooo[i-1].b = append(r.ooo[i-1].b, piece...)
		} else {
			if len(r.ooo) >= maxSpans {
				return added
			}
			r.ooo = append(r.ooo, span{})
			copy(r.ooo[i+1:], r.ooo[i:])
			r.ooo[i] = span{c0: pos, b: append([]byte(nil), piece...)}
			i++
		}
		r.oooBytes += len(piece)
		added = true
		pos = gapEnd
	}
	// Merge runs that now touch.
	k := 0
	for j := 1; j < len(r.ooo); j++ {
		if r.ooo[k].end() == r.ooo[j].c0 {
			r.ooo[k].b = append(r.ooo[k].b, r.ooo[j].b...)
			continue
		}
		k++
		r.ooo[k] = r.ooo[j]
	}
	if len(r.ooo) > 0 {
		clear(r.ooo[k+1:])
		r.ooo = r.ooo[:k+1]
	}
	r.lastC = c
	return true
}

// sackBlocks appends up to max out-of-order runs as wire offset ranges: the
// run holding the most recent arrival first (RFC 2018 §4), then the others
// from the highest down.
func (r *recvHalf) sackBlocks(dst [][2]uint64, max int) [][2]uint64 {
	if max <= 0 || len(r.ooo) == 0 {
		return dst
	}
	first := -1
	for i := range r.ooo {
		if r.ooo[i].c0 <= r.lastC && r.lastC < r.ooo[i].end() {
			first = i
			dst = append(dst, [2]uint64{r.ooo[i].c0, r.ooo[i].end()})
			max--
			break
		}
	}
	for i := len(r.ooo) - 1; i >= 0 && max > 0; i-- {
		if i == first {
			continue
		}
		dst = append(dst, [2]uint64{r.ooo[i].c0, r.ooo[i].end()})
		max--
	}
	return dst
}

// growth is how much memory storing n wire bytes at offset c could take,
// and whether they would lie beyond a hole (out of order). In order, it is
// what the in-order buffer's array grows by to take them and the runs they
// make contiguous; out of order, n (bytes already held are counted again).
func (r *recvHalf) growth(c uint64, n int) (add int, ooo bool) {
	end := r.pend.end()
	ce := c + uint64(n)
	switch {
	case ce <= end:
		return 0, false
	case c > end:
		return n, true
	}
	need := int(ce - end)
	for _, s := range r.ooo {
		if s.c0 > ce {
			break
		}
		if s.end() > ce {
			need += int(s.end() - ce)
			ce = s.end()
		}
	}
	return r.pend.growth(need), false
}

// dropOOO discards every out-of-order run (reneging on what was SACKed,
// RFC 2018 §8: the peer keeps SACKed data until it is acknowledged).
func (r *recvHalf) dropOOO() {
	r.ooo = nil
	r.oooBytes = 0
}

// consume drops n in-order bytes at cBase (an Init message or a frame).
func (r *recvHalf) consume(n int) { r.pend.discard(r.cBase() + uint64(n)) }

// deliver records a verified frame [c0,c1) that was consumed and whose
// plaintext data now goes to the local stack at P offset pNext.
//
// The records are bounded: an empty frame (no data, no FINp) merges into
// the record before it, since it is acknowledged with it anyway, and past
// maxRecvFrames every frame does, so that the local stack's
// acknowledgment of the merged record's end acknowledges all of it on the
// wire. A peer's flood of empty frames thus costs no memory, and one of
// tiny frames at most maxRecvFrames records.
func (r *recvHalf) deliver(c0, c1 uint64, data []byte, fin bool) {
	r.plain.write(data)
	r.record(c0, c1, len(data), fin)
}

// record is deliver for a frame whose n bytes of plaintext are already
// appended to the plaintext buffer.
func (r *recvHalf) record(c0, c1 uint64, n int, fin bool) {
	f := recvFrame{c0: c0, c1: c1, p0: r.pNext, p1: r.pNext + uint64(n), fin: fin}
	merged := false
	if live := len(r.frames) - r.fh; live > 0 {
		last := &r.frames[len(r.frames)-1]
		if !last.fin && last.c1 == c0 && last.p1 == f.p0 && ((n == 0 && !fin) || live >= maxRecvFrames) {
			last.c1, last.p1, last.fin = c1, f.p1, fin
			merged = true
		}
	}
	if !merged {
		if r.fh > 0 && len(r.frames) == cap(r.frames) && r.fh >= len(r.frames)/2 {
			k := copy(r.frames, r.frames[r.fh:])
			r.frames = r.frames[:k]
			r.fh = 0
		}
		r.frames = append(r.recs().grow(r.frames), f)
	}
	r.pNext = f.p1
	r.finFrame = fin
	r.frameCount++
	r.bytesIn += uint64(n)
	r.advance()
}

// skipInit marks the peer's Init message (n bytes at C offset 0) consumed;
// it has no P bytes, so it is acknowledged at once.
func (r *recvHalf) skipInit(n int) {
	r.consume(n)
	r.cAckOut = max(r.cAckOut, uint64(n))
}

// onLocalAck takes the local stack's cumulative P ack (an offset) and
// returns the wire ack to send: the end of the last frame it acknowledged
// wholly (DESIGN.md invariant 1; partial frames are not acknowledged, so the
// peer resends them).
func (r *recvHalf) onLocalAck(p int64) int64 {
	if p < 0 {
		return p
	}
	limit := int64(r.pNext)
	if r.finFrame {
		limit++
	}
	p = min(p, limit)
	if uint64(p) > r.pAckLocal {
		r.pAckLocal = uint64(p)
	}
	if r.finFrame && p == limit {
		r.finLocal = true
	}
	r.advance()
	return r.ackOut()
}

// ackOut is the current wire ack (an offset), counting an acknowledged FIN.
func (r *recvHalf) ackOut() int64 {
	if r.finLocal && len(r.frames[r.fh:]) == 0 {
		return int64(r.cAckOut) + 1
	}
	return int64(r.cAckOut)
}

// advance frees the frames the local stack acknowledged wholly.
func (r *recvHalf) advance() {
	fr := r.frames[r.fh:]
	k := 0
	for k < len(fr) {
		f := &fr[k]
		if f.fin {
			if !r.finLocal {
				break
			}
		} else if f.p1 > r.pAckLocal {
			break
		}
		r.cAckOut = f.c1
		k++
	}
	r.fh += k
	if r.fh == len(r.frames) {
		r.frames = r.frames[:0]
		r.fh = 0
		if cap(r.frames) > keptRecords {
			r.recs().put(r.frames)
			r.frames = nil
		}
	}
	r.plain.discard(min(r.pAckLocal, r.pNext))
}

// unacked returns the delivered plaintext the local stack has not yet
// acknowledged, from P offset p0 (aliasing), and whether the FIN is also
// unacknowledged.
func (r *recvHalf) unacked() (p0 uint64, data []byte, fin bool) {
	p0 = max(r.pAckLocal, r.plain.start())
	if p0 > r.pNext {
		p0 = r.pNext
	}
	return p0, r.plain.view(p0, r.pNext), r.finFrame && !r.finLocal
}

// pPoint maps a wire position of the peer's stream that carries no data
// (the sequence number of a RST or a pure ACK) to P.
func (r *recvHalf) pPoint(c int64) int64 {
	next := int64(r.pNext)
	if r.finFrame {
		next++
	}
	if c >= int64(r.cBase()) {
		return next
	}
	fr := r.frames[r.fh:]
	i := sort.Search(len(fr), func(i int) bool { return int64(fr[i].c1) > c })
	if i < len(fr) {
		return int64(fr[i].p0)
	}
	if len(fr) == 0 && c < int64(r.cAckOut) {
		return int64(r.pAckLocal) - (int64(r.cAckOut) - c)
	}
	return next
}

// release frees all buffers.
func (r *recvHalf) release() {
	r.pend.release()
	r.plain.release()
	r.ooo = nil
	r.oooBytes = 0
	r.recs().put(r.frames)
	r.frames = nil
	r.fh = 0
}

// recs is the engine's pool of record arrays (nil without a pool).
func (r *recvHalf) recs() *recPool[recvFrame] {
	if r.plain.pool == nil {
		return nil
	}
	return &r.plain.pool.recv
}

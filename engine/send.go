package engine

import (
	"errors"
	"sort"

	"github.com/tcpcryptd/tcpcrypt/packet/seq"
)

// Frame layout constants (RFC 8548 §4.2): control(1) | clen(2) | ciphertext,
// where the ciphertext is the AEAD of flags(1) [| urgent(2)] | data and ends
// with a 16-byte tag. The AEADs of RFC 8548 are stream ciphers, so data byte
// k of a frame sits at wire byte hdr+k of that frame.
const (
	frameTag       = 16
	frameHdr       = 4 // control, clen, flags
	frameHdrURG    = 6 // ... and the urgent field
	frameOverhead  = frameHdr + frameTag
	maxFrameClen   = 65535
	maxFrameData   = maxFrameClen - frameTag - 1     // 65518 (RFC 8548 §3.6)
	maxFrameDataUR = maxFrameClen - frameTag - 1 - 2 // with URGp
	minFrameClen   = frameTag + 1                    // flags byte and tag
	segGrowth      = frameOverhead + 2 + 4           // worst growth of one segment: URGp and 45 02 padded
)

// frameSpec is what a frame says besides its data.
type frameSpec struct {
	rekey  bool   // control rekey bit: first frame under a new generation
	fin    bool   // FINp
	urg    bool   // URGp
	urgent uint16 // urgent field, meaningful with urg
}

// sealFunc appends the sealed frame for (spec, buf[i:j]) at wire offset off
// to dst. It may borrow the bytes of buf just before i during the call (see
// crypto.FrameKey.SealFrom). sendHalf does not know keys; the flow supplies
// this.
type sealFunc func(dst []byte, off uint64, spec frameSpec, buf []byte, i, j int) ([]byte, error)

// sentFrame records one frame of the local->peer wire stream until the peer
// acknowledges all of it (retransmission fidelity, DESIGN.md invariant 3).
type sentFrame struct {
	p0, p1 uint64 // plaintext range; p0 == p1 for an empty frame
	c0, c1 uint64 // wire range
	hdr    uint8  // wire bytes before the first data byte (frameHdr or frameHdrURG)
	fin    bool   // carries FINp
	engine bool   // made by the engine (empty rekey frame): the engine retransmits it
}

var (
	errSendAfterFIN = errors.New("engine: data after FIN")
	errSendFreed    = errors.New("engine: bytes already acknowledged and freed")
)

// sendHalf is the local->peer direction of an encrypted flow: the mapping
// between the kernel's plaintext stream P and the wire stream C, and the
// exact bytes of every unacknowledged frame.
//
// C starts with the Init message (absent on a resumed session), then frames.
// Frames are contiguous in C and in P (empty frames take no P space), and
// sorted in both.
type sendHalf struct {
	isn seq.Value // local ISN (same in P and C)

	q       byteQueue   // wire bytes from the first unacknowledged byte to cNext
	frames  []sentFrame // frames not yet wholly acknowledged, oldest first
	fh      int         // index of the first live frame in frames
	initLen uint64      // length of the Init message at C offset 0

	pNext, cNext   uint64 // end of the framed P and C streams
	pAcked, cAcked uint64 // P ack reported to the kernel; highest C ack from the peer

	fin      bool // the FINp frame exists: P FIN at pNext, wire FIN at cNext
	finAcked bool // the peer acknowledged the wire FIN

	// chunk is the largest data per frame made from one segment: a whole
	// segment (up to maxFrameData) until the kernel retransmits, then mss
	// until growBackBytes more are acknowledged without another
	// retransmission (see shrinkFrames, growFrames).
	chunk int
	mss   int
	// retransmitAt is pNext at the kernel's latest retransmission.
	retransmitAt uint64
	seal         sealFunc // nil until keys exist

	frameCount uint64 // frames made, for Snapshot
	bytesOut   uint64 // plaintext bytes framed

	engineLive  int    // live frames the engine made (engine set)
	engineAcked uint64 // engine-made frames the peer acknowledged, ever
}

// init prepares the half for a stream with SYN isn whose C stream opens
// with the Init message msg (nil on resumption); mss is the data of one
// wire segment.
func (h *sendHalf) init(isn seq.Value, msg []byte, mss int) {
	h.isn = isn
	h.q.reset(0)
	h.q.write(msg)
	h.initLen = uint64(len(msg))
	h.cNext = h.initLen
	h.chunk, h.mss = maxFrameData, mss
}

// shrinkFrames makes every later frame at most one segment of data, and
// reports whether that is a change. Frames as large as the kernel's
// segments (GSO super-packets: one AEAD call and one frame header per 64
// KiB) cost about a quarter less CPU per byte than one frame per MSS, but
// once a wire segment is lost, the receiving engine can release nothing of
// the frame it belongs to until the retransmission arrives, so the
// receiving stack cannot acknowledge (or SACK) the segments after it; with
// one frame per segment each segment that arrives is delivered at once.
// A retransmission by the kernel is taken as the sign of a lossy path
// (docs/performance.md, "Frame size"), until growFrames says otherwise.
func (h *sendHalf) shrinkFrames() bool {
	h.retransmitAt = h.pNext
	if h.mss <= 0 || h.chunk == h.mss {
		return false
	}
	h.chunk = h.mss
	return true
}

// growBackBytes is how much data the peer must acknowledge after the
// kernel's latest retransmission before frames are as large as the segment
// again. A lossy path retransmits far more often (1 % loss: every 150 KB or
// so), so its frames stay at one segment; a lone retransmission (a tail-loss
// probe, or a timeout fired by a queueing spike, with nothing lost) costs a
// flow's frames their size for this many bytes, not for the rest of the
// connection.
const growBackBytes = 4 << 20

// growFrames makes frames as large as the segment again once growBackBytes
// were acknowledged since the latest retransmission, and reports whether
// that is a change.
func (h *sendHalf) growFrames() bool {
	if h.chunk == maxFrameData || h.pAcked < h.retransmitAt+growBackBytes {
		return false
	}
	h.chunk = maxFrameData
	return true
}

func (h *sendHalf) live() []sentFrame { return h.frames[h.fh:] }

// buffered is the number of wire bytes kept for retransmission.
func (h *sendHalf) buffered() int { return h.q.size() }

// cStart maps the first byte of a kernel segment at P offset s (pAcked <= s
// <= pNext) to the wire offset of its first byte: a frame edge maps to the
// start of the frame there (so engine-made empty frames at that edge are
// resent with it), a position inside a frame to the matching ciphertext
// byte.
func (h *sendHalf) cStart(s uint64) uint64 {
	fr := h.live()
	i := sort.Search(len(fr), func(i int) bool {
		f := &fr[i]
		return f.p1 > s || (f.p1 == s && f.p0 == s)
	})
	if i == len(fr) {
		return h.cNext
	}
	f := &fr[i]
	if s <= f.p0 {
		return f.c0
	}
	return f.c0 + uint64(f.hdr) + (s - f.p0)
}

// cEnd maps the end e of a kernel segment (pAcked <= e <= pNext) to the end
// of its wire bytes: always a frame edge, extended to the end of the frame
// holding byte e-1 and past any empty frames at e. Ending on frame edges
// means every segment the kernel sends from a frame start delivers at least
// one whole frame, so the receiver can verify it and the kernel sees
// progress, however the kernel resegments.
func (h *sendHalf) cEnd(e uint64) uint64 {
	fr := h.live()
	i := sort.Search(len(fr), func(i int) bool {
		f := &fr[i]
		return f.p0 > e || (f.p0 == e && f.p1 > e)
	})
	if i == len(fr) {
		return h.cNext
	}
	return fr[i].c0
}

// cPoint maps a P position that carries no data (the sequence number of a
// pure ACK, keep-alive or zero-window probe, RST, or an urgent pointer).
func (h *sendHalf) cPoint(p int64) int64 {
	switch {
	case p >= int64(h.pNext):
		return int64(h.cNext) + (p - int64(h.pNext))
	case p < int64(h.pAcked):
		// Below everything unacknowledged: keep the distance below the
		// acknowledged edge, so a probe at snd.una-1 stays an old
		// sequence number that makes the peer answer with an ACK.
		return int64(h.cAckedEdge()) - (int64(h.pAcked) - p)
	default:
		return int64(h.cStart(uint64(p)))
	}
}

// cAckedEdge is the wire offset that corresponds to pAcked.
func (h *sendHalf) cAckedEdge() uint64 {
	if fr := h.live(); len(fr) > 0 {
		return fr[0].c0
	}
	return h.cNext
}

// frame appends frames for the new kernel bytes data at P offset pNext,
// splitting at the chunk size. fin puts FINp on the last one (an empty FINp
// frame when data is empty); urgAt, when >= 0, is the P offset of the urgent
// byte, announced with URGp on every frame made.
func (h *sendHalf) frame(data []byte, fin bool, urgAt int64) error {
	return h.frameFrom(data, 0, fin, urgAt)
}

// frameFrom is frame for the data buf[i:]. The sealer reads the data where
// it is, borrowing the bytes before each frame's data for its flags (the
// kernel segment's header, or the end of the previous frame's data), so the
// plaintext is not copied.
func (h *sendHalf) frameFrom(buf []byte, i int, fin bool, urgAt int64) error {
	if h.fin {
		return errSendAfterFIN
	}
	for first := true; first || i < len(buf); first = false {
		n := len(buf) - i
		limit := h.chunk
		if urgAt >= 0 && limit > maxFrameDataUR {
			limit = maxFrameDataUR
		} else if limit > maxFrameData {
			limit = maxFrameData
		}
		if n > limit {
			n = limit
		}
		spec := frameSpec{fin: fin && i+n == len(buf)}
		if urgAt >= 0 {
			spec.urg = true
			d := urgAt - int64(h.pNext)
			if d < 0 {
				d = 0
			}
			if d > 0xffff {
				d = 0xffff
			}
			spec.urgent = uint16(d)
		}
		if err := h.appendFrame(spec, buf, i, i+n, false); err != nil {
			return err
		}
		i += n
	}
	return nil
}

// appendEmpty appends an empty frame made by the engine (a rekey frame) and
// returns its wire range.
func (h *sendHalf) appendEmpty(spec frameSpec) (c0, c1 uint64, err error) {
	if h.fin {
		return 0, 0, errSendAfterFIN
	}
	c0 = h.cNext
	if err := h.appendFrame(spec, nil, 0, 0, !spec.fin); err != nil {
		return 0, 0, err
	}
	return c0, h.cNext, nil
}

func (h *sendHalf) appendFrame(spec frameSpec, buf []byte, i, j int, engine bool) error {
	data := buf[i:j]
	if h.q.end() != h.cNext {
		// The queue was emptied past cNext by an ack beyond it; cannot
		// happen because acks are clamped to what was sent.
		h.q.reset(h.cNext)
	}
	b := h.q.tail(len(data) + frameHdrURG + frameTag)
	n0 := len(b)
	b, err := h.seal(b, h.cNext, spec, buf, i, j)
	if err != nil {
		return err
	}
	h.q.commit(b)
	f := sentFrame{
		p0: h.pNext, p1: h.pNext + uint64(len(data)),
		c0: h.cNext, c1: h.cNext + uint64(len(b)-n0),
		hdr: frameHdr, fin: spec.fin, engine: engine,
	}
	if spec.urg {
		f.hdr = frameHdrURG
	}
	h.pushFrame(f)
	if engine {
		h.engineLive++
	}
	h.pNext, h.cNext = f.p1, f.c1
	h.fin = spec.fin
	h.frameCount++
	h.bytesOut += uint64(len(data))
	return nil
}

func (h *sendHalf) pushFrame(f sentFrame) {
	if h.fh > 0 && len(h.frames) == cap(h.frames) && h.fh >= len(h.frames)/2 {
		n := copy(h.frames, h.frames[h.fh:])
		h.frames = h.frames[:n]
		h.fh = 0
	}
	h.frames = append(h.recs().grow(h.frames), f)
}

// recs is the engine's pool of record arrays (nil without a pool).
func (h *sendHalf) recs() *recPool[sentFrame] {
	if h.q.pool == nil {
		return nil
	}
	return &h.q.pool.sent
}

// bytes returns the wire bytes [c0, c1), which must not have been freed.
func (h *sendHalf) bytes(c0, c1 uint64) ([]byte, error) {
	if c0 < h.q.start() || c1 > h.q.end() || c0 > c1 {
		return nil, errSendFreed
	}
	return h.q.view(c0, c1), nil
}

// onAck processes the peer's cumulative wire ack c (an offset; -1 acks only
// the SYN) and returns the P ack to give the kernel. An ack of bytes never
// sent returns ok=false and changes nothing.
func (h *sendHalf) onAck(c int64) (p int64, ok bool) {
	maxAck := int64(h.cNext)
	if h.fin {
		maxAck++
	}
	if c > maxAck {
		return h.pAckValue(), false
	}
	if c <= int64(h.cAcked) {
		return h.pAckValue(), true
	}
	h.cAcked = uint64(c)
	fr := h.live()
	k := 0
	for k < len(fr) && fr[k].c1 <= h.cAcked {
		if fr[k].engine {
			h.engineLive--
			h.engineAcked++
		}
		k++
	}
	h.fh += k
	if h.fh == len(h.frames) {
		h.frames = h.frames[:0]
		h.fh = 0
		if cap(h.frames) > keptRecords {
			h.recs().put(h.frames)
			h.frames = nil
		}
	}
	keep := min(h.cAcked, h.cNext)
	if fr := h.live(); len(fr) > 0 {
		h.pAcked = fr[0].p0
		keep = min(fr[0].c0, keep)
	} else {
		h.pAcked = h.pNext
	}
	if h.cAcked < h.initLen {
		keep = 0 // the Init message is resent whole by the engine
	}
	h.q.discard(keep)
	if h.fin && c == maxAck {
		h.finAcked = true
	}
	return h.pAckValue(), true
}

// pAckValue is the current P ack offset for the kernel, counting an
// acknowledged FIN.
func (h *sendHalf) pAckValue() int64 {
	if h.finAcked {
		return int64(h.pNext) + 1
	}
	return int64(h.pAcked)
}

// initAcked reports whether the peer acknowledged the whole Init message.
func (h *sendHalf) initAcked() bool { return h.cAcked >= h.initLen }

// sackToP maps a SACK block [c0, c1) of the peer to P. Frame data byte k
// sits at wire byte hdr+k, so received ciphertext stands for received
// plaintext, but only so far as the kernel will still resend what the frame
// lacks: of a frame whose start the block misses, the first data byte is
// not reported, and of one whose end (tag) it misses, the last; the
// kernel's retransmission of those bytes then covers the whole frame
// (cEnd). A wholly covered FINp frame also reports the FIN. Reporting
// exact ranges matters: a tail-loss probe that starts
// inside a frame must be SACKed as the kernel sent it. ok=false when
// nothing remains.
func (h *sendHalf) sackToP(c0, c1 uint64) (p0, p1 uint64, ok bool) {
	fr := h.live()
	i := sort.Search(len(fr), func(i int) bool { return fr[i].c1 > c0 })
	k := sort.Search(len(fr), func(i int) bool { return fr[i].c0 >= c1 }) - 1
	if i >= len(fr) || k < i {
		return 0, 0, false
	}
	first, last := &fr[i], &fr[k]
	p0 = first.p0
	if c0 > first.c0 {
		p0 = max(first.pAt(c0), first.p0+1)
	}
	p1 = last.p1
	if c1 < last.c1 {
		p1 = min(last.pAt(c1), last.p1-min(last.p1-last.p0, 1))
	} else if last.fin {
		// The whole FINp frame arrived: the receiver delivers the FIN from
		// it, so its sequence number counts as received (as a stack SACKs
		// an out-of-order FIN). Without it a lost last data frame gives the
		// kernel no loss signal but its retransmission timer.
		p1++
	}
	return p0, p1, p1 > p0
}

// pAt is the P offset of the first data byte at or after wire offset c
// (c within the frame; header bytes map to p0, tag bytes to p1).
func (f *sentFrame) pAt(c uint64) uint64 {
	d := f.c0 + uint64(f.hdr)
	if c <= d {
		return f.p0
	}
	return min(f.p0+(c-d), f.p1)
}

// engineRuns calls fn for the wire ranges of the live frames the engine
// made itself, joining frames that follow each other in the stream into
// runs of at most max bytes (a frame longer than max is a run of its own).
func (h *sendHalf) engineRuns(max int, fn func(c0, c1 uint64)) {
	if h.engineLive == 0 {
		return
	}
	var c0, c1 uint64
	open := false
	for _, f := range h.live() {
		if !f.engine {
			continue
		}
		if open && f.c0 == c1 && f.c1-c0 <= uint64(max) {
			c1 = f.c1
			continue
		}
		if open {
			fn(c0, c1)
		}
		c0, c1, open = f.c0, f.c1, true
	}
	if open {
		fn(c0, c1)
	}
}

// release frees all buffers.
func (h *sendHalf) release() {
	h.q.release()
	h.recs().put(h.frames)
	h.frames = nil
	h.fh = 0
	h.engineLive = 0
}

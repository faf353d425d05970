package engine

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tcpcryptd/tcpcrypt/packet/seq"
)

// fakeSeal lays a frame out like RFC 8548 §4.2 with the plaintext in clear
// and a zero tag, so mapping tests can see which byte went where.
func fakeSeal(dst []byte, off uint64, spec frameSpec, buf []byte, i, j int) ([]byte, error) {
	data := buf[i:j]
	var ctl, flags byte
	if spec.rekey {
		ctl = 1
	}
	if spec.fin {
		flags |= 1
	}
	clen := 1 + len(data) + frameTag
	if spec.urg {
		flags |= 2
		clen += 2
	}
	dst = append(dst, ctl, byte(clen>>8), byte(clen), flags)
	if spec.urg {
		dst = append(dst, byte(spec.urgent>>8), byte(spec.urgent))
	}
	dst = append(dst, data...)
	return append(dst, make([]byte, frameTag)...), nil
}

func newTestSend(t *testing.T, initLen int) *sendHalf {
	t.Helper()
	h := &sendHalf{}
	h.init(seq.Value(0xfffffff0), bytes.Repeat([]byte{0xee}, initLen), 1000)
	h.seal = fakeSeal
	return h
}

func pattern(n int, start byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

func TestSendMapping(t *testing.T) {
	h := newTestSend(t, 10)
	if err := h.frame(pattern(100, 0), false, -1); err != nil {
		t.Fatal(err)
	}
	if err := h.frame(pattern(200, 100), false, -1); err != nil {
		t.Fatal(err)
	}
	// Init [0,10), frame 1 [10,130) for P [0,100), frame 2 [130,350) for P [100,300).
	tests := []struct {
		name       string
		s, e       uint64
		wantCS     uint64
		wantCE     uint64
		wantFirstB byte
	}{
		{"original 1", 0, 100, 10, 130, 0},
		{"original 2", 100, 300, 130, 350, 0},
		{"coalesced", 0, 300, 10, 350, 0},
		{"split inside first", 50, 150, 64, 350, 50},
		{"tail of first", 0, 40, 10, 130, 0},
		{"inside second", 120, 121, 130 + 4 + 20, 350, 120},
	}
	for _, tt := range tests {
		cs, ce := h.cStart(tt.s), h.cEnd(tt.e)
		if cs != tt.wantCS || ce != tt.wantCE {
			t.Errorf("%s: [%d,%d) -> [%d,%d), want [%d,%d)", tt.name, tt.s, tt.e, cs, ce, tt.wantCS, tt.wantCE)
			continue
		}
		b, err := h.bytes(cs, ce)
		if err != nil {
			t.Fatal(err)
		}
		if tt.wantCS != 10 && tt.wantCS != 130 && b[0] != tt.wantFirstB {
			t.Errorf("%s: first byte %d, want %d", tt.name, b[0], tt.wantFirstB)
		}
	}
	// Acks: inside the Init, at frame edges, inside a frame, beyond.
	acks := []struct {
		c     int64
		wantP int64
		ok    bool
	}{
		{0, 0, true}, {5, 0, true}, {10, 0, true}, {129, 0, true}, {130, 100, true},
		{200, 100, true}, {351, 100, false}, {350, 300, true}, {340, 300, true},
	}
	for _, a := range acks {
		p, ok := h.onAck(a.c)
		if p != a.wantP || ok != a.ok {
			t.Errorf("onAck(%d) = %d,%v, want %d,%v", a.c, p, ok, a.wantP, a.ok)
		}
	}
	if h.buffered() != 0 {
		t.Errorf("buffered %d after everything acked", h.buffered())
	}
}

func TestSendFINAndEmptyFrames(t *testing.T) {
	h := newTestSend(t, 0)
	if err := h.frame(pattern(100, 0), false, -1); err != nil {
		t.Fatal(err)
	}
	// An engine-made empty (rekey) frame at the edge P=100.
	c0, c1, err := h.appendEmpty(frameSpec{rekey: true})
	if err != nil || c0 != 120 || c1 != 140 {
		t.Fatalf("appendEmpty = %d,%d,%v", c0, c1, err)
	}
	if err := h.frame(pattern(50, 100), false, -1); err != nil {
		t.Fatal(err)
	}
	// frame 1 [0,120) P[0,100); E [120,140) P[100,100); frame 3 [140,210) P[100,150)
	if got := h.cStart(100); got != 120 {
		t.Errorf("cStart(100) = %d, want 120 (includes the empty frame)", got)
	}
	if got := h.cEnd(100); got != 140 {
		t.Errorf("cEnd(100) = %d, want 140", got)
	}
	if p, _ := h.onAck(120); p != 100 {
		t.Errorf("ack 120 -> %d, want 100", p)
	}
	if _, _, ok := h.sackToP(120, 140); ok {
		t.Errorf("SACK of an empty rekey frame reported")
	}
	// Bare FIN: an empty FINp frame at P=150.
	if err := h.frame(nil, true, -1); err != nil {
		t.Fatal(err)
	}
	if h.cNext != 230 || h.pNext != 150 || !h.fin {
		t.Fatalf("after FIN: cNext %d pNext %d fin %v", h.cNext, h.pNext, h.fin)
	}
	if cs, ce := h.cStart(150), h.cEnd(150); cs != 210 || ce != 230 {
		t.Errorf("bare FIN maps to [%d,%d), want [210,230)", cs, ce)
	}
	// A SACK of the whole FINp frame reports the FIN's sequence number.
	if p0, p1, ok := h.sackToP(210, 230); !ok || p0 != 150 || p1 != 151 {
		t.Errorf("SACK of the FINp frame -> [%d,%d) %v, want [150,151)", p0, p1, ok)
	}
	if _, _, ok := h.sackToP(210, 229); ok {
		t.Errorf("SACK of part of the FINp frame reported")
	}
	if err := h.frame([]byte{1}, false, -1); err == nil {
		t.Error("data after FIN accepted")
	}
	if p, _ := h.onAck(230); p != 150 || h.finAcked {
		t.Errorf("ack 230 -> %d finAcked %v", p, h.finAcked)
	}
	if p, _ := h.onAck(231); p != 151 || !h.finAcked {
		t.Errorf("ack 231 -> %d finAcked %v", p, h.finAcked)
	}
	if got := h.cPoint(151); got != 231 {
		t.Errorf("cPoint(151) = %d, want 231", got)
	}
}

func TestSendPointsAndSACK(t *testing.T) {
	h := newTestSend(t, 10)
	for i := 0; i < 4; i++ {
		if err := h.frame(pattern(100, byte(i)), false, -1); err != nil {
			t.Fatal(err)
		}
	}
	// frames: [10,130) [130,250) [250,370) [370,490), P by 100s.
	h.onAck(130)
	if got := h.cPoint(99); got != 129 {
		t.Errorf("keep-alive at snd.una-1 -> %d, want 129", got)
	}
	if got := h.cPoint(400); got != 490 {
		t.Errorf("cPoint(pNext) = %d, want 490", got)
	}
	// frames: [130,250) P[100,200); [250,370) P[200,300); [370,490) P[300,400);
	// data of [250,370) at wire [254,354).
	tests := []struct {
		c0, c1 uint64
		p0, p1 uint64
		ok     bool
	}{
		{250, 370, 200, 300, true}, // one whole frame
		{240, 490, 200, 400, true}, // part of a header before: that frame's data is not reported
		{260, 370, 206, 300, true}, // from inside the data
		{251, 370, 201, 300, true}, // inside the header: not the first data byte
		{250, 489, 200, 399, true}, // the last tag byte missing: not the last data byte
		{250, 300, 200, 246, true}, // the block ends inside the data
		{355, 369, 0, 0, false},    // tag bytes only
		{130, 134, 0, 0, false},    // header bytes only
	}
	for _, tt := range tests {
		p0, p1, ok := h.sackToP(tt.c0, tt.c1)
		if ok != tt.ok || (ok && (p0 != tt.p0 || p1 != tt.p1)) {
			t.Errorf("sackToP(%d,%d) = %d,%d,%v want %d,%d,%v", tt.c0, tt.c1, p0, p1, ok, tt.p0, tt.p1, tt.ok)
		}
	}
}

func TestSendChunking(t *testing.T) {
	h := newTestSend(t, 0)
	h.chunk = 1000
	if err := h.frame(pattern(2500, 0), true, -1); err != nil {
		t.Fatal(err)
	}
	fr := h.live()
	if len(fr) != 3 || fr[2].p1-fr[2].p0 != 500 || !fr[2].fin || fr[0].fin {
		t.Fatalf("frames %+v", fr)
	}
	if h.cNext != 2500+3*frameOverhead {
		t.Errorf("cNext %d", h.cNext)
	}
}

func TestOffsetsWrap(t *testing.T) {
	isn := seq.Value(0xffffff00)
	for _, off := range []int64{-1, 0, 1, 0xff, 0x100, 1 << 31, 5 << 32} {
		v := seqAt(isn, off)
		ref := uint64(max(off-1000, 0))
		if got := offAt(isn, ref, v); got != off {
			t.Errorf("offAt(seqAt(%d)) = %d", off, got)
		}
	}
}

func TestRecvReassembly(t *testing.T) {
	r := &recvHalf{}
	r.init(seq.Value(7), 1000)
	data := pattern(600, 0)
	steps := []struct {
		c0, c1 uint64
		want   insertResult
	}{
		{200, 300, insOOO},
		{400, 500, insOOO},
		{250, 450, insOOO}, // fills [300,400) only
		{0, 100, insInOrder},
		{50, 100, insDup},
		{100, 200, insInOrder}, // pulls everything to 500
		{900, 1100, insOOO},    // trimmed at the 1000-byte bound
		{1000, 1100, insOverflow},
	}
	for _, s := range steps {
		if got := r.insert(s.c0, pad(data, s.c0, s.c1)); got != s.want {
			t.Errorf("insert [%d,%d) = %d, want %d", s.c0, s.c1, got, s.want)
		}
	}
	if r.contigEnd() != 500 {
		t.Fatalf("contigEnd %d", r.contigEnd())
	}
	if !bytes.Equal(r.inOrder(), pattern(500, 0)) {
		t.Error("in-order bytes differ")
	}
	if got := r.sackBlocks(nil, 3); !cmp.Equal(got, [][2]uint64{{900, 1000}}) {
		t.Errorf("sack %v", got)
	}
	if r.buffered() != 600 {
		t.Errorf("buffered %d", r.buffered())
	}
}

func pad(data []byte, c0, c1 uint64) []byte {
	b := make([]byte, c1-c0)
	for i := range b {
		b[i] = byte(c0 + uint64(i))
	}
	return b
}

func TestRecvSACKOrder(t *testing.T) {
	r := &recvHalf{}
	r.init(0, 1<<20)
	r.insert(1000, make([]byte, 100))
	r.insert(3000, make([]byte, 100))
	r.insert(2000, make([]byte, 100))
	got := r.sackBlocks(nil, 3)
	want := [][2]uint64{{2000, 2100}, {3000, 3100}, {1000, 1100}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sack blocks (-want +got):\n%s", diff)
	}
	r.insert(2100, make([]byte, 900)) // joins 2000..3100
	got = r.sackBlocks(nil, 3)
	want = [][2]uint64{{2000, 3100}, {1000, 1100}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after merge (-want +got):\n%s", diff)
	}
}

func TestRecvAckMapping(t *testing.T) {
	r := &recvHalf{}
	r.init(0, 1<<20)
	r.insert(0, make([]byte, 50))
	r.skipInit(50)
	if got := r.onLocalAck(0); got != 50 {
		t.Errorf("ack after Init = %d, want 50", got)
	}
	// Frames [50,170) P[0,100), empty [170,190), [190,240) P[100,130) FINp.
	r.deliver(50, 170, make([]byte, 100), false)
	r.deliver(170, 190, nil, false)
	r.deliver(190, 240, make([]byte, 30), true)
	tests := []struct{ p, c int64 }{
		{0, 50}, {60, 50}, {100, 190}, {129, 190}, {130, 190}, {131, 241},
	}
	for _, tt := range tests {
		if got := r.onLocalAck(tt.p); got != tt.c {
			t.Errorf("onLocalAck(%d) = %d, want %d", tt.p, got, tt.c)
		}
	}
	if _, d, fin := r.unacked(); len(d) != 0 || fin {
		t.Errorf("unacked after all acked: %d bytes fin %v", len(d), fin)
	}
}

func TestRecvRedelivery(t *testing.T) {
	r := &recvHalf{}
	r.init(0, 1<<20)
	r.deliver(0, 120, pattern(100, 0), false)
	r.onLocalAck(40) // the stack trimmed our delivery to its window
	p0, d, _ := r.unacked()
	if p0 != 40 || !bytes.Equal(d, pattern(60, 40)) {
		t.Errorf("unacked = %d, %d bytes", p0, len(d))
	}
	if got := r.ackOut(); got != 0 {
		t.Errorf("partial frame acked on the wire: %d", got)
	}
}

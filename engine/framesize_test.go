package engine

import (
	"testing"

	"github.com/tcpcryptd/tcpcrypt/packet"
	"github.com/tcpcryptd/tcpcrypt/packet/seq"
)

// TestFrameSizeShrinksAtRetransmission: a segment larger than one MSS is
// sealed as one frame while the kernel has retransmitted nothing; its first
// retransmission switches the flow to frames of one MSS (FramesShrunk), and
// the retransmitted bytes are the ones first sent (invariant 3).
func TestFrameSizeShrinksAtRetransmission(t *testing.T) {
	s := newScript(t, Config{}, Config{})
	s.handshake()
	p0, ack := cISN.Add(1), sISN.Add(1)
	framesOut := func() uint64 { return s.a.Counters().FramesOut }

	before := framesOut()
	first := pattern(4000, 1)
	r := s.outA(s.cliSeg(p0, ack, packet.FlagACK|packet.FlagPSH, ackOpts, first))
	want(t, r, Replace)
	if n := framesOut() - before; n != 1 {
		t.Fatalf("a 4000-byte segment on a clean path made %d frames, want 1", n)
	}
	sent := append([]byte(nil), view(t, r.Packet).Payload()...)
	for _, p := range r.ToPeer {
		sent = append(sent, view(t, p).Payload()...)
	}

	// The kernel resends the same bytes: the path lost a segment.
	r = s.outA(s.cliSeg(p0, ack, packet.FlagACK|packet.FlagPSH, ackOpts, first))
	want(t, r, Replace)
	if c := s.a.Counters(); c.FramesShrunk != 1 {
		t.Fatalf("frames_shrunk %d after a retransmission, want 1", c.FramesShrunk)
	}
	again := append([]byte(nil), view(t, r.Packet).Payload()...)
	for _, p := range r.ToPeer {
		again = append(again, view(t, p).Payload()...)
	}
	if string(again) != string(sent) {
		t.Fatalf("the retransmission carries other wire bytes (%d vs %d) than first sent", len(again), len(sent))
	}

	before = framesOut()
	r = s.outA(s.cliSeg(p0.Add(seq.Size(len(first))), ack, packet.FlagACK|packet.FlagPSH, ackOpts, pattern(4000, 2)))
	want(t, r, Replace)
	var mss int
	for _, f := range s.a.tab.flows {
		mss = int(f.pmss())
	}
	if n, wantN := framesOut()-before, uint64((4000+mss-1)/mss); n != wantN {
		t.Fatalf("after the retransmission a 4000-byte segment made %d frames, want %d of at most %d bytes", n, wantN, mss)
	}
	// A second retransmission changes nothing more.
	s.outA(s.cliSeg(p0, ack, packet.FlagACK|packet.FlagPSH, ackOpts, first))
	if c := s.a.Counters(); c.FramesShrunk != 1 {
		t.Errorf("frames_shrunk %d, want 1 per flow", c.FramesShrunk)
	}
}

// TestFrameSizeGrowsBack: after a retransmission, frames stay at one MSS
// until the peer acknowledges growBackBytes more without another
// retransmission; then a segment is one frame again (FramesGrown), and a
// later retransmission shrinks them once more.
func TestFrameSizeGrowsBack(t *testing.T) {
	cfg := Config{MaxFlowBuffer: 64 << 20}
	s := newScript(t, cfg, cfg)
	s.handshake()
	p, ack := cISN.Add(1), sISN.Add(1)
	const size = 60000
	send := func(payload []byte) uint64 {
		t.Helper()
		before := s.a.Counters().FramesOut
		r := s.outA(s.cliSeg(p, ack, packet.FlagACK|packet.FlagPSH, ackOpts, payload))
		want(t, r, Replace)
		recycle(s.a, r)
		p = p.Add(seq.Size(len(payload)))
		return s.a.Counters().FramesOut - before
	}
	resend := func(payload []byte) {
		t.Helper()
		recycle(s.a, s.outA(s.cliSeg(p.Add(-seq.Size(len(payload))), ack, packet.FlagACK|packet.FlagPSH, ackOpts, payload)))
	}
	seg := pattern(size, 3)
	if n := send(seg); n != 1 {
		t.Fatalf("clean path: %d frames for one segment, want 1", n)
	}
	resend(seg) // not acknowledged yet: a retransmission
	if c := s.a.Counters(); c.FramesShrunk != 1 {
		t.Fatalf("frames_shrunk %d after a retransmission, want 1", c.FramesShrunk)
	}
	// Acknowledged data short of growBackBytes: frames stay small.
	sent := 0
	for sent+size < growBackBytes {
		if n := send(seg); n < 2 {
			t.Fatalf("after %d bytes acknowledged since the retransmission: %d frame(s) for %d bytes, want one per MSS", sent, n, size)
		}
		s.ackAll()
		sent += size
	}
	// The acknowledgment that completes growBackBytes: large frames again.
	send(seg)
	s.ackAll()
	if n := send(seg); n != 1 {
		t.Fatalf("after %d bytes acknowledged without a retransmission: %d frames for one segment, want 1", sent+2*size, n)
	}
	if c := s.a.Counters(); c.FramesGrown != 1 {
		t.Errorf("frames_grown %d, want 1", c.FramesGrown)
	}
	// A new retransmission shrinks them again.
	resend(seg)
	if n := send(seg); n < 2 {
		t.Errorf("after a second retransmission: %d frame(s) for one segment, want one per MSS", n)
	}
	if c := s.a.Counters(); c.FramesShrunk != 2 {
		t.Errorf("frames_shrunk %d, want 2", c.FramesShrunk)
	}
}

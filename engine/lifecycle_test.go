package engine

import (
	"testing"

	"github.com/tcpcryptd/tcpcrypt/packet"
	"github.com/tcpcryptd/tcpcrypt/packet/seq"
)

// ackedData runs the handshake, sends n bytes from the client and lets the
// server acknowledge them, so that A's send half has pAcked = n.
func ackedData(t *testing.T, n int) *script {
	s := newScript(t, Config{}, Config{})
	s.handshake()
	p0, ack := cISN.Add(1), sISN.Add(1)
	r := s.outA(s.cliSeg(p0, ack, packet.FlagACK|packet.FlagPSH, ackOpts, pattern(n, 3)))
	want(t, r, Replace)
	want(t, s.inB(r.Packet), Replace)
	r = s.outB(s.srvSeg(ack, p0.Add(seq.Size(n)), packet.FlagACK, ackOpts, nil))
	want(t, r, Replace)
	r = s.inA(r.Packet)
	want(t, r, Replace)
	if a := view(t, r.Packet).TCP.Ack(); a != p0.Add(seq.Size(n)) {
		t.Fatalf("client stack got ack %#x, want %#x", a, p0.Add(seq.Size(n)))
	}
	return s
}

// TestScriptSegmentBelowAcked: segments of the local stack whose range lies
// partly or wholly below what the peer acknowledged, with and without FIN
// and payload. A FIN ending below the acknowledged point used to panic
// (slice bounds out of range in frameOut); a FIN is only valid at the end
// of the stream, so such segments are dropped as invalid, and nothing
// plaintext leaves.
func TestScriptSegmentBelowAcked(t *testing.T) {
	p0, ack := cISN.Add(1), sISN.Add(1)
	fa := packet.FlagACK | packet.FlagFIN
	tests := []struct {
		name     string
		off, n   int
		flags    uint8
		want     Verdict
		wantDrop DropReason
	}{
		{"FIN with data wholly below", 0, 100, fa, Drop, DropInvalid},
		{"bare FIN below", 100, 0, fa, Drop, DropInvalid},
		{"FIN with data ending just below", 0, 499, fa, Drop, DropInvalid},
		{"FIN with data crossing the acked point", 400, 200, fa, Replace, DropNone},
		{"FIN ending inside the stream", 400, 50, fa, Drop, DropInvalid},
		{"FIN at the acked point", 400, 100, fa, Replace, DropNone},
		{"data wholly below", 0, 100, packet.FlagACK, Replace, DropNone},
		{"data crossing the acked point", 400, 200, packet.FlagACK, Replace, DropNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ackedData(t, 500)
			before := s.a.Counters().Drops[DropInvalid]
			payload := pattern(tt.n, byte(tt.off+3))
			r := s.outA(s.cliSeg(p0.Add(seq.Size(tt.off)), ack, tt.flags, ackOpts, payload))
			want(t, r, tt.want)
			if tt.wantDrop != DropNone {
				if got := s.a.Counters().Drops[tt.wantDrop] - before; got != 1 {
					t.Errorf("%v drops %d, want 1", tt.wantDrop, got)
				}
				return
			}
			p := view(t, r.Packet)
			if tt.n > 8 && len(p.Payload()) > 0 && containsRun(p.Payload(), payload[len(payload)-8:]) {
				t.Errorf("plaintext on the wire")
			}
			if tt.flags&packet.FlagFIN != 0 && p.TCP.Flags()&packet.FlagFIN == 0 {
				t.Errorf("FIN lost: flags %#x", p.TCP.Flags())
			}
		})
	}
}

func containsRun(b, run []byte) bool {
	for i := 0; i+len(run) <= len(b); i++ {
		if string(b[i:i+len(run)]) == string(run) {
			return true
		}
	}
	return false
}

package engine

import (
	"testing"
	"time"

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

// TestScriptIdleAbortLingers: after the idle timeout the flow is aborted
// and lingers, so the application's next bytes are dropped and answered
// with a RST, never passed in plaintext.
func TestScriptIdleAbortLingers(t *testing.T) {
	s := ackedData(t, 100)
	p0, ack := cISN.Add(1), sISN.Add(1)
	s.now = s.now.Add(defaultIdle + time.Second)
	r := s.a.Tick(s.now)
	checkAll(t, r)
	if s.a.Counters().Aborts[AbortIdle] != 1 {
		t.Fatalf("aborts %v", s.a.Counters().Aborts)
	}
	if len(r.ToLocal) == 0 || len(r.ToPeer) == 0 {
		t.Fatalf("idle abort sent %d RSTs to the stack, %d to the peer", len(r.ToLocal), len(r.ToPeer))
	}
	if s.a.NumFlows() != 1 {
		t.Fatalf("%d flows after the idle abort, want the aborted one lingering", s.a.NumFlows())
	}
	secret := pattern(50, 77)
	r = s.outA(s.cliSeg(p0.Add(100), ack, packet.FlagACK|packet.FlagPSH, ackOpts, secret))
	want(t, r, Drop)
	if len(r.ToLocal) != 1 || view(t, r.ToLocal[0]).TCP.Flags()&packet.FlagRST == 0 {
		t.Errorf("straggler not answered with a RST toward the stack")
	}
	// After CloseTimeout it is forgotten.
	s.now = s.now.Add(defaultClose + time.Second)
	s.a.Tick(s.now)
	if s.a.NumFlows() != 0 {
		t.Errorf("%d flows after the linger", s.a.NumFlows())
	}
	// One end, counted once: the idle timeout, not the linger after it.
	if got := s.a.Counters().FlowsExpired; got != 1 {
		t.Errorf("flows_expired %d, want 1", got)
	}
}

// TestScriptNewSYNAfterReset: a SYN with a new ISN on the 4-tuple of a flow
// that was reset less than CloseTimeout ago starts a new connection; a
// retransmission of the old SYN does not.
func TestScriptNewSYNAfterReset(t *testing.T) {
	for _, side := range []string{"active", "passive"} {
		t.Run(side, func(t *testing.T) {
			s := ackedData(t, 100)
			p0, ack := cISN.Add(1), sISN.Add(1)
			r := s.outA(s.cliSeg(p0.Add(100), ack, packet.FlagRST|packet.FlagACK, nil, nil))
			want(t, r, Replace)
			want(t, s.inB(r.Packet), Replace)
			look := func(e *Engine) (FlowInfo, bool) {
				if e == s.b {
					return e.Lookup(s.srv, s.cli)
				}
				return e.Lookup(s.cli, s.srv)
			}
			for _, e := range []*Engine{s.a, s.b} {
				if fi, ok := look(e); !ok || fi.State != StateReset {
					t.Fatalf("flow not reset: %+v %v", fi, ok)
				}
			}
			e, dir := s.a, Outbound
			if side == "passive" {
				e, dir = s.b, Inbound
			}
			// The old SYN again: still the dead flow (dropped).
			r = e.Process(s.cliSeg(cISN, 0, packet.FlagSYN, synOpts, nil), dir)
			want(t, r, Drop)
			isn := cISN.Add(100000)
			opts := synOpts
			if side == "passive" {
				opts = withENO(synOpts, []byte{0x45, 3, 0x20})
			}
			r = e.Process(s.cliSeg(isn, 0, packet.FlagSYN, opts, nil), dir)
			checkAll(t, r)
			want(t, r, Replace)
			fi, ok := look(e)
			if !ok || fi.State.Dead() {
				t.Fatalf("no live flow for the new SYN: %+v %v", fi, ok)
			}
		})
	}
}

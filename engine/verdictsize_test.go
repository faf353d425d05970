package engine

import (
	"bytes"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/packet"
	"github.com/tcpcryptd/tcpcrypt/packet/seq"
)

// nfqVerdictMax is the largest packet an NFQUEUE verdict can carry: the
// payload is a netlink attribute whose 16-bit length includes its 4-byte
// header. On Linux a longer Replace is garbled and lost without an error.
const nfqVerdictMax = 65535 - 4

// checkSizes fails for any packet of r longer than nfqVerdictMax.
func checkSizes(t *testing.T, what string, r Result) {
	t.Helper()
	if r.Verdict == Replace && len(r.Packet) > nfqVerdictMax {
		t.Errorf("%s: Replace of %d bytes, over the verdict limit %d", what, len(r.Packet), nfqVerdictMax)
	}
	for _, b := range r.ToPeer {
		if len(b) > nfqVerdictMax {
			t.Errorf("%s: ToPeer packet of %d bytes", what, len(b))
		}
	}
	for _, b := range r.ToLocal {
		if len(b) > nfqVerdictMax {
			t.Errorf("%s: ToLocal packet of %d bytes", what, len(b))
		}
	}
}

// TestScriptLargeDeliveryFitsVerdict replays what stalled encrypted
// connections on Linux under loss and reordering (e2e TestE2EChaos): a
// lost segment leaves a hole, the frames behind it pile up in the
// reassembly buffer, and the segment that fills the hole completes them
// all at once. The engine delivered them as one Replace of exactly 65535
// bytes, which an NFQUEUE verdict cannot carry (the kernel dropped the
// garbled verdict, the local stack never saw the bytes, the engine's
// buffer filled and decoding stopped). The same limit binds the wire side
// when a GSO super-packet grows by its frame overhead.
func TestScriptLargeDeliveryFitsVerdict(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "v4", true: "v6"}[v6], func(t *testing.T) {
			s := newScript(t, Config{}, Config{})
			if v6 {
				s.v6()
			}
			s.handshake()
			p0, ack := cISN.Add(1), sISN.Add(1)

			// 60 frames of 1400 bytes; the first one is lost on the wire.
			const n, seg = 60, 1400
			d := pattern(n*seg, 3)
			var wire [][]byte
			for i := 0; i < n; i++ {
				r := s.outA(s.cliSeg(p0.Add(seq.Size(i*seg)), ack, packet.FlagACK, ackOpts, d[i*seg:(i+1)*seg]))
				want(t, r, Replace)
				checkSizes(t, "outbound frame", r)
				wire = append(wire, r.Packet)
			}
			for i := 1; i < n; i++ {
				r := s.inB(wire[i])
				want(t, r, Drop) // out of order: kept, answered by the engine
				checkSizes(t, "out-of-order segment", r)
			}
			r := s.inB(wire[0]) // the retransmission fills the hole
			want(t, r, Replace)
			checkSizes(t, "hole filled", r)
			got := deliveredStream(t, p0, append([][]byte{r.Packet}, r.ToLocal...))
			if !bytes.Equal(got, d) {
				t.Fatalf("delivered %d bytes after the hole filled, want the %d sent, in order", len(got), len(d))
			}

			// The local stack took nothing: re-delivery, on a duplicate
			// from the peer and by timer, must fit too.
			s.now = s.now.Add(100 * time.Millisecond)
			r = s.inB(wire[0])
			checkSizes(t, "re-delivery on a duplicate", r)
			if r.Verdict != Replace {
				t.Fatalf("duplicate with undelivered plaintext: verdict %v, want a re-delivery", r.Verdict)
			}
			got = deliveredStream(t, p0, append([][]byte{r.Packet}, r.ToLocal...))
			if !bytes.Equal(got, d) {
				t.Fatalf("re-delivered %d bytes, want %d", len(got), len(d))
			}
			s.now = s.now.Add(10 * time.Second)
			checkSizes(t, "timer re-delivery", s.b.Tick(s.now))

			// A GSO super-packet from the client stack grows by the frame
			// overhead (20 bytes per frame: one frame while no segment was
			// retransmitted, so 65460 bytes of data end 1 byte past
			// MaxPacket); the wire packets must still fit a verdict.
			big := pattern(65460, 9)
			r = s.outA(s.cliSeg(p0.Add(n*seg), ack, packet.FlagACK, ackOpts, big))
			want(t, r, Replace)
			checkSizes(t, "GSO super-packet", r)
			if len(r.ToPeer) == 0 {
				t.Errorf("a %d-byte GSO packet went out whole (%d bytes)", len(big), len(r.Packet))
			}
		})
	}
}

// deliveredStream concatenates the payloads of packets toward the local
// stack, checking that each starts where the previous ended (from P
// sequence number start).
func deliveredStream(t *testing.T, start seq.Value, pkts [][]byte) []byte {
	t.Helper()
	var out []byte
	for i, b := range pkts {
		p := view(t, b)
		if want := start.Add(seq.Size(len(out))); p.TCP.Seq() != want {
			t.Fatalf("delivery %d at seq %#x, want %#x", i, p.TCP.Seq(), want)
		}
		out = append(out, p.Payload()...)
	}
	return out
}

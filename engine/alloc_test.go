package engine

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/tcpcryptd/tcpcrypt/packet"
	"github.com/tcpcryptd/tcpcrypt/packet/seq"
)

// setAck patches a segment's acknowledgment number in place (the engine
// does not check checksums of what it is given).
func setAck(pkt []byte, v seq.Value) {
	var p packet.Packet
	if packet.Parse(pkt, &p) == nil {
		p.TCP.SetAck(v)
	}
}

// steady is an established flow between the two engines of a script in
// bulk transfer, client to server, as the daemon runs it: A encrypts each
// kernel segment, B verifies and delivers it, the server's stack
// acknowledges, and B's translated ACK reaches A. Every packet the engines
// return is recycled to the engine that made it once the other side
// processed it.
type steady struct {
	s    *script
	size int
	i    int
	pkt  []byte // the client stack's data segment (seq patched)
	sack []byte // the server stack's ACK (ack patched)
	// got is the plaintext B delivered in the last round.
	got []byte
}

func newSteady(t *testing.T, s *script, size int) *steady {
	return &steady{
		s: s, size: size,
		pkt:  s.cliSeg(cISN.Add(1), sISN.Add(1), packet.FlagACK|packet.FlagPSH, ackOpts, pattern(size, 0)),
		sack: s.srvSeg(sISN.Add(1), cISN.Add(1), packet.FlagACK, ackOpts, nil),
		got:  make([]byte, 0, size),
	}
}

// round sends one segment through and returns false on an unexpected
// verdict.
func (st *steady) round() bool {
	s := st.s
	setSeq(st.pkt, cISN.Add(1+seq.Size(st.i*st.size)))
	st.i++
	st.got = st.got[:0]
	r := s.a.Process(st.pkt, Outbound)
	if r.Verdict != Replace {
		return false
	}
	wire := r.Packet
	var more [4][]byte
	extra := append(more[:0], r.ToPeer...)
	if !st.decrypt(wire) {
		return false
	}
	s.a.Recycle(wire)
	for _, w := range extra {
		if !st.decrypt(w) {
			return false
		}
		s.a.Recycle(w)
	}
	setAck(st.sack, cISN.Add(1+seq.Size(st.i*st.size)))
	rb := s.b.Process(st.sack, Outbound)
	if rb.Verdict != Replace {
		return false
	}
	ra := s.a.Process(rb.Packet, Inbound)
	s.b.Recycle(rb.Packet)
	if ra.Verdict != Replace && ra.Verdict != Drop {
		return false
	}
	if ra.Verdict == Replace {
		s.a.Recycle(ra.Packet)
	}
	return true
}

// decrypt hands one wire segment to B and collects what it delivers.
func (st *steady) decrypt(w []byte) bool {
	r := st.s.b.Process(w, Inbound)
	if r.Verdict == Replace {
		var p packet.Packet
		if packet.Parse(r.Packet, &p) == nil {
			st.got = append(st.got, p.Payload()...)
		}
		st.s.b.Recycle(r.Packet)
	} else if r.Verdict != Drop {
		return false
	}
	for _, l := range r.ToLocal {
		st.s.b.Recycle(l)
	}
	return true
}

// TestSteadyStateNoAllocs: once a flow is established and warmed up, a
// kernel segment of one MSS or a 64 KiB GSO super-packet is encrypted,
// verified and delivered, and acknowledged both ways without a single heap
// allocation, for each AEAD (issue 9), when the caller recycles packets.
// The delivered plaintext is checked too.
func TestSteadyStateNoAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: -short")
	}
	for _, a := range benchAEADs {
		for _, size := range []int{1434, 65000} {
			t.Run(fmt.Sprintf("%s/%d", a.name, size), func(t *testing.T) {
				s := benchScript(t, a.id)
				st := newSteady(t, s, size)
				want := pattern(size, 0)
				for range 64 { // warm-up: pools, record arrays, free lists
					if !st.round() {
						t.Fatal("unexpected verdict in warm-up")
					}
				}
				drops := s.a.Counters().Drops
				ok := true
				allocs := testing.AllocsPerRun(200, func() {
					ok = st.round() && bytes.Equal(st.got, want) && ok
				})
				if !ok {
					t.Fatalf("a round failed or delivered the wrong plaintext (last: %d bytes)", len(st.got))
				}
				if allocs != 0 {
					t.Errorf("%v allocations per segment, want 0", allocs)
				}
				if got := s.a.Counters().Drops; got != drops {
					t.Errorf("A dropped segments: %v, before %v", got, drops)
				}
			})
		}
	}
}

package enginetest

import (
	"bytes"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// FuzzResegment feeds arbitrary packets to the resegmenter's parser, Split,
// Coalesce and the checksum helpers: nothing may panic, and whatever Split
// accepts must come back as valid pieces that Coalesce can join again.
func FuzzResegment(f *testing.F) {
	f.Add(buildTCP(f, false, 1, 100, 1, header.TCPFlagAck|header.TCPFlagPsh, nil, []byte("hello, world")), uint16(3), uint16(7))
	f.Add(buildTCP(f, true, 1, 0xfffffffe, 1, header.TCPFlagAck|header.TCPFlagFin, tsOption(), []byte("wrapping")), uint16(1), uint16(2))
	f.Add(buildTCP(f, false, 1, 1, 1, header.TCPFlagSyn, nil, nil), uint16(0), uint16(0))
	f.Add([]byte{0x45}, uint16(1), uint16(1))
	f.Fuzz(func(t *testing.T, pkt []byte, c1, c2 uint16) {
		orig := bytes.Clone(pkt)
		_ = ChecksumsValid(pkt)
		if j, ok := Coalesce(pkt, pkt, 0); ok {
			t.Fatalf("a segment coalesced with itself: %x", j)
		}
		cuts := []int{int(c1), int(c1) + int(c2)}
		pieces, ok := Split(pkt, cuts)
		if !bytes.Equal(pkt, orig) {
			t.Fatal("Split modified its input")
		}
		if ok {
			s, _ := parseSeg(pkt)
			var joined []byte
			for i, pc := range pieces {
				if !ChecksumsValid(pc) {
					t.Fatalf("piece %d: bad checksum", i)
				}
				pl, _ := TCPPayload(pc)
				joined = append(joined, pl...)
			}
			if !bytes.Equal(joined, s.payload()) {
				t.Fatal("pieces do not add up to the payload")
			}
			j, ok := Coalesce(pieces[0], pieces[1], 0)
			if !ok {
				t.Fatal("first two pieces of a split do not coalesce")
			}
			if !ChecksumsValid(j) {
				t.Fatal("coalesced packet: bad checksum")
			}
		}
		if FixChecksums(pkt) && !ChecksumsValid(pkt) {
			t.Fatal("FixChecksums accepted a packet it did not fix")
		}
	})
}

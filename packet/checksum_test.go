package packet

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// gvAddr converts an address for gVisor, the independent oracle.
func gvAddr(a netip.Addr) tcpip.Address { return tcpip.AddrFromSlice(a.AsSlice()) }

// naiveSum is the textbook RFC 1071 loop, a second oracle for Sum.
func naiveSum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

func TestChecksumAgainstGVisor(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	buf := make([]byte, 9002)
	for n := 0; n <= 9001; n++ {
		// Mostly random bytes, sometimes all 0xff (maximal carries) or zeros.
		b := buf[:n]
		switch n % 7 {
		case 0:
			for i := range b {
				b[i] = 0xff
			}
		case 1:
			clear(b)
		default:
			for i := range b {
				b[i] = byte(r.Uint32())
			}
		}
		// Also start at an odd address to exercise unaligned loads.
		for _, off := range []int{0, 1} {
			if off > n {
				continue
			}
			d := b[off:]
			init := r.Uint32() & 0xffff
			want := checksum.Checksum(d, uint16(init))
			if got := fold(Sum(d, init)); got != want {
				t.Fatalf("len %d off %d: fold(Sum) = %#04x, gVisor %#04x", n, off, got, want)
			}
			if got := Checksum(d, init); got != ^want {
				t.Fatalf("len %d off %d: Checksum = %#04x, gVisor ^%#04x", n, off, got, want)
			}
			if got, nv := fold(Sum(d, 0)), naiveSum(d); got != nv && !(got == 0xffff && nv == 0) && !(got == 0 && nv == 0xffff) {
				t.Fatalf("len %d: Sum %#04x, naive %#04x", n, got, nv)
			}
		}
	}
}

func TestSumLargeInitial(t *testing.T) {
	// A huge initial partial sum plus a 64 KiB buffer of 0xff must not lose
	// carries.
	b := make([]byte, 65535)
	for i := range b {
		b[i] = 0xff
	}
	for _, init := range []uint32{0, 1, 0xffff, 0xfffffffe, 0xffffffff} {
		want := checksum.Checksum(b, 0)
		want = checksum.Combine(want, fold(init))
		if got := fold(Sum(b, init)); got != want {
			t.Errorf("init %#x: %#04x, want %#04x", init, got, want)
		}
	}
}

func TestSumChaining(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	b := make([]byte, 3001)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	whole := Checksum(b, 0)
	for cut := 0; cut <= len(b); cut += 2 {
		if got := Checksum(b[cut:], Sum(b[:cut], 0)); got != whole {
			t.Fatalf("cut at %d: %#04x, want %#04x", cut, got, whole)
		}
	}
}

func TestPseudoHeaderSumAgainstGVisor(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for range 2000 {
		var a4, b4 [4]byte
		var a6, b6 [16]byte
		for i := range a4 {
			a4[i], b4[i] = byte(r.Uint32()), byte(r.Uint32())
		}
		for i := range a6 {
			a6[i], b6[i] = byte(r.Uint32()), byte(r.Uint32())
		}
		length := int(r.Uint32N(0x10000))
		for _, pair := range [][2]netip.Addr{
			{netip.AddrFrom4(a4), netip.AddrFrom4(b4)},
			{netip.AddrFrom16(a6), netip.AddrFrom16(b6)},
		} {
			want := header.PseudoHeaderChecksum(header.TCPProtocolNumber, gvAddr(pair[0]), gvAddr(pair[1]), uint16(length))
			if got := fold(PseudoHeaderSum(pair[0], pair[1], ProtoTCP, length)); got != want && !(got == 0xffff && want == 0) {
				t.Fatalf("%v %v len %d: %#04x, gVisor %#04x", pair[0], pair[1], length, got, want)
			}
		}
	}
	// IPv6 lengths above 65535 use the 32-bit length field (RFC 8200 §8.1).
	a, b := netip.MustParseAddr("::"), netip.MustParseAddr("::")
	if got := fold(PseudoHeaderSum(a, b, 6, 0x10001)); got != 6+1+1 {
		t.Errorf("32-bit length: %#04x, want 8", got)
	}
}

// randomSegment returns a random TCP segment for src/dst checked by gVisor.
func randomSegment(r *rand.Rand, n int) []byte {
	seg := make([]byte, TCPHeaderLen+n)
	for i := range seg {
		seg[i] = byte(r.Uint32())
	}
	seg[tcpDataOff] = 5 << 4
	return seg
}

func TestTCPChecksumAgainstGVisor(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	pairs := [][2]netip.Addr{
		{netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("192.0.2.77")},
		{netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("fe80::abcd:1234")},
	}
	for n := 0; n <= 9001; n += 1 + n/50 {
		for _, pair := range pairs {
			f := Fields{
				Src: netip.AddrPortFrom(pair[0], uint16(r.Uint32())), Dst: netip.AddrPortFrom(pair[1], uint16(r.Uint32())),
				Seq: 0, Payload: randomSegment(r, n)[TCPHeaderLen:],
				Flags: FlagACK,
			}
			pkt, err := Build(nil, &f)
			if err != nil {
				t.Fatal(err)
			}
			var p Packet
			if err := Parse(pkt, &p); err != nil {
				t.Fatal(err)
			}
			tc := header.TCP(p.TCP)
			xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, gvAddr(p.Src), gvAddr(p.Dst), uint16(len(p.TCP)))
			xsum = checksum.Checksum(p.Payload(), xsum)
			if !tc.IsChecksumValid(gvAddr(p.Src), gvAddr(p.Dst), checksum.Checksum(p.Payload(), 0), uint16(len(p.Payload()))) {
				t.Fatalf("len %d %v: gVisor rejects our checksum %#04x", n, pair[0], p.TCP.Checksum())
			}
			old := p.TCP.Checksum()
			p.TCP.SetChecksum(0)
			want := ^tc.CalculateChecksum(xsum)
			if got := p.ComputeTCPChecksum(); got != want || got != old {
				t.Fatalf("len %d: ComputeTCPChecksum %#04x, Build %#04x, gVisor %#04x", n, got, old, want)
			}
		}
	}
}

func TestIncrementalAgainstGVisor(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	src, dst := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	for i := range 5000 {
		n := int(r.Uint32N(200))
		seg := randomSegment(r, n)
		var p Packet
		pkt, err := Build(nil, &Fields{
			Src: netip.AddrPortFrom(src, uint16(r.Uint32())), Dst: netip.AddrPortFrom(dst, uint16(r.Uint32())),
			Seq: 0, Payload: seg[TCPHeaderLen:],
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := Parse(pkt, &p); err != nil {
			t.Fatal(err)
		}
		tc := p.TCP

		// 16-bit update: the source port, compared with gVisor's own
		// incremental update of the same field.
		newPort := uint16(r.Uint32())
		if i%10 == 0 {
			newPort = tc.SrcPort() // unchanged value
		}
		gv := header.TCP(append([]byte(nil), tc...))
		gv.SetSourcePortWithChecksumUpdate(newPort)
		got := UpdateChecksum16(tc.Checksum(), tc.SrcPort(), newPort)
		if got != gv.Checksum() {
			t.Fatalf("UpdateChecksum16: %#04x, gVisor %#04x", got, gv.Checksum())
		}
		tc.SetSrcPort(newPort)
		tc.SetChecksum(got)
		if !p.VerifyTCPChecksum() {
			t.Fatalf("after UpdateChecksum16 the segment does not verify")
		}

		// 32-bit update: the sequence number, checked by verifying the
		// whole segment afterwards.
		oldSeq := uint32(tc.Seq())
		newSeq := r.Uint32()
		got = UpdateChecksum32(tc.Checksum(), oldSeq, newSeq)
		tc.SetSeq(seqv(newSeq))
		tc.SetChecksum(got)
		if !p.VerifyTCPChecksum() {
			t.Fatalf("UpdateChecksum32(%#x->%#x) = %#04x does not verify (full %#04x)", oldSeq, newSeq, got, p.ComputeTCPChecksum())
		}
		// The IPv4 source address, updated with gVisor's incremental code
		// in the pseudo-header, must match our 32-bit update.
		newSrc := r.Uint32()
		gv = header.TCP(append([]byte(nil), tc...))
		var na [4]byte
		binary.BigEndian.PutUint32(na[:], newSrc)
		gv.UpdateChecksumPseudoHeaderAddress(gvAddr(src), tcpip.AddrFrom4(na), true)
		if got := UpdateChecksum32(tc.Checksum(), binary.BigEndian.Uint32(src.AsSlice()), newSrc); got != gv.Checksum() {
			t.Fatalf("address update: %#04x, gVisor %#04x", got, gv.Checksum())
		}
	}
}

func TestUpdateChecksumRFC1624Example(t *testing.T) {
	// RFC 1624 §4: a header summing to 0xcd7a with one word changing
	// from 0x5555 to 0x3285 gives checksum 0x0000 by eqn. 3, not 0xffff.
	if got := UpdateChecksum16(0xdd2f, 0x5555, 0x3285); got != 0x0000 {
		t.Errorf("UpdateChecksum16 = %#04x, want 0x0000", got)
	}
}

func TestIPv4HeaderChecksumAgainstGVisor(t *testing.T) {
	var p Packet
	if err := Parse(unhex(t, ipv4SYN), &p); err != nil {
		t.Fatal(err)
	}
	ip := header.IPv4(p.Buf)
	if !ip.IsChecksumValid() {
		t.Fatal("gVisor rejects the fixture's IPv4 checksum")
	}
	p.Buf[8] = 3 // TTL
	p.FixIPChecksum()
	if !ip.IsChecksumValid() || !p.VerifyIPChecksum() {
		t.Errorf("after FixIPChecksum: gVisor %v, ours %v", ip.IsChecksumValid(), p.VerifyIPChecksum())
	}
}

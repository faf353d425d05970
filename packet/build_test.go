package packet

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// gvTCPValid checks a TCP segment's checksum with gVisor.
func gvTCPValid(p *Packet) bool {
	tc := header.TCP(p.TCP)
	payload := p.Payload()
	return tc.IsChecksumValid(gvAddr(p.Src), gvAddr(p.Dst), checksum.Checksum(payload, 0), uint16(len(payload)))
}

func TestBuildCheckedByGVisor(t *testing.T) {
	var ob OptionBuilder
	_ = ob.Add(OptMSS, []byte{0x05, 0x8c})
	_ = ob.Add(OptENO, []byte{0x20, 0x21})
	opts := ob.Bytes()
	tests := []struct {
		name string
		f    Fields
	}{
		{"ipv4 SYN", Fields{
			Src: netip.MustParseAddrPort("10.0.0.1:40000"), Dst: netip.MustParseAddrPort("10.0.0.2:443"),
			Seq: 0xfffffff0, Flags: FlagSYN | FlagECE | FlagCWR, Window: 65535, Options: opts, TOS: 0x10,
		}},
		{"ipv4 data", Fields{
			Src: netip.MustParseAddrPort("10.0.0.1:40000"), Dst: netip.MustParseAddrPort("10.0.0.2:443"),
			Seq: 1, Ack: 2, Flags: FlagACK | FlagPSH, Window: 100, Payload: []byte("odd payload"), TTL: 3, Urgent: 9,
		}},
		{"ipv6 RST", Fields{
			Src: netip.MustParseAddrPort("[2001:db8::1]:1"), Dst: netip.MustParseAddrPort("[2001:db8::2]:2"),
			Seq: 77, Flags: FlagRST, TOS: 0xb8,
		}},
		{"ipv6 data", Fields{
			Src: netip.MustParseAddrPort("[::ffff:10.0.0.1]:1"), Dst: netip.MustParseAddrPort("[2001:db8::2]:2"),
			Seq: 77, Ack: 99, Flags: FlagACK, Options: opts, Payload: bytes.Repeat([]byte{0xab}, 1001),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("keep")
			out, err := Build(prefix, &tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if string(out[:4]) != "keep" {
				t.Fatalf("Build clobbered dst: %q", out[:4])
			}
			pkt := out[4:]
			var p Packet
			if err := Parse(pkt, &p); err != nil {
				t.Fatalf("Parse(Build()) = %v", err)
			}
			ttl := tt.f.TTL
			if ttl == 0 {
				ttl = DefaultTTL
			}
			if p.Version == 4 {
				ip := header.IPv4(pkt)
				if !ip.IsValid(len(pkt)) || !ip.IsChecksumValid() {
					t.Error("gVisor rejects the IPv4 header")
				}
				tos, _ := ip.TOS()
				if ip.TTL() != ttl || tos != tt.f.TOS || ip.Flags() != header.IPv4FlagDontFragment || ip.TransportProtocol() != header.TCPProtocolNumber {
					t.Errorf("IPv4 fields: ttl %d tos %#x flags %#x", ip.TTL(), tos, ip.Flags())
				}
			} else {
				ip := header.IPv6(pkt)
				if !ip.IsValid(len(pkt)) {
					t.Error("gVisor rejects the IPv6 header")
				}
				tc, fl := ip.TOS()
				if ip.HopLimit() != ttl || tc != tt.f.TOS || fl != 0 || ip.NextHeader() != uint8(header.TCPProtocolNumber) {
					t.Errorf("IPv6 fields: hop %d tc %#x flow %#x", ip.HopLimit(), tc, fl)
				}
			}
			if !gvTCPValid(&p) || !p.VerifyTCPChecksum() {
				t.Error("TCP checksum invalid")
			}
			gt := header.TCP(p.TCP)
			got := Fields{
				Src: netip.AddrPortFrom(p.Src, gt.SourcePort()), Dst: netip.AddrPortFrom(p.Dst, gt.DestinationPort()),
				Seq: seqv(gt.SequenceNumber()), Ack: seqv(gt.AckNumber()), Flags: uint8(gt.Flags()),
				Window: gt.WindowSize(), Urgent: gt.UrgentPointer(), Options: gt.Options(), Payload: p.Payload(),
				TTL: tt.f.TTL, TOS: tt.f.TOS,
			}
			if diff := cmp.Diff(tt.f, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b }), cmp.Comparer(func(a, b []byte) bool { return bytes.Equal(a, b) })); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBuildErrors(t *testing.T) {
	v4 := netip.MustParseAddrPort("10.0.0.1:1")
	v6 := netip.MustParseAddrPort("[2001:db8::1]:1")
	tests := []struct {
		name string
		f    Fields
		want error
	}{
		{"mixed family", Fields{Src: v4, Dst: v6}, ErrBadHeader},
		{"zero addresses", Fields{}, ErrBadHeader},
		{"unpadded options", Fields{Src: v4, Dst: v4, Options: []byte{1, 1, 1}}, ErrBadHeader},
		{"options too long", Fields{Src: v4, Dst: v4, Options: make([]byte, 44)}, ErrOptionsTooLong},
		{"ipv4 too large", Fields{Src: v4, Dst: v4, Payload: make([]byte, 65535-40+1)}, ErrTooLarge},
		{"ipv6 too large", Fields{Src: v6, Dst: v6, Payload: make([]byte, 65535-20+1)}, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Build([]byte("x"), &tt.f)
			if !errors.Is(err, tt.want) {
				t.Errorf("Build = %v, want %v", err, tt.want)
			}
			if string(out) != "x" {
				t.Errorf("dst changed on error: %q", out)
			}
		})
	}
	// The largest packets that do fit.
	for _, f := range []Fields{
		{Src: v4, Dst: v4, Payload: make([]byte, 65535-40)},
		{Src: v6, Dst: v6, Payload: make([]byte, 65535-20)},
	} {
		out, err := Build(nil, &f)
		if err != nil {
			t.Fatal(err)
		}
		var p Packet
		if err := Parse(out, &p); err != nil || !p.VerifyTCPChecksum() {
			t.Errorf("max-size packet: %v", err)
		}
	}
}

// TestParseGVisorEncoded parses packets built by gVisor's encoders.
func TestParseGVisorEncoded(t *testing.T) {
	payload := []byte("payload!!")
	tcpOpts := []byte{2, 4, 0x05, 0xb4, 1, 3, 3, 7}
	encodeTCP := func(b []byte, src, dst tcpip.Address) {
		tc := header.TCP(b)
		tc.Encode(&header.TCPFields{
			SrcPort: 1234, DstPort: 80, SeqNum: 0xfffffffe, AckNum: 0x10,
			DataOffset: uint8(header.TCPMinimumSize + len(tcpOpts)),
			Flags:      header.TCPFlagAck | header.TCPFlagPsh | header.TCPFlagEce, WindowSize: 4096, UrgentPointer: 3,
		})
		copy(tc[header.TCPMinimumSize:], tcpOpts)
		copy(tc[header.TCPMinimumSize+len(tcpOpts):], payload)
		xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, src, dst, uint16(len(tc)))
		xsum = checksum.Checksum(payload, xsum)
		tc.SetChecksum(^tc.CalculateChecksum(xsum))
	}
	tcpLen := header.TCPMinimumSize + len(tcpOpts) + len(payload)

	t.Run("ipv4 with IP options", func(t *testing.T) {
		src, dst := tcpip.AddrFrom4([4]byte{192, 0, 2, 1}), tcpip.AddrFrom4([4]byte{198, 51, 100, 2})
		ipOpts := header.IPv4OptionsSerializer{&header.IPv4SerializableRouterAlertOption{}}
		ipLen := header.IPv4MinimumSize + int(ipOpts.Length())
		b := make([]byte, ipLen+tcpLen+3) // 3 bytes of trailing padding
		ip := header.IPv4(b)
		ip.Encode(&header.IPv4Fields{
			TOS: 0x28, TotalLength: uint16(ipLen + tcpLen), ID: 0xbeef, TTL: 9,
			Protocol: uint8(header.TCPProtocolNumber), SrcAddr: src, DstAddr: dst, Options: ipOpts,
		})
		ip.SetChecksum(^ip.CalculateChecksum())
		encodeTCP(b[ipLen:ipLen+tcpLen], src, dst)

		var p Packet
		if err := Parse(b, &p); err != nil {
			t.Fatal(err)
		}
		checkGVisorParsed(t, &p, ipLen, ipLen+tcpLen, tcpOpts, payload)
		if p.Src != netip.MustParseAddr("192.0.2.1") || p.Dst != netip.MustParseAddr("198.51.100.2") || p.TTL() != 9 {
			t.Errorf("addresses %v %v ttl %d", p.Src, p.Dst, p.TTL())
		}
		if !p.VerifyIPChecksum() {
			t.Error("IP checksum rejected")
		}

		// A gVisor-encoded fragment is refused.
		ip.SetFlagsFragmentOffset(header.IPv4FlagMoreFragments, 0)
		if err := Parse(b, &p); !errors.Is(err, ErrFragment) {
			t.Errorf("fragment: %v", err)
		}
		ip.SetFlagsFragmentOffset(0, 8)
		if err := Parse(b, &p); !errors.Is(err, ErrFragment) {
			t.Errorf("fragment offset: %v", err)
		}
	})

	t.Run("ipv6", func(t *testing.T) {
		src := tcpip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1})
		dst := tcpip.AddrFrom16([16]byte{0xfe, 0x80, 15: 2})
		b := make([]byte, header.IPv6MinimumSize+tcpLen)
		ip := header.IPv6(b)
		ip.Encode(&header.IPv6Fields{
			TrafficClass: 0x02, FlowLabel: 0x12345, PayloadLength: uint16(tcpLen),
			TransportProtocol: header.TCPProtocolNumber, HopLimit: 255, SrcAddr: src, DstAddr: dst,
		})
		encodeTCP(b[header.IPv6MinimumSize:], src, dst)
		var p Packet
		if err := Parse(b, &p); err != nil {
			t.Fatal(err)
		}
		checkGVisorParsed(t, &p, 40, len(b), tcpOpts, payload)
		if p.Src != netip.MustParseAddr("2001:db8::1") || p.Dst != netip.MustParseAddr("fe80::2") || p.TTL() != 255 {
			t.Errorf("addresses %v %v", p.Src, p.Dst)
		}
	})

	t.Run("ipv6 with extension header", func(t *testing.T) {
		src := tcpip.AddrFrom16([16]byte{0x20, 0x01, 15: 1})
		ext := header.IPv6ExtHdrSerializer{&header.IPv6SerializableHopByHopExtHdr{}}
		extLen := ext.Length()
		b := make([]byte, header.IPv6MinimumSize+extLen+tcpLen)
		header.IPv6(b).Encode(&header.IPv6Fields{
			PayloadLength: uint16(extLen + tcpLen), TransportProtocol: header.TCPProtocolNumber,
			HopLimit: 1, SrcAddr: src, DstAddr: src, ExtensionHeaders: ext,
		})
		encodeTCP(b[header.IPv6MinimumSize+extLen:], src, src)
		var p Packet
		if err := Parse(b, &p); !errors.Is(err, ErrIPv6ExtHeader) {
			t.Errorf("Parse = %v, want ErrIPv6ExtHeader", err)
		}
	})
}

func checkGVisorParsed(t *testing.T, p *Packet, ipLen, total int, opts, payload []byte) {
	t.Helper()
	want := summary{
		Version: p.Version, IPHdrLen: ipLen, Len: total,
		Src: netip.AddrPortFrom(p.Src, 1234).String(), Dst: netip.AddrPortFrom(p.Dst, 80).String(),
		Seq: 0xfffffffe, Ack: 0x10, DataOffset: 20 + len(opts), Flags: FlagACK | FlagPSH | FlagECE,
		Window: 4096, Urgent: 3, Checksum: p.TCP.Checksum(), Options: string(opts), Payload: string(payload),
	}
	if diff := cmp.Diff(want, summarize(p)); diff != "" {
		t.Errorf("parsed (-want +got):\n%s", diff)
	}
	if !p.VerifyTCPChecksum() {
		t.Error("our verification rejects gVisor's TCP checksum")
	}
	if got := p.ComputeTCPChecksum(); got != p.TCP.Checksum() {
		t.Errorf("ComputeTCPChecksum = %#04x, gVisor wrote %#04x", got, p.TCP.Checksum())
	}
}

func TestRebuildKeepsFields(t *testing.T) {
	// IPv4 with an IP option, ID, TOS, reserved TCP bits set, ECN flags.
	orig := unhex(t, `
		46 b8 0000 abcd 4000 11 06 0000 0a000001 0a000002
		94040000                 // Router Alert IP option
		0400 0050 fffffff0 00000010
		5f                       // data offset 5, reserved/AE bits 1111
		d8 0100 0000 0007        // CWR|ECE|ACK|PSH, window, checksum, urgent
		6f6c64                   // "old"
	`)
	orig[3] = byte(len(orig))
	var p Packet
	if err := Parse(orig, &p); err != nil {
		t.Fatal(err)
	}
	p.FixIPChecksum()
	p.FixTCPChecksum()

	var ob OptionBuilder
	_ = ob.Add(OptENO, []byte{0x20})
	newOpts := ob.Bytes()
	out, err := Rebuild(nil, &p, newOpts, []byte("new payload"))
	if err != nil {
		t.Fatal(err)
	}
	var q Packet
	if err := Parse(out, &q); err != nil {
		t.Fatal(err)
	}
	if !q.VerifyIPChecksum() || !q.VerifyTCPChecksum() || !gvTCPValid(&q) || !header.IPv4(out).IsChecksumValid() {
		t.Error("checksums wrong after Rebuild")
	}
	if string(q.IPHeader()[:2]) != string(p.IPHeader()[:2]) || string(q.IPHeader()[4:10]) != string(p.IPHeader()[4:10]) ||
		string(q.IPHeader()[12:]) != string(p.IPHeader()[12:]) {
		t.Errorf("IP header changed:\n old %x\n new %x", p.IPHeader(), q.IPHeader())
	}
	if int(out[2])<<8|int(out[3]) != len(out) {
		t.Error("total length not updated")
	}
	if q.TCP[12]&0x0f != 0x0f || q.TCP.DataOffset() != 24 {
		t.Errorf("data offset byte %#x", q.TCP[12])
	}
	if string(q.TCP.Options()) != string(newOpts) || string(q.Payload()) != "new payload" {
		t.Errorf("options %x payload %q", q.TCP.Options(), q.Payload())
	}
	if string(q.TCP[:12]) != string(p.TCP[:12]) || string(q.TCP[13:16]) != string(p.TCP[13:16]) || string(q.TCP[18:20]) != string(p.TCP[18:20]) {
		t.Errorf("TCP header changed:\n old %x\n new %x", p.TCP[:20], q.TCP[:20])
	}

	// IPv6: flow label and traffic class kept, payload length updated.
	var p6 Packet
	if err := Parse(unhex(t, ipv6Data), &p6); err != nil {
		t.Fatal(err)
	}
	out, err = Rebuild([]byte{9}, &p6, nil, p6.Payload()[:2])
	if err != nil {
		t.Fatal(err)
	}
	var q6 Packet
	if err := Parse(out[1:], &q6); err != nil {
		t.Fatal(err)
	}
	if string(q6.Buf[:4]) != string(p6.Buf[:4]) || string(q6.Buf[6:40]) != string(p6.Buf[6:40]) || len(q6.Buf) != 40+20+2 {
		t.Errorf("IPv6 header:\n old %x\n new %x", p6.Buf[:40], q6.Buf[:40])
	}
	if !q6.VerifyTCPChecksum() || !gvTCPValid(&q6) || string(q6.Payload()) != "he" || len(q6.TCP.Options()) != 0 {
		t.Errorf("rebuilt IPv6 segment wrong: %x", q6.TCP)
	}

	// Errors.
	if _, err := Rebuild(nil, &p, []byte{1, 1}, nil); !errors.Is(err, ErrBadHeader) {
		t.Errorf("unpadded: %v", err)
	}
	if _, err := Rebuild(nil, &p, make([]byte, 44), nil); !errors.Is(err, ErrOptionsTooLong) {
		t.Errorf("too long: %v", err)
	}
	if _, err := Rebuild(nil, &p, nil, make([]byte, 65535)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("too large: %v", err)
	}
	if _, err := Rebuild(nil, &Packet{}, nil, nil); !errors.Is(err, ErrBadHeader) {
		t.Errorf("zero packet: %v", err)
	}
}

func BenchmarkRebuild(b *testing.B) {
	var p Packet
	if err := Parse(unhex(b, ipv4SYN), &p); err != nil {
		b.Fatal(err)
	}
	var ob OptionBuilder
	dst := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		ob.Reset()
		it := NewOptionIter(p.TCP.Options())
		for _, _, ok := it.Next(); ok; _, _, ok = it.Next() {
			_ = ob.AddRaw(it.Raw())
		}
		_ = ob.Add(OptENO, []byte{0x20})
		var err error
		if dst, err = Rebuild(dst[:0], &p, ob.Bytes(), p.Payload()); err != nil {
			b.Fatal(err)
		}
	}
}

package packet

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tcpcryptd/tcpcrypt/packet/seq"
)

// summary holds what a parsed packet says, for comparisons.
type summary struct {
	Version, IPHdrLen, Len int
	Src, Dst               string
	Seq, Ack               seq.Value
	DataOffset             int
	Flags                  uint8
	Window, Urgent         uint16
	Checksum               uint16
	Options, Payload       string
}

func summarize(p *Packet) summary {
	return summary{
		Version: p.Version, IPHdrLen: p.IPHdrLen, Len: len(p.Buf),
		Src: p.SrcAddrPort().String(), Dst: p.DstAddrPort().String(),
		Seq: p.TCP.Seq(), Ack: p.TCP.Ack(), DataOffset: p.TCP.DataOffset(),
		Flags: p.TCP.Flags(), Window: p.TCP.Window(), Urgent: p.TCP.Urgent(),
		Checksum: p.TCP.Checksum(),
		Options:  string(p.TCP.Options()), Payload: string(p.Payload()),
	}
}

func TestParseFixtures(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		want summary
	}{
		{"ipv4 SYN", ipv4SYN, summary{
			Version: 4, IPHdrLen: 20, Len: 60,
			Src: "192.168.0.2:54321", Dst: "192.168.0.1:80",
			Seq: 0xa1b2c3d4, Ack: 0, DataOffset: 40, Flags: FlagSYN, Window: 64240, Checksum: 0x666c,
			Options: "\x02\x04\x05\xb4\x04\x02\x08\x0a\x00\x0a\x2b\x3c\x00\x00\x00\x00\x01\x03\x03\x07",
			Payload: "",
		}},
		{"ipv6 data", ipv6Data, summary{
			Version: 6, IPHdrLen: 40, Len: 77,
			Src: "[2001:db8::1]:443", Dst: "[2001:db8::2]:50000",
			Seq: 0x1000, Ack: 0xa1b2c3d5, DataOffset: 32, Flags: FlagPSH | FlagACK, Window: 501, Checksum: 0x8d58,
			Options: "\x01\x01\x08\x0a\x00\x01\xe2\x40\x00\x0a\x2b\x3c",
			Payload: "hello",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := unhex(t, tt.hex)
			var p Packet
			if err := Parse(b, &p); err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, summarize(&p)); diff != "" {
				t.Errorf("parsed packet (-want +got):\n%s", diff)
			}
			if !p.VerifyTCPChecksum() {
				t.Errorf("VerifyTCPChecksum = false, computed %#04x", p.ComputeTCPChecksum())
			}
			if got := p.ComputeTCPChecksum(); got != tt.want.Checksum {
				t.Errorf("ComputeTCPChecksum = %#04x, want %#04x", got, tt.want.Checksum)
			}
			if !p.VerifyIPChecksum() {
				t.Error("VerifyIPChecksum = false")
			}
			if p.TTL() != 64 {
				t.Errorf("TTL = %d, want 64", p.TTL())
			}
		})
	}
}

func TestFixtureOptions(t *testing.T) {
	var p Packet
	if err := Parse(unhex(t, ipv4SYN), &p); err != nil {
		t.Fatal(err)
	}
	opts := p.TCP.Options()
	if mss, ok := MSS(opts); !ok || mss != 1460 {
		t.Errorf("MSS = %d, %v; want 1460", mss, ok)
	}
	if ws, ok := WindowScale(opts); !ok || ws != 7 {
		t.Errorf("WindowScale = %d, %v; want 7", ws, ok)
	}
	if val, ecr, ok := Timestamps(opts); !ok || val != 0x000a2b3c || ecr != 0 {
		t.Errorf("Timestamps = %#x, %#x, %v", val, ecr, ok)
	}
	if _, ok := FindOption(opts, OptSACKPermitted); !ok {
		t.Error("SACK permitted not found")
	}
	var kinds []uint8
	it := NewOptionIter(opts)
	for k, _, ok := it.Next(); ok; k, _, ok = it.Next() {
		kinds = append(kinds, k)
	}
	if it.Err() != nil {
		t.Errorf("Err = %v", it.Err())
	}
	if diff := cmp.Diff([]uint8{OptMSS, OptSACKPermitted, OptTimestamps, OptWindowScale}, kinds); diff != "" {
		t.Errorf("option kinds (-want +got):\n%s", diff)
	}
}

func TestParseTrimsTrailingBytes(t *testing.T) {
	for _, fx := range []string{ipv4SYN, ipv6Data} {
		b := unhex(t, fx)
		n := len(b)
		b = append(b, 0xde, 0xad, 0xbe, 0xef, 0, 0) // link-layer padding
		var p Packet
		if err := Parse(b, &p); err != nil {
			t.Fatal(err)
		}
		if len(p.Buf) != n {
			t.Errorf("len(Buf) = %d, want %d", len(p.Buf), n)
		}
		if !p.VerifyTCPChecksum() {
			t.Error("checksum covers trailing bytes")
		}
	}
}

// mutate returns a copy of b changed by f.
func mutate(b []byte, f func([]byte) []byte) []byte {
	c := append([]byte(nil), b...)
	return f(c)
}

func TestParseErrors(t *testing.T) {
	v4 := unhex(t, ipv4SYN)
	v6 := unhex(t, ipv6Data)
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"version 5", mutate(v4, func(b []byte) []byte { b[0] = 0x55; return b }), ErrBadHeader},
		{"version 0", []byte{0x00}, ErrBadHeader},
		{"ipv4 19 bytes", v4[:19], ErrTruncated},
		{"ipv4 IHL 4", mutate(v4, func(b []byte) []byte { b[0] = 0x44; return b }), ErrBadHeader},
		{"ipv4 IHL 0", mutate(v4, func(b []byte) []byte { b[0] = 0x40; return b }), ErrBadHeader},
		{"ipv4 IHL beyond total length", mutate(v4, func(b []byte) []byte { b[0] = 0x4f; b[3] = 40; return b }), ErrBadHeader},
		{"ipv4 IHL 15 eats TCP header", mutate(v4, func(b []byte) []byte { b[0] = 0x4f; return b }), ErrTruncated},
		{"ipv4 total length beyond buffer", v4[:59], ErrTruncated},
		{"ipv4 total length 0", mutate(v4, func(b []byte) []byte { b[2], b[3] = 0, 0; return b }), ErrBadHeader},
		{"ipv4 UDP", mutate(v4, func(b []byte) []byte { b[9] = 17; return b }), ErrNotTCP},
		{"ipv4 MF", mutate(v4, func(b []byte) []byte { b[6] = 0x20; return b }), ErrFragment},
		{"ipv4 frag offset", mutate(v4, func(b []byte) []byte { b[6], b[7] = 0, 1; return b }), ErrFragment},
		{"ipv4 frag offset high bits", mutate(v4, func(b []byte) []byte { b[6] = 0x5f; return b }), ErrFragment},
		{"ipv4 TCP header cut", mutate(v4, func(b []byte) []byte { b[3] = 39; return b[:39] }), ErrTruncated},
		{"tcp data offset 4", mutate(v4, func(b []byte) []byte { b[32] = 0x40; return b }), ErrBadHeader},
		{"tcp data offset 0", mutate(v4, func(b []byte) []byte { b[32] = 0x00; return b }), ErrBadHeader},
		{"tcp data offset beyond segment", mutate(v4, func(b []byte) []byte { b[32] = 0xb0; return b }), ErrTruncated},
		{"ipv6 39 bytes", v6[:39], ErrTruncated},
		{"ipv6 payload length beyond buffer", v6[:76], ErrTruncated},
		{"ipv6 hop-by-hop", mutate(v6, func(b []byte) []byte { b[6] = 0; return b }), ErrIPv6ExtHeader},
		{"ipv6 routing", mutate(v6, func(b []byte) []byte { b[6] = 43; return b }), ErrIPv6ExtHeader},
		{"ipv6 fragment", mutate(v6, func(b []byte) []byte { b[6] = 44; return b }), ErrIPv6ExtHeader},
		{"ipv6 dest opts", mutate(v6, func(b []byte) []byte { b[6] = 60; return b }), ErrIPv6ExtHeader},
		{"ipv6 ESP", mutate(v6, func(b []byte) []byte { b[6] = 50; return b }), ErrIPv6ExtHeader},
		{"ipv6 UDP", mutate(v6, func(b []byte) []byte { b[6] = 17; return b }), ErrNotTCP},
		{"ipv6 ICMPv6", mutate(v6, func(b []byte) []byte { b[6] = 58; return b }), ErrNotTCP},
		{"ipv6 payload length 0", mutate(v6, func(b []byte) []byte { b[4], b[5] = 0, 0; return b }), ErrTruncated},
		{"ipv6 TCP header cut", mutate(v6, func(b []byte) []byte { b[4], b[5] = 0, 19; return b }), ErrTruncated},
		{"ipv6 data offset beyond", mutate(v6, func(b []byte) []byte { b[4], b[5] = 0, 31; return b }), ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Packet
			err := Parse(tt.b, &p)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestParseEveryPrefix checks that every strict prefix of a valid packet is
// refused with ErrTruncated (after the version nibble) and never panics.
func TestParseEveryPrefix(t *testing.T) {
	for _, fx := range []string{ipv4SYN, ipv6Data} {
		b := unhex(t, fx)
		for n := 0; n < len(b); n++ {
			var p Packet
			if err := Parse(b[:n], &p); !errors.Is(err, ErrTruncated) {
				t.Errorf("Parse(prefix %d of %d) = %v, want ErrTruncated", n, len(b), err)
			}
		}
	}
}

func TestParseIPv4Options(t *testing.T) {
	// IHL 6: a 4-byte IP option (Router Alert, RFC 2113) before TCP.
	b := unhex(t, `
		46 00 0030 0000 4000 40 06 0000 0a000001 0a000002
		94040000
		0400 0050 00000001 00000002 50 10 ffff 0000 0000
		6869 // "hi"
	`)
	b[3] = byte(len(b))
	var p Packet
	if err := Parse(b, &p); err != nil {
		t.Fatal(err)
	}
	p.FixIPChecksum()
	p.FixTCPChecksum()
	if p.IPHdrLen != 24 || string(p.Payload()) != "hi" || p.SrcPort() != 1024 || p.TCP.Ack() != 2 {
		t.Errorf("got IPHdrLen %d payload %q sport %d ack %d", p.IPHdrLen, p.Payload(), p.SrcPort(), p.TCP.Ack())
	}
	if !p.VerifyIPChecksum() || !p.VerifyTCPChecksum() {
		t.Error("checksums do not verify after Fix")
	}
	if string(p.IPHeader()[20:]) != "\x94\x04\x00\x00" {
		t.Errorf("IP options = %x", p.IPHeader()[20:])
	}
}

func TestSetters(t *testing.T) {
	var p Packet
	if err := Parse(unhex(t, ipv4SYN), &p); err != nil {
		t.Fatal(err)
	}
	tc := p.TCP
	tc.SetSrcPort(1)
	tc.SetDstPort(2)
	tc.SetSeq(0xfffffffe)
	tc.SetAck(7)
	tc.SetFlags(FlagSYN | FlagACK | FlagECE)
	tc.SetWindow(3)
	tc.SetUrgent(4)
	tc.SetChecksum(5)
	if tc.SrcPort() != 1 || tc.DstPort() != 2 || tc.Seq() != 0xfffffffe || tc.Ack() != 7 ||
		tc.Flags() != FlagSYN|FlagACK|FlagECE || tc.Window() != 3 || tc.Urgent() != 4 || tc.Checksum() != 5 {
		t.Errorf("setters did not round-trip: %+v", summarize(&p))
	}
	if !tc.HasFlags(FlagSYN|FlagACK) || tc.HasFlags(FlagSYN|FlagFIN) {
		t.Error("HasFlags wrong")
	}
	if tc.DataOffset() != 40 || len(tc.Options()) != 20 {
		t.Error("setters disturbed the data offset")
	}
	p.FixTCPChecksum()
	if !p.VerifyTCPChecksum() {
		t.Error("checksum not fixed")
	}
}

func TestTCPViewNeverPanics(t *testing.T) {
	// Options and Payload are safe on views Parse never checked.
	for _, b := range [][]byte{nil, make([]byte, 5), make([]byte, 20), append(make([]byte, 12), 0xf0, 0, 0, 0, 0, 0, 0, 0, 1, 2)} {
		tc := TCP(b)
		_ = tc.Options()
		_ = tc.Payload()
	}
}

func TestParseAllocs(t *testing.T) {
	b4 := unhex(t, ipv4SYN)
	b6 := unhex(t, ipv6Data)
	var p Packet
	var sink uint64
	allocs := testing.AllocsPerRun(1000, func() {
		for _, b := range [][]byte{b4, b6} {
			if err := Parse(b, &p); err != nil {
				t.Fatal(err)
			}
			sink += uint64(p.SrcPort()) + uint64(p.DstPort()) + uint64(p.TCP.Seq()) + uint64(p.TCP.Ack())
			sink += uint64(p.TCP.Flags()) + uint64(p.TCP.Window()) + uint64(len(p.Payload()))
			ap := p.SrcAddrPort()
			sink += uint64(ap.Port()) + uint64(p.DstAddrPort().Port())
			it := NewOptionIter(p.TCP.Options())
			for k, d, ok := it.Next(); ok; k, d, ok = it.Next() {
				sink += uint64(k) + uint64(len(d))
			}
			mss, _ := MSS(p.TCP.Options())
			blocks, n := SACKBlocks(p.TCP.Options())
			sink += uint64(mss) + uint64(n) + uint64(blocks[0][0])
			if p.VerifyTCPChecksum() {
				sink++
			}
		}
		// Error paths do not allocate either.
		_ = Parse(b4[:10], &p)
		_ = Parse(b6[:50], &p)
	})
	if allocs != 0 {
		t.Errorf("Parse + getters + option iteration: %v allocs per run, want 0", allocs)
	}
	_ = sink
}

func BenchmarkParse(b *testing.B) {
	for _, bc := range []struct{ name, hex string }{{"ipv4SYN", ipv4SYN}, {"ipv6Data", ipv6Data}} {
		pkt := unhex(b, bc.hex)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(pkt)))
			var p Packet
			for b.Loop() {
				if err := Parse(pkt, &p); err != nil {
					b.Fatal(err)
				}
				it := NewOptionIter(p.TCP.Options())
				for _, _, ok := it.Next(); ok; _, _, ok = it.Next() {
				}
			}
		})
	}
}

func BenchmarkTCPChecksum(b *testing.B) {
	for _, size := range []int{64, 1500, 65000} {
		f := Fields{
			Src: netip.MustParseAddrPort("10.0.0.1:1"), Dst: netip.MustParseAddrPort("10.0.0.2:2"),
			Payload: make([]byte, size-40),
		}
		pkt, err := Build(nil, &f)
		if err != nil {
			b.Fatal(err)
		}
		var p Packet
		if err := Parse(pkt, &p); err != nil {
			b.Fatal(err)
		}
		b.Run(itoa(size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				p.FixTCPChecksum()
			}
		})
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var d []byte
	for ; n > 0; n /= 10 {
		d = append([]byte{byte('0' + n%10)}, d...)
	}
	return string(d)
}

func seqv(v uint32) seq.Value { return seq.Value(v) }

package enginetest

import (
	"bytes"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// buildTCP builds an IPv4 or IPv6 TCP segment with gVisor's header package,
// independent of the code under test.
func buildTCP(t testing.TB, v6 bool, sport uint16, seq, ack uint32, flags header.TCPFlags, opts, payload []byte) []byte {
	t.Helper()
	src, dst := AddrA4, AddrB4
	ipLen := header.IPv4MinimumSize
	if v6 {
		src, dst, ipLen = AddrA6, AddrB6, header.IPv6MinimumSize
	}
	tcpLen := header.TCPMinimumSize + len(opts)
	b := make([]byte, ipLen+tcpLen+len(payload))
	s, d := tcpip.AddrFromSlice(src.AsSlice()), tcpip.AddrFromSlice(dst.AsSlice())
	if v6 {
		header.IPv6(b).Encode(&header.IPv6Fields{
			PayloadLength: uint16(tcpLen + len(payload)), TransportProtocol: header.TCPProtocolNumber,
			HopLimit: 64, SrcAddr: s, DstAddr: d,
		})
	} else {
		ip := header.IPv4(b)
		ip.Encode(&header.IPv4Fields{
			TotalLength: uint16(len(b)), ID: 7, TTL: 64, Protocol: uint8(header.TCPProtocolNumber),
			SrcAddr: s, DstAddr: d,
		})
		ip.SetChecksum(^ip.CalculateChecksum())
	}
	tcp := header.TCP(b[ipLen:])
	tcp.Encode(&header.TCPFields{
		SrcPort: sport, DstPort: 443, SeqNum: seq, AckNum: ack,
		DataOffset: uint8(tcpLen), Flags: flags, WindowSize: 1000,
	})
	copy(tcp[header.TCPMinimumSize:], opts)
	copy(tcp[tcpLen:], payload)
	xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, s, d, uint16(tcpLen+len(payload)))
	xsum = checksum.Checksum(payload, xsum)
	tcp.SetChecksum(^tcp.CalculateChecksum(xsum))
	if !gvisorChecksumsOK(b) {
		t.Fatal("buildTCP built a bad packet")
	}
	return b
}

// gvisorChecksumsOK verifies a packet with gVisor's own validators.
func gvisorChecksumsOK(b []byte) bool {
	var src, dst tcpip.Address
	var tcp header.TCP
	if b[0]>>4 == 6 {
		ip := header.IPv6(b)
		src, dst, tcp = ip.SourceAddress(), ip.DestinationAddress(), header.TCP(ip.Payload())
	} else {
		ip := header.IPv4(b)
		if !ip.IsChecksumValid() {
			return false
		}
		src, dst, tcp = ip.SourceAddress(), ip.DestinationAddress(), header.TCP(ip.Payload())
	}
	pl := tcp.Payload()
	return tcp.IsChecksumValid(src, dst, checksum.Checksum(pl, 0), uint16(len(pl)))
}

func tsOption() []byte {
	o := make([]byte, 12)
	header.EncodeNOP(o)
	header.EncodeNOP(o[1:])
	header.EncodeTSOption(12345, 678, o[2:])
	return o
}

func TestSplit(t *testing.T) {
	payload := RandomBytes(9, 3000)
	tests := []struct {
		name   string
		v6     bool
		flags  header.TCPFlags
		opts   []byte
		n      int
		cuts   []int
		wantOK bool
	}{
		{name: "v4/two", flags: header.TCPFlagAck, n: 100, cuts: []int{1}, wantOK: true},
		{name: "v4/fin-psh-last-only", flags: header.TCPFlagAck | header.TCPFlagPsh | header.TCPFlagFin, opts: tsOption(), n: 3000, cuts: []int{1, 1000, 2999}, wantOK: true},
		{name: "v6/odd-lengths", v6: true, flags: header.TCPFlagAck | header.TCPFlagPsh, opts: tsOption(), n: 1001, cuts: []int{3, 500, 777}, wantOK: true},
		{name: "v6/ece-cwr-kept", v6: true, flags: header.TCPFlagAck | header.TCPFlagEce | header.TCPFlagCwr, n: 10, cuts: []int{5}, wantOK: true},
		{name: "one-byte-payload", flags: header.TCPFlagAck, n: 1, cuts: []int{1}},
		{name: "no-payload", flags: header.TCPFlagAck, n: 0, cuts: []int{1}},
		{name: "syn-with-data", flags: header.TCPFlagSyn, n: 10, cuts: []int{5}},
		{name: "rst", flags: header.TCPFlagRst | header.TCPFlagAck, n: 10, cuts: []int{5}},
		{name: "urg", flags: header.TCPFlagUrg | header.TCPFlagAck, n: 10, cuts: []int{5}},
		{name: "cut-at-end", flags: header.TCPFlagAck, n: 10, cuts: []int{10}},
		{name: "cut-at-zero", flags: header.TCPFlagAck, n: 10, cuts: []int{0}},
		{name: "cuts-not-increasing", flags: header.TCPFlagAck, n: 10, cuts: []int{5, 5}},
		{name: "no-cuts", flags: header.TCPFlagAck, n: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const seq = 0xfffffff0 // pieces wrap the sequence space
			pkt := buildTCP(t, tt.v6, 1234, seq, 99, tt.flags, tt.opts, payload[:tt.n])
			orig := bytes.Clone(pkt)
			pieces, ok := Split(pkt, tt.cuts)
			if !bytes.Equal(pkt, orig) {
				t.Fatal("Split modified its input")
			}
			if ok != tt.wantOK {
				t.Fatalf("Split ok = %v, want %v", ok, tt.wantOK)
			}
			if !ok {
				return
			}
			if len(pieces) != len(tt.cuts)+1 {
				t.Fatalf("%d pieces, want %d", len(pieces), len(tt.cuts)+1)
			}
			var joined []byte
			for i, pc := range pieces {
				if !gvisorChecksumsOK(pc) || !ChecksumsValid(pc) {
					t.Errorf("piece %d: bad checksum", i)
				}
				s, ok := parseSeg(pc)
				if !ok {
					t.Fatalf("piece %d does not parse", i)
				}
				if got, want := s.seq(), uint32(seq+len(joined)); got != want {
					t.Errorf("piece %d: seq %#x, want %#x", i, got, want)
				}
				want := tt.flags
				if i < len(pieces)-1 {
					want &^= header.TCPFlagFin | header.TCPFlagPsh
				}
				if s.flags() != want {
					t.Errorf("piece %d: flags %v, want %v", i, s.flags(), want)
				}
				if !bytes.Equal(s.tcp().Options(), tt.opts) || s.tcp().AckNumber() != 99 {
					t.Errorf("piece %d: options or ack changed", i)
				}
				joined = append(joined, s.payload()...)
			}
			if !bytes.Equal(joined, payload[:tt.n]) {
				t.Error("pieces' payloads do not add up to the original")
			}
		})
	}
}

func TestCoalesce(t *testing.T) {
	p1 := RandomBytes(10, 1400)
	p2 := RandomBytes(11, 999)
	ack := header.TCPFlagAck
	tests := []struct {
		name   string
		v6     bool
		a, b   func(t *testing.T, v6 bool) []byte
		max    int
		wantOK bool
	}{
		{name: "v4/in-order", wantOK: true},
		{name: "v6/in-order", v6: true, wantOK: true},
		{name: "fits-exactly", max: 40 + 1400 + 999 + 12, wantOK: true},
		{name: "too-big", max: 40 + 1400 + 999 + 11},
		{name: "gap", b: func(t *testing.T, v6 bool) []byte { return buildTCP(t, v6, 1, 1001+1400, 7, ack, nil, p2) }},
		{name: "other-flow", b: func(t *testing.T, v6 bool) []byte { return buildTCP(t, v6, 2, 1000+1400, 7, ack, nil, p2) }},
		{name: "first-has-fin", a: func(t *testing.T, v6 bool) []byte { return buildTCP(t, v6, 1, 1000, 5, ack|header.TCPFlagFin, nil, p1) }},
		{name: "second-is-rst", b: func(t *testing.T, v6 bool) []byte {
			return buildTCP(t, v6, 1, 1000+1400, 7, header.TCPFlagRst, nil, p2)
		}},
		{name: "second-empty", b: func(t *testing.T, v6 bool) []byte { return buildTCP(t, v6, 1, 1000+1400, 7, ack, nil, nil) }},
		{name: "family-mismatch", b: func(t *testing.T, v6 bool) []byte { return buildTCP(t, !v6, 1, 1000+1400, 7, ack, nil, p2) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := buildTCP(t, tt.v6, 1, 1000, 5, ack, nil, p1)
			if tt.a != nil {
				a = tt.a(t, tt.v6)
			}
			b := buildTCP(t, tt.v6, 1, 1000+1400, 7, ack|header.TCPFlagPsh|header.TCPFlagFin, tsOption(), p2)
			if tt.b != nil {
				b = tt.b(t, tt.v6)
			}
			j, ok := Coalesce(a, b, tt.max)
			if ok != tt.wantOK {
				t.Fatalf("Coalesce ok = %v, want %v", ok, tt.wantOK)
			}
			if !ok {
				return
			}
			if !gvisorChecksumsOK(j) {
				t.Error("joined packet: bad checksum")
			}
			s, _ := parseSeg(j)
			if s.seq() != 1000 || s.tcp().AckNumber() != 7 ||
				s.flags() != ack|header.TCPFlagPsh|header.TCPFlagFin || !bytes.Equal(s.tcp().Options(), tsOption()) {
				t.Errorf("joined header: seq %d ack %d flags %v opts %x", s.seq(), s.tcp().AckNumber(), s.flags(), s.tcp().Options())
			}
			if !bytes.Equal(s.payload(), append(bytes.Clone(p1), p2...)) {
				t.Error("joined payload differs")
			}
		})
	}
}

func TestPartialChecksum(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		pkt := buildTCP(t, v6, 1, 1, 1, header.TCPFlagAck, nil, []byte("hello"))
		s, _ := parseSeg(pkt)
		s.setPartialChecksum()
		src, dst := AddrA4, AddrB4
		if v6 {
			src, dst = AddrA6, AddrB6
		}
		want := header.PseudoHeaderChecksum(header.TCPProtocolNumber,
			tcpip.AddrFromSlice(src.AsSlice()), tcpip.AddrFromSlice(dst.AsSlice()), uint16(len(pkt)-s.ipLen))
		if got := s.tcp().Checksum(); got != want {
			t.Errorf("%s: partial checksum %#x, want %#x", ipName(v6), got, want)
		}
		if ChecksumsValid(pkt) {
			t.Errorf("%s: partial checksum verifies as full", ipName(v6))
		}
		if !FixChecksums(pkt) || !gvisorChecksumsOK(pkt) {
			t.Errorf("%s: FixChecksums did not repair it", ipName(v6))
		}
	}
}

func TestParseSegRejects(t *testing.T) {
	good := buildTCP(t, false, 1, 1, 1, header.TCPFlagAck, nil, []byte("x"))
	good6 := buildTCP(t, true, 1, 1, 1, header.TCPFlagAck, nil, []byte("x"))
	mod := func(b []byte, f func([]byte)) []byte { c := bytes.Clone(b); f(c); return c }
	tests := map[string][]byte{
		"empty":           nil,
		"truncated-ip":    good[:19],
		"truncated-tcp":   good[:39],
		"total-too-long":  mod(good, func(b []byte) { b[3] = 200 }),
		"ihl-too-small":   mod(good, func(b []byte) { b[0] = 0x44 }),
		"udp":             mod(good, func(b []byte) { b[9] = 17 }),
		"fragment":        mod(good, func(b []byte) { b[6] = 0x20 }),
		"doff-too-small":  mod(good, func(b []byte) { b[32] = 0x40 }),
		"doff-too-large":  mod(good, func(b []byte) { b[32] = 0xf0 }),
		"v6-ext-header":   mod(good6, func(b []byte) { b[6] = 0 }),
		"v6-payload-long": mod(good6, func(b []byte) { b[5] = 200 }),
		"version-5":       mod(good, func(b []byte) { b[0] = 0x55 }),
	}
	for name, b := range tests {
		if _, ok := parseSeg(b); ok {
			t.Errorf("%s: parsed", name)
		}
		if FixChecksums(b) || ChecksumsValid(b) {
			t.Errorf("%s: checksum helpers accepted it", name)
		}
	}
	if _, ok := parseSeg(good); !ok {
		t.Error("good IPv4 packet rejected")
	}
	if p, ok := TCPPayload(good6); !ok || string(p) != "x" {
		t.Error("good IPv6 packet rejected")
	}
}

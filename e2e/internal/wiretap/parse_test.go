package wiretap

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/tcpcryptd/tcpcrypt/packet"
)

// frame builds an Ethernet frame around a TCP packet made by packet.Build.
func frame(t testing.TB, src, dst string, flags uint8, payload []byte) []byte {
	t.Helper()
	f := packet.Fields{
		Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort(dst),
		Flags: flags, Window: 1000, Payload: payload,
	}
	ip, err := packet.Build(nil, &f)
	if err != nil {
		t.Fatal(err)
	}
	et := []byte{0x08, 0x00}
	if ip[0]>>4 == 6 {
		et = []byte{0x86, 0xdd}
	}
	eth := append(make([]byte, 12), et...)
	return append(eth, ip...)
}

func TestParseEthernet(t *testing.T) {
	pl := []byte("hello, wire")
	v4 := frame(t, "10.99.0.1:40000", "10.99.0.2:5001", packet.FlagACK|packet.FlagPSH, pl)
	v6 := frame(t, "[fd99::1]:40000", "[fd99::2]:5001", packet.FlagSYN, nil)
	vlan := append(append(append([]byte{}, v4[:12]...), 0x81, 0x00, 0x00, 0x07), v4[12:]...)
	udp := bytes.Clone(v4)
	udp[14+9] = 17
	frag := bytes.Clone(v4)
	frag[14+7] = 8 // fragment offset 8 (units of 8 bytes)
	noIHL := bytes.Clone(v4)
	noIHL[14] = 0x44 // IHL 16 bytes
	badOff := bytes.Clone(v4)
	badOff[14+20+12] = 0x40 // TCP data offset 16 bytes
	truncated := v4[:len(v4)-5]

	tests := []struct {
		name    string
		frame   []byte
		ok      bool
		dstPort uint16
		flags   uint8
		payload string
		plen    int
	}{
		{"ipv4 data", v4, true, 5001, packet.FlagACK | packet.FlagPSH, "hello, wire", 11},
		{"ipv6 syn", v6, true, 5001, packet.FlagSYN, "", 0},
		{"vlan tag", vlan, true, 5001, packet.FlagACK | packet.FlagPSH, "hello, wire", 11},
		{"capture cut short", truncated, true, 5001, packet.FlagACK | packet.FlagPSH, "hello,", 11},
		{"udp", udp, false, 0, 0, "", 0},
		{"later fragment", frag, false, 0, 0, "", 0},
		{"short ihl", noIHL, false, 0, 0, "", 0},
		{"short tcp offset", badOff, false, 0, 0, "", 0},
		{"arp", append(make([]byte, 12), 0x08, 0x06, 0, 1), false, 0, 0, "", 0},
		{"empty", nil, false, 0, 0, "", 0},
		{"ethernet only", v4[:14], false, 0, 0, "", 0},
		{"tcp header cut", v4[:14+20+10], false, 0, 0, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Segment
			ok := ParseEthernet(tt.frame, &s)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			if s.Dst.Port() != tt.dstPort || s.Flags != tt.flags || string(s.Payload) != tt.payload || s.PayloadLen != tt.plen {
				t.Errorf("got dst %v flags %#x payload %q len %d", s.Dst, s.Flags, s.Payload, s.PayloadLen)
			}
		})
	}
}

func TestAccountMarkerAndSamples(t *testing.T) {
	tap := &Tap{filter: Filter{Port: 5001, Marker: []byte("MARK"), Samples: 1, SampleLen: 4}}
	segs := []struct {
		flags   uint8
		payload string
	}{
		{packet.FlagACK, "xxMARKyy"},
		{packet.FlagACK, "random"},
		{packet.FlagACK, "MARK"},
		{packet.FlagSYN | packet.FlagECE | packet.FlagCWR, ""},
		{packet.FlagSYN | packet.FlagACK | packet.FlagECE, ""},
		{packet.FlagSYN | packet.FlagACK | packet.FlagECE | packet.FlagCWR, ""}, // not a valid ECN reply
		{packet.FlagRST, ""},
	}
	for _, sg := range segs {
		var s Segment
		if !ParseEthernet(frame(t, "10.0.0.1:1", "10.0.0.2:5001", sg.flags, []byte(sg.payload)), &s) {
			t.Fatal("parse")
		}
		tap.account(&s)
	}
	// Another port is filtered out by match.
	var other Segment
	ParseEthernet(frame(t, "10.0.0.1:1", "10.0.0.2:80", packet.FlagACK, []byte("MARK")), &other)
	if tap.match(&other) {
		t.Error("port filter let port 80 through")
	}
	st := tap.stats
	if st.Segments != 7 || st.PayloadSegments != 3 || st.MarkerHits != 2 || st.PayloadBytes != 18 ||
		st.SYNs != 3 || st.ECNSetupSYNs != 1 || st.ECNSetupSYNACKs != 1 || st.RSTs != 1 {
		t.Errorf("stats = %+v", st)
	}
	if len(st.Samples) != 1 || string(st.Samples[0].Head) != "xxMA" || st.FirstHit == nil || string(st.FirstHit.Head) != "xxMA" {
		t.Errorf("samples = %+v, first hit %+v", st.Samples, st.FirstHit)
	}
	if r := st.PrintableRatio(); r != 1 {
		t.Errorf("printable ratio = %v, want 1", r)
	}
}

func FuzzParseEthernet(f *testing.F) {
	f.Add(frame(f, "10.99.0.1:40000", "10.99.0.2:5001", packet.FlagACK, []byte("data")))
	f.Add(frame(f, "[fd99::1]:40000", "[fd99::2]:5001", packet.FlagSYN, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Segment
		if !ParseEthernet(b, &s) {
			return
		}
		if len(s.Payload) > s.PayloadLen || len(s.Payload) > len(b) {
			t.Fatalf("payload %d bytes, announced %d, frame %d", len(s.Payload), s.PayloadLen, len(b))
		}
	})
}

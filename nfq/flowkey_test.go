package nfq

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/tcpcryptd/tcpcrypt/engine"
	"github.com/tcpcryptd/tcpcrypt/packet"
)

func TestExtractKey(t *testing.T) {
	v4 := tcpPkt(t, "10.0.0.1:1234", "10.0.0.2:80", 1, []byte("x"))
	v6 := tcpPkt(t, "[2001:db8::1]:1234", "[2001:db8::2]:80", 1, nil)
	withOpts := append([]byte(nil), v4...)
	withOpts[0] = 0x46 // IHL 6: ports move 4 bytes on
	withOpts = append(withOpts[:20], append([]byte{1, 1, 1, 1}, withOpts[20:]...)...)
	// IPv6 BIG TCP: payload length 0, hop-by-hop header with a jumbo option.
	hbh := append(append(append([]byte(nil), v6[:40]...), 6, 0, 0xc2, 4, 0, 1, 0x74, 0x28), v6[40:]...)
	hbh[4], hbh[5], hbh[6] = 0, 0, 0
	hbhUDP := append([]byte(nil), hbh...)
	hbhUDP[40] = 17
	hbhLong := append([]byte(nil), hbh...)
	hbhLong[41] = 200
	frag6 := append([]byte(nil), hbh...)
	frag6[6] = 44
	icmp6 := append([]byte(nil), v6...)
	icmp6[6] = 58
	tests := []struct {
		name          string
		pkt           []byte
		dir           engine.Dir
		kind          pktKind
		local, remote string
	}{
		{"v4 out", v4, engine.Outbound, kindTCP, "10.0.0.1:1234", "10.0.0.2:80"},
		{"v4 in", v4, engine.Inbound, kindTCP, "10.0.0.2:80", "10.0.0.1:1234"},
		{"v6 out", v6, engine.Outbound, kindTCP, "[2001:db8::1]:1234", "[2001:db8::2]:80"},
		{"v6 in", v6, engine.Inbound, kindTCP, "[2001:db8::2]:80", "[2001:db8::1]:1234"},
		{"v4 ip options", withOpts, engine.Outbound, kindTCP, "10.0.0.1:1234", "10.0.0.2:80"},
		{"v4 udp", udp4(), engine.Outbound, kindNotTCP, "", ""},
		{"empty", nil, engine.Outbound, kindBad, "", ""},
		{"v4 19 bytes", v4[:19], engine.Outbound, kindBad, "", ""},
		{"v4 no ports", v4[:23], engine.Outbound, kindBad, "", ""},
		{"v4 ports only", v4[:24], engine.Outbound, kindTCP, "10.0.0.1:1234", "10.0.0.2:80"},
		{"v4 ihl 4", append([]byte{0x44}, v4[1:]...), engine.Outbound, kindBad, "", ""},
		{"v4 ihl past end", append([]byte{0x4f}, v4[1:40]...), engine.Outbound, kindBad, "", ""},
		{"v6 39 bytes", v6[:39], engine.Outbound, kindBad, "", ""},
		{"version 0", []byte{0}, engine.Outbound, kindBad, "", ""},
		{"v6 hop-by-hop jumbo", hbh, engine.Outbound, kindTCP, "[2001:db8::1]:1234", "[2001:db8::2]:80"},
		{"v6 hop-by-hop then udp", hbhUDP, engine.Outbound, kindNotTCP, "", ""},
		{"v6 hop-by-hop past end", hbh[:45], engine.Outbound, kindBad, "", ""},
		{"v6 hop-by-hop long", hbhLong, engine.Outbound, kindBad, "", ""},
		{"v6 fragment", frag6, engine.Outbound, kindBad, "", ""},
		{"v6 icmp", icmp6, engine.Outbound, kindNotTCP, "", ""},
	}
	for _, tt := range tests {
		k, kind := extractKey(tt.pkt, tt.dir)
		if kind != tt.kind {
			t.Errorf("%s: kind %d, want %d", tt.name, kind, tt.kind)
			continue
		}
		if kind != kindTCP {
			continue
		}
		if l, r := k.addrPorts(); l.String() != tt.local || r.String() != tt.remote {
			t.Errorf("%s: key %v -> %v, want %s -> %s", tt.name, l, r, tt.local, tt.remote)
		}
	}
	if testing.AllocsPerRun(100, func() { extractKey(v6, engine.Inbound) }) != 0 {
		t.Error("extractKey allocates")
	}
}

// addrPorts converts k back to endpoints, for tests.
func (k *flowKey) addrPorts() (local, remote netip.AddrPort) {
	f := k.flow()
	return f.Local, f.Remote
}

// swapEnds returns a copy of a keyable TCP packet with source and
// destination addresses and ports exchanged: the same segment as the other
// end sees it.
func swapEnds(pkt []byte) []byte {
	b := append([]byte(nil), pkt...)
	var a0, a1, alen, l4 int
	if b[0]>>4 == 4 {
		a0, a1, alen, l4 = 12, 16, 4, int(b[0]&0x0f)*4
	} else {
		a0, a1, alen = 8, 24, 16
		l4, _ = skipIPv6ExtHeaders(b)
	}
	for i := range alen {
		b[a0+i], b[a1+i] = b[a1+i], b[a0+i]
	}
	sp, dp := binary.BigEndian.Uint16(b[l4:]), binary.BigEndian.Uint16(b[l4+2:])
	binary.BigEndian.PutUint16(b[l4:], dp)
	binary.BigEndian.PutUint16(b[l4+2:], sp)
	return b
}

// FuzzFlowKey checks that flow-key extraction never panics, agrees with
// packet.Parse on every packet that parses, and gives the outbound copy of a
// segment and the inbound copy seen by the other end the same key and hash
// (what keeps both directions of a flow on one worker).
func FuzzFlowKey(f *testing.F) {
	f.Add(tcpPkt(f, "10.0.0.1:1234", "10.0.0.2:80", 1, []byte("x")))
	f.Add(tcpPkt(f, "[2001:db8::1]:1234", "[2001:db8::2]:80", 1, nil))
	f.Add(udp4())
	f.Add([]byte{})
	f.Add([]byte{0x45})
	f.Add([]byte{0x60})

	f.Fuzz(func(t *testing.T, b []byte) {
		kOut, kind := extractKey(b, engine.Outbound)
		kIn, kind2 := extractKey(b, engine.Inbound)
		if kind != kind2 {
			t.Fatalf("kind depends on direction: %d vs %d", kind, kind2)
		}
		var p packet.Packet
		if err := packet.Parse(b, &p); err == nil {
			if kind != kindTCP {
				t.Fatalf("packet.Parse accepts it, extractKey says kind %d", kind)
			}
			l, r := kOut.addrPorts()
			if l != p.SrcAddrPort() || r != p.DstAddrPort() {
				t.Fatalf("key %v -> %v, packet %v -> %v", l, r, p.SrcAddrPort(), p.DstAddrPort())
			}
		}
		if kind != kindTCP {
			return
		}
		if kOut.local != kIn.remote || kOut.localPort != kIn.remotePort || kOut.remote != kIn.local || kOut.remotePort != kIn.localPort {
			t.Fatalf("inbound key is not the mirror of the outbound key: %+v vs %+v", kOut, kIn)
		}
		peer, kind3 := extractKey(swapEnds(b), engine.Inbound)
		if kind3 != kindTCP || peer != kOut {
			t.Fatalf("the other end's inbound copy keys differently: %+v vs %+v", peer, kOut)
		}
	})
}

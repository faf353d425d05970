package packet

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/tcpcryptd/tcpcrypt/packet/seq"
)

func buildSeg(t testing.TB, src, dst string, payload []byte) []byte {
	t.Helper()
	b, err := Build(nil, &Fields{
		Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort(dst),
		Seq: seq.Value(1), Flags: FlagACK, Window: 1000, Payload: payload,
	})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return b
}

func TestEndpoints(t *testing.T) {
	v4 := buildSeg(t, "10.0.0.1:1234", "10.0.0.2:80", []byte("x"))
	v6 := buildSeg(t, "[2001:db8::1]:1234", "[2001:db8::2]:80", nil)
	withOpts := append([]byte(nil), v4...)
	withOpts[0] = 0x46 // IHL 6: the ports move 4 bytes on
	withOpts = append(withOpts[:20], append([]byte{1, 1, 1, 1}, withOpts[20:]...)...)
	// IPv6 BIG TCP: payload length 0, a hop-by-hop header with a jumbo option.
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
	udp := append([]byte(nil), v4...)
	udp[9] = 17
	frag4 := append([]byte(nil), v4...)
	frag4[6] |= 0x20 // MF: a first fragment
	tests := []struct {
		name     string
		pkt      []byte
		err      error
		src, dst string
	}{
		{"v4", v4, nil, "10.0.0.1:1234", "10.0.0.2:80"},
		{"v6", v6, nil, "[2001:db8::1]:1234", "[2001:db8::2]:80"},
		{"v4 ip options", withOpts, nil, "10.0.0.1:1234", "10.0.0.2:80"},
		{"v4 udp", udp, ErrNotTCP, "", ""},
		{"v4 fragment", frag4, ErrFragment, "", ""},
		{"empty", nil, ErrTruncated, "", ""},
		{"v4 19 bytes", v4[:19], ErrTruncated, "", ""},
		{"v4 no ports", v4[:23], ErrTruncated, "", ""},
		{"v4 ports only", v4[:24], nil, "10.0.0.1:1234", "10.0.0.2:80"},
		{"v4 ihl 4", append([]byte{0x44}, v4[1:]...), ErrBadHeader, "", ""},
		{"v4 ihl past end", append([]byte{0x4f}, v4[1:40]...), ErrTruncated, "", ""},
		{"v6 39 bytes", v6[:39], ErrTruncated, "", ""},
		{"version 0", []byte{0}, ErrBadHeader, "", ""},
		{"v6 hop-by-hop jumbo", hbh, nil, "[2001:db8::1]:1234", "[2001:db8::2]:80"},
		{"v6 hop-by-hop then udp", hbhUDP, ErrNotTCP, "", ""},
		{"v6 hop-by-hop past end", hbh[:45], ErrTruncated, "", ""},
		{"v6 hop-by-hop long", hbhLong, ErrTruncated, "", ""},
		{"v6 fragment", frag6, ErrIPv6ExtHeader, "", ""},
		{"v6 icmp", icmp6, ErrNotTCP, "", ""},
	}
	for _, tt := range tests {
		src, dst, err := Endpoints(tt.pkt)
		if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
			t.Errorf("%s: error %v, want %v", tt.name, err, tt.err)
			continue
		}
		if err == nil && (src.String() != tt.src || dst.String() != tt.dst) {
			t.Errorf("%s: %v -> %v, want %s -> %s", tt.name, src, dst, tt.src, tt.dst)
		}
	}
	if testing.AllocsPerRun(100, func() { _, _, _ = Endpoints(hbh) }) != 0 {
		t.Error("Endpoints allocates")
	}
}

// FuzzEndpoints: Endpoints never panics, and agrees with Parse on every
// packet Parse accepts.
func FuzzEndpoints(f *testing.F) {
	f.Add(buildSeg(f, "10.0.0.1:1234", "10.0.0.2:80", []byte("x")))
	f.Add(buildSeg(f, "[2001:db8::1]:1234", "[2001:db8::2]:80", nil))
	f.Add([]byte{})
	f.Add([]byte{0x45})
	f.Add([]byte{0x60})
	f.Fuzz(func(t *testing.T, b []byte) {
		src, dst, err := Endpoints(b)
		var p Packet
		if Parse(b, &p) != nil {
			return
		}
		if err != nil {
			t.Fatalf("Parse accepts it, Endpoints says %v", err)
		}
		if src != p.SrcAddrPort() || dst != p.DstAddrPort() {
			t.Fatalf("Endpoints %v -> %v, Parse %v -> %v", src, dst, p.SrcAddrPort(), p.DstAddrPort())
		}
	})
}

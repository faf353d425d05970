package engine

import (
	"testing"

	"github.com/tcpcryptd/tcpcrypt/packet"
	"github.com/tcpcryptd/tcpcrypt/packet/seq"
)

// synOptsMSS is synOpts with the MSS option set to mss.
func synOptsMSS(mss uint16) []byte {
	o := append([]byte(nil), synOpts...)
	o[2], o[3] = byte(mss>>8), byte(mss)
	return o
}

// TestScriptMSSCeiling checks the absolute ceiling on the MSS the local
// stack is given, on both the SYN path (server stack) and the SYN-ACK path
// (client stack). On loopback (MTU 65536) peers announce 65495 (IPv4) or
// 65475 (IPv6); Linux then builds GSO packets of two such segments, far
// over what NFQUEUE copies to us (MaxPacket), and the engine had to drop
// every one of them as truncated (e2e TestE2ELoopback crawled). The
// ceiling leaves room for two segments, our growth and full headers.
func TestScriptMSSCeiling(t *testing.T) {
	for _, tc := range []struct {
		name     string
		v6       bool
		peerMSS  uint16
		wantMSS  uint16
		ipHdrLen int
	}{
		{"v4 loopback", false, 65495, 32699, 20},
		{"v6 loopback", true, 65475, 32689, 40},
		{"v4 max", false, 65535, 32699, 20},
		{"v4 at ceiling", false, 32699 + segGrowth, 32699, 20},
		{"v4 under", false, 32000, 32000 - segGrowth, 20},
		{"v6 just over", true, 32689 + segGrowth + 1, 32689, 40},
		{"v4 ethernet", false, 1460, 1460 - segGrowth, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScript(t, Config{}, Config{})
			if tc.v6 {
				s.v6()
			}
			opts := synOptsMSS(tc.peerMSS)
			r := s.outA(s.cliSeg(cISN, 0, packet.FlagSYN, opts, nil))
			want(t, r, Replace)
			r = s.inB(r.Packet)
			want(t, r, Replace)
			if mss, ok := packet.MSS(view(t, r.Packet).TCP.Options()); !ok || mss != tc.wantMSS {
				t.Errorf("server stack sees MSS %d (present %v), want %d", mss, ok, tc.wantMSS)
			}
			r = s.outB(s.srvSeg(sISN, cISN.Add(1), packet.FlagSYN|packet.FlagACK, opts, nil))
			want(t, r, Replace)
			r = s.inA(r.Packet)
			want(t, r, Replace)
			if mss, ok := packet.MSS(view(t, r.Packet).TCP.Options()); !ok || mss != tc.wantMSS {
				t.Errorf("client stack sees MSS %d (present %v), want %d", mss, ok, tc.wantMSS)
			}

			// A packet of two segments of the given MSS under a TCP
			// header with 40 option bytes fits what NFQUEUE copies,
			// and so does the same packet grown by our worst growth.
			if n := tc.ipHdrLen + 60 + 2*(int(tc.wantMSS)+segGrowth); n > MaxPacket {
				t.Errorf("two grown segments of MSS %d make a %d-byte packet, over %d", tc.wantMSS, n, MaxPacket)
			}

			// Finish the handshake and send a GSO packet of two full
			// segments: it must go out whole, in one Replace that fits a
			// verdict, not cut into extra packets.
			r = s.outA(s.cliSeg(cISN.Add(1), sISN.Add(1), packet.FlagACK, ackOpts, nil))
			want(t, r, Replace)
			r = s.inB(r.Packet)
			want(t, r, Replace)
			r = s.inA(r.ToPeer[0]) // Init2
			want(t, r, Drop)
			r = s.inB(r.ToPeer[0])
			p0, ack := cISN.Add(1), sISN.Add(1)
			mssNow := int(tc.wantMSS) - (len(ackOpts))
			payload := pattern(2*mssNow, 5)
			r = s.outA(s.cliSeg(p0, ack, packet.FlagACK, ackOpts, payload))
			want(t, r, Replace)
			checkSizes(t, "two-segment GSO packet", r)
			if tc.peerMSS > 32000 && len(r.ToPeer) != 0 {
				t.Errorf("a two-segment GSO packet was cut into %d extra packets", len(r.ToPeer))
			}
			got := view(t, r.Packet)
			if got.TCP.Seq() != p0.Add(seq.Size(79)) {
				t.Errorf("GSO packet at seq %#x, want just after Init1", got.TCP.Seq())
			}
		})
	}
}

package engine

import (
	"testing"

	"github.com/tcpcryptd/tcpcrypt/eno"
	"github.com/tcpcryptd/tcpcrypt/packet"
)

// TestScriptSYNDataDiscarded: tcpcrypt defines no SYN data, so the payload
// of a received SYN that carries ENO never reaches the local stack (RFC 8547
// §4.7). The stack therefore acknowledges only the peer's ISN, and the
// connection still negotiates tcpcrypt.
func TestScriptSYNDataDiscarded(t *testing.T) {
	s := newScript(t, Config{}, Config{})
	syn := s.cliSeg(cISN, 0, packet.FlagSYN, withENO(synOpts, []byte{0x45, 3, 0x23}), pattern(100, 0))
	r := s.inB(syn)
	want(t, r, Replace)
	p := view(t, r.Packet)
	if n := len(p.Payload()); n != 0 {
		t.Fatalf("the stack got %d bytes of SYN data", n)
	}
	if p.TCP.Flags()&packet.FlagSYN == 0 || p.TCP.Seq() != cISN {
		t.Fatalf("SYN changed: flags %#x seq %#x", p.TCP.Flags(), p.TCP.Seq())
	}
	// The stack answers with ack = ISN+1 (the data was never seen): the
	// SYN-ACK carries ENO and the handshake completes encrypted.
	r = s.outB(s.srvSeg(sISN, cISN.Add(1), packet.FlagSYN|packet.FlagACK, synOpts, nil))
	want(t, r, Replace)
	if raw, n, err := eno.FindENO(view(t, r.Packet).TCP.Options()); err != nil || n != 1 || len(raw) < 3 {
		t.Fatalf("SYN-ACK ENO: %x (count %d, %v)", raw, n, err)
	}
	if a := view(t, r.Packet).TCP.Ack(); a != cISN.Add(1) {
		t.Errorf("SYN-ACK acknowledges %#x, want only the ISN (%#x)", a, cISN.Add(1))
	}
}

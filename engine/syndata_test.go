package engine

import (
	"bytes"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/engine/enginetest"
	"github.com/tcpcryptd/tcpcrypt/eno"
	"github.com/tcpcryptd/tcpcrypt/packet"
	"github.com/tcpcryptd/tcpcrypt/packet/seq"
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

// synData is the payload the tests put in SYN segments.
var synData = pattern(100, 0x40)

// checkSYNStripped asserts that r hands the local stack the SYN syn without
// its payload and otherwise unchanged: same flags, sequence number, ack,
// window and options, a correct IP length and correct checksums.
func checkSYNStripped(t *testing.T, r Result, syn []byte) {
	t.Helper()
	want(t, r, Replace)
	got := view(t, r.Packet)
	var orig packet.Packet
	if err := packet.Parse(syn, &orig); err != nil {
		t.Fatal(err)
	}
	if n := len(got.Payload()); n != 0 {
		t.Fatalf("the stack got %d bytes of SYN data", n)
	}
	if len(r.Packet) != orig.IPHdrLen+orig.TCP.DataOffset() {
		t.Errorf("stripped SYN is %d bytes, want headers only (%d)", len(r.Packet), orig.IPHdrLen+orig.TCP.DataOffset())
	}
	if got.TCP.Flags() != orig.TCP.Flags() || got.TCP.Seq() != orig.TCP.Seq() || got.TCP.Ack() != orig.TCP.Ack() || got.TCP.Window() != orig.TCP.Window() {
		t.Errorf("SYN header changed: flags %#x seq %#x ack %#x wnd %d, want %#x %#x %#x %d",
			got.TCP.Flags(), got.TCP.Seq(), got.TCP.Ack(), got.TCP.Window(),
			orig.TCP.Flags(), orig.TCP.Seq(), orig.TCP.Ack(), orig.TCP.Window())
	}
	if !bytes.Equal(got.TCP.Options(), orig.TCP.Options()) {
		t.Errorf("options changed: %x, want %x", got.TCP.Options(), orig.TCP.Options())
	}
}

// TestScriptSYNDataDiscardedOnFallback: a received SYN that carries ENO but
// whose negotiation fails at once goes on as plain TCP, yet its payload
// still never reaches the local stack (RFC 8547 §4.7: the data of a SYN+ENO
// segment is discarded when ENO fails). The stack, which saw no data,
// acknowledges only the ISN; the engine passes that SYN-ACK untouched and
// takes data only from the non-SYN segments that follow. A SYN without ENO
// is none of ENO's business: its data (e.g. TCP Fast Open) passes.
func TestScriptSYNDataDiscardedOnFallback(t *testing.T) {
	tfo := []byte{packet.OptTFO, 10, 1, 2, 3, 4, 5, 6, 7, 8} // a Fast Open cookie
	enoX25519 := []byte{0x45, 3, 0x23}
	tests := []struct {
		name   string
		opts   []byte
		reason FallbackReason
		policy Mode
	}{
		{"two ENO options", withENO(synOpts, enoX25519, enoX25519), FallbackDuplicateENO, Opportunistic},
		{"malformed ENO", withENO(synOpts, []byte{0x45, 4, 0x81, 0x21}), FallbackMalformed, Opportunistic},
		{"vacuous ENO", withENO(synOpts, []byte{0x45, 3, 0x00}), FallbackVacuous, Opportunistic},
		{"two ENO options and TFO", withENO(synOpts[:4], tfo, enoX25519, enoX25519), FallbackDuplicateENO, Opportunistic},
		// ENO disabled by configuration (RFC 8547 §4.7 requires the
		// discard even then): the policy excludes the connection.
		{"excluded by policy", withENO(synOpts, enoX25519), 0, Exclude},
		{"excluded by policy, ENO and TFO", withENO(synOpts[:4], tfo, enoX25519), 0, Exclude},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Policy: func(_, _ netip.AddrPort) Mode { return tt.policy }}
			s := newScript(t, Config{}, cfg)
			syn := s.cliSeg(cISN, 0, packet.FlagSYN, tt.opts, synData)
			checkSYNStripped(t, s.inB(syn), syn)
			c := s.b.Counters()
			if tt.policy != Exclude && c.Fallbacks[tt.reason] != 1 {
				t.Errorf("fallbacks %v, want one %v", c.Fallbacks, tt.reason)
			}
			if n := s.b.NumFlows(); n != 0 {
				t.Fatalf("%d flows tracked after the fallback", n)
			}
			// A retransmission of the SYN is stripped the same way.
			checkSYNStripped(t, s.inB(syn), syn)
			// The stack acknowledges only the ISN; its SYN-ACK passes
			// as it is, without ENO.
			synack := s.srvSeg(sISN, cISN.Add(1), packet.FlagSYN|packet.FlagACK, synOpts, nil)
			r := s.outB(synack)
			want(t, r, Accept)
			if len(r.ToPeer)+len(r.ToLocal) != 0 {
				t.Errorf("%d packets injected on a plain connection", len(r.ToPeer)+len(r.ToLocal))
			}
			// The client sends its data again in a non-SYN segment,
			// different bytes at the same sequence numbers: they reach
			// the stack as they are.
			data := pattern(100, 0x90)
			r = s.inB(s.cliSeg(cISN.Add(1), sISN.Add(1), packet.FlagACK|packet.FlagPSH, ackOpts, data))
			want(t, r, Accept)
		})
	}
	t.Run("no ENO: Fast Open data passes", func(t *testing.T) {
		s := newScript(t, Config{}, Config{})
		syn := s.cliSeg(cISN, 0, packet.FlagSYN, withENO(synOpts[:4], tfo), synData)
		r := s.inB(syn)
		want(t, r, Accept)
		if c := s.b.Counters(); c.Fallbacks[FallbackNoPeerENO] != 1 {
			t.Errorf("fallbacks %v, want one %v", c.Fallbacks, FallbackNoPeerENO)
		}
	})
	t.Run("required: the SYN is refused", func(t *testing.T) {
		req := Config{Policy: func(_, _ netip.AddrPort) Mode { return Required }}
		s := newScript(t, Config{}, req)
		r := s.inB(s.cliSeg(cISN, 0, packet.FlagSYN, withENO(synOpts, enoX25519, enoX25519), synData))
		want(t, r, Drop)
		// The engine's RST acknowledges the ISN only, not the data.
		if len(r.ToPeer) != 1 {
			t.Fatalf("%d packets to the peer, want a RST", len(r.ToPeer))
		}
		if p := view(t, r.ToPeer[0]); p.TCP.Flags()&packet.FlagRST == 0 || p.TCP.Ack() != cISN.Add(1) {
			t.Errorf("RST flags %#x ack %#x, want ack %#x", p.TCP.Flags(), p.TCP.Ack(), cISN.Add(1))
		}
	})
}

// TestScriptSYNDataDiscardedWithTFO: a SYN carrying a valid ENO option and
// a Fast Open cookie (which RFC 8547 §4.7 forbids a sender to combine)
// negotiates tcpcrypt, and its data, which TFO would give a meaning
// tcpcrypt does not, never reaches the stack; the connection's first bytes
// are the ones of the encrypted stream.
func TestScriptSYNDataDiscardedWithTFO(t *testing.T) {
	tfo := []byte{packet.OptTFO, 10, 1, 2, 3, 4, 5, 6, 7, 8}
	s := newScript(t, Config{}, Config{})
	syn := s.cliSeg(cISN, 0, packet.FlagSYN, withENO(synOpts[:4], tfo, []byte{0x45, 3, 0x23}), synData)
	r := s.inB(syn)
	want(t, r, Replace)
	p := view(t, r.Packet)
	if n := len(p.Payload()); n != 0 {
		t.Fatalf("the stack got %d bytes of SYN data", n)
	}
	if p.TCP.Flags() != packet.FlagSYN || p.TCP.Seq() != cISN {
		t.Fatalf("SYN changed: flags %#x seq %#x", p.TCP.Flags(), p.TCP.Seq())
	}
	if s.b.NumFlows() != 1 {
		t.Fatalf("%d flows tracked, want the ENO flow", s.b.NumFlows())
	}
	r = s.outB(s.srvSeg(sISN, cISN.Add(1), packet.FlagSYN|packet.FlagACK, synOpts, nil))
	want(t, r, Replace)
	if a := view(t, r.Packet).TCP.Ack(); a != cISN.Add(1) {
		t.Errorf("SYN-ACK acknowledges %#x, want only the ISN (%#x)", a, cISN.Add(1))
	}
	if raw, n, err := eno.FindENO(view(t, r.Packet).TCP.Options()); err != nil || n != 1 || len(raw) < 3 {
		t.Fatalf("SYN-ACK ENO: %x (count %d, %v)", raw, n, err)
	}
}

// TestScriptSYNACKDataDiscardedOnFallback: the active side's counterpart. A
// SYN-ACK that carries ENO the engine cannot accept (here two options)
// makes the connection plain TCP, and its payload never reaches the local
// stack, which then acknowledges only the server's ISN.
func TestScriptSYNACKDataDiscardedOnFallback(t *testing.T) {
	s := newScript(t, Config{}, Config{})
	want(t, s.outA(s.cliSeg(cISN, 0, packet.FlagSYN, synOpts, nil)), Replace)
	synack := s.srvSeg(sISN, cISN.Add(1), packet.FlagSYN|packet.FlagACK, withENO(synOpts, []byte{0x45, 4, 0x01, 0x23}, []byte{0x45, 4, 0x01, 0x23}), synData)
	checkSYNStripped(t, s.inA(synack), synack)
	if c := s.a.Counters(); c.Fallbacks[FallbackDuplicateENO] != 1 {
		t.Errorf("fallbacks %v, want one %v", c.Fallbacks, FallbackDuplicateENO)
	}
	if s.a.NumFlows() != 0 {
		t.Fatalf("%d flows tracked after the fallback", s.a.NumFlows())
	}
	r := s.outA(s.cliSeg(cISN.Add(1), sISN.Add(1), packet.FlagACK, ackOpts, nil))
	want(t, r, Accept)
}

// addSYNData returns the SYN pkt with the options extra appended and data
// as its payload, or pkt itself for any other packet.
func addSYNData(pkt, extra, data []byte) []byte {
	var p packet.Packet
	if packet.Parse(pkt, &p) != nil || p.TCP.Flags()&(packet.FlagSYN|packet.FlagACK) != packet.FlagSYN || len(p.Payload()) != 0 {
		return pkt
	}
	var ob packet.OptionBuilder
	for it := packet.NewOptionIter(p.TCP.Options()); ; {
		kind, _, ok := it.Next()
		if !ok {
			break
		}
		if kind == packet.OptNOP {
			continue
		}
		if ob.AddRaw(it.Raw()) != nil {
			return pkt
		}
	}
	for it := packet.NewOptionIter(extra); ; {
		_, _, ok := it.Next()
		if !ok {
			break
		}
		if ob.AddRaw(it.Raw()) != nil {
			return pkt
		}
	}
	out, err := packet.Rebuild(nil, &p, ob.Bytes(), data)
	if err != nil {
		return pkt
	}
	return out
}

// synWatch is a middle that counts the SYN segments it hands its host's
// stack and the payload bytes they carry.
type synWatch struct {
	*middle
	mu       sync.Mutex
	syns     int
	synBytes int
}

func (w *synWatch) Process(dir enginetest.Dir, pkt []byte, now time.Time) (toWire, toLocal [][]byte) {
	toWire, toLocal = w.middle.Process(dir, pkt, now)
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, b := range toLocal {
		var p packet.Packet
		if packet.Parse(b, &p) == nil && p.TCP.Flags()&packet.FlagSYN != 0 {
			w.syns++
			w.synBytes += len(p.Payload())
		}
	}
	return toWire, toLocal
}

func (w *synWatch) result() (syns, payload int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.syns, w.synBytes
}

// TestScenarioSYNDataDiscarded: a real stack behind the engine is handed a
// SYN whose ENO fails or that combines ENO with a Fast Open cookie, with
// data in it. The stack is handed the SYN without its data, its SYN-ACK
// acknowledges only the client's ISN, and the application reads only the
// bytes the client sent after the handshake. (gVisor, like Linux without a
// valid Fast Open cookie, would not accept SYN data by itself: what the
// engine hands the stack is the discriminating check.)
func TestScenarioSYNDataDiscarded(t *testing.T) {
	enoX25519 := []byte{0x45, 3, 0x23}
	tfo := []byte{packet.OptTFO, 10, 1, 2, 3, 4, 5, 6, 7, 8}
	junk := []byte("SYN data that must never reach the application")
	for _, tc := range []struct {
		name  string
		extra []byte
	}{
		{"two ENO options", withENO(nil, enoX25519, enoX25519)},
		{"malformed ENO", []byte{0x45, 4, 0x81, 0x21}},
		{"ENO and TFO", withENO(tfo, enoX25519)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mb := &synWatch{middle: newMiddle(t, Config{})}
			p := enginetest.NewForTest(t, enginetest.Config{MTU: 1500, CaptureLimit: 1000,
				B: enginetest.HostConfig{Middle: mb},
				OnWire: func(d enginetest.WireDir, pkt []byte) []byte {
					if d == enginetest.AToB {
						return addSYNData(pkt, tc.extra, junk)
					}
					return pkt
				}})
			a, b := dialPair(t, p, false, 443)
			msg := []byte("the first bytes of the connection")
			if _, err := a.Write(msg); err != nil {
				t.Fatal(err)
			}
			a.CloseWrite()
			got, _ := readAll(b, 5*time.Second)
			if !bytes.Equal(got, msg) {
				t.Errorf("application read %q, want %q", got, msg)
			}
			var isn, synack seq.Value
			var sawSYN, sawSYNACK bool
			caps, _ := p.Capture()
			for _, c := range caps {
				var cp packet.Packet
				if packet.Parse(c.Pkt, &cp) != nil {
					continue
				}
				switch {
				case c.Dir == enginetest.AToB && cp.TCP.Flags()&(packet.FlagSYN|packet.FlagACK) == packet.FlagSYN:
					if len(cp.Payload()) != len(junk) {
						t.Fatalf("the SYN on the wire carries %d bytes, want %d", len(cp.Payload()), len(junk))
					}
					isn, sawSYN = cp.TCP.Seq(), true
				case c.Dir == enginetest.BToA && cp.TCP.HasFlags(packet.FlagSYN|packet.FlagACK) && !sawSYNACK:
					synack, sawSYNACK = cp.TCP.Ack(), true
				}
			}
			if n, data := mb.result(); n == 0 || data != 0 {
				t.Errorf("the stack was handed %d SYNs, %d bytes of SYN data", n, data)
			}
			if !sawSYN || !sawSYNACK {
				t.Fatalf("captured SYN %v, SYN-ACK %v", sawSYN, sawSYNACK)
			}
			if synack != isn.Add(1) {
				t.Errorf("the stack's SYN-ACK acknowledges %#x, want the ISN only (%#x)", synack, isn.Add(1))
			}
			if c := mb.counters(); c.FlowsEncrypted != 0 {
				t.Errorf("encrypted with a plain client: %s", ctrSummary(c))
			}
		})
	}
}

// TestScriptSYNDataDiscardedTableFull: a SYN with ENO that finds the flow
// table full of established flows goes on untracked, as plain TCP, without
// its data.
func TestScriptSYNDataDiscardedTableFull(t *testing.T) {
	s := newScript(t, Config{}, Config{MaxFlows: 1})
	s.handshake()
	other := netip.MustParseAddrPort("192.0.2.9:40001")
	syn := build(t, other, s.srv, cISN, 0, packet.FlagSYN, 1000, withENO(synOpts, []byte{0x45, 3, 0x23}), synData)
	checkSYNStripped(t, s.inB(syn), syn)
	if c := s.b.Counters(); c.Fallbacks[FallbackTableFull] != 1 {
		t.Errorf("fallbacks %v, want one %v", c.Fallbacks, FallbackTableFull)
	}
	if n := s.b.NumFlows(); n != 1 {
		t.Errorf("%d flows tracked, want the established one", n)
	}
}

// TestScriptSYNDataDiscardedUnknownTEP: a SYN whose only TEP we do not
// support (so its SYN TEP cannot become the negotiated one) loses its data
// on the way to the stack; ENO fails when the stack's SYN-ACK, which
// acknowledges only the ISN, leaves without an answer.
func TestScriptSYNDataDiscardedUnknownTEP(t *testing.T) {
	s := newScript(t, Config{}, Config{})
	syn := s.cliSeg(cISN, 0, packet.FlagSYN, withENO(synOpts, []byte{0x45, 3, 0x30}), synData)
	r := s.inB(syn)
	want(t, r, Replace)
	if n := len(view(t, r.Packet).Payload()); n != 0 {
		t.Fatalf("the stack got %d bytes of SYN data", n)
	}
	r = s.outB(s.srvSeg(sISN, cISN.Add(1), packet.FlagSYN|packet.FlagACK, synOpts, nil))
	want(t, r, Accept)
	if c := s.b.Counters(); c.Fallbacks[FallbackNoAnswer] != 1 || s.b.NumFlows() != 0 {
		t.Errorf("fallbacks %v, %d flows", c.Fallbacks, s.b.NumFlows())
	}
}

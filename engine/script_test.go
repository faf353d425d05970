package engine

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/crypto"
	"github.com/tcpcryptd/tcpcrypt/eno"
	"github.com/tcpcryptd/tcpcrypt/packet"
	"github.com/tcpcryptd/tcpcrypt/packet/seq"
)

// Scripted-segment tests: the test plays both TCP stacks by hand, so every
// segment and every engine answer can be checked byte by byte.

// chachaReader is a deterministic io.Reader for Config.Rand.
type chachaReader struct{ r *rand.ChaCha8 }

func (c chachaReader) Read(b []byte) (int, error) { return c.r.Read(b) }

func newRand(seed byte) chachaReader {
	return chachaReader{rand.NewChaCha8([32]byte{seed})}
}

// Initial sequence numbers near the wrap, so that every mapping crosses it.
const (
	cISN = seq.Value(0xfffffff0)
	sISN = seq.Value(0x7ffffffa)
)

type script struct {
	t        *testing.T
	now      time.Time
	a, b     *Engine // the client's and the server's engine
	cli, srv netip.AddrPort
	ackPkt   []byte // ackAll's segment, made once
}

func newScript(t *testing.T, cfgA, cfgB Config) *script {
	t.Helper()
	s := &script{t: t, now: time.Unix(1_700_000_000, 0)}
	s.cli = netip.MustParseAddrPort("192.0.2.1:40000")
	s.srv = netip.MustParseAddrPort("192.0.2.2:443")
	clock := func() time.Time { return s.now }
	cfgA.Now, cfgB.Now = clock, clock
	if cfgA.Rand == nil {
		cfgA.Rand = newRand(1)
	}
	if cfgB.Rand == nil {
		cfgB.Rand = newRand(2)
	}
	var err error
	if s.a, err = New(cfgA); err != nil {
		t.Fatal(err)
	}
	if s.b, err = New(cfgB); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *script) v6() {
	s.cli = netip.MustParseAddrPort("[2001:db8::1]:40000")
	s.srv = netip.MustParseAddrPort("[2001:db8::2]:443")
}

func build(t *testing.T, src, dst netip.AddrPort, sq, ack seq.Value, flags uint8, wnd uint16, opts, payload []byte) []byte {
	t.Helper()
	var ob packet.OptionBuilder
	for it := packet.NewOptionIter(opts); ; {
		_, _, ok := it.Next()
		if !ok {
			break
		}
		if err := ob.AddRaw(it.Raw()); err != nil {
			t.Fatal(err)
		}
	}
	b, err := packet.Build(nil, &packet.Fields{Src: src, Dst: dst, Seq: sq, Ack: ack, Flags: flags, Window: wnd, Options: ob.Bytes(), Payload: payload})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cliSeg is a segment the client stack sends (P numbers of the client).
func (s *script) cliSeg(sq, ack seq.Value, flags uint8, opts, payload []byte) []byte {
	return build(s.t, s.cli, s.srv, sq, ack, flags, 1000, opts, payload)
}

func (s *script) srvSeg(sq, ack seq.Value, flags uint8, opts, payload []byte) []byte {
	return build(s.t, s.srv, s.cli, sq, ack, flags, 2000, opts, payload)
}

// view parses an output packet and checks its checksums.
func view(t *testing.T, b []byte) *packet.Packet {
	t.Helper()
	var p packet.Packet
	if err := packet.Parse(b, &p); err != nil {
		t.Fatalf("engine output does not parse: %v", err)
	}
	if !p.VerifyIPChecksum() || !p.VerifyTCPChecksum() {
		t.Fatalf("engine output has a bad checksum")
	}
	return &p
}

// checkAll verifies the checksums of every packet of a result.
func checkAll(t *testing.T, r Result) {
	t.Helper()
	if r.Verdict == Replace {
		view(t, r.Packet)
	}
	for _, b := range r.ToPeer {
		view(t, b)
	}
	for _, b := range r.ToLocal {
		view(t, b)
	}
	for _, rel := range r.Released {
		if rel.Verdict == Replace {
			view(t, rel.Packet)
		}
	}
}

func (s *script) outA(pkt []byte) Result { r := s.a.Process(pkt, Outbound); checkAll(s.t, r); return r }
func (s *script) inA(pkt []byte) Result  { r := s.a.Process(pkt, Inbound); checkAll(s.t, r); return r }
func (s *script) outB(pkt []byte) Result { r := s.b.Process(pkt, Outbound); checkAll(s.t, r); return r }
func (s *script) inB(pkt []byte) Result  { r := s.b.Process(pkt, Inbound); checkAll(s.t, r); return r }

func want(t *testing.T, r Result, v Verdict) {
	t.Helper()
	if r.Verdict != v {
		t.Fatalf("verdict %v, want %v", r.Verdict, v)
	}
}

// Option areas the stacks use.
var (
	synOpts = []byte{2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7} // MSS 1460, SACK-perm, TS, WS 7
	ackOpts = []byte{1, 1, 8, 10, 0, 0, 0, 2, 0, 0, 0, 1}
)

func enoOf(t *testing.T, b []byte) []byte {
	t.Helper()
	p := view(t, b)
	raw, ok := packet.FindOption(p.TCP.Options(), packet.OptENO)
	if !ok {
		return nil
	}
	return append([]byte{packet.OptENO, byte(len(raw) + 2)}, raw...)
}

// handshake runs the three-way handshake with ENO through both engines
// and the key exchange, and returns the wire SYN-ACK's clamped MSS seen by
// the client.
func (s *script) handshake() {
	t := s.t
	t.Helper()
	r := s.outA(s.cliSeg(cISN, 0, packet.FlagSYN, synOpts, nil))
	want(t, r, Replace)
	r = s.inB(r.Packet)
	want(t, r, Replace)
	r = s.outB(s.srvSeg(sISN, cISN.Add(1), packet.FlagSYN|packet.FlagACK, synOpts, nil))
	want(t, r, Replace)
	r = s.inA(r.Packet)
	want(t, r, Replace)
	r = s.outA(s.cliSeg(cISN.Add(1), sISN.Add(1), packet.FlagACK, ackOpts, nil)) // carries Init1
	want(t, r, Replace)
	r = s.inB(r.Packet)
	want(t, r, Replace) // the bare ACK for the server stack
	if len(r.ToPeer) != 1 {
		t.Fatalf("B injected %d packets, want Init2", len(r.ToPeer))
	}
	r = s.inA(r.ToPeer[0]) // Init2
	want(t, r, Drop)
	if len(r.ToPeer) != 1 {
		t.Fatalf("A injected %d packets, want its ACK of Init2", len(r.ToPeer))
	}
	r = s.inB(r.ToPeer[0])
	if r.Verdict != Drop && r.Verdict != Replace {
		t.Fatalf("engine ACK at B: %v", r.Verdict)
	}
}

func TestScriptHandshakeBytes(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "v4", true: "v6"}[v6], func(t *testing.T) {
			s := newScript(t, Config{}, Config{})
			if v6 {
				s.v6()
			}
			syn := s.cliSeg(cISN, 0, packet.FlagSYN, synOpts, nil)
			r := s.outA(syn)
			want(t, r, Replace)
			// Our TEPs, least preferred first (RFC 8547 §4.5): P-256, X25519.
			if got, w := enoOf(t, r.Packet), []byte{0x45, 4, 0x21, 0x23}; !bytes.Equal(got, w) {
				t.Errorf("SYN ENO % x, want % x", got, w)
			}
			wireSYN := r.Packet
			// A retransmitted SYN carries the identical option.
			if r2 := s.outA(syn); !bytes.Equal(r2.Packet, wireSYN) {
				t.Errorf("retransmitted SYN differs")
			}
			r = s.inB(wireSYN)
			want(t, r, Replace)
			if mss, _ := packet.MSS(view(t, r.Packet).TCP.Options()); mss != 1460-segGrowth {
				t.Errorf("server stack sees MSS %d, want %d", mss, 1460-segGrowth)
			}
			synack := s.srvSeg(sISN, cISN.Add(1), packet.FlagSYN|packet.FlagACK, synOpts, nil)
			r = s.outB(synack)
			want(t, r, Replace)
			if got, w := enoOf(t, r.Packet), []byte{0x45, 4, 0x01, 0x23}; !bytes.Equal(got, w) {
				t.Errorf("SYN-ACK ENO % x, want % x", got, w)
			}
			if r2 := s.outB(synack); !bytes.Equal(r2.Packet, r.Packet) {
				t.Errorf("retransmitted SYN-ACK differs")
			}
			r = s.inA(r.Packet)
			want(t, r, Replace)
			if mss, _ := packet.MSS(view(t, r.Packet).TCP.Options()); mss != 1460-segGrowth {
				t.Errorf("client stack sees MSS %d", mss)
			}
			r = s.outA(s.cliSeg(cISN.Add(1), sISN.Add(1), packet.FlagACK, ackOpts, nil))
			want(t, r, Replace)
			p := view(t, r.Packet)
			if got := enoOf(t, r.Packet); !bytes.Equal(got, []byte{0x45, 2}) {
				t.Errorf("third segment ENO % x, want 45 02", got)
			}
			init1 := p.Payload()
			if len(init1) != 73+2*3 || binary.BigEndian.Uint32(init1) != 0x15101a0e || p.TCP.Flags()&packet.FlagPSH == 0 {
				t.Errorf("third segment payload: %d bytes % x, flags %#x", len(init1), init1[:8], p.TCP.Flags())
			}
			if p.TCP.Seq() != cISN.Add(1) {
				t.Errorf("Init1 at seq %#x", p.TCP.Seq())
			}
			r = s.inB(r.Packet)
			want(t, r, Replace)
			if pl := view(t, r.Packet).Payload(); len(pl) != 0 {
				t.Errorf("server stack got %d payload bytes of Init1", len(pl))
			}
			init2 := view(t, r.ToPeer[0])
			if pl := init2.Payload(); len(pl) != 74 || binary.BigEndian.Uint32(pl) != 0x097105e0 || init2.TCP.Seq() != sISN.Add(1) || init2.TCP.Ack() != cISN.Add(1+79) {
				t.Errorf("Init2 %d bytes seq %#x ack %#x", len(pl), init2.TCP.Seq(), init2.TCP.Ack())
			}
			r = s.inA(r.ToPeer[0])
			want(t, r, Drop)
			ack := view(t, r.ToPeer[0])
			if ack.TCP.Ack() != sISN.Add(1+74) || ack.TCP.Seq() != cISN.Add(1+79) {
				t.Errorf("A's ACK of Init2: seq %#x ack %#x", ack.TCP.Seq(), ack.TCP.Ack())
			}
			a, b := s.a.Snapshot(), s.b.Snapshot()
			if len(a) != 1 || len(b) != 1 || a[0].State != StateEstablished || b[0].State != StateEstablished {
				t.Fatalf("flows %+v / %+v", a, b)
			}
			if !bytes.Equal(a[0].SessionID, b[0].SessionID) || len(a[0].SessionID) != 33 || a[0].SessionID[0] != 0x23 {
				t.Errorf("session ids %x / %x", a[0].SessionID, b[0].SessionID)
			}
		})
	}
}

// Offsets of the first frame in each direction after a fresh handshake.
const (
	init1Len = 73 + 2*3 // three AEADs offered
	init2Len = 74
)

func payloadOf(t *testing.T, b []byte) []byte { return view(t, b).Payload() }

func TestScriptDataMapping(t *testing.T) {
	s := newScript(t, Config{}, Config{})
	s.handshake()
	d := pattern(310, 7)
	p0 := cISN.Add(1)
	ack := sISN.Add(1)
	var wire [][]byte
	for _, r := range [][2]int{{0, 100}, {100, 300}, {300, 310}} {
		res := s.outA(s.cliSeg(p0.Add(seq.Size(r[0])), ack, packet.FlagACK|packet.FlagPSH, ackOpts, d[r[0]:r[1]]))
		want(t, res, Replace)
		wire = append(wire, res.Packet)
	}
	var cstream []byte
	for i, w := range wire {
		p := view(t, w)
		wantSeq := p0.Add(seq.Size(init1Len + len(cstream)))
		if p.TCP.Seq() != wantSeq {
			t.Errorf("segment %d at wire seq %#x, want %#x", i, p.TCP.Seq(), wantSeq)
		}
		if got := len(p.Payload()); got != []int{100, 200, 10}[i]+frameOverhead {
			t.Errorf("segment %d carries %d wire bytes", i, got)
		}
		if bytes.Contains(p.Payload(), d[100:120]) {
			t.Errorf("segment %d carries plaintext", i)
		}
		cstream = append(cstream, p.Payload()...)
	}
	tests := []struct {
		name       string
		from, to   int
		wantC0     int // offsets into cstream
		wantC1     int
		wantPieces int
	}{
		{"coalesced", 0, 310, 0, len(cstream), 1},
		{"split inside a frame", 50, 150, frameHdr + 50, 120 + 220, 1},
		{"first byte only", 0, 1, 0, 120, 1},
		{"last frame", 300, 310, 340, len(cstream), 1},
	}
	for _, tt := range tests {
		res := s.outA(s.cliSeg(p0.Add(seq.Size(tt.from)), ack, packet.FlagACK, ackOpts, d[tt.from:tt.to]))
		want(t, res, Replace)
		p := view(t, res.Packet)
		if p.TCP.Seq() != p0.Add(seq.Size(init1Len+tt.wantC0)) {
			t.Errorf("%s: wire seq %#x", tt.name, p.TCP.Seq())
		}
		if !bytes.Equal(p.Payload(), cstream[tt.wantC0:tt.wantC1]) {
			t.Errorf("%s: retransmission is not the bytes first sent at those offsets", tt.name)
		}
	}
	// The server's engine delivers each verified frame as plaintext.
	for i, w := range wire {
		res := s.inB(w)
		want(t, res, Replace)
		p := view(t, res.Packet)
		from := []int{0, 100, 300}[i]
		if p.TCP.Seq() != p0.Add(seq.Size(from)) || !bytes.Equal(p.Payload(), d[from:from+len(p.Payload())]) || len(p.Payload()) != []int{100, 200, 10}[i] {
			t.Errorf("delivery %d: seq %#x, %d bytes", i, p.TCP.Seq(), len(p.Payload()))
		}
	}
	// A retransmission the stack already has, with nothing unacked at the
	// stack past the redelivery interval: dropped and answered by an ACK.
	s.now = s.now.Add(time.Second)
	s.inB(s.srvSeg(ack, p0.Add(310), packet.FlagACK, ackOpts, nil)) // not a valid direction: ignored
	res := s.outB(s.srvSeg(ack, p0.Add(310), packet.FlagACK, ackOpts, nil))
	want(t, res, Replace)
	if a := view(t, res.Packet).TCP.Ack(); a != p0.Add(seq.Size(init1Len+len(cstream))) {
		t.Errorf("server's ack of P 310 went out as %#x", a)
	}
	res = s.inB(wire[1])
	want(t, res, Drop)
	if len(res.ToPeer) != 1 {
		t.Fatalf("duplicate not answered by an ACK")
	}
	// The client's engine maps the wire ack back to P.
	res = s.inA(res.ToPeer[0])
	if res.Verdict == Replace {
		if a := view(t, res.Packet).TCP.Ack(); a != p0.Add(310) {
			t.Errorf("client stack got ack %#x, want %#x", a, p0.Add(310))
		}
	}
	fi, _ := s.a.Lookup(s.cli, s.srv)
	if fi.BytesOut != 310 || fi.FramesOut != 3 {
		t.Errorf("snapshot: %+v", fi)
	}
}

func TestScriptSACK(t *testing.T) {
	s := newScript(t, Config{}, Config{})
	s.handshake()
	p0, ack := cISN.Add(1), sISN.Add(1)
	d := pattern(300, 1)
	var wire [][]byte
	for i := 0; i < 3; i++ {
		res := s.outA(s.cliSeg(p0.Add(seq.Size(100*i)), ack, packet.FlagACK, ackOpts, d[100*i:100*i+100]))
		wire = append(wire, res.Packet)
	}
	want(t, s.inB(wire[0]), Replace)
	res := s.inB(wire[2]) // wire[1] lost
	want(t, res, Drop)
	if len(res.ToPeer) != 1 {
		t.Fatal("out-of-order segment not answered")
	}
	dup := view(t, res.ToPeer[0])
	bl, n := packet.SACKBlocks(dup.TCP.Options())
	c2 := p0.Add(init1Len + 2*120)
	if n != 1 || bl[0][0] != c2 || bl[0][1] != c2.Add(120) {
		t.Fatalf("engine SACK %v (n=%d), want [%#x,%#x)", bl[:n], n, c2, c2.Add(120))
	}
	if dup.TCP.Ack() != p0.Add(init1Len) {
		t.Errorf("dup ack %#x", dup.TCP.Ack())
	}
	// The client's engine maps the block inward to the frame's P range.
	res = s.inA(res.ToPeer[0])
	want(t, res, Replace)
	bl, n = packet.SACKBlocks(view(t, res.Packet).TCP.Options())
	if n != 1 || bl[0][0] != p0.Add(200) || bl[0][1] != p0.Add(300) {
		t.Errorf("client stack got SACK %v", bl[:n])
	}
	// The hole is filled: both frames are delivered in one segment.
	res = s.inB(wire[1])
	want(t, res, Replace)
	if p := view(t, res.Packet); p.TCP.Seq() != p0.Add(100) || !bytes.Equal(p.Payload(), d[100:]) {
		t.Errorf("fill delivered seq %#x, %d bytes", p.TCP.Seq(), len(p.Payload()))
	}
}

func TestScriptFINp(t *testing.T) {
	s := newScript(t, Config{}, Config{})
	s.handshake()
	p0, ack := cISN.Add(1), sISN.Add(1)
	res := s.outA(s.cliSeg(p0, ack, packet.FlagACK, ackOpts, []byte("hello")))
	want(t, s.inB(res.Packet), Replace)
	// A bare FIN grows an empty FINp frame.
	res = s.outA(s.cliSeg(p0.Add(5), ack, packet.FlagACK|packet.FlagFIN, ackOpts, nil))
	want(t, res, Replace)
	p := view(t, res.Packet)
	if len(p.Payload()) != frameOverhead || p.TCP.Flags()&packet.FlagFIN == 0 || p.TCP.Seq() != p0.Add(init1Len+5+frameOverhead) {
		t.Fatalf("FIN segment: %d bytes, flags %#x, seq %#x", len(p.Payload()), p.TCP.Flags(), p.TCP.Seq())
	}
	finWire := res.Packet
	// Its retransmission is identical.
	if r2 := s.outA(s.cliSeg(p0.Add(5), ack, packet.FlagACK|packet.FlagFIN, ackOpts, nil)); !bytes.Equal(r2.Packet, finWire) {
		t.Error("retransmitted FIN differs")
	}
	res = s.inB(finWire)
	want(t, res, Replace)
	p = view(t, res.Packet)
	if p.TCP.Flags()&packet.FlagFIN == 0 || len(p.Payload()) != 0 || p.TCP.Seq() != p0.Add(5) {
		t.Errorf("server stack got flags %#x seq %#x len %d", p.TCP.Flags(), p.TCP.Seq(), len(p.Payload()))
	}
	// The server acks the FIN; the wire ack covers the FINp frame and FIN.
	res = s.outB(s.srvSeg(ack, p0.Add(6), packet.FlagACK, ackOpts, nil))
	if a := view(t, res.Packet).TCP.Ack(); a != p0.Add(init1Len+5+frameOverhead+frameOverhead+1) {
		t.Errorf("FIN acked on the wire as %#x", a)
	}
	res = s.inA(res.Packet)
	if a := view(t, res.Packet).TCP.Ack(); a != p0.Add(6) {
		t.Errorf("client stack got ack %#x for its FIN", a)
	}
}

func TestScriptTamperRST(t *testing.T) {
	s := newScript(t, Config{}, Config{})
	s.handshake()
	p0, ack := cISN.Add(1), sISN.Add(1)
	first := s.outA(s.cliSeg(p0, ack, packet.FlagACK, ackOpts, pattern(100, 0))).Packet
	want(t, s.inB(first), Replace)
	w := append([]byte(nil), s.outA(s.cliSeg(p0.Add(100), ack, packet.FlagACK, ackOpts, pattern(50, 9))).Packet...)
	var pp packet.Packet
	if err := packet.Parse(w, &pp); err != nil {
		t.Fatal(err)
	}
	pp.Payload()[30] ^= 1
	pp.FixTCPChecksum()
	res := s.inB(w)
	want(t, res, Drop)
	if len(res.ToPeer) < 1 || len(res.ToLocal) < 1 {
		t.Fatalf("abort sent %d RSTs to the peer, %d to the stack", len(res.ToPeer), len(res.ToLocal))
	}
	for _, b := range res.ToPeer {
		if p := view(t, b); p.TCP.Flags()&packet.FlagRST == 0 || p.Dst != s.cli.Addr() {
			t.Errorf("toward peer: flags %#x dst %v", p.TCP.Flags(), p.Dst)
		}
	}
	if p := view(t, res.ToPeer[0]); p.TCP.Seq() != ack.Add(init2Len) {
		t.Errorf("RST to peer at seq %#x, want %#x (after Init2)", p.TCP.Seq(), ack.Add(init2Len))
	}
	if p := view(t, res.ToLocal[0]); p.TCP.Flags()&packet.FlagRST == 0 || p.TCP.Seq() != p0.Add(100) || p.Dst != s.srv.Addr() {
		t.Errorf("toward stack: flags %#x seq %#x", p.TCP.Flags(), p.TCP.Seq())
	}
	if c := s.b.Counters(); c.Aborts[AbortAuth] != 1 {
		t.Errorf("aborts %v", c.Aborts)
	}
	// Anything else on the flow is dropped; a stack's ACK is answered by
	// an exact RST.
	res = s.outB(s.srvSeg(ack, p0.Add(100), packet.FlagACK, ackOpts, nil))
	want(t, res, Drop)
	if len(res.ToLocal) != 1 || view(t, res.ToLocal[0]).TCP.Seq() != p0.Add(100) {
		t.Errorf("challenge ACK not answered exactly")
	}
}

func TestScriptProbes(t *testing.T) {
	s := newScript(t, Config{}, Config{})
	s.handshake()
	p0, ack := cISN.Add(1), sISN.Add(1)
	w := s.outA(s.cliSeg(p0, ack, packet.FlagACK, ackOpts, pattern(100, 0))).Packet
	res := s.inB(w)
	res = s.outB(s.srvSeg(ack, p0.Add(100), packet.FlagACK, ackOpts, nil))
	cAck := view(t, res.Packet).TCP.Ack()
	s.inA(res.Packet)
	// Keep-alive: zero-length at snd.una-1.
	res = s.outA(s.cliSeg(p0.Add(99), ack, packet.FlagACK, ackOpts, nil))
	want(t, res, Replace)
	if p := view(t, res.Packet); p.TCP.Seq() != cAck.Add(^seq.Size(0)) || len(p.Payload()) != 0 {
		t.Errorf("keep-alive at wire seq %#x, want %#x", p.TCP.Seq(), cAck-1)
	}
	// BSD keep-alive with one garbage byte: no plaintext byte goes out.
	res = s.outA(s.cliSeg(p0.Add(99), ack, packet.FlagACK, ackOpts, []byte{0x99}))
	want(t, res, Replace)
	if p := view(t, res.Packet); len(p.Payload()) != 0 || p.TCP.Seq() != cAck.Add(^seq.Size(0)) {
		t.Errorf("BSD keep-alive: %d bytes at %#x", len(p.Payload()), p.TCP.Seq())
	}
	// The peer engine answers a probe below its stream with an ACK.
	res = s.inB(res.Packet)
	want(t, res, Drop)
	if len(res.ToPeer) != 1 {
		t.Errorf("probe not answered")
	}
	// A window update passes with translated numbers.
	res = s.outA(build(t, s.cli, s.srv, p0.Add(100), ack, packet.FlagACK, 4321, ackOpts, nil))
	want(t, res, Replace)
	if p := view(t, res.Packet); p.TCP.Window() != 4321 || p.TCP.Seq() != cAck || p.TCP.Ack() != ack.Add(init2Len) {
		t.Errorf("window update: wnd %d seq %#x ack %#x", p.TCP.Window(), p.TCP.Seq(), p.TCP.Ack())
	}
}

func withENO(opts []byte, enos ...[]byte) []byte {
	o := append([]byte(nil), opts...)
	for _, e := range enos {
		o = append(o, e...)
	}
	return o
}

func TestScriptFallbacks(t *testing.T) {
	tests := []struct {
		name   string
		steps  func(s *script) (Result, *Engine)
		reason FallbackReason
	}{
		{"server: SYN without ENO", func(s *script) (Result, *Engine) {
			return s.inB(s.cliSeg(cISN, 0, packet.FlagSYN, synOpts, nil)), s.b
		}, FallbackNoPeerENO},
		{"server: two ENO options", func(s *script) (Result, *Engine) {
			return s.inB(s.cliSeg(cISN, 0, packet.FlagSYN, withENO(synOpts, []byte{0x45, 3, 0x23}, []byte{0x45, 3, 0x23}), nil)), s.b
		}, FallbackDuplicateENO},
		{"server: malformed ENO", func(s *script) (Result, *Engine) {
			return s.inB(s.cliSeg(cISN, 0, packet.FlagSYN, withENO(synOpts, []byte{0x45, 4, 0x81, 0x21}), nil)), s.b
		}, FallbackMalformed},
		{"server: vacuous ENO", func(s *script) (Result, *Engine) {
			return s.inB(s.cliSeg(cISN, 0, packet.FlagSYN, withENO(synOpts, []byte{0x45, 3, 0x00}), nil)), s.b
		}, FallbackVacuous},
		{"server: no TEP in common", func(s *script) (Result, *Engine) {
			s.inB(s.cliSeg(cISN, 0, packet.FlagSYN, withENO(synOpts, []byte{0x45, 3, 0x30}), nil))
			return s.outB(s.srvSeg(sISN, cISN.Add(1), packet.FlagSYN|packet.FlagACK, synOpts, nil)), s.b
		}, FallbackNoAnswer},
		{"server: third segment without ENO", func(s *script) (Result, *Engine) {
			s.inB(s.cliSeg(cISN, 0, packet.FlagSYN, withENO(synOpts, []byte{0x45, 3, 0x23}), nil))
			s.outB(s.srvSeg(sISN, cISN.Add(1), packet.FlagSYN|packet.FlagACK, synOpts, nil))
			return s.inB(s.cliSeg(cISN.Add(1), sISN.Add(1), packet.FlagACK, ackOpts, nil)), s.b
		}, FallbackNoENOOnACK},
		{"client: SYN-ACK without ENO", func(s *script) (Result, *Engine) {
			s.outA(s.cliSeg(cISN, 0, packet.FlagSYN, synOpts, nil))
			return s.inA(s.srvSeg(sISN, cISN.Add(1), packet.FlagSYN|packet.FlagACK, synOpts, nil)), s.a
		}, FallbackNoPeerENO},
		{"client: SYN-ACK with b=0", func(s *script) (Result, *Engine) {
			s.outA(s.cliSeg(cISN, 0, packet.FlagSYN, synOpts, nil))
			return s.inA(s.srvSeg(sISN, cISN.Add(1), packet.FlagSYN|packet.FlagACK, withENO(synOpts, []byte{0x45, 3, 0x23}), nil)), s.a
		}, FallbackRoleClash},
		{"client: SYN-ACK picks a TEP we did not offer", func(s *script) (Result, *Engine) {
			s.outA(s.cliSeg(cISN, 0, packet.FlagSYN, synOpts, nil))
			return s.inA(s.srvSeg(sISN, cISN.Add(1), packet.FlagSYN|packet.FlagACK, withENO(synOpts, []byte{0x45, 4, 0x01, 0x24}), nil)), s.a
		}, FallbackNoCommonTEP},
		{"client: SYN with data", func(s *script) (Result, *Engine) {
			return s.outA(s.cliSeg(cISN, 0, packet.FlagSYN, synOpts, []byte("tfo"))), s.a
		}, FallbackSYNData},
		{"client: no room for ENO", func(s *script) (Result, *Engine) {
			full := []byte{2, 4, 5, 0xb4, 5, 34, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
			return s.outA(s.cliSeg(cISN, 0, packet.FlagSYN, full, nil)), s.a
		}, FallbackNoOptionSpace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScript(t, Config{}, Config{})
			r, e := tt.steps(s)
			if r.Verdict != Accept || len(r.ToPeer)+len(r.ToLocal) != 0 {
				t.Errorf("fallback segment: verdict %v, %d injected", r.Verdict, len(r.ToPeer)+len(r.ToLocal))
			}
			c := e.Counters()
			if c.Fallbacks[tt.reason] != 1 {
				t.Errorf("fallbacks %v, want one %v", c.Fallbacks, tt.reason)
			}
			if e.NumFlows() != 0 {
				t.Errorf("%d flows tracked after fallback", e.NumFlows())
			}
		})
	}
}

func TestScriptRequiredAborts(t *testing.T) {
	req := Config{Policy: func(_, _ netip.AddrPort) Mode { return Required }}
	s := newScript(t, req, req)
	r := s.outA(s.cliSeg(cISN, 0, packet.FlagSYN, synOpts, nil))
	want(t, r, Replace)
	r = s.inA(s.srvSeg(sISN, cISN.Add(1), packet.FlagSYN|packet.FlagACK, synOpts, nil))
	want(t, r, Drop)
	if len(r.ToPeer) != 1 || len(r.ToLocal) != 1 {
		t.Fatalf("required abort sent %d/%d RSTs", len(r.ToPeer), len(r.ToLocal))
	}
	if p := view(t, r.ToLocal[0]); p.TCP.Flags()&packet.FlagRST == 0 || p.TCP.Ack() != cISN.Add(1) {
		t.Errorf("RST to the SYN-SENT stack: flags %#x ack %#x", p.TCP.Flags(), p.TCP.Ack())
	}
	// A passive required port answers a SYN without ENO with a RST.
	r = s.inB(s.cliSeg(cISN, 0, packet.FlagSYN, synOpts, nil))
	want(t, r, Drop)
	if len(r.ToPeer) != 1 || len(r.ToLocal) != 0 {
		t.Fatalf("passive required: %d/%d RSTs", len(r.ToPeer), len(r.ToLocal))
	}
	if p := view(t, r.ToPeer[0]); p.TCP.Flags()&packet.FlagRST == 0 || p.TCP.Ack() != cISN.Add(1) {
		t.Errorf("RST to the peer: flags %#x ack %#x", p.TCP.Flags(), p.TCP.Ack())
	}
}

// clientUntilInit1 drives engine A through the handshake with a server
// played by hand, and returns A's Init1 bytes.
func (s *script) clientUntilInit1() []byte {
	t := s.t
	s.outA(s.cliSeg(cISN, 0, packet.FlagSYN, synOpts, nil))
	want(t, s.inA(s.srvSeg(sISN, cISN.Add(1), packet.FlagSYN|packet.FlagACK, withENO(synOpts, []byte{0x45, 4, 0x01, 0x23}), nil)), Replace)
	r := s.outA(s.cliSeg(cISN.Add(1), sISN.Add(1), packet.FlagACK, ackOpts, nil))
	want(t, r, Replace)
	return payloadOf(t, r.Packet)
}

// serverUntilInit drives engine B through the handshake with a client
// played by hand, up to the point where B waits for Init1.
func (s *script) serverUntilInit() {
	t := s.t
	want(t, s.inB(s.cliSeg(cISN, 0, packet.FlagSYN, withENO(synOpts, []byte{0x45, 3, 0x23}), nil)), Replace)
	want(t, s.outB(s.srvSeg(sISN, cISN.Add(1), packet.FlagSYN|packet.FlagACK, synOpts, nil)), Replace)
}

func x25519Pub(t *testing.T, seed byte) []byte {
	k, err := crypto.GenerateKey(crypto.TEPX25519, newRand(seed))
	if err != nil {
		t.Fatal(err)
	}
	return k.Public()
}

func TestScriptInitErrors(t *testing.T) {
	nonce := bytes.Repeat([]byte{7}, 32)
	tests := []struct {
		name   string
		client bool // the engine under test is the client (receives Init2)
		msg    func(t *testing.T) []byte
		reason AbortReason
	}{
		{"Init2 cipher not offered", true, func(t *testing.T) []byte {
			m := crypto.Init2{Cipher: crypto.AES256GCM, Nonce: nonce, Pub: x25519Pub(t, 3)}
			return m.Marshal(nil)
		}, AbortUnofferedCipher},
		{"Init2 unknown cipher", true, func(t *testing.T) []byte {
			m := crypto.Init2{Cipher: 0x7777, Nonce: nonce, Pub: x25519Pub(t, 3)}
			return m.Marshal(nil)
		}, AbortUnofferedCipher},
		{"Init2 invalid public key", true, func(t *testing.T) []byte {
			m := crypto.Init2{Cipher: crypto.AES128GCM, Nonce: nonce, Pub: make([]byte, 32)}
			return m.Marshal(nil)
		}, AbortInvalidKey},
		{"Init2 bad magic", true, func(t *testing.T) []byte {
			m := crypto.Init2{Cipher: crypto.AES128GCM, Nonce: nonce, Pub: x25519Pub(t, 3)}
			b := m.Marshal(nil)
			b[0] ^= 0xff
			return b
		}, AbortMalformedInit},
		{"Init2 too long", true, func(t *testing.T) []byte {
			return []byte{0x09, 0x71, 0x05, 0xe0, 0, 1, 0, 0}
		}, AbortMalformedInit},
		{"Init2 short message_len", true, func(t *testing.T) []byte {
			return []byte{0x09, 0x71, 0x05, 0xe0, 0, 0, 0, 12, 0, 1, 2, 3}
		}, AbortMalformedInit},
		{"Init1 no common cipher", false, func(t *testing.T) []byte {
			m := crypto.Init1{Ciphers: []crypto.AEADID{crypto.AES256GCM}, Nonce: nonce, Pub: x25519Pub(t, 4)}
			return m.Marshal(nil)
		}, AbortNoCommonCipher},
		{"Init1 invalid public key", false, func(t *testing.T) []byte {
			m := crypto.Init1{Ciphers: []crypto.AEADID{crypto.AES128GCM}, Nonce: nonce, Pub: make([]byte, 32)}
			return m.Marshal(nil)
		}, AbortInvalidKey},
		{"Init1 garbage", false, func(t *testing.T) []byte {
			return bytes.Repeat([]byte{0xab}, 100)
		}, AbortMalformedInit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{AEADs: []crypto.AEADID{crypto.AES128GCM}}
			s := newScript(t, cfg, cfg)
			var r Result
			var e *Engine
			if tt.client {
				init1 := s.clientUntilInit1()
				r = s.inA(s.srvSeg(sISN.Add(1), cISN.Add(1+seq.Size(len(init1))), packet.FlagACK|packet.FlagPSH, ackOpts, tt.msg(t)))
				e = s.a
			} else {
				s.serverUntilInit()
				r = s.inB(s.cliSeg(cISN.Add(1), sISN.Add(1), packet.FlagACK|packet.FlagPSH, withENO(ackOpts, eno.NonSYN), tt.msg(t)))
				e = s.b
			}
			want(t, r, Drop)
			if len(r.ToPeer) == 0 || len(r.ToLocal) == 0 {
				t.Errorf("abort sent %d/%d RSTs", len(r.ToPeer), len(r.ToLocal))
			}
			if c := e.Counters(); c.Aborts[tt.reason] != 1 {
				t.Errorf("aborts %v, want one %v", c.Aborts, tt.reason)
			}
			fl := e.Snapshot()
			if len(fl) != 1 || fl[0].State != StateAborted || fl[0].Abort != tt.reason || fl[0].LastError == "" {
				t.Errorf("snapshot %+v", fl)
			}
		})
	}
}

// TestScriptHeldUntilKeys: data the client stack sends before Init2 is held
// and released framed once the keys exist; past the bound it is dropped.
func TestScriptHeldUntilKeys(t *testing.T) {
	s := newScript(t, Config{MaxHeldPerFlow: 3000}, Config{})
	p0, ack := cISN.Add(1), sISN.Add(1)
	want(t, s.inB(s.outA(s.cliSeg(cISN, 0, packet.FlagSYN, synOpts, nil)).Packet), Replace)
	want(t, s.inA(s.outB(s.srvSeg(sISN, cISN.Add(1), packet.FlagSYN|packet.FlagACK, synOpts, nil)).Packet), Replace)
	// The stack's first segment is data (a delayed third ACK).
	r := s.outA(s.cliSeg(p0, ack, packet.FlagACK|packet.FlagPSH, ackOpts, pattern(1000, 0)))
	want(t, r, Hold)
	tok := r.Token
	if len(r.ToPeer) != 1 || len(payloadOf(t, r.ToPeer[0])) != init1Len {
		t.Fatalf("Init1 not sent while holding data")
	}
	init1 := r.ToPeer[0]
	r2 := s.outA(s.cliSeg(p0.Add(1000), ack, packet.FlagACK|packet.FlagPSH, ackOpts, pattern(1000, 1)))
	want(t, r2, Hold)
	r3 := s.outA(s.cliSeg(p0.Add(2000), ack, packet.FlagACK|packet.FlagPSH, ackOpts, pattern(1500, 1)))
	want(t, r3, Drop) // over MaxHeldPerFlow
	if s.a.HeldBytes() == 0 {
		t.Fatal("nothing held")
	}
	r = s.inB(init1)
	r = s.inA(r.ToPeer[0]) // Init2: keys, release
	if len(r.Released) != 2 || r.Released[0].Token != tok || r.Released[0].Verdict != Replace || r.Released[1].Verdict != Replace {
		t.Fatalf("released %+v", r.Released)
	}
	p := view(t, r.Released[0].Packet)
	if p.TCP.Seq() != p0.Add(init1Len) || len(p.Payload()) != 1000+frameOverhead || p.TCP.Ack() != ack.Add(init2Len) {
		t.Errorf("released segment seq %#x len %d ack %#x", p.TCP.Seq(), len(p.Payload()), p.TCP.Ack())
	}
	if s.a.HeldBytes() != 0 {
		t.Errorf("%d bytes still held", s.a.HeldBytes())
	}
	// The server delivers the released data.
	rb := s.inB(r.Released[0].Packet)
	want(t, rb, Replace)
	if !bytes.Equal(payloadOf(t, rb.Packet), pattern(1000, 0)) {
		t.Error("released data not delivered intact")
	}
}

// TestScriptHoldTimeout: held segments are dropped after HoldTimeout, and
// Init1 is retransmitted by the engine's own timer.
func TestScriptHoldTimeout(t *testing.T) {
	s := newScript(t, Config{HoldTimeout: time.Second, InitRTO: 100 * time.Millisecond}, Config{})
	init1 := s.clientUntilInit1()
	r := s.outA(s.cliSeg(cISN.Add(1), sISN.Add(1), packet.FlagACK|packet.FlagPSH, ackOpts, pattern(100, 0)))
	want(t, r, Hold)
	d := s.a.NextDeadline()
	if d.IsZero() || d.Sub(s.now) > 100*time.Millisecond {
		t.Fatalf("next deadline %v after now", d.Sub(s.now))
	}
	s.now = s.now.Add(100 * time.Millisecond)
	r = s.a.Tick(s.now)
	if len(r.ToPeer) != 1 || !bytes.Equal(payloadOf(t, r.ToPeer[0]), init1) {
		t.Fatalf("Init1 not retransmitted: %d packets", len(r.ToPeer))
	}
	s.now = s.now.Add(time.Second)
	r = s.a.Tick(s.now)
	if len(r.Released) != 1 || r.Released[0].Verdict != Drop {
		t.Fatalf("held segment not dropped: %+v", r.Released)
	}
	if c := s.a.Counters(); c.Drops[DropHoldTimeout] != 1 || c.Retransmits < 2 {
		t.Errorf("counters: %s", ctrSummary(c))
	}
}

// TestScriptUrgent: the urgent pointer is carried in the frame (URGp) and
// translated on the wire; the receiver delivers URG from URGp.
func TestScriptUrgent(t *testing.T) {
	s := newScript(t, Config{}, Config{})
	s.handshake()
	p0, ack := cISN.Add(1), sISN.Add(1)
	// 100 bytes, the urgent byte is the 40th (BSD pointer 40: the byte
	// before seq+40).
	pkt := build(t, s.cli, s.srv, p0, ack, packet.FlagACK|packet.FlagPSH|packet.FlagURG, 1000, ackOpts, pattern(100, 0))
	var pp packet.Packet
	if err := packet.Parse(pkt, &pp); err != nil {
		t.Fatal(err)
	}
	pp.TCP.SetUrgent(40)
	pp.FixTCPChecksum()
	r := s.outA(pkt)
	want(t, r, Replace)
	w := view(t, r.Packet)
	if w.TCP.Flags()&packet.FlagURG == 0 || w.TCP.Urgent() != frameHdrURG+40 {
		t.Errorf("wire URG flags %#x pointer %d, want %d", w.TCP.Flags(), w.TCP.Urgent(), frameHdrURG+40)
	}
	if len(w.Payload()) != 100+frameOverhead+2 {
		t.Errorf("frame with URGp is %d bytes", len(w.Payload()))
	}
	r = s.inB(r.Packet)
	want(t, r, Replace)
	d := view(t, r.Packet)
	if d.TCP.Flags()&packet.FlagURG == 0 || d.TCP.Urgent() != 40 || !bytes.Equal(d.Payload(), pattern(100, 0)) {
		t.Errorf("delivered URG flags %#x pointer %d", d.TCP.Flags(), d.TCP.Urgent())
	}
}

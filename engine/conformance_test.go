package engine

import (
	"bytes"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/crypto"
	"github.com/tcpcryptd/tcpcrypt/packet"
)

// Tests that pin single requirements of RFC 8547 and RFC 8548 across every
// segment that can carry them (docs/conformance.md cites them by name).

// checkSYNENO asserts that b is a SYN segment carrying exactly the ENO
// option enoBytes.
func checkSYNENO(t *testing.T, what string, b, enoBytes []byte) {
	t.Helper()
	if view(t, b).TCP.Flags()&packet.FlagSYN == 0 {
		t.Errorf("%s: not a SYN", what)
	}
	if got := enoOf(t, b); len(got) < 3 || !bytes.Equal(got, enoBytes) {
		t.Errorf("%s: ENO % x, want % x", what, got, enoBytes)
	}
}

// checkInit asserts that b carries 45 02 (when eno is set), PSH, and the
// whole Init message msg as its only payload, at wire offset 0 of its
// sender's stream (seq isn+1).
func checkInit(t *testing.T, what string, b, msg []byte, isn uint32, eno bool) {
	t.Helper()
	p := view(t, b)
	if eno {
		if got := enoOf(t, b); !bytes.Equal(got, []byte{0x45, 2}) {
			t.Errorf("%s: ENO % x, want 45 02", what, got)
		}
	}
	if p.TCP.Flags()&packet.FlagPSH == 0 {
		t.Errorf("%s: no PSH (flags %#x)", what, p.TCP.Flags())
	}
	if !bytes.Equal(p.Payload(), msg) {
		t.Errorf("%s: payload of %d bytes is not the whole Init message (%d bytes)", what, len(p.Payload()), len(msg))
	}
	if uint32(p.TCP.Seq()) != isn+1 {
		t.Errorf("%s: at seq %#x, want %#x", what, p.TCP.Seq(), isn+1)
	}
}

// TestScriptENOUntilNonSYN: RFC 8547 §4.6 requires ENO on every segment a
// host sends until it receives a non-SYN segment. Host A: its SYN and every
// retransmission of it carry the same SYN-form option; after the SYN-ACK,
// every segment it sends before the first non-SYN segment arrives carries
// 45 02: the third segment, a pure ACK its stack sends again when the
// SYN-ACK is retransmitted, the engine's retransmissions of Init1, and the
// Init1 the engine sends when the stack's first segment carries data. Host
// B: its SYN-ACK and every retransmission of it, before and after the
// first non-SYN segment arrives, carry the same answer. (B sends nothing
// else before it receives a non-SYN segment.)
func TestScriptENOUntilNonSYN(t *testing.T) {
	for _, dataFirst := range []bool{false, true} {
		t.Run(map[bool]string{false: "pure ACK first", true: "data first"}[dataFirst], func(t *testing.T) {
			s := newScript(t, Config{InitRTO: 100 * time.Millisecond}, Config{InitRTO: 100 * time.Millisecond})
			syn := s.cliSeg(cISN, 0, packet.FlagSYN, synOpts, nil)
			r := s.outA(syn)
			want(t, r, Replace)
			synENO := enoOf(t, r.Packet)
			wireSYN := r.Packet
			checkSYNENO(t, "A's SYN", wireSYN, synENO)
			for range 2 {
				r = s.outA(syn)
				want(t, r, Replace)
				checkSYNENO(t, "A's retransmitted SYN", r.Packet, synENO)
			}
			want(t, s.inB(wireSYN), Replace)
			synack := s.srvSeg(sISN, cISN.Add(1), packet.FlagSYN|packet.FlagACK, synOpts, nil)
			r = s.outB(synack)
			want(t, r, Replace)
			ansENO := enoOf(t, r.Packet)
			wireSYNACK := r.Packet
			checkSYNENO(t, "B's SYN-ACK", wireSYNACK, ansENO)
			r = s.outB(synack)
			want(t, r, Replace)
			checkSYNENO(t, "B's retransmitted SYN-ACK", r.Packet, ansENO)
			want(t, s.inA(wireSYNACK), Replace)

			// A's first segment after the SYN-ACK.
			var third []byte
			if dataFirst {
				r = s.outA(s.cliSeg(cISN.Add(1), sISN.Add(1), packet.FlagACK|packet.FlagPSH, ackOpts, pattern(100, 0)))
				want(t, r, Hold)
				if len(r.ToPeer) != 1 {
					t.Fatalf("A sent %d packets, want Init1", len(r.ToPeer))
				}
				third = r.ToPeer[0]
			} else {
				r = s.outA(s.cliSeg(cISN.Add(1), sISN.Add(1), packet.FlagACK, ackOpts, nil))
				want(t, r, Replace)
				third = r.Packet
			}
			init1 := append([]byte(nil), payloadOf(t, third)...)
			if len(init1) != init1Len {
				t.Fatalf("third segment carries %d bytes, want Init1 (%d)", len(init1), init1Len)
			}
			checkInit(t, "A's third segment", third, init1, uint32(cISN), true)
			// B's SYN-ACK is retransmitted and reaches A (a SYN
			// segment: A keeps sending ENO); A's stack acknowledges it
			// again with a pure ACK.
			want(t, s.inA(wireSYNACK), Replace)
			r = s.outA(s.cliSeg(cISN.Add(1), sISN.Add(1), packet.FlagACK, ackOpts, nil))
			want(t, r, Replace)
			checkInit(t, "A's pure ACK after a retransmitted SYN-ACK", r.Packet, init1, uint32(cISN), true)
			// The engine's own retransmissions of Init1.
			for i := range 2 {
				s.now = s.now.Add(time.Second)
				r = s.a.Tick(s.now)
				if len(r.ToPeer) != 1 {
					t.Fatalf("Init1 retransmission %d: %d packets", i, len(r.ToPeer))
				}
				checkInit(t, "A's retransmitted Init1", r.ToPeer[0], init1, uint32(cISN), true)
			}

			// B receives its first non-SYN segment; a SYN-ACK its stack
			// retransmits after that is still the same answer.
			r = s.inB(third)
			if len(r.ToPeer) != 1 {
				t.Fatalf("B sent %d packets, want Init2", len(r.ToPeer))
			}
			r = s.outB(synack)
			want(t, r, Replace)
			checkSYNENO(t, "B's SYN-ACK after the third segment", r.Packet, ansENO)
		})
	}
}

// TestScriptInitPSH: RFC 8548 §3.3 requires PSH on the segment holding the
// last byte of Init1 and of Init2. The engine never splits an Init message:
// every segment that carries one carries all of it, at offset 0 of the
// stream, so each such segment holds the last byte and must have PSH. Both
// roles, every way the message leaves: A's third segment (a pure ACK, or
// an engine segment when the stack's first segment is data), pure ACKs that
// carry Init1 again, and the engine's retransmissions of Init1 and Init2;
// with a single TEP and a small peer MSS, and with the largest Init1 we
// make (P-521).
func TestScriptInitPSH(t *testing.T) {
	tests := []struct {
		name      string
		teps      []uint8
		mss       uint16 // the MSS both stacks announce
		dataFirst bool
	}{
		{"X25519", nil, 1460, false},
		{"X25519, data first", nil, 1460, true},
		{"P-521, MSS 536", []uint8{crypto.TEPP521}, 536, false},
		{"P-521, MSS 536, data first", []uint8{crypto.TEPP521}, 536, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{TEPs: tt.teps, InitRTO: 100 * time.Millisecond}
			s := newScript(t, cfg, cfg)
			opts := append([]byte(nil), synOpts...)
			opts[2], opts[3] = byte(tt.mss>>8), byte(tt.mss)
			want(t, s.inB(s.outA(s.cliSeg(cISN, 0, packet.FlagSYN, opts, nil)).Packet), Replace)
			want(t, s.inA(s.outB(s.srvSeg(sISN, cISN.Add(1), packet.FlagSYN|packet.FlagACK, opts, nil)).Packet), Replace)
			var third []byte
			if tt.dataFirst {
				r := s.outA(s.cliSeg(cISN.Add(1), sISN.Add(1), packet.FlagACK|packet.FlagPSH, ackOpts, pattern(100, 0)))
				want(t, r, Hold)
				if len(r.ToPeer) != 1 {
					t.Fatalf("A sent %d packets, want Init1", len(r.ToPeer))
				}
				third = r.ToPeer[0]
			} else {
				r := s.outA(s.cliSeg(cISN.Add(1), sISN.Add(1), packet.FlagACK, ackOpts, nil))
				want(t, r, Replace)
				third = r.Packet
			}
			init1 := append([]byte(nil), payloadOf(t, third)...)
			if _, err := crypto.ParseInit1(s.a.Snapshot()[0].TEP, init1); err != nil {
				t.Fatalf("third segment does not hold a whole Init1: %v", err)
			}
			checkInit(t, "Init1", third, init1, uint32(cISN), true)
			r := s.outA(s.cliSeg(cISN.Add(1), sISN.Add(1), packet.FlagACK, ackOpts, nil))
			want(t, r, Replace)
			checkInit(t, "Init1 on a later pure ACK", r.Packet, init1, uint32(cISN), true)
			s.now = s.now.Add(time.Second)
			if r := s.a.Tick(s.now); len(r.ToPeer) != 1 {
				t.Fatalf("no Init1 retransmission (%d packets)", len(r.ToPeer))
			} else {
				checkInit(t, "retransmitted Init1", r.ToPeer[0], init1, uint32(cISN), true)
			}

			r = s.inB(third)
			if len(r.ToPeer) != 1 {
				t.Fatalf("B sent %d packets, want Init2", len(r.ToPeer))
			}
			wireInit2 := r.ToPeer[0]
			init2 := append([]byte(nil), payloadOf(t, wireInit2)...)
			if _, err := crypto.ParseInit2(s.b.Snapshot()[0].TEP, init2); err != nil {
				t.Fatalf("B's segment does not hold a whole Init2: %v", err)
			}
			checkInit(t, "Init2", wireInit2, init2, uint32(sISN), false)
			s.now = s.now.Add(time.Second)
			if r := s.b.Tick(s.now); len(r.ToPeer) != 1 {
				t.Fatalf("no Init2 retransmission (%d packets)", len(r.ToPeer))
			} else {
				checkInit(t, "retransmitted Init2", r.ToPeer[0], init2, uint32(sISN), false)
			}
			// The handshake completes with these bytes.
			s.inA(wireInit2)
			if a, b := s.a.Snapshot(), s.b.Snapshot(); a[0].State != StateEstablished || b[0].State != StateEstablished {
				t.Fatalf("states %v / %v", a[0].State, b[0].State)
			}
		})
	}
}

// TestScriptRekeyRaisesAtOnce: RFC 8548 §3.8 requires a host that receives
// rekey = 1 putting the remote generation above its local one to raise its
// local generation at once. B receives A's first generation-1 frame: the
// very Process call raises B's local generation, B's answer and every frame
// B seals afterwards verify under the generation-1 key of B's direction
// (checked with a key schedule built independently from the logged secret)
// and not under generation 0. A rekey frame that does not put the remote
// generation above the local one (B already raised) raises nothing more.
func TestScriptRekeyRaisesAtOnce(t *testing.T) {
	var ss []byte
	cfgB := Config{KeyLog: func(k KeyLogKind, _, b []byte) {
		if k == KeyLogSS {
			ss = append([]byte(nil), b...)
		}
	}}
	s := newScript(t, Config{RekeyBytes: 100}, cfgB)
	s.handshake()
	fb := s.b.tab.flows[flowKey{local: s.srv, remote: s.cli}]
	if fb == nil || ss == nil {
		t.Fatal("no established flow at B, or no secret logged")
	}
	sched, err := crypto.NewSchedule(ss, nil, fb.aead)
	if err != nil {
		t.Fatal(err)
	}
	k0, err := sched.Key(0, crypto.DirBA)
	if err != nil {
		t.Fatal(err)
	}
	k1, err := sched.Key(1, crypto.DirBA)
	if err != nil {
		t.Fatal(err)
	}
	// frames splits the wire payload of a segment B sent into its frames
	// and their stream offsets (the payload starts on a frame edge).
	frames := func(b []byte) (offs []uint64, frs [][]byte) {
		t.Helper()
		p := view(t, b)
		off := uint64(p.TCP.Seq() - sISN.Add(1))
		pl := p.Payload()
		for len(pl) > 0 {
			if len(pl) < crypto.FrameHeaderLen {
				t.Fatalf("payload ends inside a frame header")
			}
			n := crypto.FrameHeaderLen + (int(pl[1])<<8 | int(pl[2]))
			if n > len(pl) {
				t.Fatalf("payload ends inside a frame")
			}
			offs, frs = append(offs, off), append(frs, pl[:n])
			off += uint64(n)
			pl = pl[n:]
		}
		return offs, frs
	}
	// checkGen1 opens every frame of a segment B sent with both keys, and
	// returns how many carry the rekey bit.
	checkGen1 := func(what string, b []byte) (rekeys int) {
		t.Helper()
		offs, frs := frames(b)
		if len(frs) == 0 {
			t.Fatalf("%s carries no frame", what)
		}
		for i, fr := range frs {
			if _, err := k1.Open(nil, offs[i], fr); err != nil {
				t.Errorf("%s, frame %d: does not verify under generation 1: %v", what, i, err)
			}
			if _, err := k0.Open(nil, offs[i], fr); err == nil {
				t.Errorf("%s, frame %d: verifies under generation 0", what, i)
			}
			rekeys += int(fr[0] & 1)
		}
		return rekeys
	}
	p0, ack := cISN.Add(1), sISN.Add(1)
	// B's data before the rekey is under generation 0.
	r := s.outB(s.srvSeg(ack, p0, packet.FlagACK, ackOpts, pattern(30, 9)))
	want(t, r, Replace)
	if p := view(t, r.Packet); func() error {
		_, err := k0.Open(nil, uint64(p.TCP.Seq()-sISN.Add(1)), p.Payload())
		return err
	}() != nil {
		t.Fatal("B's frame before the rekey is not under generation 0")
	}
	want(t, s.inA(r.Packet), Replace)
	ack = ack.Add(30)

	r = s.outA(s.cliSeg(p0, ack, packet.FlagACK, ackOpts, pattern(100, 0)))
	want(t, s.inB(r.Packet), Replace)
	r = s.outA(s.cliSeg(p0.Add(100), ack, packet.FlagACK, ackOpts, pattern(50, 1)))
	if payloadOf(t, r.Packet)[0]&1 != 1 {
		t.Fatal("A's frame past RekeyBytes lacks the rekey bit")
	}
	if g := fb.enc.Generation(); g != 0 {
		t.Fatalf("B's local generation %d before the rekey frame", g)
	}
	r = s.inB(r.Packet)
	want(t, r, Replace)
	if g, rg := fb.enc.Generation(), fb.open.gen; g != 1 || rg != 1 {
		t.Fatalf("after the rekey frame: B's local generation %d, remote %d; want 1, 1", g, rg)
	}
	if len(r.ToPeer) != 1 {
		t.Fatalf("B sent %d packets, want its empty rekey frame", len(r.ToPeer))
	}
	answer := r.ToPeer[0]
	if pl := payloadOf(t, answer); len(pl) != frameOverhead || pl[0]&1 != 1 {
		t.Fatalf("answer: %d bytes, control %#x", len(pl), pl[0])
	}
	if n := checkGen1("B's empty rekey frame", answer); n != 1 {
		t.Errorf("B's answer: %d rekey bits", n)
	}
	// B's next data frames, whether or not A has seen the answer.
	r = s.outB(s.srvSeg(ack, p0.Add(150), packet.FlagACK, ackOpts, pattern(70, 3)))
	want(t, r, Replace)
	// (The segment may start with the unacknowledged answer, which it
	// then carries again: one rekey bit at most.)
	if n := checkGen1("B's first data segment after the rekey", r.Packet); n > 1 {
		t.Errorf("B's data segment carries %d rekey bits", n)
	}
	data1 := r.Packet
	// A's retransmission of its rekey frame (same bytes) reaches B again:
	// the remote generation is not above the local one, nothing changes.
	r = s.outA(s.cliSeg(p0.Add(100), ack, packet.FlagACK, ackOpts, pattern(50, 1)))
	s.inB(r.Packet)
	if g := fb.enc.Generation(); g != 1 {
		t.Errorf("a retransmitted rekey frame moved B to generation %d", g)
	}
	r = s.outB(s.srvSeg(ack.Add(70), p0.Add(150), packet.FlagACK, ackOpts, pattern(20, 5)))
	want(t, r, Replace)
	checkGen1("B's second data segment after the rekey", r.Packet)
	// A opens both (its remote generation follows B's answer).
	want(t, s.inA(answer), Drop)
	for _, b := range [][]byte{data1, r.Packet} {
		rr := s.inA(b)
		want(t, rr, Replace)
	}
	var aborts uint64
	for _, c := range []Counters{s.a.Counters(), s.b.Counters()} {
		for _, n := range c.Aborts {
			aborts += n
		}
	}
	if aborts != 0 {
		t.Errorf("aborts: A %s / B %s", ctrSummary(s.a.Counters()), ctrSummary(s.b.Counters()))
	}
}

// TestScriptENOUntilNonSYNSimOpen is TestScriptENOUntilNonSYN for a
// simultaneous open (RFC 8547 §4.3, §4.6), with the roles arranged by the
// client end's b bit: both ends are active openers, each sends a SYN and
// then a SYN-ACK that must carry the very ENO option of its SYN, and every
// segment either sends before it receives a non-SYN segment carries ENO:
// the stacks' ACKs of the SYN-ACKs (45 02) and host A's Init1, which its
// engine sends as soon as ENO is settled, and its stack's ACK, which
// carries Init1 again. Each end receives its first non-SYN segment only at
// the end.
func TestScriptENOUntilNonSYNSimOpen(t *testing.T) {
	s := newScript(t, Config{SimOpenB: true}, Config{})
	// Both stacks connect at once; the SYNs cross.
	r := s.outA(s.cliSeg(cISN, 0, packet.FlagSYN, synOpts, nil))
	want(t, r, Replace)
	cliSYN, cliENO := r.Packet, enoOf(t, r.Packet)
	checkSYNENO(t, "client SYN", cliSYN, cliENO)
	r = s.outB(s.srvSeg(sISN, 0, packet.FlagSYN, synOpts, nil))
	want(t, r, Replace)
	srvSYN, srvENO := r.Packet, enoOf(t, r.Packet)
	checkSYNENO(t, "server SYN", srvSYN, srvENO)
	want(t, s.inA(srvSYN), Replace)
	want(t, s.inB(cliSYN), Replace)

	// Each stack answers the other's SYN with a SYN-ACK of its own ISN.
	r = s.outA(s.cliSeg(cISN, sISN.Add(1), packet.FlagSYN|packet.FlagACK, synOpts, nil))
	want(t, r, Replace)
	cliSYNACK := r.Packet
	checkSYNENO(t, "client SYN-ACK (same option as its SYN)", cliSYNACK, cliENO)
	r = s.outB(s.srvSeg(sISN, cISN.Add(1), packet.FlagSYN|packet.FlagACK, synOpts, nil))
	want(t, r, Replace)
	srvSYNACK := r.Packet
	checkSYNENO(t, "server SYN-ACK (same option as its SYN)", srvSYNACK, srvENO)

	// The SYN-ACKs arrive: ENO is settled at both ends. The client set
	// b = 1, so it is host B and the server host A, whose engine sends
	// Init1 at once.
	want(t, s.inA(srvSYNACK), Replace)
	r = s.inB(cliSYNACK)
	want(t, r, Replace)
	if len(r.ToPeer) != 1 {
		t.Fatalf("host A (server) sent %d packets when ENO settled, want Init1", len(r.ToPeer))
	}
	init1Seg := r.ToPeer[0]
	init1 := append([]byte(nil), payloadOf(t, init1Seg)...)
	checkInit(t, "host A's Init1", init1Seg, init1, uint32(sISN), true)

	// The stacks acknowledge the SYN-ACKs; neither end has received a
	// non-SYN segment yet, so both ACKs carry ENO.
	r = s.outA(s.cliSeg(cISN.Add(1), sISN.Add(1), packet.FlagACK, ackOpts, nil))
	want(t, r, Replace)
	if got := enoOf(t, r.Packet); !bytes.Equal(got, []byte{0x45, 2}) {
		t.Errorf("host B's (client's) ACK of the SYN-ACK: ENO % x, want 45 02", got)
	}
	cliACK := r.Packet
	r = s.outB(s.srvSeg(sISN.Add(1), cISN.Add(1), packet.FlagACK, ackOpts, nil))
	want(t, r, Replace)
	checkInit(t, "host A's (server's) ACK of the SYN-ACK", r.Packet, init1, uint32(sISN), true)

	// Now the first non-SYN segments arrive: B answers Init1 with Init2.
	r = s.inA(init1Seg)
	if len(r.ToPeer) != 1 {
		t.Fatalf("host B sent %d packets for Init1, want Init2", len(r.ToPeer))
	}
	s.inB(cliACK)
	r = s.inB(r.ToPeer[0])
	if c := s.b.Counters(); c.FlowsEncrypted != 1 {
		t.Errorf("host A (server): flows_encrypted %d after Init2, want 1", c.FlowsEncrypted)
	}
}

package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/packet"
	"github.com/tcpcryptd/tcpcrypt/packet/seq"
)

// Fuzz input: a sequence of records
//
//	ctl(1) | len(2, big-endian) | packet(len)
//
// ctl bit 0: Inbound (else Outbound); bit 1: engine B (else A); bits 2-7:
// advance the clock by that many 50 ms steps and Tick before the packet.

const fuzzMaxFlows = 8

func fuzzConfig() Config {
	return Config{MaxFlows: fuzzMaxFlows, MaxFlowBuffer: minFlowBuffer, MaxHeldPerFlow: 8 << 10, MaxHeldTotal: 32 << 10, RekeyBytes: 300}
}

// fuzzEngines returns two engines with an established flow between them:
// copies of engines that did the handshake once per process (cloneEngine),
// so that no key agreement runs per input.
func fuzzEngines(t *testing.T) *script {
	tp := cachedTemplate(t, processTemplate)
	s := &script{t: t, now: tp.now, cli: tp.cli, srv: tp.srv}
	clock := func() time.Time { return s.now }
	s.a = cloneEngine(tp.a, clock, newRand(1))
	s.b = cloneEngine(tp.b, clock, newRand(2))
	return s
}

// checkInvariants verifies the bounds that must hold after any input.
func checkInvariants(t *testing.T, e *Engine, r Result) {
	t.Helper()
	if n := e.NumFlows(); n > fuzzMaxFlows {
		t.Fatalf("%d flows, cap %d", n, fuzzMaxFlows)
	}
	perFlow := 2*minFlowBuffer + sendBufferFactor*minFlowBuffer + 8<<10 + 2*maxPacket
	if b := e.BufferedBytes(); b > fuzzMaxFlows*perFlow {
		t.Fatalf("%d bytes buffered", b)
	}
	if h := e.HeldBytes(); h > 32<<10 {
		t.Fatalf("%d bytes held", h)
	}
	checkMemory(t, e)
	var pkts [][]byte
	if r.Verdict == Replace {
		pkts = append(pkts, r.Packet)
	}
	pkts = append(pkts, r.ToPeer...)
	pkts = append(pkts, r.ToLocal...)
	for _, rel := range r.Released {
		if rel.Verdict == Replace {
			pkts = append(pkts, rel.Packet)
		}
	}
	for _, b := range pkts {
		var p packet.Packet
		if err := packet.Parse(b, &p); err != nil {
			t.Fatalf("engine emitted a packet that does not parse: %v", err)
		}
		if !p.VerifyTCPChecksum() || !p.VerifyIPChecksum() {
			t.Fatalf("engine emitted a packet with a bad checksum")
		}
	}
}

func FuzzProcess(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		s := fuzzEngines(t)
		for len(in) >= 3 {
			ctl := in[0]
			n := int(in[1])<<8 | int(in[2])
			in = in[3:]
			n = min(n, len(in))
			pkt := in[:n]
			in = in[n:]
			e := s.a
			if ctl&2 != 0 {
				e = s.b
			}
			if adv := ctl >> 2; adv > 0 {
				s.now = s.now.Add(time.Duration(adv) * 50 * time.Millisecond)
				checkInvariants(t, e, e.Tick(s.now))
			}
			d := Outbound
			if ctl&1 != 0 {
				d = Inbound
			}
			checkInvariants(t, e, e.Process(pkt, d))
		}
	})
}

// record encodes one fuzz record.
func record(ctl byte, pkt []byte) []byte {
	return append([]byte{ctl, byte(len(pkt) >> 8), byte(len(pkt))}, pkt...)
}

// fuzzSeeds builds inputs from real segments of the established flow:
// data both ways, a retransmission, out-of-order data, SACK, FIN, a tampered
// frame, RSTs, probes, a new SYN, and garbage.
func fuzzSeeds(tb testing.TB) [][]byte {
	t, ok := tb.(*testing.T)
	if !ok {
		t = &testing.T{}
	}
	s := newScript(t, fuzzConfig(), fuzzConfig())
	p0, ack := cISN.Add(1), sISN.Add(1)
	data := func(off int, n int) []byte {
		return s.cliSeg(p0.Add(seq.Size(off)), ack, packet.FlagACK|packet.FlagPSH, ackOpts, pattern(n, byte(off)))
	}
	var seeds [][]byte
	// An ordinary exchange, as the engines see it.
	w1 := data(0, 50)
	w2 := data(50, 70)
	sdata := s.srvSeg(ack, p0, packet.FlagACK, ackOpts, pattern(30, 1))
	seeds = append(seeds,
		append(append(record(0, w1), record(0, w2)...), record(2, sdata)...),
		append(record(0, data(0, 120)), record(0, s.cliSeg(p0.Add(120), ack, packet.FlagACK|packet.FlagFIN, ackOpts, nil))...),
		record(0, s.cliSeg(p0.Add(^seq.Size(0)), ack, packet.FlagACK, ackOpts, nil)),
		record(0, s.cliSeg(p0, ack, packet.FlagRST|packet.FlagACK, nil, nil)),
		record(2|1, s.cliSeg(cISN, 0, packet.FlagSYN, withENO(synOpts, []byte{0x45, 3, 0x23}), nil)),
		record(0, s.cliSeg(cISN.Add(7), 0, packet.FlagSYN, synOpts, nil)),
		record(1, []byte{0x45, 0, 0, 20}),
		record(4<<2, nil),
		record(63<<2|2, nil),
	)
	// Wire segments encrypted by A, fed to B in and out of order, with a
	// flipped bit, and with SACK from B back to A.
	s.handshake()
	var wire [][]byte
	for i := 0; i < 4; i++ {
		wire = append(wire, s.outA(data(30*i, 30)).Packet)
	}
	seeds = append(seeds,
		append(append(record(3, wire[0]), record(3, wire[2])...), record(3, wire[1])...),
		append(append(record(3, wire[1]), record(3, wire[1])...), record(3|8<<2, wire[3])...),
	)
	bad := append([]byte(nil), wire[0]...)
	bad[len(bad)-5] ^= 1
	seeds = append(seeds, record(3, bad))
	r := s.inB(wire[2])
	if len(r.ToPeer) > 0 {
		seeds = append(seeds, append(record(3, wire[0]), record(1, r.ToPeer[0])...))
	}
	seeds = append(seeds, record(3, s.outA(s.cliSeg(p0.Add(120), ack, packet.FlagACK|packet.FlagFIN, ackOpts, nil)).Packet))
	return seeds
}

// TestWriteFuzzSeeds writes the seeds as Go corpus files when
// ENGINE_WRITE_FUZZ_SEEDS=1 (run it after changing fuzzSeeds).
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("ENGINE_WRITE_FUZZ_SEEDS") != "1" {
		t.Skip("set ENGINE_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz/FuzzProcess")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzProcess")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, seed := range fuzzSeeds(t) {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", seed)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

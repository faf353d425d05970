package engine

import (
	"fmt"
	"testing"

	"github.com/tcpcryptd/tcpcrypt/crypto"
	"github.com/tcpcryptd/tcpcrypt/packet"
	"github.com/tcpcryptd/tcpcrypt/packet/seq"
)

var benchAEADs = []struct {
	name string
	id   crypto.AEADID
}{
	{"AES128GCM", crypto.AES128GCM},
	{"AES256GCM", crypto.AES256GCM},
	{"ChaCha20Poly1305", crypto.ChaCha20Poly1305},
}

// benchScript is an established flow between two engines (the testing.T
// only reports setup failures).
func benchScript(tb testing.TB, aead crypto.AEADID) *script {
	tb.Helper()
	cfg := Config{AEADs: []crypto.AEADID{aead}, MaxFlowBuffer: 64 << 20}
	s := newScript(&testing.T{}, cfg, cfg)
	s.handshake()
	return s
}

// setSeq patches a segment's sequence number in place (the engine does not
// check checksums of what it is given).
func setSeq(pkt []byte, v seq.Value) {
	var p packet.Packet
	if packet.Parse(pkt, &p) == nil {
		p.TCP.SetSeq(v)
	}
}

// ackAll tells engine A that the peer acknowledged everything it sent.
func (s *script) ackAll() {
	f := s.a.tab.flows[flowKey{local: s.cli, remote: s.srv}]
	if s.ackPkt == nil {
		s.ackPkt = build(&testing.T{}, s.srv, s.cli, sISN.Add(1+init2Len), 0, packet.FlagACK, 2000, ackOpts, nil)
	}
	setAck(s.ackPkt, seqAt(cISN, int64(f.snd.cNext)))
	recycle(s.a, s.a.Process(s.ackPkt, Inbound))
}

// recycle gives every packet of r back to e, as the daemon does once it
// sent them.
func recycle(e *Engine, r Result) {
	if r.Verdict == Replace {
		e.Recycle(r.Packet)
	}
	for _, p := range r.ToPeer {
		e.Recycle(p)
	}
	for _, p := range r.ToLocal {
		e.Recycle(p)
	}
}

// BenchmarkEncrypt measures the outbound path: kernel segments of the given
// size become frames (MB/s of plaintext).
func BenchmarkEncrypt(b *testing.B) {
	for _, a := range benchAEADs {
		for _, size := range []int{1448, 65000} {
			b.Run(fmt.Sprintf("%s/%d", a.name, size), func(b *testing.B) {
				s := benchScript(b, a.id)
				pkt := s.cliSeg(cISN.Add(1), sISN.Add(1), packet.FlagACK|packet.FlagPSH, ackOpts, pattern(size, 0))
				pace := newAEADPace(b, a.id, false)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				pace.begin()
				for i := 0; i < b.N; i++ {
					setSeq(pkt, cISN.Add(1+seq.Size(i*size)))
					r := s.a.Process(pkt, Outbound)
					if r.Verdict != Replace {
						b.Fatalf("verdict %v", r.Verdict)
					}
					recycle(s.a, r)
					if i%32 == 31 {
						s.ackAll()
						pace.end(32 * size)
					}
				}
				pace.report()
			})
		}
	}
}

// BenchmarkEncryptInFlight is BenchmarkEncrypt with the peer's ACKs
// trailing the sent data by inFlight segments, as in a bulk transfer, so
// the retransmission queue holds a steady amount instead of emptying and
// regrowing every 32 segments.
func BenchmarkEncryptInFlight(b *testing.B) {
	const inFlight = 16
	for _, a := range benchAEADs {
		for _, size := range []int{1448, 65000} {
			b.Run(fmt.Sprintf("%s/%d", a.name, size), func(b *testing.B) {
				s := benchScript(b, a.id)
				pkt := s.cliSeg(cISN.Add(1), sISN.Add(1), packet.FlagACK|packet.FlagPSH, ackOpts, pattern(size, 0))
				ack := s.srvSeg(sISN.Add(1+init2Len), 0, packet.FlagACK, ackOpts, nil)
				f := s.a.tab.flows[flowKey{local: s.cli, remote: s.srv}]
				var ends [inFlight]uint64
				pace := newAEADPace(b, a.id, false)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				pace.begin()
				for i := 0; i < b.N; i++ {
					setSeq(pkt, cISN.Add(1+seq.Size(i*size)))
					r := s.a.Process(pkt, Outbound)
					if r.Verdict != Replace {
						b.Fatalf("verdict %v", r.Verdict)
					}
					recycle(s.a, r)
					if i >= inFlight {
						setAck(ack, seqAt(cISN, int64(ends[i%inFlight])))
						recycle(s.a, s.a.Process(ack, Inbound))
					}
					ends[i%inFlight] = f.snd.cNext
					if i%32 == 31 {
						pace.end(32 * size)
					}
				}
				pace.report()
			})
		}
	}
}

// BenchmarkDecrypt measures the inbound path: wire segments are verified
// and delivered as plaintext (MB/s of plaintext).
func BenchmarkDecrypt(b *testing.B) {
	const batch = 64
	for _, a := range benchAEADs {
		for _, size := range []int{1448, 65000} {
			b.Run(fmt.Sprintf("%s/%d", a.name, size), func(b *testing.B) {
				s := benchScript(b, a.id)
				pkt := s.cliSeg(cISN.Add(1), sISN.Add(1), packet.FlagACK|packet.FlagPSH, ackOpts, pattern(size, 0))
				// wire[k] holds what segment k became on the wire.
				wire := make([][][]byte, batch)
				sack := s.srvSeg(sISN.Add(1), cISN.Add(1), packet.FlagACK, ackOpts, nil)
				pace := newAEADPace(b, a.id, true)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i += batch {
					b.StopTimer()
					n := min(batch, b.N-i)
					for k := 0; k < n; k++ {
						setSeq(pkt, cISN.Add(1+seq.Size((i+k)*size)))
						r := s.a.Process(pkt, Outbound)
						// A GSO-sized segment grows past 64 KiB with its
						// frames: the rest went out as extra segments.
						wire[k] = append(append(wire[k][:0], r.Packet), r.ToPeer...)
					}
					s.ackAll()
					b.StartTimer()
					pace.begin()
					for k := 0; k < n; k++ {
						for _, w := range wire[k] {
							r := s.b.Process(w, Inbound)
							if r.Verdict == Accept {
								b.Fatalf("verdict %v", r.Verdict)
							}
							recycle(s.b, r)
						}
						// The server's stack acknowledges every second
						// segment, as Linux does for full-sized ones
						// (the namespace benchmark sees 0.57 to 1 ACK
						// per data segment); the engine translates each
						// ACK and lets go of the plaintext it covers.
						if k%2 == 1 || k == n-1 {
							setAck(sack, cISN.Add(1+seq.Size((i+k+1)*size)))
							recycle(s.b, s.b.Process(sack, Outbound))
						}
					}
					pace.end(n * size)
					b.StopTimer()
					for k := 0; k < n; k++ {
						for _, w := range wire[k] {
							s.a.Recycle(w)
						}
					}
					b.StartTimer()
				}
				pace.report()
			})
		}
	}
}

// BenchmarkHandshake measures a whole ENO handshake and key exchange, both
// engines' work together, per TEP.
func BenchmarkHandshake(b *testing.B) {
	teps := []struct {
		name string
		id   uint8
	}{{"X25519", crypto.TEPX25519}, {"X448", crypto.TEPX448}, {"P256", crypto.TEPP256}, {"P521", crypto.TEPP521}}
	for _, tp := range teps {
		b.Run(tp.name, func(b *testing.B) {
			cfg := Config{TEPs: []uint8{tp.id}}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				s := newScript(&testing.T{}, cfg, cfg)
				s.handshake()
				if s.a.Counters().FlowsEncrypted != 1 {
					b.Fatal("no keys")
				}
			}
		})
	}
}

// BenchmarkSegmentOverhead measures the per-segment cost of the paths that
// move little or no data: a pure ACK each way, and a 64-byte data segment.
// The packets go back to the engine as the daemon gives them back once sent
// (without that, every rewrite allocated a fresh buffer).
func BenchmarkSegmentOverhead(b *testing.B) {
	b.Run("pure-ack-out", func(b *testing.B) {
		s := benchScript(b, crypto.AES128GCM)
		pkt := s.cliSeg(cISN.Add(1), sISN.Add(1), packet.FlagACK, ackOpts, nil)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			recycle(s.a, s.a.Process(pkt, Outbound))
		}
	})
	b.Run("pure-ack-in", func(b *testing.B) {
		s := benchScript(b, crypto.AES128GCM)
		pkt := s.srvSeg(sISN.Add(1+init2Len), cISN.Add(1+init1Len), packet.FlagACK, ackOpts, nil)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			recycle(s.a, s.a.Process(pkt, Inbound))
		}
	})
	b.Run("data-64-out", func(b *testing.B) {
		s := benchScript(b, crypto.AES128GCM)
		pkt := s.cliSeg(cISN.Add(1), sISN.Add(1), packet.FlagACK|packet.FlagPSH, ackOpts, pattern(64, 0))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			setSeq(pkt, cISN.Add(1+seq.Size(i*64)))
			recycle(s.a, s.a.Process(pkt, Outbound))
			if i%64 == 63 {
				s.ackAll()
			}
		}
	})
}

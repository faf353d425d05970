package engine

import (
	"testing"

	"github.com/tcpcryptd/tcpcrypt/packet"
)

// TestTruncatedSegments: a copy cut short (NFQUEUE hands at most 65531
// payload bytes) passes untouched when it belongs to no tracked flow, and is
// dropped when it belongs to an encrypted one.
func TestTruncatedSegments(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		s := newScript(t, Config{}, Config{})
		if v6 {
			s.v6()
		}
		// Untracked: a data segment of a connection the engine never saw
		// the SYN of, cut short.
		full := s.cliSeg(cISN.Add(1000), sISN.Add(1), packet.FlagACK, ackOpts, pattern(3000, 0))
		if r := s.a.Process(full[:len(full)-100], Outbound); r.Verdict != Accept {
			t.Errorf("v6=%v: untracked truncated segment: verdict %v, want accept", v6, r.Verdict)
		}
		if r := s.b.Process(full[:len(full)-100], Inbound); r.Verdict != Accept {
			t.Errorf("v6=%v: untracked truncated inbound segment: verdict %v, want accept", v6, r.Verdict)
		}

		// Tracked and encrypted: the same cut is dropped and counted.
		s.handshake()
		seg := s.cliSeg(cISN.Add(1), sISN.Add(1), packet.FlagACK, ackOpts, pattern(3000, 0))
		before := s.a.Counters().Drops[DropUnparsable]
		if r := s.a.Process(seg[:len(seg)-100], Outbound); r.Verdict != Drop {
			t.Errorf("v6=%v: tracked truncated segment: verdict %v, want drop", v6, r.Verdict)
		}
		if got := s.a.Counters().Drops[DropUnparsable]; got != before+1 {
			t.Errorf("v6=%v: unparsable drops %d -> %d", v6, before, got)
		}
		// Hopeless bytes are dropped too.
		if r := s.a.Process([]byte{0x45, 0, 0}, Outbound); r.Verdict != Drop {
			t.Errorf("v6=%v: garbage: verdict %v, want drop", v6, r.Verdict)
		}
	}
}

package engine

import (
	"crypto/rand"
	"errors"
	"testing"
	"testing/iotest"

	"github.com/tcpcryptd/tcpcrypt/packet"
)

// TestRandomness: RFC 8547 §10 forbids sending ENO without a good source of
// randomness, since keys and nonces come from it. An engine built without
// Config.Rand (as tcpcryptd builds its engines) draws from crypto/rand,
// which reads getrandom(2) and so blocks until the kernel's pool is seeded
// rather than hand out weak bytes early after boot. And a source that fails
// under an engine (a test's, or a broken one) aborts the connection toward
// both ends when the keys are made: it never lets the connection go on,
// encrypted with bad keys or in plaintext.
func TestRandomness(t *testing.T) {
	e, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if e.cfg.Rand != rand.Reader {
		t.Errorf("default Config.Rand is %T, want crypto/rand.Reader", e.cfg.Rand)
	}

	s := newScript(t, Config{Rand: iotest.ErrReader(errors.New("no entropy"))}, Config{})
	r := s.outA(s.cliSeg(cISN, 0, packet.FlagSYN, synOpts, nil))
	r = s.inB(r.Packet)
	r = s.outB(s.srvSeg(sISN, cISN.Add(1), packet.FlagSYN|packet.FlagACK, synOpts, nil))
	s.inA(r.Packet)
	// A's first segment after the SYN-ACK, with data: its keys are made
	// now, from the failing source.
	r = s.outA(s.cliSeg(cISN.Add(1), sISN.Add(1), packet.FlagACK|packet.FlagPSH, ackOpts, []byte("secret")))
	if r.Verdict != Drop {
		t.Errorf("the application's first segment: verdict %v, want it dropped", r.Verdict)
	}
	if len(r.ToPeer) == 0 {
		t.Error("no RST toward the peer")
	}
	for _, p := range r.ToPeer {
		v := view(t, p)
		if len(v.Payload()) != 0 || v.TCP.Flags()&packet.FlagRST == 0 {
			t.Errorf("sent toward the peer: flags %#x, %d payload bytes; want only a RST", v.TCP.Flags(), len(v.Payload()))
		}
	}
	c := s.a.Counters()
	if c.Aborts[AbortInternal] != 1 || c.FlowsEncrypted != 0 {
		t.Errorf("abort_internal %d, flows_encrypted %d; want 1, 0", c.Aborts[AbortInternal], c.FlowsEncrypted)
	}
	if len(r.ToLocal) == 0 {
		t.Error("no RST toward the local stack: the application is not told")
	}
}

package engine

import (
	"bytes"
	"testing"
	"time"
)

// TestSessionSeedsProgress checks that the FuzzSession harness really moves
// data: the first seed sends 120 bytes and a FIN from the client and 100
// bytes and a FIN from the server, and each local stack must have received
// all of the other's, authenticated, in order, and the flows must be gone
// after the linger.
func TestSessionSeedsProgress(t *testing.T) {
	s := runSession(t, sessionSeeds()[0])
	cli, srv := s.st[0], s.st[1]
	if srv.rcvd != 120 || !srv.rcvFin {
		t.Errorf("server stack received %d bytes (FIN %v), want 120 and the FIN", srv.rcvd, srv.rcvFin)
	}
	if cli.rcvd != 100 || !cli.rcvFin {
		t.Errorf("client stack received %d bytes (FIN %v), want 100 and the FIN", cli.rcvd, cli.rcvFin)
	}
	for _, x := range s.st {
		if n := x.e.NumFlows(); n != 0 {
			t.Errorf("%s engine still tracks %d flows after the close and the linger", x.name, n)
		}
	}
}

// TestSessionTamperAborts checks that the harness's tampering reaches the
// engine: a flipped bit in a frame must abort the server's flow for
// authentication and deliver none of the frame.
func TestSessionTamperAborts(t *testing.T) {
	s := newSession(t, []byte{0, opSend << 1, 100, 0, 0, opMutate << 1, 0, 0, 0, 50})
	s.run()
	srv := s.st[1]
	fi, ok := srv.e.Lookup(srv.src, srv.dst)
	if !ok || fi.State != StateAborted || fi.Abort != AbortAuth {
		t.Fatalf("server flow after a tampered frame: %+v (tracked %v), want aborted for auth", fi, ok)
	}
	if srv.rcvd != 0 {
		t.Fatalf("server stack received %d bytes of a tampered frame", srv.rcvd)
	}
}

// TestCloneEngineIndependent checks cloneEngine: copies of the established
// engines behave byte for byte like the engines of a fresh handshake (the
// copy is faithful), and what one copy does leaves the template and the
// next copy alone (copies are independent).
func TestCloneEngineIndependent(t *testing.T) {
	in := sessionSeeds()[2]
	trace := func(s *session) [][]byte {
		var all [][]byte
		for _, x := range s.st {
			all = append(all, x.wire...)
		}
		return all
	}
	first := trace(runSession(t, in))
	// Dirty a copy of the same template with other traffic (rekeys,
	// timers, a close), then run the first input again.
	other := append([]byte{in[0]}, sessionSeeds()[0][1:]...)
	runSession(t, other)
	second := trace(runSession(t, in))
	// The engines of a fresh handshake, not copied, must give the same
	// packets.
	s := sessionOn(t, in, makeTemplate(t, int(in[0]&0x1f)), false)
	s.finish()
	fresh := trace(s)
	if len(first) < 10 {
		t.Fatalf("only %d wire packets", len(first))
	}
	for name, got := range map[string][][]byte{"second copy": second, "fresh handshake": fresh} {
		if len(got) != len(first) {
			t.Fatalf("%s: %d wire packets, first copy %d", name, len(got), len(first))
		}
		for i := range got {
			if !bytes.Equal(got[i], first[i]) {
				t.Fatalf("%s: wire packet %d differs:\n%s\n%s", name, i, summary(got[i]), summary(first[i]))
			}
		}
	}
}

// BenchmarkSessionSeeds measures FuzzSession's cost per input on its seeds
// (build with -gcflags=all=-d=libfuzzer to see the instrumented cost).
func BenchmarkSessionSeeds(b *testing.B) {
	t := &testing.T{}
	seeds := sessionSeeds()
	for _, in := range seeds {
		runSession(t, in) // the templates
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		runSession(t, seeds[i%len(seeds)])
	}
}

// BenchmarkCloneEngine measures the per-input floor of FuzzSession: copying
// the two established engines.
func BenchmarkCloneEngine(b *testing.B) {
	tp := template(&testing.T{}, 0)
	clock := func() time.Time { return tp.now }
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		cloneEngine(tp.a, clock, newRand(3))
		cloneEngine(tp.b, clock, newRand(4))
	}
}

// TestSessionKeyExchangeSeed checks the templates that start in the key
// exchange: the client's data is held until Init2 arrives, then framed and
// delivered; the server's data reaches the client.
func TestSessionKeyExchangeSeed(t *testing.T) {
	in := sessionSeeds()[6]
	if in[0]&0x80 == 0 {
		t.Fatal("seed 6 is not a key-exchange seed")
	}
	s := newSession(t, in)
	if st, _ := s.st[0].original(); st != StateKeyExchange {
		t.Fatalf("client flow starts in %v, want key-exchange", st)
	}
	s.finish()
	cli, srv := s.st[0], s.st[1]
	if srv.rcvd != 130 || cli.rcvd != 50 {
		t.Fatalf("server stack received %d bytes (want 130), client %d (want 50)", srv.rcvd, cli.rcvd)
	}
	if c := cli.e.Counters(); c.Held == 0 {
		t.Fatalf("the client's first data was not held: %+v", c)
	}
}

// TestProcessSeedsStillDecrypt checks that FuzzProcess's wire seeds, made
// by engines that ran the handshake themselves, still verify in the copies
// FuzzProcess starts from: the in-order/reordered wire seed must deliver
// all three frames' plaintext to the server stack without an abort.
func TestProcessSeedsStillDecrypt(t *testing.T) {
	in := fuzzSeeds(t)[9] // the first wire seed: frames 0, 2, 1 to the server
	if in[0] != 3 {
		t.Fatalf("seed 9 starts with record control %#x, want 3 (inbound at the server)", in[0])
	}
	s := fuzzEngines(t)
	delivered := 0
	for len(in) >= 3 {
		n := int(in[1])<<8 | int(in[2])
		r := s.b.Process(in[3:3+n], Inbound)
		if r.Verdict == Replace {
			delivered += len(view(t, r.Packet).Payload())
		}
		in = in[3+n:]
	}
	if delivered != 90 {
		t.Fatalf("server stack got %d plaintext bytes, want 90", delivered)
	}
	if fi := s.b.Snapshot(); len(fi) != 1 || fi[0].State != StateEstablished {
		t.Fatalf("server flow after the seed: %+v", fi)
	}
}

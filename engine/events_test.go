package engine

import (
	"bytes"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/crypto"
	"github.com/tcpcryptd/tcpcrypt/packet"
)

// TestEventsAndKeyLog checks that both engines report the encryption of a
// connection with the same session id, that the key log carries secrets that
// really key it (ss re-derives the session id; both ends log the same N_A and
// ES), and that a fallback and an abort are reported with their reasons.
func TestEventsAndKeyLog(t *testing.T) {
	type logged struct {
		kind KeyLogKind
		a, b []byte
	}
	var evA, evB []Event
	var klA, klB []logged
	cfgA := Config{
		Events: func(e Event) { evA = append(evA, e) },
		KeyLog: func(k KeyLogKind, a, b []byte) {
			klA = append(klA, logged{k, bytes.Clone(a), bytes.Clone(b)})
		},
	}
	cfgB := Config{
		Events: func(e Event) { evB = append(evB, e) },
		KeyLog: func(k KeyLogKind, a, b []byte) {
			klB = append(klB, logged{k, bytes.Clone(a), bytes.Clone(b)})
		},
	}
	s := newScript(t, cfgA, cfgB)
	s.handshake()

	if len(evA) != 1 || len(evB) != 1 || evA[0].Kind != EventEncrypted || evB[0].Kind != EventEncrypted {
		t.Fatalf("events: A %+v, B %+v", evA, evB)
	}
	if len(evA[0].SessionID) != crypto.SessionIDLen || !bytes.Equal(evA[0].SessionID, evB[0].SessionID) {
		t.Errorf("session ids differ: %x vs %x", evA[0].SessionID, evB[0].SessionID)
	}
	if evA[0].Local != s.cli || evA[0].Remote != s.srv || evB[0].Local != s.srv || evB[0].Remote != s.cli {
		t.Errorf("event endpoints: A %v-%v, B %v-%v", evA[0].Local, evA[0].Remote, evB[0].Local, evB[0].Remote)
	}
	if evA[0].Role == evB[0].Role {
		t.Errorf("both ends report role %v", evA[0].Role)
	}

	for name, kl := range map[string][]logged{"A": klA, "B": klB} {
		if len(kl) != 2 || kl[0].kind != KeyLogES || kl[1].kind != KeyLogSS {
			t.Fatalf("%s key log: %+v", name, kl)
		}
		sid, ss := kl[1].a, kl[1].b
		if !bytes.Equal(sid, evA[0].SessionID) {
			t.Errorf("%s logged session id %x", name, sid)
		}
		if got := crypto.SessionID(sid[0], ss, nil); !bytes.Equal(got, sid) {
			t.Errorf("%s: logged ss does not derive the session id", name)
		}
	}
	if !bytes.Equal(klA[0].a, klB[0].a) || !bytes.Equal(klA[0].b, klB[0].b) {
		t.Errorf("ES lines differ: A %x %x, B %x %x", klA[0].a, klA[0].b, klB[0].a, klB[0].b)
	}

	// A tampered frame: B reports the abort with its reason.
	p0, ack := cISN.Add(1), sISN.Add(1)
	w := append([]byte(nil), s.outA(s.cliSeg(p0, ack, packet.FlagACK, ackOpts, pattern(64, 0))).Packet...)
	var pp packet.Packet
	if err := packet.Parse(w, &pp); err != nil {
		t.Fatal(err)
	}
	pp.Payload()[10] ^= 1
	pp.FixTCPChecksum()
	s.inB(w)
	if last := evB[len(evB)-1]; last.Kind != EventAbort || last.Reason != AbortAuth.String() || last.Err == nil {
		t.Errorf("abort event: %+v", last)
	}

	// A SYN without ENO: the server end reports the fallback.
	var evF []Event
	f := newScript(t, Config{}, Config{Events: func(e Event) { evF = append(evF, e) }})
	f.inB(f.cliSeg(cISN, 0, packet.FlagSYN, synOpts, nil))
	if len(evF) != 1 || evF[0].Kind != EventFallback || evF[0].Reason != FallbackNoPeerENO.String() {
		t.Errorf("fallback events: %+v", evF)
	}
}

// TestTrafficCounters: frames and plaintext bytes are counted per direction,
// for live flows and after the flow is gone.
func TestTrafficCounters(t *testing.T) {
	s := newScript(t, Config{}, Config{})
	s.handshake()
	p0, ack := cISN.Add(1), sISN.Add(1)
	w := s.outA(s.cliSeg(p0, ack, packet.FlagACK, ackOpts, pattern(300, 0))).Packet
	want(t, s.inB(w), Replace)
	ca, cb := s.a.Counters(), s.b.Counters()
	if ca.FramesOut != 1 || ca.BytesOut != 300 || cb.FramesIn != 1 || cb.BytesIn != 300 {
		t.Fatalf("live: A out %d frames %d bytes, B in %d frames %d bytes; want 1/300 each",
			ca.FramesOut, ca.BytesOut, cb.FramesIn, cb.BytesIn)
	}
	// The local stack resets the connection: once forgotten, the counts stay.
	s.outA(s.cliSeg(p0.Add(300), ack, packet.FlagRST, nil, nil))
	s.now = s.now.Add(time.Hour)
	s.a.Tick(s.now)
	if n := s.a.NumFlows(); n != 0 {
		t.Fatalf("%d flows left after the reset and an hour", n)
	}
	if c := s.a.Counters(); c.FramesOut != 1 || c.BytesOut != 300 {
		t.Errorf("after the flow is gone: %d frames, %d bytes out", c.FramesOut, c.BytesOut)
	}
}

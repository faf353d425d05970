package engine

import (
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/packet"
)

// TestLivenessProbe: an idle established flow is probed with a rekey and an
// empty frame (RFC 8548 §3.9); the peer answers at once under its own new
// generation (§3.8), and the answer counts as traffic, so the flow is not
// probed again before another idle interval.
func TestLivenessProbe(t *testing.T) {
	const every = time.Minute
	cfg := Config{LivenessInterval: every}
	s := newScript(t, cfg, cfg)
	s.handshake()
	start := s.now
	if dl := s.a.NextDeadline(); dl.IsZero() || dl.After(start.Add(every)) {
		t.Fatalf("A's next deadline %v, want no later than the liveness interval %v", dl, start.Add(every))
	}
	s.now = start.Add(every - time.Second)
	if r := s.a.Tick(s.now); len(r.ToPeer) != 0 {
		t.Fatalf("probe before the interval: %d packets", len(r.ToPeer))
	}
	s.now = start.Add(every + time.Second)
	r := s.a.Tick(s.now)
	checkAll(t, r)
	if len(r.ToPeer) != 1 {
		t.Fatalf("idle flow: %d packets to the peer, want one probe", len(r.ToPeer))
	}
	probe := r.ToPeer[0]
	if c := s.a.Counters(); c.LivenessProbes != 1 || c.Rekeys != 1 {
		t.Fatalf("A counters: %d probes, %d rekeys", c.LivenessProbes, c.Rekeys)
	}
	if n := len(view(t, probe).Payload()); n != frameHdr+frameTag {
		t.Errorf("probe carries %d bytes, want one empty frame (%d)", n, frameHdr+frameTag)
	}
	r = s.inB(probe)
	checkAll(t, r)
	if len(r.ToPeer) != 1 {
		t.Fatalf("B answered the probe with %d packets, want its own rekey frame", len(r.ToPeer))
	}
	if c := s.b.Counters(); c.Rekeys != 1 || c.LivenessProbes != 0 {
		t.Fatalf("B counters: %d rekeys, %d probes", c.Rekeys, c.LivenessProbes)
	}
	r = s.inA(r.ToPeer[0])
	checkAll(t, r)
	if c := s.a.Counters(); c.Aborts[AbortAuth] != 0 || c.Rekeys != 1 {
		t.Fatalf("A after the answer: %+v", c)
	}
	for _, p := range r.ToPeer { // A's acknowledgment of B's frame
		checkAll(t, s.inB(p))
	}
	// The answer moved A's idle clock: no probe until another interval.
	s.now = s.now.Add(every / 2)
	if r := s.a.Tick(s.now); len(r.ToPeer) != 0 || s.a.Counters().LivenessProbes != 1 {
		t.Fatalf("probed again %v after an answer", every/2)
	}
	s.now = s.now.Add(every)
	if r := s.a.Tick(s.now); len(r.ToPeer) != 1 || s.a.Counters().LivenessProbes != 2 {
		t.Fatalf("second idle interval: %d packets, %d probes", len(r.ToPeer), s.a.Counters().LivenessProbes)
	}
}

// TestLivenessDeadPeer: a probe nobody answers is retransmitted until the
// retransmission limit, then the flow is aborted, with a RST for the local
// stack: a dead peer ends the connection instead of leaving it open until
// the idle timeout.
func TestLivenessDeadPeer(t *testing.T) {
	cfg := Config{LivenessInterval: time.Minute}
	s := newScript(t, cfg, cfg)
	s.handshake()
	s.now = s.now.Add(time.Minute + time.Second)
	probes, rstToLocal := 0, false
	for i := 0; i < 100 && s.a.Counters().Aborts[AbortRetransmitLimit] == 0; i++ {
		r := s.a.Tick(s.now)
		checkAll(t, r)
		probes += len(r.ToPeer)
		for _, p := range r.ToLocal {
			if view(t, p).TCP.Flags()&packet.FlagRST != 0 {
				rstToLocal = true
			}
		}
		dl := s.a.NextDeadline()
		if dl.IsZero() {
			break
		}
		s.now = dl
	}
	if s.a.Counters().Aborts[AbortRetransmitLimit] != 1 || !rstToLocal {
		t.Fatalf("dead peer: aborts %v, RST to the stack %v", s.a.Counters().Aborts, rstToLocal)
	}
	if s.a.Counters().LivenessProbes != 1 || probes < 2 {
		t.Errorf("%d probes started, %d packets sent; want one probe, retransmitted", s.a.Counters().LivenessProbes, probes)
	}
}

// TestLivenessOff: with no interval, an idle flow is left alone until the
// idle timeout.
func TestLivenessOff(t *testing.T) {
	s := newScript(t, Config{}, Config{})
	s.handshake()
	s.now = s.now.Add(time.Hour)
	if r := s.a.Tick(s.now); len(r.ToPeer) != 0 || s.a.Counters().Rekeys != 0 {
		t.Fatalf("idle hour without liveness: %d packets, %d rekeys", len(r.ToPeer), s.a.Counters().Rekeys)
	}
}

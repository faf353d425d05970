package nfq

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/engine"
)

func TestLatencyBuckets(t *testing.T) {
	last := len(latencyBounds)
	tests := []struct {
		d    time.Duration
		want int // bucket index
	}{
		{-time.Second, 0}, // counted as zero
		{0, 0},
		{10 * time.Microsecond, 0}, // bounds are inclusive
		{10*time.Microsecond + 1, 1},
		{25 * time.Microsecond, 1},
		{999 * time.Microsecond, 6},
		{time.Millisecond, 6},
		{30 * time.Millisecond, 11},
		{2500 * time.Millisecond, last - 1},
		{2500*time.Millisecond + 1, last},
		{time.Hour, last},
	}
	for _, tt := range tests {
		var l latency
		l.observe(tt.d)
		var h Histogram
		h.add(&l)
		if len(h.Counts) != len(h.Bounds)+1 || len(h.Bounds) != len(latencyBounds) {
			t.Fatalf("%d bounds, %d counts", len(h.Bounds), len(h.Counts))
		}
		want := make([]uint64, numLatencyBuckets)
		want[tt.want] = 1
		if !slices.Equal(h.Counts, want) || h.Count != 1 || h.Sum != max(tt.d, 0) {
			t.Errorf("observe(%v): counts %v count %d sum %v; want bucket %d, count 1, sum %v",
				tt.d, h.Counts, h.Count, h.Sum, tt.want, max(tt.d, 0))
		}
	}
}

func TestLatencyBoundsIncreasing(t *testing.T) {
	for i := 1; i < len(latencyBounds); i++ {
		if latencyBounds[i] <= latencyBounds[i-1] {
			t.Errorf("bound %d (%v) not above bound %d (%v)", i, latencyBounds[i], i-1, latencyBounds[i-1])
		}
	}
}

// Stats sums the histograms of every block, and each snapshot owns its
// slices.
func TestHistogramSum(t *testing.T) {
	var a, b counters
	a.lat.observe(5 * time.Microsecond)
	a.lat.observe(time.Millisecond)
	b.lat.observe(5 * time.Microsecond)
	b.lat.observe(3 * time.Second)
	var s Stats
	s.sum(&a)
	s.sum(&b)
	h := s.VerdictLatency
	want := make([]uint64, numLatencyBuckets)
	want[0], want[6], want[len(latencyBounds)] = 2, 1, 1
	if !slices.Equal(h.Counts, want) || h.Count != 4 || h.Sum != 3*time.Second+time.Millisecond+10*time.Microsecond {
		t.Errorf("summed histogram %+v, want counts %v, count 4", h, want)
	}
	h.Bounds[0] = time.Hour
	h.Counts[0] = 99
	var s2 Stats
	s2.sum(&a)
	if s2.VerdictLatency.Bounds[0] != 10*time.Microsecond || s2.VerdictLatency.Counts[0] != 1 {
		t.Errorf("a snapshot's slices are shared: %+v", s2.VerdictLatency)
	}
}

func TestObserveDoesNotAllocate(t *testing.T) {
	var l latency
	if n := testing.AllocsPerRun(100, func() { l.observe(stamp() - 42) }); n != 0 {
		t.Errorf("observe allocates %v times", n)
	}
}

// The JSON form of Stats stays a flat object of numbers (the control
// socket's status turns it into counters).
func TestStatsJSONFlat(t *testing.T) {
	var c counters
	c.inc(cAccepted)
	c.lat.observe(time.Millisecond)
	var s Stats
	s.sum(&c)
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.Number
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("Stats JSON is not flat: %v: %s", err, b)
	}
	if m["accepted"] != "1" {
		t.Errorf("accepted = %q in %s", m["accepted"], b)
	}
}

// TestVerdictLatencyHeld: a segment held and released from Tick 30 ms later
// lands in a slower bucket than one accepted at once.
func TestVerdictLatencyHeld(t *testing.T) {
	const delay = 30 * time.Millisecond
	h := newHarness(t, 1, script{
		process: func(e *fakeEngine, pkt []byte, dir engine.Dir) engine.Result {
			if seqOf(pkt) == 1 {
				return engine.Result{Verdict: engine.Accept}
			}
			e.deadline = time.Now().Add(delay)
			return engine.Result{Verdict: engine.Hold, Token: 1}
		},
		tick: func(e *fakeEngine, now time.Time) engine.Result {
			e.deadline = time.Time{}
			return engine.Result{Released: []engine.Release{{Token: 1, Verdict: engine.Accept}}}
		},
	})
	start := time.Now()
	h.queues[0].Packet(1, HookLocalOut, tcpPkt(t, "10.0.0.1:1000", "10.0.0.2:80", 1, []byte("x")))
	if v := h.verdict(0); v.ID != 1 {
		t.Fatalf("first verdict %+v, want id 1", v)
	}
	h.queues[0].Packet(2, HookLocalOut, tcpPkt(t, "10.0.0.1:1000", "10.0.0.2:80", 2, []byte("y")))
	if v := h.verdict(0); v.ID != 2 {
		t.Fatalf("second verdict %+v, want id 2", v)
	}
	s := h.waitStats(func(s Stats) bool { return s.VerdictLatency.Count == 2 })
	elapsed := time.Since(start)
	lat := s.VerdictLatency
	lo, hi := -1, -1
	for i, n := range lat.Counts {
		if n == 0 {
			continue
		}
		if lo < 0 {
			lo = i
		}
		hi = i
	}
	if lo < 0 || lo >= hi {
		t.Fatalf("counts %v: want the held segment in a higher bucket than the immediate one", lat.Counts)
	}
	// The held segment waited at least delay: its bucket's lower limit is
	// at least the largest bound below delay.
	if hi == 0 || lat.Bounds[hi-1] < 25*time.Millisecond {
		t.Errorf("counts %v: held segment in bucket %d, want one above 25ms", lat.Counts, hi)
	}
	// Both waits lie within the test's own window.
	if lat.Sum < delay || lat.Sum > elapsed {
		t.Errorf("sum %v, want between %v and %v", lat.Sum, delay, elapsed)
	}
	if n := s.Accepted + s.Replaced + s.Dropped; lat.Count != n {
		t.Errorf("count %d, want %d (verdicts written)", lat.Count, n)
	}
}

// TestVerdictLatencyCount: every verdict of a segment an engine saw is
// recorded once (immediate, late, replaced, dropped, and the drop of a
// segment whose token was reused); segments accepted by the readers
// without an engine are not.
func TestVerdictLatencyCount(t *testing.T) {
	h := newHarness(t, 2, script{process: func(e *fakeEngine, pkt []byte, dir engine.Dir) engine.Result {
		switch seqOf(pkt) {
		case 1, 2:
			return engine.Result{Verdict: engine.Hold, Token: 7} // 2 reuses 1's token: 1 is dropped
		case 3:
			return engine.Result{Verdict: engine.Drop, Released: []engine.Release{
				{Token: 7, Verdict: engine.Replace, Packet: []byte{0x45, 1}},
			}}
		case 4:
			return engine.Result{Verdict: engine.Replace, Packet: []byte{0x45, 2}}
		case 0xffffffff: // not parsable (worker 0 gets parse errors)
			return engine.Result{Verdict: engine.Drop}
		}
		return engine.Result{Verdict: engine.Accept}
	}})
	var id uint32
	send := func(qi int, hook uint8, pkt []byte) {
		id++
		h.queues[qi].Packet(id, hook, pkt)
	}
	// 1..3 depend on each other: one queue keeps their order. 4..6 are
	// independent and come through the other queue.
	for i := uint32(1); i <= 6; i++ {
		send(int(i-1)/3, HookLocalOut, tcpPkt(t, "10.0.0.1:1000", "10.0.0.2:80", i, []byte("x")))
	}
	send(0, HookLocalIn, tcpPkt(t, "10.0.0.2:80", "10.0.0.1:1000", 9, nil))
	truncated := tcpPkt(t, "10.0.0.1:1000", "10.0.0.2:80", 10, nil)[:22] // ports cut
	send(1, HookLocalOut, truncated)
	send(0, HookLocalOut, udp4())                                                    // not TCP: no engine
	send(1, HookForward, tcpPkt(t, "10.0.0.1:1000", "10.0.0.2:80", 11, []byte("z"))) // unknown hook: no engine

	const engineVerdicts = 8 // ids 1..6, the inbound one, the truncated one
	s := h.waitStats(func(s Stats) bool {
		return s.Accepted+s.Replaced+s.Dropped == engineVerdicts+2 && s.VerdictLatency.Count == engineVerdicts
	})
	if s.EngineBugs != 1 || s.ParseErrors != 1 || s.NonTCP != 1 || s.UnknownHook != 1 {
		t.Errorf("stats %+v: want 1 engine bug, parse error, non-TCP and unknown hook", s)
	}
	if got, want := s.VerdictLatency.Count, s.Accepted+s.Replaced+s.Dropped-s.NonTCP-s.UnknownHook; got != want {
		t.Errorf("latency count %d, want %d", got, want)
	}
	var sum uint64
	for _, n := range s.VerdictLatency.Counts {
		sum += n
	}
	if sum != s.VerdictLatency.Count || s.VerdictLatency.Sum <= 0 {
		t.Errorf("histogram %+v: buckets sum to %d", s.VerdictLatency, sum)
	}
	time.Sleep(20 * time.Millisecond)
	if n := h.d.Stats().VerdictLatency.Count; n != engineVerdicts {
		t.Errorf("latency count grew to %d after the verdicts", n)
	}
}

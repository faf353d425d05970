package nfq

import (
	"context"
	"encoding/binary"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/engine"
	"github.com/tcpcryptd/tcpcrypt/nfq/nfqtest"
	"github.com/tcpcryptd/tcpcrypt/packet"
	"github.com/tcpcryptd/tcpcrypt/packet/seq"
)

var (
	_ Queue    = (*nfqtest.Queue)(nil)
	_ Injector = (*nfqtest.Injector)(nil)
)

// testTimeout bounds every wait in the unit tests.
const testTimeout = 5 * time.Second

// call is one Process or Tick call a fakeEngine saw.
type call struct {
	worker int // the engine's queue index
	tick   bool
	pkt    []byte // copy
	dir    engine.Dir
	now    time.Time // Tick's argument
	at     time.Time // wall clock at the call
}

// recorder collects the calls of all fake engines.
type recorder struct {
	mu    sync.Mutex
	calls []call
	ch    chan call
}

func newRecorder() *recorder { return &recorder{ch: make(chan call, 4096)} }

func (r *recorder) add(c call) {
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
	select {
	case r.ch <- c:
	default:
	}
}

func (r *recorder) all() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]call(nil), r.calls...)
}

// fakeEngine is a scripted Engine. process and tick run under the shard's
// lock; deadline is what NextDeadline reports (scripts may change it).
type fakeEngine struct {
	worker   int
	rec      *recorder
	process  func(e *fakeEngine, pkt []byte, dir engine.Dir) engine.Result
	tick     func(e *fakeEngine, now time.Time) engine.Result
	abort    func(e *fakeEngine, f engine.Flow, r engine.AbortReason) (engine.Result, bool)
	deadline time.Time
	state    map[string]any // per-engine script state
}

func (e *fakeEngine) Process(pkt []byte, dir engine.Dir) engine.Result {
	e.rec.add(call{worker: e.worker, pkt: append([]byte(nil), pkt...), dir: dir, at: time.Now()})
	if e.process == nil {
		return engine.Result{Verdict: engine.Accept}
	}
	return e.process(e, pkt, dir)
}

func (e *fakeEngine) Tick(now time.Time) engine.Result {
	e.rec.add(call{worker: e.worker, tick: true, now: now, at: time.Now()})
	if e.tick == nil {
		e.deadline = time.Time{}
		return engine.Result{}
	}
	return e.tick(e, now)
}

func (e *fakeEngine) NextDeadline() time.Time { return e.deadline }

func (e *fakeEngine) AbortFlow(f engine.Flow, r engine.AbortReason) (engine.Result, bool) {
	if e.abort == nil {
		return engine.Result{}, false
	}
	return e.abort(e, f, r)
}

// script configures the fake engines of a harness.
type script struct {
	process func(e *fakeEngine, pkt []byte, dir engine.Dir) engine.Result
	tick    func(e *fakeEngine, now time.Time) engine.Result
	abort   func(e *fakeEngine, f engine.Flow, r engine.AbortReason) (engine.Result, bool)
	init    func(e *fakeEngine)
	guard   Guard
}

// harness runs a Dispatcher over fake queues and a fake injector.
type harness struct {
	t      *testing.T
	d      *Dispatcher
	queues []*nfqtest.Queue
	inj    *nfqtest.Injector
	rec    *recorder
	cancel context.CancelFunc
	done   chan error
	goBase int
}

func newHarness(t *testing.T, nqueues int, s script) *harness {
	t.Helper()
	h := &harness{t: t, rec: newRecorder(), inj: nfqtest.NewInjector(256), goBase: runtime.NumGoroutine()}
	var qs []Queue
	for range nqueues {
		q := nfqtest.NewQueue(1024)
		h.queues = append(h.queues, q)
		qs = append(qs, q)
	}
	cfg := Config{
		QueueNum: 100,
		Guard:    s.guard,
		NewEngine: func(i int) (Engine, error) {
			e := &fakeEngine{worker: i, rec: h.rec, process: s.process, tick: s.tick, abort: s.abort, state: map[string]any{}}
			if s.init != nil {
				s.init(e)
			}
			return e, nil
		},
	}
	d, err := New(cfg, qs, h.inj)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.d = d
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- d.Run(ctx) }()
	for !d.started.Load() {
		time.Sleep(time.Millisecond)
	}
	t.Cleanup(func() { h.stop() })
	return h
}

// stop cancels Run, waits for it and checks that no goroutine leaked.
func (h *harness) stop() error {
	h.t.Helper()
	if h.cancel == nil {
		return nil
	}
	h.cancel()
	h.cancel = nil
	var err error
	select {
	case err = <-h.done:
	case <-time.After(testTimeout):
		h.t.Fatalf("Run did not return after cancel")
	}
	checkGoroutines(h.t, h.goBase)
	return err
}

// checkGoroutines fails t if more goroutines than base remain after a grace
// period.
func checkGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Errorf("goroutine leak: %d running, %d before\n%s", runtime.NumGoroutine(), base,
				strings.TrimSpace(string(buf[:n])))
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// verdict waits for the next verdict on queue qi.
func (h *harness) verdict(qi int) nfqtest.Verdict {
	h.t.Helper()
	select {
	case v := <-h.queues[qi].Verdicts():
		return v
	case <-time.After(testTimeout):
		h.t.Fatalf("no verdict on queue %d", qi)
	}
	return nfqtest.Verdict{}
}

// noVerdict checks that queue qi gets no verdict within d.
func (h *harness) noVerdict(qi int, d time.Duration) {
	h.t.Helper()
	select {
	case v := <-h.queues[qi].Verdicts():
		h.t.Fatalf("unexpected verdict on queue %d: %+v", qi, v)
	case <-time.After(d):
	}
}

// nextCall waits for the next engine call.
func (h *harness) nextCall() call {
	h.t.Helper()
	select {
	case c := <-h.rec.ch:
		return c
	case <-time.After(testTimeout):
		h.t.Fatalf("no engine call")
	}
	return call{}
}

// waitStats polls Stats until ok or the timeout.
func (h *harness) waitStats(ok func(Stats) bool) Stats {
	h.t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		s := h.d.Stats()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("stats condition not met: %+v", s)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// tcpPkt builds a TCP segment from src to dst with seq n and payload.
func tcpPkt(t testing.TB, src, dst string, n uint32, payload []byte) []byte {
	t.Helper()
	b, err := packet.Build(nil, &packet.Fields{
		Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort(dst),
		Seq: seq.Value(n), Flags: packet.FlagACK, Window: 1000, Payload: payload,
	})
	if err != nil {
		t.Fatalf("packet.Build: %v", err)
	}
	return b
}

// udp4 builds a minimal IPv4 UDP packet.
func udp4() []byte {
	b := make([]byte, 28)
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], 28)
	b[8], b[9] = 64, 17
	copy(b[12:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
	return b
}

// seqOf returns the TCP sequence number of an IPv4 or IPv6 test packet, or
// 0xffffffff if it does not parse. Safe on any goroutine.
func seqOf(b []byte) uint32 {
	var p packet.Packet
	if err := packet.Parse(b, &p); err != nil {
		return 0xffffffff
	}
	return uint32(p.TCP.Seq())
}

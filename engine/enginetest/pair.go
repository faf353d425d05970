package enginetest

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
)

// Addresses of the two hosts. They exist only inside the in-process stacks.
var (
	AddrA4 = netip.MustParseAddr("10.0.0.1")
	AddrB4 = netip.MustParseAddr("10.0.0.2")
	AddrA6 = netip.MustParseAddr("fd00::1")
	AddrB6 = netip.MustParseAddr("fd00::2")
)

// Pair is two hosts joined by an impaired wire. Create it with New, and
// Close it when done.
type Pair struct {
	// A and B are the two hosts.
	A, B *Host

	cfg     Config
	links   [2]*link // indexed by WireDir
	paused  atomic.Bool
	capture captureRing

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New builds and starts a Pair.
func New(cfg Config) (*Pair, error) {
	c := cfg.withDefaults()
	if (c.A.GSOPartialChecksum && !c.A.GSO) || (c.B.GSOPartialChecksum && !c.B.GSO) {
		return nil, errors.New("enginetest: GSOPartialChecksum requires GSO")
	}
	a, err := newHost("A", c.A, c.MTU, AddrA4, AddrA6)
	if err != nil {
		return nil, err
	}
	b, err := newHost("B", c.B, c.MTU, AddrB4, AddrB6)
	if err != nil {
		a.stack.Destroy()
		return nil, err
	}
	p := &Pair{A: a, B: b, cfg: c, capture: captureRing{limit: c.CaptureLimit, snap: c.CaptureSnap}}
	p.links[AToB] = newLink(AToB, c.AToB, c.Seed, b, p)
	p.links[BToA] = newLink(BToA, c.BToA, c.Seed, a, p)
	a.out, a.peer, a.tickIv = p.links[AToB], b, c.TickInterval
	b.out, b.peer, b.tickIv = p.links[BToA], a, c.TickInterval

	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	for _, h := range []*Host{a, b} {
		p.goroutine(func() { h.pumpOut(ctx) })
		if h.cfg.Middle != nil {
			p.goroutine(func() { h.tickLoop(ctx) })
		}
	}
	for _, l := range p.links {
		p.goroutine(func() { l.run(ctx) })
	}
	return p, nil
}

// NewForTest is New for tests: it fails tb on error and registers Close with
// tb.Cleanup.
func NewForTest(tb testing.TB, cfg Config) *Pair {
	tb.Helper()
	p, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.Close)
	return p
}

func (p *Pair) goroutine(f func()) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		f()
	}()
}

// Close stops every goroutine of the Pair, waits for them, and destroys both
// stacks (open connections are aborted). It is safe to call more than once.
func (p *Pair) Close() {
	p.closeOnce.Do(func() {
		p.cancel()
		p.wg.Wait()
		for _, h := range []*Host{p.A, p.B} {
			h.stack.Destroy()
		}
	})
}

// Pause stops delivery on both directions of the wire: packets queue (and
// are impaired) but reach no host until Resume.
func (p *Pair) Pause() { p.paused.Store(true) }

// Resume restarts delivery after Pause.
func (p *Pair) Resume() {
	p.paused.Store(false)
	for _, l := range p.links {
		l.poke()
	}
}

// InjectWire puts pkt on the wire in direction dir as if the sending host's
// Middle had emitted it (it is impaired like any other packet). Use it to
// forge segments.
func (p *Pair) InjectWire(dir WireDir, pkt []byte) {
	p.links[dir].send(pkt)
}

// Capture returns the captured wire packets, oldest first, and how many
// packets were captured in total (including ones the ring no longer holds).
func (p *Pair) Capture() ([]Captured, uint64) { return p.capture.snapshot() }

// Stats is a snapshot of the Pair's counters.
type Stats struct {
	A, B       HostStats
	AToB, BToA LinkStats
}

// Stats returns the current counters.
func (p *Pair) Stats() Stats {
	return Stats{
		A: p.A.snapshot(), B: p.B.snapshot(),
		AToB: p.links[AToB].snapshot(), BToA: p.links[BToA].snapshot(),
	}
}

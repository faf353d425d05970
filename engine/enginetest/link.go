package enginetest

import (
	"container/heap"
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// WireDir names one direction of the wire.
type WireDir uint8

const (
	// AToB is the direction from host A to host B.
	AToB WireDir = iota
	// BToA is the direction from host B to host A.
	BToA
)

// String returns "A->B" or "B->A".
func (d WireDir) String() string {
	if d == AToB {
		return "A->B"
	}
	return "B->A"
}

// LinkStats counts what one direction of the wire did.
type LinkStats struct {
	Sent       uint64 // packets put on this direction by the sending host
	Lost       uint64 // dropped by LossPct
	Duplicated uint64 // extra copies made by DupPct
	Reordered  uint64 // packets held back by ReorderPct
	Split      uint64 // segments cut by SplitPct
	Coalesced  uint64 // merges done by CoalescePct
	OnWireDrop uint64 // packets OnWire dropped
	Delivered  uint64 // packets handed to the receiving host
}

type linkCounters struct {
	sent, lost, duplicated, reordered, split, coalesced, onWireDrop, delivered atomic.Uint64
}

// link is one direction of the wire. Senders append to in; one goroutine
// (run) impairs, schedules and delivers, so delivery order is well defined.
type link struct {
	dir  WireDir
	imp  Impairment
	to   *Host
	pair *Pair

	mu   sync.Mutex
	in   [][]byte
	wake chan struct{}

	// owned by run
	rng   *rand.Rand
	held  []heldPkt
	sched schedHeap
	n     uint64 // schedule order, for FIFO among equal times
	stats linkCounters
}

type heldPkt struct {
	pkt      []byte
	left     int
	deadline time.Time
}

type schedPkt struct {
	at  time.Time
	n   uint64
	pkt []byte
}

type schedHeap []schedPkt

func (h schedHeap) Len() int { return len(h) }
func (h schedHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].n < h[j].n
}
func (h schedHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *schedHeap) Push(x any)   { *h = append(*h, x.(schedPkt)) }
func (h *schedHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = schedPkt{}
	*h = old[:len(old)-1]
	return x
}

func newLink(dir WireDir, imp Impairment, seed uint64, to *Host, p *Pair) *link {
	return &link{
		dir:  dir,
		imp:  imp,
		to:   to,
		pair: p,
		wake: make(chan struct{}, 1),
		rng:  rand.New(rand.NewPCG(seed, uint64(dir)+0x9e3779b97f4a7c15)),
	}
}

// send queues a packet on the wire; it never blocks.
func (l *link) send(p []byte) {
	l.stats.sent.Add(1)
	l.mu.Lock()
	l.in = append(l.in, p)
	l.mu.Unlock()
	l.poke()
}

func (l *link) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *link) pct(p float64) bool { return p > 0 && l.rng.Float64()*100 < p }

func (l *link) run(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	var batch [][]byte
	for {
		l.mu.Lock()
		batch, l.in = l.in, batch[:0]
		l.mu.Unlock()
		now := time.Now()
		if len(batch) > 0 {
			l.impair(batch, now)
			clear(batch)
		}
		l.releaseExpired(now)
		paused := l.pair.paused.Load()
		if !paused {
			l.deliverDue(now)
		}
		var next time.Time
		if !paused && len(l.sched) > 0 {
			next = l.sched[0].at
		}
		for _, h := range l.held {
			if next.IsZero() || h.deadline.Before(next) {
				next = h.deadline
			}
		}
		var timer <-chan time.Time
		if !next.IsZero() {
			t.Reset(max(time.Until(next), 0))
			timer = t.C
		}
		select {
		case <-ctx.Done():
			return
		case <-l.wake:
		case <-timer:
		}
	}
}

// impair applies loss, coalescing, splitting, duplication and reordering to
// a batch of packets fresh from the sender, and schedules the survivors.
func (l *link) impair(batch [][]byte, now time.Time) {
	im := &l.imp
	kept := batch[:0]
	for _, p := range batch {
		if l.pct(im.LossPct) {
			l.stats.lost.Add(1)
			continue
		}
		kept = append(kept, p)
	}
	if im.CoalescePct > 0 {
		var n int
		kept, n = coalesceRun(kept, im.CoalesceMax, func() bool { return l.pct(im.CoalescePct) })
		l.stats.coalesced.Add(uint64(n))
	}
	for _, p := range kept {
		pieces := [][]byte{p}
		if l.pct(im.SplitPct) {
			if ps, ok := l.split(p); ok {
				pieces = ps
				l.stats.split.Add(1)
			}
		}
		for _, q := range pieces {
			l.emit(q, now)
			if l.pct(im.DupPct) {
				l.stats.duplicated.Add(1)
				l.emit(slices.Clone(q), now)
			}
		}
	}
}

// split cuts p at random payload offsets into 2..SplitMax pieces.
func (l *link) split(p []byte) ([][]byte, bool) {
	s, ok := parseSeg(p)
	if !ok || !s.splittable() {
		return nil, false
	}
	n := len(s.payload())
	k := 2 + l.rng.IntN(l.imp.SplitMax-1) // pieces
	k = min(k, n)
	cuts := make([]int, 0, k-1)
	for len(cuts) < k-1 {
		c := 1 + l.rng.IntN(n-1)
		if !slices.Contains(cuts, c) {
			cuts = append(cuts, c)
		}
	}
	slices.Sort(cuts)
	return Split(p, cuts)
}

// emit passes one packet through the reorder stage and schedules it.
func (l *link) emit(p []byte, now time.Time) {
	if l.pct(l.imp.ReorderPct) {
		l.stats.reordered.Add(1)
		l.held = append(l.held, heldPkt{
			pkt:      p,
			left:     1 + l.rng.IntN(l.imp.ReorderK),
			deadline: now.Add(l.imp.ReorderHold),
		})
		return
	}
	l.schedule(p, now)
	// Each packet that passes counts down the held ones.
	for i := range l.held {
		l.held[i].left--
	}
	l.release(now, func(h *heldPkt) bool { return h.left <= 0 })
}

// releaseExpired schedules held packets whose hold time is over.
func (l *link) releaseExpired(now time.Time) {
	l.release(now, func(h *heldPkt) bool { return !now.Before(h.deadline) })
}

// release schedules, in hold order, the held packets for which due is true.
func (l *link) release(now time.Time, due func(*heldPkt) bool) {
	kept := l.held[:0]
	for i := range l.held {
		if h := &l.held[i]; due(h) {
			l.schedule(h.pkt, now)
		} else {
			kept = append(kept, *h)
		}
	}
	clear(l.held[len(kept):])
	l.held = kept
}

func (l *link) schedule(p []byte, now time.Time) {
	at := now.Add(l.imp.Delay)
	if l.imp.Jitter > 0 {
		at = at.Add(time.Duration(l.rng.Int64N(int64(l.imp.Jitter))))
	}
	l.n++
	heap.Push(&l.sched, schedPkt{at: at, n: l.n, pkt: p})
}

func (l *link) deliverDue(now time.Time) {
	for len(l.sched) > 0 && !l.sched[0].at.After(now) {
		sp := heap.Pop(&l.sched).(schedPkt)
		l.deliver(sp.pkt)
	}
}

// deliver hands one packet that left the wire to OnWire, the capture and the
// receiving host.
func (l *link) deliver(p []byte) {
	if f := l.pair.cfg.OnWire; f != nil {
		if p = f(l.dir, p); p == nil {
			l.stats.onWireDrop.Add(1)
			return
		}
	}
	l.pair.capture.add(l.dir, p)
	l.stats.delivered.Add(1)
	l.to.stats.inPackets.Add(1)
	l.to.process(Inbound, p)
}

func (l *link) snapshot() LinkStats {
	c := &l.stats
	return LinkStats{
		Sent: c.sent.Load(), Lost: c.lost.Load(), Duplicated: c.duplicated.Load(),
		Reordered: c.reordered.Load(), Split: c.split.Load(), Coalesced: c.coalesced.Load(),
		OnWireDrop: c.onWireDrop.Load(), Delivered: c.delivered.Load(),
	}
}

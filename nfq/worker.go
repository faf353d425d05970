package nfq

import (
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/florianl/go-nfqueue/v2"

	"github.com/tcpcryptd/tcpcrypt/engine"
)

// item is one queued segment on its way to a worker. buf is a pooled copy of
// the payload, owned by the worker once sent.
type item struct {
	buf *[]byte
	q   int // index of the queue it came from
	id  uint32
	dir engine.Dir
	at  time.Duration // when the reader received it (stamp)
}

// ref returns the segment's location in the kernel and its stamp.
func (it *item) ref() heldRef { return heldRef{q: it.q, id: it.id, at: it.at} }

// heldRef locates a segment waiting for a verdict (held, or being
// processed) in the kernel: its queue and packet id. at is when the reader
// received it (stamp), for the verdict-latency histogram.
type heldRef struct {
	q  int
	id uint32
	at time.Duration
}

// minRearm is the shortest wait before a Tick for a deadline that has just
// fired without moving: it keeps an engine that reports a stale deadline
// from spinning a core.
const minRearm = time.Millisecond

// worker owns one engine and the segments the engine holds.
type worker struct {
	idx    int
	d      *Dispatcher
	eng    Engine
	in     chan item
	ctl    chan func()
	exited chan struct{}
	held   map[engine.Token]heldRef
	c      counters
	// batches holds the verdicts ready per queue (the fast path), nil
	// for queues without a raw socket (test fakes): those get each
	// verdict through the Queue interface.
	batches []*batch
}

func newWorker(d *Dispatcher, idx int, eng Engine) *worker {
	return &worker{
		idx:    idx,
		d:      d,
		eng:    eng,
		in:     make(chan item, d.cfg.WorkerQueueLen),
		ctl:    make(chan func()),
		exited: make(chan struct{}),
		held:   make(map[engine.Token]heldRef),
		batches: func() []*batch {
			bs := make([]*batch, len(d.queues))
			for i, q := range d.queues {
				if rc, ok := queueRawConn(q); ok {
					bs[i] = newBatch(rc, d.cfg.QueueNum+uint16(i))
					bs[i].recycle = recycler(eng) // packets go back to the engine once sent
				}
			}
			return bs
		}(),
	}
}

// flush sends every batched verdict.
func (w *worker) flush() {
	for _, b := range w.batches {
		if b != nil && b.n > 0 {
			w.send(b)
		}
	}
}

// send writes one batch, counting its verdicts as errors if the write fails.
func (w *worker) send(b *batch) {
	n := b.n
	if err := b.send(); err != nil {
		w.c.c[cVerdictErrors].Add(uint64(n))
	}
}

// run processes segments, timers and Inspect calls until stop is closed.
func (w *worker) run(stop <-chan struct{}) {
	defer close(w.exited)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	timer.Stop()
	var armed, fired time.Time // deadline the timer is set for; last one that fired
	for {
		if dl := w.eng.NextDeadline(); !dl.Equal(armed) {
			armed = dl
			if dl.IsZero() {
				timer.Stop()
			} else {
				wait := dl.Sub(w.d.cfg.Now())
				if dl.Equal(fired) && wait < minRearm {
					wait = minRearm
				}
				timer.Reset(wait)
			}
		}
		select {
		case it := <-w.in:
			w.process(&it)
			putBuf(it.buf)
			// Verdicts wait only while more segments are already
			// queued for this worker: batching never adds idle latency.
			if len(w.in) == 0 {
				w.flush()
			}
		case <-timer.C:
			fired, armed = armed, time.Time{}
			w.c.inc(cTicks)
			w.tick()
			w.flush()
		case fn := <-w.ctl:
			w.flush()
			fn()
		case <-stop:
			w.flush()
			w.shutdown()
			return
		}
	}
}

// process runs the engine on one segment and carries out the result. A
// panic in the engine is recovered: the segment is dropped and its flow
// aborted (see "Engine panics" in the package documentation).
func (w *worker) process(it *item) {
	res, ok := w.safely(func() engine.Result { return w.eng.Process(*it.buf, it.dir) })
	if !ok {
		w.write(it.ref(), engine.Drop, nil)
		if k, kind := extractKey(*it.buf, it.dir); kind != kindBad {
			w.abortAfterPanic(k.flow())
		}
		return
	}
	w.apply(res, it)
}

// tick runs the engine's timers. A panic there cannot be tied to a flow; it
// is recovered and counted, and the timers run again at the next deadline.
func (w *worker) tick() {
	if res, ok := w.safely(func() engine.Result { return w.eng.Tick(w.d.cfg.Now()) }); ok {
		w.apply(res, nil)
	}
}

// safely calls fn, recovering a panic: it counts and logs it (rate-limited,
// with the stack) and reports false.
func (w *worker) safely(fn func() engine.Result) (res engine.Result, ok bool) {
	defer func() {
		if p := recover(); p != nil {
			w.c.inc(cPanics)
			w.d.logLimited("engine panicked; segment dropped, flow aborted", "worker", w.idx,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			ok = false
		}
	}()
	return fn(), true
}

// abortAfterPanic aborts the flow a panicking segment belonged to, so it
// cannot go on with state the panic may have left half-updated. If the
// abort panics as well the engine is beyond repair: the worker panics for
// good, and the guard keeps protected flows from leaking while the daemon is
// gone.
func (w *worker) abortAfterPanic(f engine.Flow) {
	res, ok := w.eng.AbortFlow(f, engine.AbortInternal)
	if ok {
		w.apply(res, nil)
	}
}

// apply carries out res, the result of Process for cur, or of Tick when cur
// is nil, in the order the package documentation gives: the guard first,
// then injections, holds, releases and the verdict, then releases from the
// guard.
func (w *worker) apply(res engine.Result, cur *item) {
	if len(res.Protect) > 0 && !w.protect(res.Protect) {
		w.failClosed(res, cur)
		return
	}
	w.carryOut(res, cur)
	if len(res.Unprotect) > 0 && w.d.cfg.Guard != nil {
		if err := w.d.cfg.Guard.Unprotect(res.Unprotect...); err != nil {
			w.c.inc(cUnprotectErrors)
			w.d.logLimited("could not release protected flows", "worker", w.idx, "flows", len(res.Unprotect), "err", err)
		}
	}
}

// protect hands flows to the guard; false means they are not protected.
func (w *worker) protect(flows []engine.Flow) bool {
	g := w.d.cfg.Guard
	if g == nil {
		return true
	}
	if err := g.Protect(flows...); err != nil {
		w.c.c[cGuardErrors].Add(uint64(len(flows)))
		w.d.logLimited("could not protect flows; aborting them", "worker", w.idx, "flows", len(flows),
			"first", flows[0].String(), "err", err)
		return false
	}
	w.c.c[cProtected].Add(uint64(len(flows)))
	return true
}

// failClosed handles a Result whose flows could not be protected: nothing of
// it leaves (no injection, the segment and every release dropped; a held
// segment stays held and is released by the abort), and the flows are
// aborted, which only sends RSTs.
func (w *worker) failClosed(res engine.Result, cur *item) {
	drop := engine.Result{Verdict: engine.Drop, Token: res.Token, Released: res.Released}
	if res.Verdict == engine.Hold {
		drop.Verdict = engine.Hold
	}
	for i := range drop.Released {
		drop.Released[i].Verdict, drop.Released[i].Packet = engine.Drop, nil
	}
	w.carryOut(drop, cur)
	for _, f := range res.Protect {
		if ar, ok := w.eng.AbortFlow(f, engine.AbortGuard); ok {
			ar.Protect = nil // an aborted flow is dead: nothing to protect
			w.apply(ar, nil)
		}
	}
}

// carryOut injects, holds, releases and writes the verdict of res.
func (w *worker) carryOut(res engine.Result, cur *item) {
	if len(res.ToPeer)+len(res.ToLocal) > 0 {
		// Batched verdicts of earlier segments go first, so the wire
		// sees the engine's order.
		w.flush()
	}
	// An Injector keeps a packet only for the call: it goes back to the
	// engine right after (engine.Engine.Recycle).
	rec, _ := w.eng.(interface{ Recycle([]byte) })
	for _, p := range res.ToPeer {
		if err := w.d.inj.ToPeer(p); err != nil {
			w.c.inc(cInjectErrors)
		} else {
			w.c.inc(cInjectedToPeer)
		}
		if rec != nil {
			rec.Recycle(p)
		}
	}
	for _, p := range res.ToLocal {
		if err := w.d.inj.ToLocal(p); err != nil {
			w.c.inc(cInjectErrors)
		} else {
			w.c.inc(cInjectedToLocal)
		}
		if rec != nil {
			rec.Recycle(p)
		}
	}
	if cur != nil && res.Verdict == engine.Hold {
		if old, dup := w.held[res.Token]; dup {
			// The engine reused a live token: settle the older segment
			// rather than lose its id.
			w.c.inc(cEngineBugs)
			w.c.heldNow.Add(-1)
			w.write(old, engine.Drop, nil)
		}
		w.held[res.Token] = cur.ref()
		w.c.inc(cHeld)
		w.c.heldNow.Add(1)
	}
	for _, r := range res.Released {
		ref, ok := w.held[r.Token]
		if !ok {
			w.c.inc(cEngineBugs)
			continue
		}
		delete(w.held, r.Token)
		w.c.heldNow.Add(-1)
		w.c.inc(cReleased)
		w.write(ref, r.Verdict, r.Packet)
	}
	if cur != nil && res.Verdict != engine.Hold {
		w.write(cur.ref(), res.Verdict, res.Packet)
	}
}

// write sends the verdict v (with pkt for Replace) for the segment at ref,
// and records the time since the reader received it (also when the queue
// refused the verdict: the segment's wait ends either way). Anything that is
// not a valid verdict becomes a drop: never pass a segment the engine did
// not explicitly let through.
func (w *worker) write(ref heldRef, v engine.Verdict, pkt []byte) {
	verdict, payload := nfqueue.NfDrop, []byte(nil)
	switch {
	case v == engine.Accept:
		verdict = nfqueue.NfAccept
		w.c.inc(cAccepted)
	case v == engine.Replace && pkt != nil && len(pkt) <= engine.MaxPacket:
		verdict, payload = nfqueue.NfAccept, pkt
		w.c.inc(cReplaced)
	case v == engine.Replace && pkt != nil:
		// Too long for a verdict: sent anyway it would vanish silently.
		w.c.inc(cOversized)
		w.c.inc(cDropped)
	default:
		if v != engine.Drop {
			w.c.inc(cEngineBugs)
		}
		w.c.inc(cDropped)
	}
	w.c.lat.observe(stamp() - ref.at)
	if b := w.batches[ref.q]; b != nil {
		if b.full(payload) {
			w.send(b)
		}
		b.add(ref.id, verdict, payload)
		return
	}
	q := w.d.queues[ref.q]
	var err error
	if payload != nil {
		err = q.SetVerdictModPacket(ref.id, verdict, payload)
	} else {
		err = q.SetVerdict(ref.id, verdict)
	}
	if err != nil {
		w.c.inc(cVerdictErrors)
	}
}

// shutdown drops every segment still waiting for this worker and every
// segment the engine holds (see "Shutdown and held packets" in the package
// documentation). Errors are ignored: the queues are closed by now, and the
// kernel drops the packets by itself.
func (w *worker) shutdown() {
	for {
		select {
		case it := <-w.in:
			putBuf(it.buf)
			w.dropAtShutdown(it.ref())
			continue
		default:
		}
		break
	}
	for tok, ref := range w.held {
		delete(w.held, tok)
		w.c.heldNow.Add(-1)
		w.dropAtShutdown(ref)
	}
}

func (w *worker) dropAtShutdown(ref heldRef) {
	_ = w.d.queues[ref.q].SetVerdict(ref.id, nfqueue.NfDrop)
	w.c.inc(cShutdownDrops)
}

// Payload copies come from two pools: most segments are small (ACKs, one
// MTU); GSO super-packets need up to CopyRange bytes.
const smallBuf = 2048

var (
	smallPool = sync.Pool{New: func() any { b := make([]byte, 0, smallBuf); return &b }}
	largePool = sync.Pool{New: func() any { b := make([]byte, 0, CopyRange+1); return &b }}
)

// getBuf returns a pooled buffer holding a copy of p.
func getBuf(p []byte) *[]byte {
	var b *[]byte
	switch {
	case len(p) <= smallBuf:
		b = smallPool.Get().(*[]byte)
	case len(p) <= CopyRange+1:
		b = largePool.Get().(*[]byte)
	default:
		nb := make([]byte, 0, len(p))
		b = &nb
	}
	*b = append((*b)[:0], p...)
	return b
}

// putBuf returns b to its pool.
func putBuf(b *[]byte) {
	switch cap(*b) {
	case smallBuf:
		*b = (*b)[:0]
		smallPool.Put(b)
	case CopyRange + 1:
		*b = (*b)[:0]
		largePool.Put(b)
	}
}

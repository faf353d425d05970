package nfq

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/florianl/go-nfqueue/v2"
	"golang.org/x/sys/unix"

	"github.com/tcpcryptd/tcpcrypt/engine"
	"github.com/tcpcryptd/tcpcrypt/packet"
)

// heldRef locates a segment waiting for a verdict (held, or being processed)
// in the kernel: its packet id in the shard's queue, and when the reader
// received it (stamp), for the verdict-latency histogram.
type heldRef struct {
	id uint32
	at time.Duration
}

// minRearm is the shortest wait before a Tick for a deadline that has just
// fired without moving: it keeps an engine that reports a stale deadline
// from spinning a core.
const minRearm = time.Millisecond

// recvBufSize is the size of one receive buffer: a whole packet (CopyRange)
// and the netlink headers and attributes that come with it.
const recvBufSize = CopyRange + 4096

// maxRecvErrors is how many receive errors in a row, other than ENOBUFS, a
// reader takes before it gives up on its queue.
const maxRecvErrors = 1000

// shard is one queue with its engine: the reader goroutine reads the queue,
// runs the engine on each segment and writes the verdicts, all on one
// goroutine and without copying the segment out of the receive buffer. A
// second goroutine runs the engine's timers. mu serialises the two (and
// Inspect); the reader takes it once per receive batch, so on the packet path
// it is almost never contended.
type shard struct {
	idx  int
	d    *Dispatcher
	q    Queue
	qnum uint16
	c    counters

	mu   sync.Mutex // guards eng, held and out
	eng  Engine
	held map[engine.Token]heldRef
	out  *batch
	// recycle gives an emitted packet back to eng once the kernel has it
	// (engine.Engine.Recycle); nil for engines without one (test fakes).
	recycle func([]byte)

	// armed is the deadline (UnixNano, 0 for none) the timer goroutine
	// waits for; the reader wakes it through wake when the engine's
	// deadline comes earlier than that.
	armed atomic.Int64
	wake  chan struct{}
}

func newShard(d *Dispatcher, idx int, q Queue, eng Engine) *shard {
	qnum := d.cfg.QueueNum + uint16(idx)
	recycle := recycler(eng)
	return &shard{
		idx:     idx,
		d:       d,
		q:       q,
		qnum:    qnum,
		eng:     eng,
		held:    make(map[engine.Token]heldRef),
		out:     newBatch(q, qnum, recycle),
		recycle: recycle,
		wake:    make(chan struct{}, 1),
	}
}

// read is the reader goroutine: it receives batches of datagrams and
// processes every packet in them, until the queue is closed. fail reports an
// error that ends Run; done reports whether Run is shutting down (then a
// closed queue is expected).
func (s *shard) read(fail func(error), done func() bool) {
	bufs := make([][]byte, recvBatch)
	for i := range bufs {
		bufs[i] = make([]byte, recvBufSize)
	}
	sizes := make([]int, recvBatch)
	errs := 0
	for {
		n, err := s.q.Recv(bufs, sizes)
		if err != nil {
			if done() {
				return
			}
			switch {
			case errors.Is(err, unix.ENOBUFS):
				// The kernel could not deliver some packets: the socket
				// buffer was full. They are lost to us; keep reading.
				s.c.inc(cENOBUFS)
				continue
			case errors.Is(err, net.ErrClosed), errors.Is(err, os.ErrClosed), errors.Is(err, unix.EBADF):
				fail(fmt.Errorf("nfq: queue %d: %w: %w", s.qnum, ErrQueueClosed, err))
				return
			}
			s.c.inc(cRecvErrors)
			if errs++; errs >= maxRecvErrors {
				fail(fmt.Errorf("nfq: queue %d: %d receive errors in a row, the last: %w", s.qnum, errs, err))
				return
			}
			continue
		}
		errs = 0
		s.mu.Lock()
		for i := range n {
			b := bufs[i]
			if sizes[i] <= len(b) {
				b = b[:sizes[i]]
			} else {
				// Cut by the buffer: the packet attribute, which comes
				// last, is incomplete. Count it; the messages before
				// the cut still parse.
				s.c.inc(cTruncated)
			}
			s.datagram(b)
		}
		s.flush()
		dl := s.eng.NextDeadline()
		s.mu.Unlock()
		s.rearm(dl)
	}
}

// rearm wakes the timer goroutine if dl comes before what it waits for.
func (s *shard) rearm(dl time.Time) {
	if dl.IsZero() {
		return
	}
	if a := s.armed.Load(); a != 0 && dl.UnixNano() >= a {
		return
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// datagram processes every message of one datagram. Called with mu held.
func (s *shard) datagram(b []byte) {
	var p nfqPacket
	for len(b) > 0 {
		kind, _, rest := nextMessage(b, &p)
		b = rest
		switch kind {
		case msgPacket:
			s.packet(&p)
		case msgError:
			// The error reply to a verdict, typically for a packet id
			// the kernel no longer knows.
			s.c.inc(cRecvErrors)
		case msgUnknown, msgBad:
			s.c.inc(cBadMessages)
		}
	}
}

// packet handles one queued packet. Called with mu held.
func (s *shard) packet(p *nfqPacket) {
	at := stamp() // start of the verdict latency
	if !p.hasHdr {
		s.c.inc(cNoPacketID)
		return
	}
	var dir engine.Dir
	switch p.hook {
	case HookLocalOut:
		dir = engine.Outbound
		s.c.inc(cPacketsOut)
	case HookLocalIn:
		dir = engine.Inbound
		s.c.inc(cPacketsIn)
	default:
		s.c.inc(cUnknownHook)
		s.acceptUnchanged(p.id)
		return
	}
	if p.hasCapLen && int(p.capLen) > len(p.payload) {
		s.c.inc(cTruncated)
	}
	switch _, _, err := packet.Endpoints(p.payload); {
	case err == packet.ErrNotTCP:
		s.c.inc(cNonTCP)
		s.acceptUnchanged(p.id)
		return
	case err != nil:
		// The engine decides: it drops what it cannot parse, because
		// such a segment may belong to an encrypted flow.
		s.c.inc(cParseErrors)
	}
	s.process(p.payload, dir, heldRef{id: p.id, at: at})
}

// acceptUnchanged lets a packet no engine should see through. It is not
// recorded in the verdict latency (see Stats.VerdictLatency).
func (s *shard) acceptUnchanged(id uint32) {
	s.c.inc(cAccepted)
	s.queue(id, nfqueue.NfAccept, nil)
}

// timers is the timer goroutine: it runs the engine's Tick whenever its
// NextDeadline passes, until stop is closed.
func (s *shard) timers(stop <-chan struct{}) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var fired time.Time // the last deadline that fired
	for {
		// Zero first: a reader that moves the deadline while this one
		// recomputes it sends a wake-up, so no deadline is missed.
		s.armed.Store(0)
		s.mu.Lock()
		dl := s.eng.NextDeadline()
		s.mu.Unlock()
		var tc <-chan time.Time
		if !dl.IsZero() {
			wait := dl.Sub(s.d.cfg.Now())
			if dl.Equal(fired) && wait < minRearm {
				wait = minRearm
			}
			s.armed.Store(dl.UnixNano())
			timer.Reset(wait)
			tc = timer.C
		}
		select {
		case <-tc:
			fired = dl
			s.mu.Lock()
			s.c.inc(cTicks)
			s.tick()
			s.flush()
			s.mu.Unlock()
		case <-s.wake:
			timer.Stop()
		case <-stop:
			return
		}
	}
}

// flush sends the batched verdicts.
func (s *shard) flush() {
	if s.out.n == 0 {
		return
	}
	n := s.out.n
	if err := s.out.send(); err != nil {
		s.c.c[cVerdictErrors].Add(uint64(n))
	}
}

// process runs the engine on one segment and carries out the result. A
// panic in the engine is recovered: the segment is dropped and its flow
// aborted (see "Engine panics" in the package documentation).
func (s *shard) process(pkt []byte, dir engine.Dir, ref heldRef) {
	res, ok := s.safely(func() engine.Result { return s.eng.Process(pkt, dir) })
	if !ok {
		s.write(ref, engine.Drop, nil)
		if src, dst, err := packet.Endpoints(pkt); err == nil {
			f := engine.Flow{Local: src, Remote: dst}
			if dir == engine.Inbound {
				f = engine.Flow{Local: dst, Remote: src}
			}
			s.abortAfterPanic(f)
		}
		return
	}
	s.apply(res, &ref)
}

// tick runs the engine's timers. A panic there cannot be tied to a flow; it
// is recovered and counted, and the timers run again at the next deadline.
func (s *shard) tick() {
	if res, ok := s.safely(func() engine.Result { return s.eng.Tick(s.d.cfg.Now()) }); ok {
		s.apply(res, nil)
	}
}

// safely calls fn, recovering a panic: it counts and logs it (rate-limited,
// with the stack) and reports false.
func (s *shard) safely(fn func() engine.Result) (res engine.Result, ok bool) {
	defer func() {
		if p := recover(); p != nil {
			s.c.inc(cPanics)
			s.d.logLimited("engine panicked; segment dropped, flow aborted", "queue", s.qnum,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			ok = false
		}
	}()
	return fn(), true
}

// abortAfterPanic aborts the flow a panicking segment belonged to, so it
// cannot go on with state the panic may have left half-updated. If the
// abort panics as well the engine is beyond repair: the reader panics for
// good, and the guard keeps protected flows from leaking while the daemon is
// gone.
func (s *shard) abortAfterPanic(f engine.Flow) {
	if res, ok := s.eng.AbortFlow(f, engine.AbortInternal); ok {
		s.apply(res, nil)
	}
}

// apply carries out res, the result of Process for the segment at cur, or
// of Tick when cur is nil, in the order the package documentation gives: the
// guard first, then injections, holds, releases and the verdict, then
// releases from the guard.
func (s *shard) apply(res engine.Result, cur *heldRef) {
	if len(res.Protect) > 0 && !s.protect(res.Protect) {
		s.failClosed(res, cur)
		return
	}
	s.carryOut(res, cur)
	if len(res.Unprotect) > 0 && s.d.cfg.Guard != nil {
		if err := s.d.cfg.Guard.Unprotect(res.Unprotect...); err != nil {
			s.c.inc(cUnprotectErrors)
			s.d.logLimited("could not release protected flows", "queue", s.qnum, "flows", len(res.Unprotect), "err", err)
		}
	}
}

// protect hands flows to the guard; false means they are not protected.
func (s *shard) protect(flows []engine.Flow) bool {
	g := s.d.cfg.Guard
	if g == nil {
		return true
	}
	if err := g.Protect(flows...); err != nil {
		s.c.c[cGuardErrors].Add(uint64(len(flows)))
		s.d.logLimited("could not protect flows; aborting them", "queue", s.qnum, "flows", len(flows),
			"first", flows[0].String(), "err", err)
		return false
	}
	s.c.c[cProtected].Add(uint64(len(flows)))
	return true
}

// failClosed handles a Result whose flows could not be protected: nothing of
// it leaves (no injection, the segment and every release dropped; a held
// segment stays held and is released by the abort), and the flows are
// aborted, which only sends RSTs.
func (s *shard) failClosed(res engine.Result, cur *heldRef) {
	drop := engine.Result{Verdict: engine.Drop, Token: res.Token, Released: res.Released}
	if res.Verdict == engine.Hold {
		drop.Verdict = engine.Hold
	}
	for i := range drop.Released {
		drop.Released[i].Verdict, drop.Released[i].Packet = engine.Drop, nil
	}
	s.carryOut(drop, cur)
	for _, f := range res.Protect {
		if ar, ok := s.eng.AbortFlow(f, engine.AbortGuard); ok {
			ar.Protect = nil // an aborted flow is dead: nothing to protect
			s.apply(ar, nil)
		}
	}
}

// carryOut injects, holds, releases and writes the verdict of res.
func (s *shard) carryOut(res engine.Result, cur *heldRef) {
	if len(res.ToPeer)+len(res.ToLocal) > 0 {
		// Batched verdicts of earlier segments go first, so the wire
		// sees the engine's order.
		s.flush()
	}
	s.inject(res.ToPeer, s.d.inj.ToPeer, cInjectedToPeer)
	s.inject(res.ToLocal, s.d.inj.ToLocal, cInjectedToLocal)
	if cur != nil && res.Verdict == engine.Hold {
		if old, dup := s.held[res.Token]; dup {
			// The engine reused a live token: settle the older segment
			// rather than lose its id.
			s.c.inc(cEngineBugs)
			s.c.heldNow.Add(-1)
			s.write(old, engine.Drop, nil)
		}
		s.held[res.Token] = *cur
		s.c.inc(cHeld)
		s.c.heldNow.Add(1)
	}
	for _, r := range res.Released {
		ref, ok := s.held[r.Token]
		if !ok {
			s.c.inc(cEngineBugs)
			continue
		}
		delete(s.held, r.Token)
		s.c.heldNow.Add(-1)
		s.c.inc(cReleased)
		s.write(ref, r.Verdict, r.Packet)
	}
	if cur != nil && res.Verdict != engine.Hold {
		s.write(*cur, res.Verdict, res.Packet)
	}
}

// inject sends each of pkts with send, counting successes in sent and
// failures in cInjectErrors. An Injector keeps a packet only for the call,
// so each goes back to the engine right after (engine.Engine.Recycle).
func (s *shard) inject(pkts [][]byte, send func([]byte) error, sent counter) {
	for _, p := range pkts {
		if err := send(p); err != nil {
			s.c.inc(cInjectErrors)
		} else {
			s.c.inc(sent)
		}
		if s.recycle != nil {
			s.recycle(p)
		}
	}
}

// write batches the verdict v (with pkt for Replace) for the segment at ref,
// and records the time since the reader received it. Anything that is not a
// valid verdict becomes a drop: never pass a segment the engine did not
// explicitly let through.
func (s *shard) write(ref heldRef, v engine.Verdict, pkt []byte) {
	verdict, payload := nfqueue.NfDrop, []byte(nil)
	switch {
	case v == engine.Accept:
		verdict = nfqueue.NfAccept
		s.c.inc(cAccepted)
	case v == engine.Replace && pkt != nil && len(pkt) <= engine.MaxPacket:
		verdict, payload = nfqueue.NfAccept, pkt
		s.c.inc(cReplaced)
	case v == engine.Replace && pkt != nil:
		// Too long for a verdict: sent anyway it would vanish silently.
		s.c.inc(cOversized)
		s.c.inc(cDropped)
	default:
		if v != engine.Drop {
			s.c.inc(cEngineBugs)
		}
		s.c.inc(cDropped)
	}
	s.c.lat.observe(stamp() - ref.at)
	s.queue(ref.id, verdict, payload)
}

// queue adds a verdict to the batch, sending the batch first if it is full.
// payload is referenced until the batch is sent.
func (s *shard) queue(id uint32, verdict int, payload []byte) {
	if s.out.full(payload) {
		s.flush()
	}
	s.out.add(id, verdict, payload)
}

// shutdown drops every segment the engine holds (see "Shutdown and held
// packets" in the package documentation). Errors are ignored: the queue is
// closed by now, and the kernel drops the packets by itself.
func (s *shard) shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for tok, ref := range s.held {
		delete(s.held, tok)
		s.c.heldNow.Add(-1)
		s.c.inc(cShutdownDrops)
		s.out.add(ref.id, nfqueue.NfDrop, nil)
		if s.out.n >= maxBatchVerdicts {
			_ = s.out.send()
		}
	}
	_ = s.out.send()
}

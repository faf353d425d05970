package engine

import (
	"sync/atomic"
	"unsafe"
)

// DefaultMemoryLimit is the memory budget of an engine whose Config has no
// Budget: 256 MiB of stream buffers.
const DefaultMemoryLimit = 256 << 20

// Shares of a Budget, in quarters of its limit. Out-of-order bytes (which
// cannot be verified until the hole before them fills) may be stored while
// the total is under three quarters; frames sent and awaiting the peer's
// acknowledgment may fill three quarters at most. So at least a quarter is
// always left for in-order bytes of the peers, which is what lets
// connections progress and, through their acknowledgments, free memory: a
// loopback connection's sent frames, which only its own receiving end can
// get acknowledged, cannot fill the budget that end needs.
const (
	oooQuarters  = 3
	sendQuarters = 3
)

// Budget is a memory budget for the stream buffers of every flow of the
// engines that share it (DESIGN.md invariant 12), as the kernel's tcp_mem is
// for its sockets. The daemon runs one engine per queue worker and gives
// them all one Budget, so the bound holds for the whole process.
//
// What is counted: the buffers a flow keeps for reassembly (in order and
// out of order), for the frames it sent until the peer acknowledges them,
// and for the plaintext it delivered until the local stack acknowledges it,
// at their allocated size, and the records describing those frames and
// runs. A flow's buffers come from its engine's pool and go back to it as
// soon as they are empty, so an idle flow holds none. Not counted: the flow
// itself and records arrays of up to 64 entries (bounded by the flow table),
// the engine's free lists, which no peer can grow past their fixed bounds
// (stream buffers at most 16 MiB, packet buffers pktPoolMaxBytes = 1.1 MiB,
// record arrays 2 x recPoolMax entries = 640 KiB, per engine), packets
// handed to the caller (its own until it recycles them), and segments held
// while keys are missing (Config.MaxHeldPerFlow, MaxHeldTotal).
//
// How it is enforced, before bytes are stored: out-of-order bytes are
// refused once the total reaches three quarters of the limit; new outbound
// data once the frames awaiting acknowledgment reach three quarters, or the
// total the limit; in-order bytes of the peer once the total reaches the
// limit, after the flow's own out-of-order runs were discarded to make room
// (counted in OOOPruned). A refused segment is dropped, counted as
// memory_limit, and TCP retransmits it. Each engine brings the shared count
// up to date after every change, so the total may pass the limit by about
// one packet per engine.
//
// A Budget is safe for concurrent use.
type Budget struct {
	limit int64
	used  atomic.Int64 // everything
	sent  atomic.Int64 // of which buffers of sent frames
}

// NewBudget returns a Budget of limit bytes (limit <= 0: DefaultMemoryLimit).
func NewBudget(limit int64) *Budget {
	if limit <= 0 {
		limit = DefaultMemoryLimit
	}
	return &Budget{limit: limit}
}

// Limit returns the budget's size in bytes.
func (b *Budget) Limit() int64 { return b.limit }

// Used returns the bytes the engines sharing the budget hold right now.
func (b *Budget) Used() int64 { return b.used.Load() }

func (b *Budget) add(total, sent int64) {
	if total != 0 {
		b.used.Add(total)
	}
	if sent != 0 {
		b.sent.Add(sent)
	}
}

func (b *Budget) quarters(q int64) int64 { return b.limit / 4 * q }

// admitIn reports whether n more bytes of a peer fit (ooo: beyond a hole).
func (b *Budget) admitIn(n int, ooo bool) bool {
	lim := b.limit
	if ooo {
		lim = b.quarters(oooQuarters)
	}
	return b.used.Load()+int64(n) <= lim
}

// admitOut reports whether n more bytes of sent frames fit.
func (b *Budget) admitOut(n int) bool {
	return b.used.Load()+int64(n) <= b.limit && b.sent.Load()+int64(n) <= b.quarters(sendQuarters)
}

// Bookkeeping costs charged per record, on top of the bytes.
const (
	sentFrameCost = int(unsafe.Sizeof(sentFrame{}))
	recvFrameCost = int(unsafe.Sizeof(recvFrame{}))
	spanCost      = int(unsafe.Sizeof(span{}))
)

// keptRecords is the capacity of a record array a flow keeps when it
// empties; larger ones are freed. Up to it, only the live records are
// charged: the rest is part of a flow's fixed size, like the flow itself.
const keptRecords = 64

// records is the charge for a record array of capacity c with live records
// of cost bytes each.
func records(c, live, cost int) int {
	if c <= keptRecords {
		return live * cost
	}
	return c * cost
}

// memory is what the flow charges to the budget: for its sending half and
// for its receiving half.
func (f *flow) memory() (send, recv int) {
	if f.sndReady {
		send = f.snd.q.capacity() + records(cap(f.snd.frames), len(f.snd.live()), sentFrameCost)
	}
	if f.rcvReady {
		r := &f.rcv
		recv = r.pend.capacity() + r.plain.capacity() + len(r.ooo)*spanCost +
			records(cap(r.frames), len(r.frames)-r.fh, recvFrameCost)
		for i := range r.ooo {
			recv += cap(r.ooo[i].b)
		}
	}
	return send, recv
}

// account brings the budget up to date with what f holds now. It runs
// after every packet and timer of the flow and when the flow is forgotten.
func (e *Engine) account(f *flow) {
	s, r := f.memory()
	total := int64(s + r)
	dt, ds := total-f.charged, int64(s)-f.chargedSend
	if dt == 0 && ds == 0 {
		return
	}
	f.charged, f.chargedSend = total, int64(s)
	e.mem += dt
	e.cfg.Budget.add(dt, ds)
}

// admitOut reports whether f may frame n more bytes of the local stack.
func (e *Engine) admitOut(f *flow, n int) bool {
	e.account(f)
	return e.cfg.Budget.admitOut(n)
}

// admitIn reports whether f may keep n more wire bytes of the peer (ooo:
// beyond a hole). For in-order bytes that do not fit, the flow's own
// out-of-order runs are discarded first, as the kernel prunes a socket's
// out-of-order queue under memory pressure (RFC 2018 §8 allows reneging).
func (e *Engine) admitIn(f *flow, n int, ooo bool) bool {
	e.account(f)
	b := e.cfg.Budget
	if b.admitIn(n, ooo) {
		return true
	}
	if ooo || f.rcv.oooBytes == 0 {
		return false
	}
	e.ctr.OOOPruned += uint64(f.rcv.oooBytes)
	f.rcv.dropOOO()
	e.account(f)
	return b.admitIn(n, false)
}

// MemoryUsed returns the bytes this engine's flows charge to its Budget.
func (e *Engine) MemoryUsed() int64 { return e.mem }

// Budget returns the memory budget the engine draws on (Config.Budget, or
// its own).
func (e *Engine) Budget() *Budget { return e.cfg.Budget }

package engine

import (
	"sync/atomic"
	"unsafe"
)

// DefaultMemoryLimit is the memory budget of an engine whose Config has no
// Budget: 256 MiB of stream buffers.
const DefaultMemoryLimit = 256 << 20

// oooShareNum/oooShareDen is the part of a Budget that out-of-order and
// other unverified wire bytes may fill. The rest is kept for data that lets
// connections progress: in-order bytes, frames awaiting acknowledgment,
// plaintext awaiting the local stack's acknowledgment.
const (
	oooShareNum = 3
	oooShareDen = 4
)

// Budget is a memory budget for the stream buffers of every flow of the
// engines that share it (DESIGN.md invariant 12), as the kernel's tcp_mem is
// for its sockets. The daemon runs one engine per queue worker and gives
// them all one Budget, so the bound holds for the whole process.
//
// What is counted: the wire bytes a flow keeps for reassembly (in order and
// out of order), the frames it sent and keeps until the peer acknowledges
// them, the plaintext it delivered and keeps until the local stack
// acknowledges it, and the bookkeeping records of those frames and runs.
// Segments held while keys are missing have their own bounds
// (Config.MaxHeldPerFlow, MaxHeldTotal).
//
// How it is enforced: past three quarters of the limit, out-of-order bytes
// are refused (the segment's bytes are dropped, counted as memory_limit, and
// TCP retransmits them); past the limit, in-order bytes and new outbound
// data are refused too. Before refusing a flow's in-order bytes, the engine
// discards that flow's own out-of-order runs (counted in OOOPruned) to make
// room. Each engine updates the shared count after every change, so the
// total may pass the limit by at most about one packet per engine.
//
// A Budget is safe for concurrent use.
type Budget struct {
	limit int64
	used  atomic.Int64
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

func (b *Budget) add(d int64) { b.used.Add(d) }

// admit reports whether n more bytes fit: up to the limit for in-order and
// own data, up to the out-of-order share of it when ooo is set.
func (b *Budget) admit(n int, ooo bool) bool {
	lim := b.limit
	if ooo {
		lim = lim / oooShareDen * oooShareNum
	}
	return b.used.Load()+int64(n) <= lim
}

// Bookkeeping costs charged per record, on top of the bytes.
const (
	sentFrameCost = int(unsafe.Sizeof(sentFrame{}))
	recvFrameCost = int(unsafe.Sizeof(recvFrame{}))
	spanCost      = int(unsafe.Sizeof(span{}))
)

// memory is what the flow charges to the budget: its stream buffers and
// their records.
func (f *flow) memory() int {
	n := 0
	if f.sndReady {
		n += f.snd.q.size() + len(f.snd.live())*sentFrameCost
	}
	if f.rcvReady {
		r := &f.rcv
		n += r.pend.size() + r.oooBytes + len(r.ooo)*spanCost +
			r.plain.size() + len(r.frames[r.fh:])*recvFrameCost
	}
	return n
}

// account brings the budget up to date with what f holds now. It runs
// after every packet and timer of the flow and when the flow is forgotten.
func (e *Engine) account(f *flow) {
	m := int64(f.memory())
	if d := m - f.charged; d != 0 {
		f.charged = m
		e.mem += d
		e.cfg.Budget.add(d)
	}
}

// admitOut reports whether f may frame n more bytes of the local stack.
func (e *Engine) admitOut(f *flow, n int) bool {
	e.account(f)
	return e.cfg.Budget.admit(n, false)
}

// admitIn reports whether f may keep n more wire bytes of the peer (ooo:
// beyond a hole). For in-order bytes that do not fit, the flow's own
// out-of-order runs are discarded first, as the kernel prunes a socket's
// out-of-order queue under memory pressure (RFC 2018 §8 allows reneging).
func (e *Engine) admitIn(f *flow, n int, ooo bool) bool {
	e.account(f)
	b := e.cfg.Budget
	if b.admit(n, ooo) {
		return true
	}
	if ooo || f.rcv.oooBytes == 0 {
		return false
	}
	e.ctr.OOOPruned += uint64(f.rcv.oooBytes)
	f.rcv.dropOOO()
	e.account(f)
	return b.admit(n, false)
}

// MemoryUsed returns the bytes this engine's flows charge to its Budget.
func (e *Engine) MemoryUsed() int64 { return e.mem }

// Budget returns the memory budget the engine draws on (Config.Budget, or
// its own).
func (e *Engine) Budget() *Budget { return e.cfg.Budget }

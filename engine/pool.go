package engine

import "math/bits"

// Buffer sizes. A flow's byte queues take their backing arrays from the
// engine's pool in power-of-two sizes and give them back as soon as they
// are empty, so an idle flow holds no buffer, and what a flow holds is what
// it is charged (Budget) whatever its traffic was.
const (
	minBufShift  = 12 // smallest buffer: 4 KiB
	poolMaxShift = 22 // the pool keeps buffers up to 4 MiB
	poolMaxBytes = 16 << 20
	poolClasses  = poolMaxShift - minBufShift + 1
)

// bufPool keeps freed buffers for reuse, at most poolMaxBytes of them. It
// belongs to one engine (no locking).
type bufPool struct {
	free  [poolClasses][][]byte
	bytes int
	// Free record arrays of the flows (see recPool).
	sent recPool[sentFrame]
	recv recPool[recvFrame]
}

// bufClass is the class of the smallest buffer of at least n bytes, and its
// size.
func bufClass(n int) (class, size int) {
	if n <= 1<<minBufShift {
		return 0, 1 << minBufShift
	}
	s := bits.Len(uint(n - 1))
	return s - minBufShift, 1 << s
}

// get returns an empty buffer of at least n bytes.
func (p *bufPool) get(n int) []byte {
	c, size := bufClass(n)
	if p != nil && c < poolClasses {
		if l := p.free[c]; len(l) > 0 {
			b := l[len(l)-1]
			l[len(l)-1] = nil
			p.free[c] = l[:len(l)-1]
			p.bytes -= cap(b)
			return b
		}
	}
	return make([]byte, 0, size)
}

// put takes back a buffer that nothing refers to any more. Buffers that are
// not of a pooled size, or past the pool's bound, are left to the GC.
func (p *bufPool) put(b []byte) {
	if p == nil || cap(b) < 1<<minBufShift {
		return
	}
	c, size := bufClass(cap(b))
	if size != cap(b) || c >= poolClasses || p.bytes+size > poolMaxBytes {
		return
	}
	p.free[c] = append(p.free[c], b[:0])
	p.bytes += size
}

// Packet buffers. Every packet the engine emits (Result.Packet, ToPeer,
// ToLocal, Released[i].Packet) is written into a buffer of one of two
// capacities: pktSmall for headers and one MSS, pktLarge for anything up to
// maxPacket. A caller that is done with such a packet may give it back with
// Engine.Recycle; the engine then reuses it for a later packet instead of
// allocating (and zeroing) a new one. Packets never recycled are left to
// the GC. The free lists are bounded (pktFreeSmall, pktFreeLarge), whatever
// the caller or the peers do: at most 64 x 2 KiB + 16 x 64 KiB = 1.1 MiB of
// idle buffers per engine.
const (
	pktSmall     = 2 << 10
	pktLarge     = 64 << 10
	pktFreeSmall = 64
	pktFreeLarge = 16
	// pktPoolMaxBytes is the most the packet free lists hold.
	pktPoolMaxBytes = pktFreeSmall*pktSmall + pktFreeLarge*pktLarge
)

// pktPool keeps recycled packet buffers of one engine (no locking).
type pktPool struct {
	small, large [][]byte
}

// get returns an empty buffer with room for n bytes.
func (p *pktPool) get(n int) []byte {
	var l *[][]byte
	size := pktLarge
	switch {
	case n <= pktSmall:
		l, size = &p.small, pktSmall
	case n <= pktLarge:
		l = &p.large
	default:
		return make([]byte, 0, n)
	}
	if k := len(*l); k > 0 {
		b := (*l)[k-1]
		(*l)[k-1] = nil
		*l = (*l)[:k-1]
		return b
	}
	return make([]byte, 0, size)
}

// put takes back a packet buffer. Buffers of other capacities, and those
// past the bound, are left to the GC.
func (p *pktPool) put(b []byte) {
	switch cap(b) {
	case pktSmall:
		if len(p.small) < pktFreeSmall {
			p.small = append(p.small, b[:0])
		}
	case pktLarge:
		if len(p.large) < pktFreeLarge {
			p.large = append(p.large, b[:0])
		}
	}
}

// idle is the bytes the free lists hold.
func (p *pktPool) idle() int { return len(p.small)*pktSmall + len(p.large)*pktLarge }

// Record arrays. A flow's frame records (sentFrame, recvFrame) live in
// arrays that it keeps when they empty as long as they hold at most
// keptRecords entries; larger ones, which a flow with 64 KiB segments in
// flight needs all the time (about 46 frames each at an Ethernet MSS), go
// back to the engine's pool when they empty and come from it when an array
// grows past keptRecords, so that a request-response flow does not allocate
// one per burst. Capacities are powers of two from 2*keptRecords; the pool
// keeps at most recPoolMax entries of each kind (320 KiB each).
const recPoolMax = 8192

// recPool keeps free record arrays of one kind (no locking).
type recPool[T any] struct {
	free    [][]T
	entries int
}

// grow returns an array with the records of l and room for at least one
// more, giving l back when it came from the pool's sizes.
func (p *recPool[T]) grow(l []T) []T {
	if len(l) < cap(l) {
		return l
	}
	if p == nil || cap(l) < keptRecords {
		nl := make([]T, len(l), min(max(2*cap(l), 8), keptRecords))
		copy(nl, l)
		return nl
	}
	want := max(2*cap(l), 2*keptRecords)
	var nl []T
	for i := len(p.free) - 1; i >= 0; i-- {
		if cap(p.free[i]) == want {
			nl = p.free[i]
			p.free[i] = p.free[len(p.free)-1]
			p.free[len(p.free)-1] = nil
			p.free = p.free[:len(p.free)-1]
			p.entries -= want
			break
		}
	}
	if nl == nil {
		nl = make([]T, 0, want)
	}
	nl = append(nl[:0], l...)
	p.put(l)
	return nl
}

// put takes back an array nothing refers to any more; arrays of other
// capacities, or past the bound, are left to the GC.
func (p *recPool[T]) put(l []T) {
	c := cap(l)
	if p == nil || c <= keptRecords || c&(c-1) != 0 || p.entries+c > recPoolMax {
		return
	}
	p.free = append(p.free, l[:0])
	p.entries += c
}

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

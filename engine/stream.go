package engine

import "github.com/tcpcryptd/tcpcrypt/packet/seq"

// Offsets. Each direction of a connection has two byte streams that share the
// ISN: the kernel's plaintext stream (P) and the wire stream (C, the Init
// message and then frames). A position in either is kept as a uint64 offset
// from ISN+1, so it never wraps; the 32-bit sequence number is derived from
// it. DESIGN.md invariant 1.

// seqAt returns the sequence number of offset off in a stream whose SYN had
// sequence number isn. Offset -1 is the SYN itself.
func seqAt(isn seq.Value, off int64) seq.Value {
	return isn.Add(1).Add(seq.Size(uint32(off)))
}

// offAt converts the sequence number v of a stream with SYN isn to an
// offset, taking the one nearest to the known offset ref (TCP keeps every
// live sequence number within 2^31 of the current position). The result is
// negative for the SYN itself (-1) or for values before it.
func offAt(isn seq.Value, ref uint64, v seq.Value) int64 {
	return int64(ref) + int64(v.Diff(seqAt(isn, int64(ref))))
}

// byteQueue holds the bytes [base, base+len) of a stream. Bytes are appended
// at the end and discarded from the front; the backing array is compacted
// when the discarded prefix grows past half of it, so both are amortised
// O(1). With a pool, backing arrays come from it in power-of-two sizes, go
// back to it when the queue empties, and are replaced by a smaller one when
// the queue holds under a quarter of theirs, so that the array a queue
// keeps stays within a small factor of the bytes it holds.
type byteQueue struct {
	buf  []byte
	head int
	base uint64   // stream offset of buf[head]
	pool *bufPool // nil: plain allocation, arrays kept until release
}

// capacity is the size of the backing array.
func (q *byteQueue) capacity() int { return cap(q.buf) }

// start is the offset of the first held byte.
func (q *byteQueue) start() uint64 { return q.base }

// end is the offset after the last held byte.
func (q *byteQueue) end() uint64 { return q.base + uint64(len(q.buf)-q.head) }

// size is the number of held bytes.
func (q *byteQueue) size() int { return len(q.buf) - q.head }

// reset empties the queue and makes its next byte offset off.
func (q *byteQueue) reset(off uint64) {
	q.buf = q.buf[:0]
	q.head = 0
	q.base = off
}

// write appends b.
func (q *byteQueue) write(b []byte) {
	q.reserve(len(b))
	q.buf = append(q.buf, b...)
}

// tail returns the backing slice positioned for appending at least n bytes;
// the caller appends to it and hands the result to commit.
func (q *byteQueue) tail(n int) []byte {
	q.reserve(n)
	return q.buf
}

// tailAfterByte is tail for a writer that borrows the byte before the end
// (crypto.FrameKey.OpenData writes a flags byte there and restores it): it
// returns the backing slice with room for n more bytes and at least one
// byte, live or discarded, before its end.
func (q *byteQueue) tailAfterByte(n int) []byte {
	q.reserve(n + 1)
	if len(q.buf) == 0 && cap(q.buf) > 0 {
		q.buf, q.head = q.buf[:1], 1 // a discarded byte of room
	}
	return q.buf
}

// reserve makes room for n more bytes. Callers that append in pieces
// reserve the whole first, so that the array is sized once.
func (q *byteQueue) reserve(n int) {
	q.compact(n)
	if q.pool == nil || len(q.buf)+n <= cap(q.buf) {
		return
	}
	q.move(q.size() + n)
}

// shrinkAbove: an array larger than this is replaced by a smaller one once
// the queue holds under a quarter of it. Smaller arrays (one segment's
// worth) are kept until the queue empties, so the common path, where a
// segment's frames are consumed one by one, copies nothing.
const shrinkAbove = 64 << 10

// growth is how many bytes the backing array grows by when n more bytes
// are written.
func (q *byteQueue) growth(n int) int {
	if q.pool == nil {
		return n
	}
	need := q.size() + n
	if need <= cap(q.buf) {
		return 0 // it fits, compacted if need be
	}
	_, size := bufClass(need)
	return size - cap(q.buf)
}

// move puts the held bytes at the start of a pooled array of at least n
// bytes and gives the old array back.
func (q *byteQueue) move(n int) {
	nb := append(q.pool.get(n), q.buf[q.head:]...)
	q.pool.put(q.buf)
	q.buf, q.head = nb, 0
}

// commit installs a slice returned by tail after the caller appended to it.
func (q *byteQueue) commit(b []byte) { q.buf = b }

// view returns the held bytes [from, to). The slice aliases the queue and is
// valid until the next change. from and to must lie within [start, end].
func (q *byteQueue) view(from, to uint64) []byte {
	i := q.head + int(from-q.base)
	j := q.head + int(to-q.base)
	return q.buf[i:j:j]
}

// discard drops the bytes before off (no-op if off <= start; clamps at end).
func (q *byteQueue) discard(off uint64) {
	if off <= q.base {
		return
	}
	if off >= q.end() {
		q.base = off
		q.buf = q.buf[:0]
		q.head = 0
		if q.pool != nil && q.buf != nil {
			q.pool.put(q.buf)
			q.buf = nil
		}
		return
	}
	q.head += int(off - q.base)
	q.base = off
	if q.pool != nil && cap(q.buf) > shrinkAbove && q.size() < cap(q.buf)/4 {
		q.move(2 * q.size())
	}
}

// compact makes room for n more bytes, reusing the discarded prefix when it
// is at least half of the backing array.
func (q *byteQueue) compact(n int) {
	if q.head == 0 {
		return
	}
	if q.head == len(q.buf) {
		q.buf = q.buf[:0]
		q.head = 0
		return
	}
	if len(q.buf)+n <= cap(q.buf) && q.head < cap(q.buf)/2 {
		return
	}
	m := copy(q.buf, q.buf[q.head:])
	q.buf = q.buf[:m]
	q.head = 0
}

// release frees the backing array (used when a flow closes or is evicted).
func (q *byteQueue) release() {
	q.base = q.end()
	q.pool.put(q.buf)
	q.buf = nil
	q.head = 0
}

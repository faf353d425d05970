package engine

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

func TestBufClass(t *testing.T) {
	for _, tt := range []struct{ n, class, size int }{
		{0, 0, 4096}, {1, 0, 4096}, {4096, 0, 4096}, {4097, 1, 8192},
		{65536, 4, 65536}, {65537, 5, 131072}, {4 << 20, 10, 4 << 20},
	} {
		if c, s := bufClass(tt.n); c != tt.class || s != tt.size {
			t.Errorf("bufClass(%d) = %d, %d; want %d, %d", tt.n, c, s, tt.class, tt.size)
		}
	}
}

// TestByteQueuePool: a pooled queue keeps its bytes intact through random
// writes and discards (checked against a plain slice), gives its array back
// whenever it empties, keeps an array over shrinkAbove at most four times
// what it holds, and what it grows by is what growth said.
// The pool never keeps more than its bound.
func TestByteQueuePool(t *testing.T) {
	var pool bufPool
	q := byteQueue{pool: &pool}
	var model []byte
	base := uint64(0)
	rng := rand.New(rand.NewPCG(1, 2))
	next := byte(0)
	for i := 0; i < 4000; i++ {
		if rng.IntN(3) > 0 {
			n := rng.IntN(70000)
			if rng.IntN(10) == 0 {
				n = rng.IntN(1 << 20)
			}
			b := make([]byte, n)
			for k := range b {
				b[k] = next
				next++
			}
			before, want := q.capacity(), q.growth(n)
			q.write(b)
			if got := q.capacity() - before; got != want {
				t.Fatalf("step %d: write of %d grew the array by %d, growth said %d", i, n, got, want)
			}
			model = append(model, b...)
		} else if len(model) > 0 {
			d := rng.IntN(len(model) + 1)
			q.discard(base + uint64(d))
			model = model[d:]
			base += uint64(d)
		}
		if q.start() != base || q.size() != len(model) || !bytes.Equal(q.view(q.start(), q.end()), model) {
			t.Fatalf("step %d: queue [%d,+%d) differs from the model [%d,+%d)", i, q.start(), q.size(), base, len(model))
		}
		switch c := q.capacity(); {
		case len(model) == 0 && c != 0:
			t.Fatalf("step %d: empty queue keeps a %d-byte array", i, c)
		case c > shrinkAbove && c > 4*len(model):
			t.Fatalf("step %d: %d-byte array for %d bytes", i, c, len(model))
		}
		if pool.bytes > poolMaxBytes {
			t.Fatalf("step %d: pool keeps %d bytes", i, pool.bytes)
		}
	}
	q.release()
	if q.capacity() != 0 {
		t.Errorf("released queue keeps %d bytes", q.capacity())
	}
}

// TestPktPoolBound: the packet free lists never hold more than their bound
// however many buffers come back, ignore buffers of other capacities, and
// hand out buffers with room for what was asked.
func TestPktPoolBound(t *testing.T) {
	var p pktPool
	for i := 0; i < 1000; i++ {
		p.put(make([]byte, 10, pktSmall))
		p.put(make([]byte, 0, pktLarge))
		p.put(make([]byte, 0, 4096)) // not a packet buffer
		if p.idle() > pktPoolMaxBytes {
			t.Fatalf("pool holds %d bytes, bound %d", p.idle(), pktPoolMaxBytes)
		}
	}
	if p.idle() != pktPoolMaxBytes {
		t.Errorf("pool holds %d bytes after a flood, want exactly its bound %d", p.idle(), pktPoolMaxBytes)
	}
	for _, n := range []int{0, 40, pktSmall, pktSmall + 1, MaxPacket, pktLarge} {
		if b := p.get(n); len(b) != 0 || cap(b) < n {
			t.Errorf("get(%d): len %d cap %d", n, len(b), cap(b))
		}
	}
	if b := p.get(pktLarge + 1); cap(b) < pktLarge+1 {
		t.Errorf("get beyond the large size: cap %d", cap(b))
	}
}

// TestRecPoolBound: record arrays that grow keep their records, and the
// free list stays within recPoolMax entries.
func TestRecPoolBound(t *testing.T) {
	var p recPool[sentFrame]
	var l []sentFrame
	for i := 0; i < 5000; i++ {
		l = append(p.grow(l), sentFrame{p0: uint64(i)})
	}
	for i := range l {
		if l[i].p0 != uint64(i) {
			t.Fatalf("record %d holds %d", i, l[i].p0)
		}
	}
	for i := 0; i < 100; i++ {
		p.put(make([]sentFrame, 0, 1024))
		p.put(make([]sentFrame, 0, 1000)) // not a pooled size
		if p.entries > recPoolMax {
			t.Fatalf("pool holds %d entries, bound %d", p.entries, recPoolMax)
		}
	}
	n := 0
	for _, a := range p.free {
		n += cap(a)
	}
	if n != p.entries {
		t.Errorf("pool counts %d entries, holds %d", p.entries, n)
	}
}

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

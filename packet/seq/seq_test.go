package seq

import (
	"math/rand/v2"
	"testing"
	"testing/quick"
)

func TestOrderingTable(t *testing.T) {
	tests := []struct {
		v, w      Value
		less, leq bool
		diff      int32
	}{
		{0, 0, false, true, 0},
		{0, 1, true, true, -1},
		{1, 0, false, false, 1},
		{0xffffffff, 0, true, true, -1},
		{0, 0xffffffff, false, false, 1},
		{0xfffffff0, 0x10, true, true, -0x20},
		{0x10, 0xfffffff0, false, false, 0x20},
		{0x7fffffff, 0, false, false, 0x7fffffff},
		{0x80000000, 0, true, true, -0x80000000},
	}
	for _, tt := range tests {
		if got := tt.v.LessThan(tt.w); got != tt.less {
			t.Errorf("%#x.LessThan(%#x) = %v, want %v", tt.v, tt.w, got, tt.less)
		}
		if got := tt.v.LessThanEq(tt.w); got != tt.leq {
			t.Errorf("%#x.LessThanEq(%#x) = %v, want %v", tt.v, tt.w, got, tt.leq)
		}
		if got := tt.v.Diff(tt.w); got != tt.diff {
			t.Errorf("%#x.Diff(%#x) = %d, want %d", tt.v, tt.w, got, tt.diff)
		}
	}
}

func TestWindowAcrossWrap(t *testing.T) {
	tests := []struct {
		v     Value
		first Value
		size  Size
		want  bool
	}{
		{0xffffffff, 0xfffffff0, 0x20, true},
		{0, 0xfffffff0, 0x20, true},
		{0xf, 0xfffffff0, 0x20, true},
		{0x10, 0xfffffff0, 0x20, false},
		{0xffffffef, 0xfffffff0, 0x20, false},
		{0xfffffff0, 0xfffffff0, 0, false},
		{0xfffffff0, 0xfffffff0, 1, true},
		{0xfffffff1, 0xfffffff0, 1, false},
		{5, 0, 0xffffffff, true},
		{0xfffffffe, 0, 0xffffffff, true},
		{0xffffffff, 0, 0xffffffff, false},
	}
	for _, tt := range tests {
		if got := tt.v.InWindow(tt.first, tt.size); got != tt.want {
			t.Errorf("%#x.InWindow(%#x, %#x) = %v, want %v", tt.v, tt.first, tt.size, got, tt.want)
		}
		if got := tt.v.InRange(tt.first, tt.first.Add(tt.size)); got != tt.want {
			t.Errorf("%#x.InRange(%#x, %#x) = %v, want %v", tt.v, tt.first, tt.first.Add(tt.size), got, tt.want)
		}
	}
}

func TestMinMax(t *testing.T) {
	tests := []struct{ a, b, min, max Value }{
		{1, 2, 1, 2},
		{2, 1, 1, 2},
		{0xffffffff, 0, 0xffffffff, 0},
		{0, 0xffffffff, 0xffffffff, 0},
		{7, 7, 7, 7},
	}
	for _, tt := range tests {
		if got := Min(tt.a, tt.b); got != tt.min {
			t.Errorf("Min(%#x, %#x) = %#x, want %#x", tt.a, tt.b, got, tt.min)
		}
		if got := Max(tt.a, tt.b); got != tt.max {
			t.Errorf("Max(%#x, %#x) = %#x, want %#x", tt.a, tt.b, got, tt.max)
		}
	}
}

// nearWrap biases random values toward the 0xffffffff -> 0 boundary, where
// naive comparisons break.
func nearWrap(r *rand.Rand) Value {
	switch r.IntN(3) {
	case 0:
		return Value(r.Uint32())
	case 1:
		return Value(0xffffffff - r.Uint32N(1<<16))
	default:
		return Value(r.Uint32N(1 << 16))
	}
}

func TestPropertiesSeeded(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		v, w := nearWrap(r), nearWrap(r)
		n := Size(r.Uint32N(1 << 31))

		// Add and Diff are inverse.
		if got := v.Add(n).Diff(v); got != int32(n) {
			t.Fatalf("%#x.Add(%#x).Diff = %d", v, n, got)
		}
		if got := v.Add(n).Sub(n); got != v {
			t.Fatalf("%#x.Add(%#x).Sub = %#x", v, n, got)
		}
		if got := w.Add(Size(v.Diff(w))); got != v {
			t.Fatalf("%#x.Add(Diff(%#x, %#x)) = %#x", w, v, w, got)
		}
		if got := v.Add(n).Size(v); got != n {
			t.Fatalf("Size after Add = %#x, want %#x", got, n)
		}
		// LessThan is consistent with Diff and antisymmetric (except at the
		// single ambiguous distance 2^31, where both directions are "less").
		d := v.Diff(w)
		if v.LessThan(w) != (d < 0) {
			t.Fatalf("LessThan(%#x, %#x) disagrees with Diff %d", v, w, d)
		}
		if d != -0x80000000 && v != w && v.LessThan(w) == w.LessThan(v) {
			t.Fatalf("LessThan not antisymmetric for %#x, %#x", v, w)
		}
		if v.LessThanEq(w) != (v.LessThan(w) || v == w) {
			t.Fatalf("LessThanEq(%#x, %#x) inconsistent", v, w)
		}
		// A window of n values from w contains exactly the values whose
		// forward distance from w is below n.
		in := v.InWindow(w, n)
		if want := uint32(v-w) < uint32(n); in != want {
			t.Fatalf("%#x.InWindow(%#x, %#x) = %v, want %v", v, w, n, in, want)
		}
		if n > 0 {
			if !w.InWindow(w, n) || !w.Add(n-1).InWindow(w, n) || w.Add(n).InWindow(w, n) {
				t.Fatalf("window edges wrong for first %#x size %#x", w, n)
			}
		}
		// For windows under 2^31, InWindow agrees with the LessThan pair.
		if in != (w.LessThanEq(v) && v.LessThan(w.Add(n))) {
			t.Fatalf("%#x.InWindow(%#x, %#x) disagrees with LessThan", v, w, n)
		}
		if Max(v, w) != v && Max(v, w) != w || Min(v, w) != v && Min(v, w) != w {
			t.Fatalf("Min/Max(%#x, %#x) returned a third value", v, w)
		}
		if d != -0x80000000 && Min(v, w).LessThan(Max(v, w)) != (v != w) {
			t.Fatalf("Min(%#x, %#x) not before Max", v, w)
		}
	}
}

func TestPropertiesQuick(t *testing.T) {
	addDiff := func(v uint32, n uint32) bool {
		n &= 0x7fffffff
		return Value(v).Add(Size(n)).Diff(Value(v)) == int32(n)
	}
	if err := quick.Check(addDiff, nil); err != nil {
		t.Error(err)
	}
	antisym := func(a, b uint32) bool {
		v, w := Value(a), Value(b)
		switch {
		case v == w:
			return !v.LessThan(w) && v.LessThanEq(w)
		case v-w == 0x80000000:
			return true // the one distance with no defined order
		default:
			return v.LessThan(w) != w.LessThan(v)
		}
	}
	if err := quick.Check(antisym, nil); err != nil {
		t.Error(err)
	}
}

// Package seq implements wrap-safe arithmetic on 32-bit TCP sequence numbers.
//
// TCP sequence numbers live in a circular space of 2^32 values (RFC 9293
// §3.4). Two numbers are compared by the sign of their difference taken
// modulo 2^32, so a comparison is meaningful only while the two values are
// less than 2^31 apart. Code that handles sequence numbers should use Value
// and its methods, never raw uint32 comparisons, which break at the wrap from
// 0xffffffff to 0.
package seq

// Value is a TCP sequence or acknowledgment number.
type Value uint32

// Size is a length in sequence space (a byte count or a window).
type Size uint32

// Add returns v advanced by n, wrapping modulo 2^32.
func (v Value) Add(n Size) Value {
	return v + Value(n)
}

// Sub returns v moved back by n, wrapping modulo 2^32.
func (v Value) Sub(n Size) Value {
	return v - Value(n)
}

// Diff returns the signed distance v - w, modulo 2^32. It is positive when v
// is after w, negative when v is before w, and correct while the two values
// are less than 2^31 apart.
func (v Value) Diff(w Value) int32 {
	return int32(v - w)
}

// Size returns the forward distance from w to v (v - w modulo 2^32) as a
// Size. It is the number of sequence numbers in [w, v).
func (v Value) Size(w Value) Size {
	return Size(v - w)
}

// LessThan reports whether v comes before w.
func (v Value) LessThan(w Value) bool {
	return int32(v-w) < 0
}

// LessThanEq reports whether v comes before w or equals it.
func (v Value) LessThanEq(w Value) bool {
	return int32(v-w) <= 0
}

// InRange reports whether a <= v < b in sequence space: whether v is one of
// the b-a (modulo 2^32) values that start at a. The range is empty when a ==
// b. Unlike a pair of LessThan calls, it stays exact for ranges of 2^31 values
// or more.
func (v Value) InRange(a, b Value) bool {
	return v-a < b-a
}

// InWindow reports whether first <= v < first+size in sequence space, that is
// whether v is one of the size values that start at first. A window of size 0
// contains nothing.
func (v Value) InWindow(first Value, size Size) bool {
	return v.InRange(first, first.Add(size))
}

// Max returns whichever of a and b comes later in sequence space.
func Max(a, b Value) Value {
	if a.LessThan(b) {
		return b
	}
	return a
}

// Min returns whichever of a and b comes earlier in sequence space.
func Min(a, b Value) Value {
	if a.LessThan(b) {
		return a
	}
	return b
}

//go:build amd64 && !purego && !nosimd

package packet

import (
	"math/bits"

	"golang.org/x/sys/cpu"
)

// haveAVX2 selects the vector loops (tests turn it off to check the
// portable ones on the same machine).
var haveAVX2 = cpu.X86.HasAVX2

// avx2Chunk bounds one call of the vector loops so that their 64-bit lane
// sums of 32-bit words cannot overflow (each lane takes one word per 64
// bytes: under 2^26 words per chunk, so each lane stays below 2^58).
const avx2Chunk = 1 << 30

// sumAVX2 returns the exact integer sum of the little-endian 32-bit words
// of p[:n]; n is a positive multiple of 64 and at most avx2Chunk.
//
//go:noescape
func sumAVX2(p *byte, n int) uint64

// copySumAVX2 is sumAVX2 of src that also copies the n bytes to dst, which
// must not overlap src.
//
//go:noescape
func copySumAVX2(dst, src *byte, n int) uint64

// bulkSum returns a value congruent modulo 0xffff to the ones' complement
// sum of b's whole 64-byte blocks taken as little-endian 16-bit words, and
// how many bytes that is (len(b) rounded down to a multiple of 64). The sum
// of 32-bit words is congruent to it because 2^16 ≡ 1 (mod 0xffff).
func bulkSum(b []byte) (v uint64, n int) {
	if !haveAVX2 {
		return bulkSumGeneric(b)
	}
	total := len(b) &^ 63
	var carry uint64
	for n < total {
		m := min(total-n, avx2Chunk)
		v, carry = bits.Add64(v, sumAVX2(&b[n], m), carry)
		n += m
	}
	return v + carry, n // v < 2^64-1 after an add with carry out
}

// bulkCopySum is bulkSum of src that also copies those bytes into dst,
// which does not overlap src and is at least as long.
func bulkCopySum(dst, src []byte) (v uint64, n int) {
	if !haveAVX2 {
		v, n = bulkSumGeneric(src)
		copy(dst[:n], src[:n])
		return v, n
	}
	total := len(src) &^ 63
	_ = dst[:total]
	var carry uint64
	for n < total {
		m := min(total-n, avx2Chunk)
		v, carry = bits.Add64(v, copySumAVX2(&dst[n], &src[n], m), carry)
		n += m
	}
	return v + carry, n
}

//go:build !amd64 || purego || nosimd

package packet

// bulkSum returns a value congruent modulo 0xffff to the ones' complement
// sum of b's whole 64-byte blocks taken as little-endian 16-bit words, and
// how many bytes that is (len(b) rounded down to a multiple of 64).
func bulkSum(b []byte) (v uint64, n int) { return bulkSumGeneric(b) }

// bulkCopySum is bulkSum of src that also copies those bytes into dst.
func bulkCopySum(dst, src []byte) (v uint64, n int) {
	v, n = bulkSumGeneric(src)
	copy(dst[:n], src[:n])
	return v, n
}

// haveAVX2 is false: this build has no vector loops (the tests toggle it
// on amd64).
var haveAVX2 = false

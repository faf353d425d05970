package packet

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"unsafe"
)

// The Internet checksum (RFC 1071) is the ones' complement of the ones'
// complement sum of the data taken as big-endian 16-bit words, an odd final
// byte being padded with a zero on the right. Because 2^16 ≡ 1 (mod 0xffff),
// the sum may be accumulated in wider words and folded at the end, which is
// what Sum does 64 bits at a time.

// Sum adds b, taken as big-endian 16-bit words, to the partial sum initial
// and returns the new partial sum, not yet folded to 16 bits nor
// complemented. Sums of consecutive pieces chain through initial, but only
// the last piece may have an odd length (an odd piece is padded as if it
// ended the data).
//
// The bulk (whole 64-byte blocks) is summed as native little-endian words
// (by bulkSum: AVX2 where the CPU has it, otherwise 64-bit words in two
// independent carry chains), without a byte swap per word. The ones'
// complement sum does not depend on byte order except for a swap of the two
// bytes of the result (RFC 1071 §2(B)), which is undone once, after folding.
func Sum(b []byte, initial uint32) uint32 {
	var s uint64
	if len(b) >= 64 {
		v, n := bulkSum(b)
		s = uint64(bits.ReverseBytes16(fold64(v)))
		b = b[n:]
	}
	return sumTail(b, initial, s)
}

// CopySum copies src into dst, which must be at least as long, and returns
// Sum(src, initial): the checksum is taken in the same pass as the copy, so
// the bytes are read once. Overlapping slices are copied as by copy.
func CopySum(dst, src []byte, initial uint32) uint32 {
	dst = dst[:len(src)]
	if len(src) < 64 || overlap(dst, src) {
		copy(dst, src)
		return Sum(dst, initial) // dst now holds what src held
	}
	v, n := bulkCopySum(dst, src)
	copy(dst[n:], src[n:])
	return sumTail(src[n:], initial, uint64(bits.ReverseBytes16(fold64(v))))
}

// overlap reports whether a and b, both non-empty, share memory.
func overlap(a, b []byte) bool {
	pa := uintptr(unsafe.Pointer(unsafe.SliceData(a)))
	pb := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return pa < pb+uintptr(len(b)) && pb < pa+uintptr(len(a))
}

// bulkSumGeneric is bulkSum without vector instructions: the 64-byte
// blocks of b as little-endian 64-bit words in two carry chains, the
// carries added back at the end (2^64 ≡ 1 mod 0xffff).
func bulkSumGeneric(b []byte) (v uint64, n int) {
	var a0, a1, c0, c1 uint64
	for len(b) >= 64 {
		a0, c0 = bits.Add64(a0, binary.LittleEndian.Uint64(b[0:]), c0)
		a1, c1 = bits.Add64(a1, binary.LittleEndian.Uint64(b[8:]), c1)
		a0, c0 = bits.Add64(a0, binary.LittleEndian.Uint64(b[16:]), c0)
		a1, c1 = bits.Add64(a1, binary.LittleEndian.Uint64(b[24:]), c1)
		a0, c0 = bits.Add64(a0, binary.LittleEndian.Uint64(b[32:]), c0)
		a1, c1 = bits.Add64(a1, binary.LittleEndian.Uint64(b[40:]), c1)
		a0, c0 = bits.Add64(a0, binary.LittleEndian.Uint64(b[48:]), c0)
		a1, c1 = bits.Add64(a1, binary.LittleEndian.Uint64(b[56:]), c1)
		b = b[64:]
		n += 64
	}
	var c uint64
	a0, c = bits.Add64(a0, a1, c0)
	a0, c = bits.Add64(a0, c1, c)
	a0, c = bits.Add64(a0, 0, c)
	return a0 + c, n // cannot overflow: an add with carry out leaves a0 < 2^64-1
}

// fold64 reduces v modulo 0xffff with end-around carries to 16 bits (0
// only for v == 0), as folding a ones' complement sum does.
func fold64(v uint64) uint16 {
	v = v&0xffffffff + v>>32
	v = v&0xffffffff + v>>32
	v = v&0xffff + v>>16
	v = v&0xffff + v>>16
	return uint16(v)
}

// sumTail adds the bytes after the bulk, b, as big-endian words, and the
// folded, byte-swapped bulk sum s to initial.
func sumTail(b []byte, initial uint32, s uint64) uint32 {
	acc := uint64(initial)
	var carry uint64
	for len(b) >= 8 {
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b), carry)
		b = b[8:]
	}
	acc, carry = bits.Add64(acc, s, carry)
	acc, carry = bits.Add64(acc, 0, carry)
	acc += carry // acc < 2^64-1 after an add with carry out, so this cannot overflow
	// Fold 64 -> 32 bits: 2^32 ≡ 1 (mod 0xffff).
	r := (acc & 0xffffffff) + acc>>32
	r = (r & 0xffffffff) + r>>32
	for len(b) >= 2 {
		r += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		r += uint64(b[0]) << 8
	}
	r = (r & 0xffffffff) + r>>32
	return uint32(r)
}

// fold reduces a partial sum to 16 bits with end-around carries.
func fold(s uint32) uint16 {
	s = s&0xffff + s>>16
	s = s&0xffff + s>>16
	return uint16(s)
}

// Checksum returns the Internet checksum of b with the partial sum initial
// already accumulated: the ones' complement of the folded sum.
func Checksum(b []byte, initial uint32) uint16 {
	return ^fold(Sum(b, initial))
}

// PseudoHeaderSum returns the partial sum of the TCP/UDP pseudo-header for a
// segment of length bytes with protocol proto: RFC 9293 §3.1 for IPv4
// (addresses, zero, protocol, 16-bit length), RFC 8200 §8.1 for IPv6
// (addresses, 32-bit length, zeros, next header). An address that is not
// IPv4 (Is4 false) contributes its 16-byte form, so a zero Addr adds nothing;
// src and dst must be of one family for the result to mean anything.
func PseudoHeaderSum(src, dst netip.Addr, proto uint8, length int) uint32 {
	s := addrSum(src) + addrSum(dst)
	s += uint64(proto)
	l := uint32(length)
	s += uint64(l>>16) + uint64(l&0xffff)
	s = (s & 0xffffffff) + s>>32
	return uint32(s)
}

func addrSum(a netip.Addr) uint64 {
	if a.Is4() {
		b := a.As4()
		return uint64(binary.BigEndian.Uint16(b[0:])) + uint64(binary.BigEndian.Uint16(b[2:]))
	}
	b := a.As16()
	var s uint64
	for i := 0; i < 16; i += 2 {
		s += uint64(binary.BigEndian.Uint16(b[i:]))
	}
	return s
}

// UpdateChecksum16 returns the checksum cksum adjusted for one 16-bit word,
// aligned on an even offset of the checksummed data, changing from old to
// new. It uses RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'), which never turns a
// valid checksum into the 0x0000/0xffff ambiguity of the older eqn. 2.
func UpdateChecksum16(cksum, old, new uint16) uint16 {
	s := uint32(^cksum) + uint32(^old) + uint32(new)
	return ^fold(s)
}

// UpdateChecksum32 is UpdateChecksum16 for a 32-bit value (such as a
// sequence number or an IPv4 address) aligned on an even offset.
func UpdateChecksum32(cksum uint16, old, new uint32) uint16 {
	s := uint32(^cksum) +
		uint32(^uint16(old>>16)) + uint32(^uint16(old)) +
		new>>16 + new&0xffff
	return ^fold(s)
}

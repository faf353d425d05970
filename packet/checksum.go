package packet

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
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
// The bulk is summed as native little-endian 64-bit words in two
// independent carry chains (no byte swap per word, two additions per
// cycle). The ones' complement sum does not depend on byte order except for
// a swap of the two bytes of the result (RFC 1071 §2(B)), which is undone
// once, after folding.
func Sum(b []byte, initial uint32) uint32 {
	var s uint64
	if len(b) >= 64 {
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
		}
		var c uint64
		a0, c = bits.Add64(a0, a1, c0)
		a0, c = bits.Add64(a0, c1, c)
		a0, c = bits.Add64(a0, 0, c)
		a0 += c // cannot overflow: an add with carry out leaves a0 < 2^64-1
		// Fold 64 -> 16 bits (2^16 ≡ 1 mod 0xffff), then swap back.
		a0 = a0&0xffffffff + a0>>32
		a0 = a0&0xffffffff + a0>>32
		a0 = a0&0xffff + a0>>16
		a0 = a0&0xffff + a0>>16
		s = uint64(bits.ReverseBytes16(uint16(a0)))
	}
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

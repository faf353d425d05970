package packet

import (
	"encoding/binary"
	"net/netip"
)

// Header sizes and protocol numbers.
const (
	IPv4HeaderLen = 20 // IPv4 header without options
	IPv6HeaderLen = 40 // fixed IPv6 header
	ProtoTCP      = 6  // IP protocol / next header number of TCP
)

// Offsets of IPv4 header fields (RFC 791 §3.1).
const (
	ipv4TotalLen = 2
	ipv4ID       = 4
	ipv4Frag     = 6
	ipv4TTL      = 8
	ipv4Proto    = 9
	ipv4Checksum = 10
	ipv4Src      = 12
	ipv4Dst      = 16

	ipv4FlagMF     = 0x2000
	ipv4FlagDF     = 0x4000
	ipv4FragOffset = 0x1fff
)

// Offsets of IPv6 header fields (RFC 8200 §3).
const (
	ipv6PayloadLen = 4
	ipv6NextHeader = 6
	ipv6HopLimit   = 7
	ipv6Src        = 8
	ipv6Dst        = 24
)

// Packet is a parsed view over one IPv4 or IPv6 packet carrying a TCP
// segment. Parse fills it without allocating; it references the parsed buffer
// rather than copying it. The zero Packet is not valid: use it only after a
// successful Parse.
type Packet struct {
	// Buf is the whole packet, trimmed to the length the IP header gives
	// (IPv4 total length, or 40 + IPv6 payload length). Trailing bytes
	// beyond that (link-layer padding) are not part of it.
	Buf []byte
	// Version is 4 or 6.
	Version int
	// IPHdrLen is the IP header length: IHL*4 for IPv4 (IP options kept in
	// place), always 40 for IPv6 (extension headers are refused).
	IPHdrLen int
	// Src and Dst are the IP addresses; for IPv4 they are plain 4-byte
	// addresses (Is4 reports true).
	Src, Dst netip.Addr
	// TCP is the TCP header and payload, aliasing Buf[IPHdrLen:].
	TCP TCP
}

// Parse parses b as an IPv4 or IPv6 packet carrying TCP and fills p. It
// allocates nothing, and p aliases b afterwards. On error p is left in an
// unspecified state and must not be used.
//
// IPv4 (RFC 791): the version and IHL must agree with the buffer, IHL must
// be at least 5 and the total length at least IHL*4 and at most len(b);
// bytes past the total length are dropped from p.Buf. IP options are kept.
// Fragments (MF set or a non-zero fragment offset) are refused with
// ErrFragment, since a rewriter needs whole TCP segments. Parse does not
// check the IPv4 header checksum; see VerifyIPChecksum.
//
// IPv6 (RFC 8200): the next header must be TCP. Extension headers are
// refused with ErrIPv6ExtHeader on purpose: a rewriter that changes segment
// lengths must understand every header before TCP, and guessing its way
// through an unknown or future header chain (RFC 8200 §4, RFC 7045) could
// corrupt or misdirect a packet. Such packets are rare on TCP flows; the
// caller counts them and passes or drops them by policy. Any other next
// header is ErrNotTCP. The payload length trims trailing bytes as for IPv4;
// jumbograms are not supported (they need a Hop-by-Hop header).
//
// TCP (RFC 9293 §3.1): the header must be at least 20 bytes, with a data
// offset of at least 5 words that lies within the segment.
func Parse(b []byte, p *Packet) error {
	if len(b) == 0 {
		return errEmpty
	}
	switch b[0] >> 4 {
	case 4:
		return parseIPv4(b, p)
	case 6:
		return parseIPv6(b, p)
	default:
		return errVersion
	}
}

func parseIPv4(b []byte, p *Packet) error {
	if len(b) < IPv4HeaderLen {
		return errIPv4Short
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < IPv4HeaderLen {
		return errIPv4IHL
	}
	total := int(binary.BigEndian.Uint16(b[ipv4TotalLen:]))
	if total < ihl {
		return errIPv4TotalLen
	}
	if total > len(b) {
		return errIPv4Beyond
	}
	b = b[:total]
	if b[ipv4Proto] != ProtoTCP {
		return errIPv4Proto
	}
	if frag := binary.BigEndian.Uint16(b[ipv4Frag:]); frag&(ipv4FlagMF|ipv4FragOffset) != 0 {
		return ErrFragment
	}
	p.Buf = b
	p.Version = 4
	p.IPHdrLen = ihl
	p.Src = netip.AddrFrom4([4]byte(b[ipv4Src : ipv4Src+4]))
	p.Dst = netip.AddrFrom4([4]byte(b[ipv4Dst : ipv4Dst+4]))
	return parseTCP(b[ihl:], p)
}

func parseIPv6(b []byte, p *Packet) error {
	if len(b) < IPv6HeaderLen {
		return errIPv6Short
	}
	total := IPv6HeaderLen + int(binary.BigEndian.Uint16(b[ipv6PayloadLen:]))
	if total > len(b) {
		return errIPv6Beyond
	}
	b = b[:total]
	if next := b[ipv6NextHeader]; next != ProtoTCP {
		if isIPv6ExtHeader(next) {
			return ErrIPv6ExtHeader
		}
		return errIPv6Next
	}
	p.Buf = b
	p.Version = 6
	p.IPHdrLen = IPv6HeaderLen
	p.Src = netip.AddrFrom16([16]byte(b[ipv6Src : ipv6Src+16]))
	p.Dst = netip.AddrFrom16([16]byte(b[ipv6Dst : ipv6Dst+16]))
	return parseTCP(b[IPv6HeaderLen:], p)
}

// isIPv6ExtHeader reports whether next is one of the IPv6 extension header
// types in the IANA registry (RFC 7045 §3 lists them): Hop-by-Hop, Routing,
// Fragment, ESP, AH, Destination Options, Mobility, HIP, Shim6 and the two
// experimental values.
func isIPv6ExtHeader(next uint8) bool {
	switch next {
	case 0, 43, 44, 50, 51, 60, 135, 139, 140, 253, 254:
		return true
	}
	return false
}

func parseTCP(seg []byte, p *Packet) error {
	if len(seg) < TCPHeaderLen {
		return errTCPShort
	}
	off := int(seg[tcpDataOff]>>4) * 4
	if off < TCPHeaderLen {
		return errTCPOffset
	}
	if off > len(seg) {
		return errTCPOffBeyond
	}
	p.TCP = TCP(seg)
	return nil
}

// Payload returns the TCP payload.
func (p *Packet) Payload() []byte { return p.TCP.Payload() }

// SrcPort returns the TCP source port.
func (p *Packet) SrcPort() uint16 { return p.TCP.SrcPort() }

// DstPort returns the TCP destination port.
func (p *Packet) DstPort() uint16 { return p.TCP.DstPort() }

// SrcAddrPort returns the source address and TCP port.
func (p *Packet) SrcAddrPort() netip.AddrPort { return netip.AddrPortFrom(p.Src, p.SrcPort()) }

// DstAddrPort returns the destination address and TCP port.
func (p *Packet) DstAddrPort() netip.AddrPort { return netip.AddrPortFrom(p.Dst, p.DstPort()) }

// IPHeader returns the IP header (with IPv4 options), aliasing Buf.
func (p *Packet) IPHeader() []byte { return p.Buf[:p.IPHdrLen] }

// TTL returns the IPv4 time to live or the IPv6 hop limit.
func (p *Packet) TTL() uint8 {
	if p.Version == 4 {
		return p.Buf[ipv4TTL]
	}
	return p.Buf[ipv6HopLimit]
}

// ComputeTCPChecksum returns the full TCP checksum of the segment over the
// pseudo-header (RFC 9293 §3.1; RFC 8200 §8.1 for IPv6), as if the checksum
// field were zero. It does not modify the packet.
func (p *Packet) ComputeTCPChecksum() uint16 {
	s := PseudoHeaderSum(p.Src, p.Dst, ProtoTCP, len(p.TCP))
	s = Sum(p.TCP[:tcpChecksum], s)
	s = Sum(p.TCP[tcpChecksum+2:], s)
	return ^fold(s)
}

// FixTCPChecksum computes the full TCP checksum and writes it into the
// header.
func (p *Packet) FixTCPChecksum() { p.TCP.SetChecksum(p.ComputeTCPChecksum()) }

// VerifyTCPChecksum reports whether the TCP checksum field is correct.
// A packet handed over with only a partial (offload) checksum fails it.
func (p *Packet) VerifyTCPChecksum() bool {
	s := PseudoHeaderSum(p.Src, p.Dst, ProtoTCP, len(p.TCP))
	return fold(Sum(p.TCP, s)) == 0xffff
}

// FixIPChecksum recomputes the IPv4 header checksum (over the header with
// its options) and writes it. IPv6 has no header checksum: no-op.
func (p *Packet) FixIPChecksum() {
	if p.Version != 4 {
		return
	}
	h := p.Buf[:p.IPHdrLen]
	h[ipv4Checksum], h[ipv4Checksum+1] = 0, 0
	binary.BigEndian.PutUint16(h[ipv4Checksum:], Checksum(h, 0))
}

// VerifyIPChecksum reports whether the IPv4 header checksum is correct. It
// always reports true for IPv6.
func (p *Packet) VerifyIPChecksum() bool {
	if p.Version != 4 {
		return true
	}
	return fold(Sum(p.Buf[:p.IPHdrLen], 0)) == 0xffff
}

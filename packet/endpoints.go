package packet

import (
	"encoding/binary"
	"net/netip"
)

// maxIPv6ExtHeaders bounds the IPv6 extension headers Endpoints walks
// before it gives up.
const maxIPv6ExtHeaders = 8

// Endpoints reads the source and destination address and port of an IPv4 or
// IPv6 TCP packet from its headers alone. It is the one flow keyer for raw
// packets: it works where Parse refuses, on a copy the kernel cut short (no
// length field is checked, and a GSO super-packet's may be zero) and past
// IPv6 extension headers (the kernel marks IPv6 BIG TCP super-packets with
// a hop-by-hop jumbo payload option). Errors: ErrNotTCP for a well-formed
// IP packet of another protocol; ErrFragment for any IPv4 fragment (a later
// fragment has no ports, and the first must not be told apart from them by
// callers that pass what they can key); ErrIPv6ExtHeader for an IPv6 chain
// with a fragment header or ESP (no readable ports) or longer than eight
// headers; ErrTruncated when the ports are not there; ErrBadHeader for an
// unknown IP version or a bad IPv4 header length. It never panics and never
// allocates.
func Endpoints(b []byte) (src, dst netip.AddrPort, err error) {
	if len(b) == 0 {
		return src, dst, ErrTruncated
	}
	var sa, da netip.Addr
	var l4 []byte
	switch b[0] >> 4 {
	case 4:
		if len(b) < IPv4HeaderLen {
			return src, dst, ErrTruncated
		}
		ihl := int(b[0]&0x0f) * 4
		if ihl < IPv4HeaderLen {
			return src, dst, ErrBadHeader
		}
		if len(b) < ihl {
			return src, dst, ErrTruncated
		}
		if b[9] != ProtoTCP {
			return src, dst, ErrNotTCP
		}
		if binary.BigEndian.Uint16(b[6:8])&0x3fff != 0 { // MF or an offset
			return src, dst, ErrFragment
		}
		sa, da = netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
		l4 = b[ihl:]
	case 6:
		if len(b) < IPv6HeaderLen {
			return src, dst, ErrTruncated
		}
		off, err := ipv6Transport(b)
		if err != nil {
			return src, dst, err
		}
		sa, da = netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
		if off > len(b) {
			return src, dst, ErrTruncated
		}
		l4 = b[off:]
	default:
		return src, dst, ErrBadHeader
	}
	if len(l4) < 4 {
		return src, dst, ErrTruncated
	}
	src = netip.AddrPortFrom(sa, binary.BigEndian.Uint16(l4[0:2]))
	dst = netip.AddrPortFrom(da, binary.BigEndian.Uint16(l4[2:4]))
	return src, dst, nil
}

// ipv6Transport walks the extension headers of the IPv6 packet b (at least
// 40 bytes) and returns the offset of the TCP header.
func ipv6Transport(b []byte) (int, error) {
	nh, off := b[6], IPv6HeaderLen
	for range maxIPv6ExtHeaders {
		switch nh {
		case ProtoTCP:
			return off, nil
		case 0, 43, 60, 135, 139, 140, 253, 254:
			// Generic format (RFC 8200 §4): next header, then the
			// length in 8-byte units beyond the first 8.
			if len(b) < off+2 {
				return 0, ErrTruncated
			}
			nh, off = b[off], off+8+int(b[off+1])*8
		case 51:
			// AH: the length is in 4-byte units, minus 2 (RFC 4302 §2.2).
			if len(b) < off+2 {
				return 0, ErrTruncated
			}
			nh, off = b[off], off+(int(b[off+1])+2)*4
		case 44, 50: // fragment, ESP: no readable ports
			return 0, ErrIPv6ExtHeader
		default:
			return 0, ErrNotTCP
		}
	}
	return 0, ErrIPv6ExtHeader
}

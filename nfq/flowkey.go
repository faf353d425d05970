package nfq

import (
	"encoding/binary"
	"net/netip"

	"github.com/tcpcryptd/tcpcrypt/engine"
)

// pktKind classifies a queued packet for dispatch.
type pktKind uint8

const (
	kindTCP    pktKind = iota // a keyable TCP segment
	kindNotTCP                // a well-formed IP packet of another protocol
	kindBad                   // truncated, fragmented, ESP, unknown IP version
)

const (
	protoTCP    = 6
	ipv4HdrMin  = 20
	ipv6HdrLen  = 40
	tcpPortsLen = 4
)

// flowKey is the connection a segment belongs to, seen from this host.
// Addresses are kept in 16-byte form (IPv4 as its 4 bytes at the front, with
// v4 set) so that the key is comparable and hashes without allocating.
type flowKey struct {
	v4                    bool
	local, remote         [16]byte
	localPort, remotePort uint16
}

// extractKey reads the flow key of the IPv4 or IPv6 TCP segment in pkt: the
// local endpoint is the source for dir == Outbound and the destination for
// Inbound. It never panics and never allocates. It reads the IP headers
// (skipping IPv6 extension headers) and the TCP ports only, which is all
// sharding needs; length fields are not checked, since a GSO super-packet's
// may be zero and a capture may be truncated.
func extractKey(pkt []byte, dir engine.Dir) (flowKey, pktKind) {
	var k flowKey
	if len(pkt) == 0 {
		return k, kindBad
	}
	var src, dst []byte
	var l4 []byte
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < ipv4HdrMin {
			return k, kindBad
		}
		ihl := int(pkt[0]&0x0f) * 4
		if ihl < ipv4HdrMin || len(pkt) < ihl {
			return k, kindBad
		}
		if pkt[9] != protoTCP {
			return k, kindNotTCP
		}
		// Any fragment of a TCP segment (MF set or offset non-zero) is
		// refused: a later fragment has no ports.
		if binary.BigEndian.Uint16(pkt[6:8])&0x3fff != 0 {
			return k, kindBad
		}
		k.v4 = true
		src, dst = pkt[12:16], pkt[16:20]
		l4 = pkt[ihl:]
	case 6:
		if len(pkt) < ipv6HdrLen {
			return k, kindBad
		}
		off, ok := skipIPv6ExtHeaders(pkt)
		switch {
		case !ok:
			return k, kindBad
		case off < 0:
			return k, kindNotTCP
		case off > len(pkt):
			return k, kindBad
		}
		src, dst = pkt[8:24], pkt[24:40]
		l4 = pkt[off:]
	default:
		return k, kindBad
	}
	if len(l4) < tcpPortsLen {
		return k, kindBad
	}
	sp := binary.BigEndian.Uint16(l4[0:2])
	dp := binary.BigEndian.Uint16(l4[2:4])
	if dir == engine.Outbound {
		copy(k.local[:], src)
		copy(k.remote[:], dst)
		k.localPort, k.remotePort = sp, dp
	} else {
		copy(k.local[:], dst)
		copy(k.remote[:], src)
		k.localPort, k.remotePort = dp, sp
	}
	return k, kindTCP
}

// maxIPv6ExtHeaders bounds the extension headers skipped before TCP.
const maxIPv6ExtHeaders = 8

// skipIPv6ExtHeaders walks the IPv6 extension headers of pkt (at least 40
// bytes) and returns the offset of the TCP header. off < 0 with ok means the
// packet carries another upper-layer protocol; !ok means the chain is
// truncated, too long, or contains a fragment header or ESP (after which the
// ports cannot be read). Hop-by-hop options matter: the kernel marks IPv6
// BIG TCP super-packets (over 64 KiB) with a hop-by-hop jumbo payload option,
// and such a packet must still be keyed to its flow.
func skipIPv6ExtHeaders(pkt []byte) (off int, ok bool) {
	nh, off := pkt[6], ipv6HdrLen
	for range maxIPv6ExtHeaders {
		switch nh {
		case protoTCP:
			return off, true
		case 0, 43, 60, 135, 139, 140, 253, 254: // generic format: next, len in 8-byte units beyond the first 8
			if len(pkt) < off+2 {
				return 0, false
			}
			nh, off = pkt[off], off+8+int(pkt[off+1])*8
		case 51: // AH: length in 4-byte units, minus 2 (RFC 4302 §2.2)
			if len(pkt) < off+2 {
				return 0, false
			}
			nh, off = pkt[off], off+(int(pkt[off+1])+2)*4
		case 44, 50: // fragment, ESP
			return 0, false
		default:
			return -1, true
		}
	}
	return 0, false
}

// flow converts k to the engine's endpoints.
func (k *flowKey) flow() engine.Flow {
	addr := func(b [16]byte) netip.Addr {
		if k.v4 {
			return netip.AddrFrom4([4]byte(b[:4]))
		}
		return netip.AddrFrom16(b)
	}
	return engine.Flow{Local: netip.AddrPortFrom(addr(k.local), k.localPort), Remote: netip.AddrPortFrom(addr(k.remote), k.remotePort)}
}

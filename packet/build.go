package packet

import (
	"encoding/binary"
	"net/netip"
	"slices"

	"github.com/tcpcryptd/tcpcrypt/packet/seq"
)

// DefaultTTL is the IPv4 TTL or IPv6 hop limit Build uses when Fields.TTL is
// zero.
const DefaultTTL = 64

// Fields describes a TCP segment for Build to make from scratch (an RST, an
// injected Init2, an empty frame, a bare ACK).
type Fields struct {
	// Src and Dst are the endpoints; both IPv4 or both IPv6. An
	// IPv4-mapped IPv6 address counts as IPv6.
	Src, Dst netip.AddrPort
	Seq, Ack seq.Value
	Flags    uint8 // FlagFIN ... FlagCWR
	Window   uint16
	Urgent   uint16
	// Options is the option area, already padded to a multiple of 4 bytes
	// (see OptionBuilder.Bytes), at most MaxOptionsLen bytes.
	Options []byte
	Payload []byte
	// TTL is the IPv4 TTL or IPv6 hop limit; DefaultTTL when 0.
	TTL uint8
	// TOS is the IPv4 TOS byte or the IPv6 traffic class (DSCP and ECN).
	TOS uint8
}

// Build appends to dst a complete IPv4 or IPv6 packet described by f, with
// correct lengths and checksums, and returns the extended slice. IPv4
// packets get no IP options, ID 0 and DF set (RFC 6864 §4.1 allows a
// constant ID on atomic datagrams); IPv6 packets get flow label 0. dst may
// be nil; its contents up to len(dst) are kept.
func Build(dst []byte, f *Fields) ([]byte, error) {
	if err := checkOptions(f.Options); err != nil {
		return dst, err
	}
	src, dstAddr := f.Src.Addr(), f.Dst.Addr()
	v4 := src.Is4()
	if v4 != dstAddr.Is4() || (!v4 && (!src.Is6() || !dstAddr.Is6())) {
		return dst, errFamily
	}
	ttl := f.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	tcpLen := TCPHeaderLen + len(f.Options) + len(f.Payload)
	ipLen := IPv6HeaderLen
	if v4 {
		ipLen = IPv4HeaderLen
		if ipLen+tcpLen > 0xffff {
			return dst, errIPv4TooLarge
		}
	} else if tcpLen > 0xffff {
		return dst, errIPv6TooLarge
	}

	start := len(dst)
	dst = slices.Grow(dst, ipLen+tcpLen)[:start+ipLen+tcpLen]
	pkt := dst[start:]
	ip := pkt[:ipLen]
	if v4 {
		ip[0] = 0x45
		ip[1] = f.TOS
		binary.BigEndian.PutUint16(ip[ipv4TotalLen:], uint16(ipLen+tcpLen))
		binary.BigEndian.PutUint16(ip[ipv4ID:], 0)
		binary.BigEndian.PutUint16(ip[ipv4Frag:], ipv4FlagDF)
		ip[ipv4TTL] = ttl
		ip[ipv4Proto] = ProtoTCP
		binary.BigEndian.PutUint16(ip[ipv4Checksum:], 0)
		a, b := src.As4(), dstAddr.As4()
		copy(ip[ipv4Src:], a[:])
		copy(ip[ipv4Dst:], b[:])
		binary.BigEndian.PutUint16(ip[ipv4Checksum:], Checksum(ip, 0))
	} else {
		// Version 6, traffic class, flow label 0.
		binary.BigEndian.PutUint32(ip[0:], 6<<28|uint32(f.TOS)<<20)
		binary.BigEndian.PutUint16(ip[ipv6PayloadLen:], uint16(tcpLen))
		ip[ipv6NextHeader] = ProtoTCP
		ip[ipv6HopLimit] = ttl
		a, b := src.As16(), dstAddr.As16()
		copy(ip[ipv6Src:], a[:])
		copy(ip[ipv6Dst:], b[:])
	}

	t := TCP(pkt[ipLen:])
	t.SetSrcPort(f.Src.Port())
	t.SetDstPort(f.Dst.Port())
	t.SetSeq(f.Seq)
	t.SetAck(f.Ack)
	t[tcpDataOff] = byte((TCPHeaderLen+len(f.Options))/4) << 4
	t.SetFlags(f.Flags)
	t.SetWindow(f.Window)
	t.SetChecksum(0)
	t.SetUrgent(f.Urgent)
	copy(t[TCPHeaderLen:], f.Options)
	copy(t[TCPHeaderLen+len(f.Options):], f.Payload)
	s := PseudoHeaderSum(src, dstAddr, ProtoTCP, tcpLen)
	t.SetChecksum(Checksum(t, s))
	return dst, nil
}

// Rebuild appends to dst a copy of the parsed packet p with its TCP options
// replaced by opts (padded to a multiple of 4, at most MaxOptionsLen bytes)
// and its TCP payload replaced by payload, and returns the extended slice.
// Every other IP and TCP field is kept as it is: IPv4 options, ID, flags,
// TTL and TOS; IPv6 traffic class, flow label and hop limit; ports,
// sequence numbers, the reserved bits, flags, window and urgent pointer.
// The IP length field, the TCP data offset, the IPv4 header checksum and the
// full TCP checksum are recomputed.
//
// opts and payload may alias p.Buf, but dst must not overlap p.Buf.
func Rebuild(dst []byte, p *Packet, opts []byte, payload []byte) ([]byte, error) {
	if err := checkOptions(opts); err != nil {
		return dst, err
	}
	if (p.Version != 4 && p.Version != 6) || p.IPHdrLen > len(p.Buf) || len(p.TCP) < TCPHeaderLen {
		return dst, errRebuildVersion
	}
	ipLen := p.IPHdrLen
	tcpLen := TCPHeaderLen + len(opts) + len(payload)
	if p.Version == 4 {
		if ipLen+tcpLen > 0xffff {
			return dst, errIPv4TooLarge
		}
	} else if tcpLen > 0xffff {
		return dst, errIPv6TooLarge
	}

	start := len(dst)
	dst = slices.Grow(dst, ipLen+tcpLen)[:start+ipLen+tcpLen]
	pkt := dst[start:]
	ip := pkt[:ipLen]
	copy(ip, p.Buf[:ipLen])
	t := TCP(pkt[ipLen:])
	copy(t, p.TCP[:TCPHeaderLen])
	copy(t[TCPHeaderLen:], opts)
	hl := TCPHeaderLen + len(opts)
	t[tcpDataOff] = byte(hl/4)<<4 | t[tcpDataOff]&0x0f
	if p.Version == 4 {
		binary.BigEndian.PutUint16(ip[ipv4TotalLen:], uint16(ipLen+tcpLen))
		binary.BigEndian.PutUint16(ip[ipv4Checksum:], 0)
		binary.BigEndian.PutUint16(ip[ipv4Checksum:], Checksum(ip, 0))
	} else {
		binary.BigEndian.PutUint16(ip[ipv6PayloadLen:], uint16(tcpLen))
	}
	t.SetChecksum(0)
	// The header's length is a multiple of 4, so its sum chains into the
	// payload's, which is taken while the payload is copied in.
	s := Sum(t[:hl], PseudoHeaderSum(p.Src, p.Dst, ProtoTCP, tcpLen))
	t.SetChecksum(^fold(CopySum(t[hl:], payload, s)))
	return dst, nil
}

// checkOptions checks that an option area can go in a TCP header as is.
func checkOptions(opts []byte) error {
	if len(opts) > MaxOptionsLen {
		return errOptArea
	}
	if len(opts)%4 != 0 {
		return errOptPad
	}
	return nil
}

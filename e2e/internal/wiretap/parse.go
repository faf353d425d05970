package wiretap

import (
	"encoding/binary"
	"net/netip"
)

// Segment is a TCP segment found in a captured Ethernet frame.
type Segment struct {
	Src, Dst netip.AddrPort
	Flags    uint8
	// Payload is the captured part of the TCP payload; PayloadLen is the
	// payload length the IP header announces, which is larger when the
	// capture was truncated.
	Payload    []byte
	PayloadLen int
}

// Ethernet type numbers and IP protocol numbers used here.
const (
	etherIPv4 = 0x0800
	etherIPv6 = 0x86dd
	etherVLAN = 0x8100
	protoTCP  = 6
)

// ParseEthernet finds the TCP segment in an Ethernet frame (one 802.1Q tag
// allowed). It reports false for anything else: other protocols, IPv6 with
// extension headers, IPv4 fragments past the first, or headers cut short.
// A payload cut short by the capture is fine (see Segment.PayloadLen). It
// never panics.
func ParseEthernet(frame []byte, s *Segment) bool {
	if len(frame) < 14 {
		return false
	}
	et := binary.BigEndian.Uint16(frame[12:14])
	ip := frame[14:]
	if et == etherVLAN {
		if len(frame) < 18 {
			return false
		}
		et = binary.BigEndian.Uint16(frame[16:18])
		ip = frame[18:]
	}
	switch et {
	case etherIPv4:
		return parseIPv4(ip, s)
	case etherIPv6:
		return parseIPv6(ip, s)
	}
	return false
}

func parseIPv4(b []byte, s *Segment) bool {
	if len(b) < 20 || b[0]>>4 != 4 {
		return false
	}
	ihl := int(b[0]&0xf) * 4
	total := int(binary.BigEndian.Uint16(b[2:4]))
	frag := binary.BigEndian.Uint16(b[6:8])
	if ihl < 20 || len(b) < ihl || b[9] != protoTCP || frag&0x1fff != 0 {
		return false
	}
	if total == 0 { // TSO super-packets may carry 0; take what we have
		total = len(b)
	}
	if total < ihl {
		return false
	}
	src := netip.AddrFrom4([4]byte(b[12:16]))
	dst := netip.AddrFrom4([4]byte(b[16:20]))
	return parseTCP(b[ihl:], total-ihl, src, dst, s)
}

func parseIPv6(b []byte, s *Segment) bool {
	if len(b) < 40 || b[0]>>4 != 6 || b[6] != protoTCP {
		return false
	}
	plen := int(binary.BigEndian.Uint16(b[4:6]))
	if plen == 0 { // jumbo or GSO super-packet: take what we have
		plen = len(b) - 40
	}
	src := netip.AddrFrom16([16]byte(b[8:24]))
	dst := netip.AddrFrom16([16]byte(b[24:40]))
	return parseTCP(b[40:], plen, src, dst, s)
}

// parseTCP parses the TCP header in b; tcpLen is the segment length the IP
// header announces.
func parseTCP(b []byte, tcpLen int, src, dst netip.Addr, s *Segment) bool {
	if len(b) < 20 {
		return false
	}
	off := int(b[12]>>4) * 4
	if off < 20 || len(b) < off || tcpLen < off {
		return false
	}
	s.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(b[0:2]))
	s.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(b[2:4]))
	s.Flags = b[13]
	s.PayloadLen = tcpLen - off
	end := min(len(b), tcpLen)
	s.Payload = b[off:end]
	return true
}

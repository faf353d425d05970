package pcapio

import (
	"encoding/binary"
	"fmt"
)

// EtherTypes of the IP versions and VLAN tags.
const (
	etherIPv4  = 0x0800
	etherIPv6  = 0x86dd
	etherVLAN  = 0x8100
	etherQinQ  = 0x88a8
	etherQinQ2 = 0x9100
)

// IPPacket strips the link-layer header of data, a packet of link type
// link, and returns the IP packet it carries. ok is false for a frame that
// carries something other than IPv4 or IPv6 (ARP, LLDP...); err is set for
// a frame too short for its header (ErrFormat) or an unknown link type
// (ErrLinkType). The result aliases data.
func IPPacket(link uint32, data []byte) (ip []byte, ok bool, err error) {
	switch link {
	case LinkRaw, LinkIPv4, LinkIPv6:
		return data, isIP(data), nil
	case LinkEthernet:
		if len(data) < 14 {
			return nil, false, formatErr("Ethernet frame of %d bytes", len(data))
		}
		et := binary.BigEndian.Uint16(data[12:])
		rest := data[14:]
		for tags := 0; et == etherVLAN || et == etherQinQ || et == etherQinQ2; tags++ {
			if len(rest) < 4 || tags == 4 {
				return nil, false, formatErr("VLAN-tagged frame too short")
			}
			et = binary.BigEndian.Uint16(rest[2:])
			rest = rest[4:]
		}
		return etherIP(et, rest)
	case LinkSLL:
		if len(data) < 16 {
			return nil, false, formatErr("SLL header of %d bytes", len(data))
		}
		return etherIP(binary.BigEndian.Uint16(data[14:]), data[16:])
	case LinkSLL2:
		if len(data) < 20 {
			return nil, false, formatErr("SLL2 header of %d bytes", len(data))
		}
		return etherIP(binary.BigEndian.Uint16(data[0:]), data[20:])
	case LinkNull, LinkLoop:
		if len(data) < 4 {
			return nil, false, formatErr("loopback header of %d bytes", len(data))
		}
		// The family is in the capturing host's byte order (NULL) or
		// big-endian (LOOP); AF_INET is 2 everywhere, AF_INET6 varies
		// (10, 24, 28, 30), so look at the IP version instead.
		return data[4:], isIP(data[4:]), nil
	}
	return nil, false, fmt.Errorf("%w %d", ErrLinkType, link)
}

func etherIP(et uint16, rest []byte) ([]byte, bool, error) {
	if et != etherIPv4 && et != etherIPv6 {
		return nil, false, nil
	}
	return rest, isIP(rest), nil
}

func isIP(b []byte) bool {
	return len(b) > 0 && (b[0]>>4 == 4 || b[0]>>4 == 6)
}

package enginetest

import (
	"encoding/binary"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// maxIPPacket is the largest IP packet the harness builds: the IPv4 total
// length field (and, plus the fixed header, the IPv6 payload length) limit.
const maxIPPacket = 65535

// seg is a checked view of one IPv4 or IPv6 packet carrying a TCP segment.
// Every offset in it lies inside b.
type seg struct {
	b      []byte // the packet, trimmed to its IP length
	v6     bool
	ipLen  int // IP header length
	tcpLen int // TCP header length
}

// parseSeg checks b and returns a view of it. ok is false for anything that is
// not an unfragmented TCP segment with consistent lengths (IPv6 extension
// headers are refused). It never panics.
func parseSeg(b []byte) (s seg, ok bool) {
	if len(b) < 1 {
		return seg{}, false
	}
	switch b[0] >> 4 {
	case 4:
		if len(b) < header.IPv4MinimumSize {
			return seg{}, false
		}
		ip := header.IPv4(b)
		hl := int(b[0]&0x0f) * 4
		tl := int(ip.TotalLength())
		if hl < header.IPv4MinimumSize || tl < hl || tl > len(b) {
			return seg{}, false
		}
		if ip.Protocol() != uint8(header.TCPProtocolNumber) || ip.More() || ip.FragmentOffset() != 0 {
			return seg{}, false
		}
		s = seg{b: b[:tl], ipLen: hl}
	case 6:
		if len(b) < header.IPv6MinimumSize {
			return seg{}, false
		}
		ip := header.IPv6(b)
		tl := header.IPv6MinimumSize + int(ip.PayloadLength())
		if tl > len(b) || ip.NextHeader() != uint8(header.TCPProtocolNumber) {
			return seg{}, false
		}
		s = seg{b: b[:tl], v6: true, ipLen: header.IPv6MinimumSize}
	default:
		return seg{}, false
	}
	rest := len(s.b) - s.ipLen
	if rest < header.TCPMinimumSize {
		return seg{}, false
	}
	off := int(s.b[s.ipLen+12]>>4) * 4
	if off < header.TCPMinimumSize || off > rest {
		return seg{}, false
	}
	s.tcpLen = off
	return s, true
}

func (s seg) tcp() header.TCP        { return header.TCP(s.b[s.ipLen:]) }
func (s seg) payload() []byte        { return s.b[s.ipLen+s.tcpLen:] }
func (s seg) seq() uint32            { return s.tcp().SequenceNumber() }
func (s seg) flags() header.TCPFlags { return s.tcp().Flags() }
func (s seg) hdrLen() int            { return s.ipLen + s.tcpLen }
func (s seg) addrs() (src, dst []byte) {
	if s.v6 {
		return s.b[8:24], s.b[24:40]
	}
	return s.b[12:16], s.b[16:20]
}

// sameFlow reports whether s and o belong to the same direction of the same
// connection (addresses and ports equal).
func (s seg) sameFlow(o seg) bool {
	if s.v6 != o.v6 {
		return false
	}
	sa, da := s.addrs()
	oa, od := o.addrs()
	return string(sa) == string(oa) && string(da) == string(od) &&
		string(s.b[s.ipLen:s.ipLen+4]) == string(o.b[o.ipLen:o.ipLen+4])
}

// pseudoSum returns the folded pseudo-header sum for s's TCP segment.
func (s seg) pseudoSum() uint16 {
	src, dst := s.addrs()
	return header.PseudoHeaderChecksum(header.TCPProtocolNumber,
		tcpip.AddrFromSlice(src), tcpip.AddrFromSlice(dst), uint16(len(s.b)-s.ipLen))
}

// fixLengthsAndChecksums rewrites the IP length field, the IPv4 header
// checksum and the full TCP checksum of s.
func (s seg) fixLengthsAndChecksums() {
	if s.v6 {
		binary.BigEndian.PutUint16(s.b[4:6], uint16(len(s.b)-header.IPv6MinimumSize))
	} else {
		binary.BigEndian.PutUint16(s.b[2:4], uint16(len(s.b)))
		s.b[10], s.b[11] = 0, 0
		binary.BigEndian.PutUint16(s.b[10:12], ^checksum.Checksum(s.b[:s.ipLen], 0))
	}
	t := s.b[s.ipLen:]
	t[16], t[17] = 0, 0
	binary.BigEndian.PutUint16(t[16:18], ^checksum.Checksum(t, s.pseudoSum()))
}

// setPartialChecksum leaves only the pseudo-header sum in the TCP checksum
// field, as Linux does for a CHECKSUM_PARTIAL (GSO) packet handed to NFQUEUE.
func (s seg) setPartialChecksum() {
	binary.BigEndian.PutUint16(s.b[s.ipLen+16:], s.pseudoSum())
}

// checksumsOK reports whether the IPv4 header checksum (if any) and the TCP
// checksum of s verify.
func (s seg) checksumsOK() bool {
	if !s.v6 && checksum.Checksum(s.b[:s.ipLen], 0) != 0xffff {
		return false
	}
	return checksum.Checksum(s.b[s.ipLen:], s.pseudoSum()) == 0xffff
}

// FixChecksums recomputes the IP length field, the IPv4 header checksum and
// the TCP checksum of pkt in place (for tests that tamper with or forge
// segments). It reports false, changing nothing, if pkt is not a TCP segment
// the harness can parse.
func FixChecksums(pkt []byte) bool {
	s, ok := parseSeg(pkt)
	if !ok {
		return false
	}
	s.fixLengthsAndChecksums()
	return true
}

// ChecksumsValid reports whether pkt is a parseable TCP segment whose IPv4
// header checksum (if any) and TCP checksum verify.
func ChecksumsValid(pkt []byte) bool {
	s, ok := parseSeg(pkt)
	return ok && s.checksumsOK()
}

// TCPPayload returns the TCP payload of pkt (aliasing it), or ok=false if pkt
// is not a parseable TCP segment.
func TCPPayload(pkt []byte) (payload []byte, ok bool) {
	s, ok := parseSeg(pkt)
	if !ok {
		return nil, false
	}
	return s.payload(), true
}

// splittable reports whether s carries data that may be cut into pieces:
// no SYN (its data would start at seq+1), RST or URG, and at least 2 bytes.
func (s seg) splittable() bool {
	return len(s.payload()) >= 2 &&
		s.flags()&(header.TCPFlagSyn|header.TCPFlagRst|header.TCPFlagUrg) == 0
}

// Split cuts the TCP segment pkt at the payload offsets cuts (strictly
// increasing, each in 1..len(payload)-1) into len(cuts)+1 new packets. Each
// piece keeps pkt's IP and TCP headers (options included) with its seq moved
// forward; FIN and PSH stay only on the last piece. Lengths and checksums are
// recomputed. ok is false, and nothing is returned, if pkt is not a data
// segment that may be split (SYN, RST and URG segments are not) or cuts is
// out of range. pkt is not modified.
func Split(pkt []byte, cuts []int) (pieces [][]byte, ok bool) {
	s, ok := parseSeg(pkt)
	if !ok || !s.splittable() || len(cuts) == 0 {
		return nil, false
	}
	pl := s.payload()
	prev := 0
	for _, c := range cuts {
		if c <= prev || c >= len(pl) {
			return nil, false
		}
		prev = c
	}
	hdr := s.b[:s.hdrLen()]
	start := 0
	for i := 0; i <= len(cuts); i++ {
		end := len(pl)
		if i < len(cuts) {
			end = cuts[i]
		}
		b := make([]byte, 0, len(hdr)+end-start)
		b = append(b, hdr...)
		b = append(b, pl[start:end]...)
		p := seg{b: b, v6: s.v6, ipLen: s.ipLen, tcpLen: s.tcpLen}
		t := p.tcp()
		t.SetSequenceNumber(s.seq() + uint32(start))
		if i < len(cuts) {
			t.SetFlags(uint8(s.flags() &^ (header.TCPFlagFin | header.TCPFlagPsh)))
		}
		p.fixLengthsAndChecksums()
		pieces = append(pieces, b)
		start = end
	}
	return pieces, true
}

// coalescible reports whether b may be appended to a as one segment of at
// most max bytes of IP packet: same flow, both carrying data, b starting
// exactly where a ends, a without FIN, and neither SYN, RST nor URG.
func coalescible(a, b seg, max int) bool {
	const bad = header.TCPFlagSyn | header.TCPFlagRst | header.TCPFlagUrg
	return a.sameFlow(b) &&
		len(a.payload()) > 0 && len(b.payload()) > 0 &&
		a.flags()&(bad|header.TCPFlagFin) == 0 && b.flags()&bad == 0 &&
		a.seq()+uint32(len(a.payload())) == b.seq() &&
		a.ipLen+b.tcpLen+len(a.payload())+len(b.payload()) <= max
}

// Coalesce joins two consecutive in-order data segments of one flow into one
// new packet of at most max bytes (max <= 65535; 0 means 65535), the way GRO or
// GSO would: a's IP header, b's TCP header (ack, window, options, flags) with
// a's seq, and both payloads. Lengths and checksums are recomputed. ok is false
// when the two may not be joined. Neither input is modified.
func Coalesce(a, b []byte, max int) (joined []byte, ok bool) {
	if max <= 0 || max > maxIPPacket {
		max = maxIPPacket
	}
	sa, ok1 := parseSeg(a)
	sb, ok2 := parseSeg(b)
	if !ok1 || !ok2 || !coalescible(sa, sb, max) {
		return nil, false
	}
	return join(sa, sb), true
}

func join(a, b seg) []byte {
	out := make([]byte, 0, a.ipLen+b.tcpLen+len(a.payload())+len(b.payload()))
	out = append(out, a.b[:a.ipLen]...)
	out = append(out, b.b[b.ipLen:b.hdrLen()]...)
	out = append(out, a.payload()...)
	out = append(out, b.payload()...)
	j := seg{b: out, v6: a.v6, ipLen: a.ipLen, tcpLen: b.tcpLen}
	j.tcp().SetSequenceNumber(a.seq())
	j.fixLengthsAndChecksums()
	return j.b
}

// coalesceRun merges runs of consecutive coalescible packets in pkts (in
// place; returns the shortened slice). take is consulted before each merge
// and may veto it (it carries the random choice); merged counts merges.
func coalesceRun(pkts [][]byte, max int, take func() bool) (out [][]byte, merged int) {
	out = pkts[:0]
	var cur seg
	curOK := false
	for _, p := range pkts {
		s, ok := parseSeg(p)
		if curOK && ok && coalescible(cur, s, max) && take() {
			j := join(cur, s)
			cur, _ = parseSeg(j)
			out[len(out)-1] = j
			merged++
			continue
		}
		out = append(out, p)
		cur, curOK = s, ok
	}
	return out, merged
}

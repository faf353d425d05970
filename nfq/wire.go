package nfq

import "encoding/binary"

// Reading NFQUEUE messages in place. The kernel sends each queued packet as
// one netlink message of type NFQNL_MSG_PACKET (include/uapi/linux/netfilter/
// nfnetlink_queue.h): a struct nlmsghdr, a struct nfgenmsg whose res_id is the
// queue number, then attributes. A datagram may hold several messages, and
// error replies to our verdicts (NLMSG_ERROR) arrive on the same socket. The
// parser below takes a datagram as a byte slice and hands out views into it:
// nothing is copied and nothing is allocated, so the payload a segment is
// processed from is the receive buffer itself.

// Message types and attributes read here.
const (
	nlmsgNoop       = 1 // NLMSG_NOOP
	nlmsgError      = 2 // NLMSG_ERROR
	nlmsgDone       = 3 // NLMSG_DONE
	nfqnlMsgPacket  = 0 // NFQNL_MSG_PACKET
	nfqaPacketHdr   = 1 // NFQA_PACKET_HDR: __be32 packet_id, __be16 hw_protocol, __u8 hook
	nfqaCapLen      = 14
	nlaTypeMask     = 0x3fff // without NLA_F_NESTED and NLA_F_NET_BYTEORDER
	nlaHdrLen       = 4
	packetHdrMinLen = 7
)

// msgKind classifies one netlink message of a datagram.
type msgKind uint8

const (
	msgPacket  msgKind = iota // a queued packet (see nfqPacket)
	msgError                  // NLMSG_ERROR with a non-zero error: a refused verdict
	msgIgnored                // an acknowledgement, NLMSG_DONE or NLMSG_NOOP
	msgUnknown                // a well-formed message of another type
	msgBad                    // a message whose header or attributes do not parse
)

// nfqPacket is what the data path needs of one NFQNL_MSG_PACKET message.
// Fields are valid when their has* flag (or, for payload, hasPayload) is set.
// payload aliases the datagram.
type nfqPacket struct {
	id         uint32
	hook       uint8
	hasHdr     bool
	payload    []byte
	hasPayload bool
	capLen     uint32
	hasCapLen  bool
}

// nextMessage splits the first netlink message off datagram b. It returns the
// message's kind, for msgPacket its fields in p (which it resets first), for
// msgError the error code (a positive errno), and the rest of the datagram.
// A message whose length field does not fit ends the datagram: rest is nil.
// It never panics and never allocates.
func nextMessage(b []byte, p *nfqPacket) (kind msgKind, errno int32, rest []byte) {
	*p = nfqPacket{}
	if len(b) < nlmsgHdrLen {
		return msgBad, 0, nil
	}
	n := int(binary.NativeEndian.Uint32(b[0:4]))
	if n < nlmsgHdrLen || n > len(b) {
		return msgBad, 0, nil
	}
	msg := b[:n]
	if al := (n + 3) &^ 3; al < len(b) {
		rest = b[al:]
	}
	switch typ := binary.NativeEndian.Uint16(b[4:6]); typ {
	case nlmsgError:
		if len(msg) < nlmsgHdrLen+4 {
			return msgBad, 0, rest
		}
		code := -int32(binary.NativeEndian.Uint32(msg[nlmsgHdrLen:]))
		if code == 0 {
			return msgIgnored, 0, rest
		}
		return msgError, code, rest
	case nlmsgDone, nlmsgNoop:
		return msgIgnored, 0, rest
	case nfnlSubsysQueue<<8 | nfqnlMsgPacket:
	default:
		return msgUnknown, 0, rest
	}
	if len(msg) < nlmsgHdrLen+nfgenLen {
		return msgBad, 0, rest
	}
	attrs := msg[nlmsgHdrLen+nfgenLen:]
	for len(attrs) > 0 {
		if len(attrs) < nlaHdrLen {
			return msgBad, 0, rest
		}
		al := int(binary.NativeEndian.Uint16(attrs[0:2]))
		if al < nlaHdrLen || al > len(attrs) {
			return msgBad, 0, rest
		}
		v := attrs[nlaHdrLen:al]
		switch binary.NativeEndian.Uint16(attrs[2:4]) & nlaTypeMask {
		case nfqaPacketHdr:
			if len(v) < packetHdrMinLen {
				return msgBad, 0, rest
			}
			p.id, p.hook, p.hasHdr = binary.BigEndian.Uint32(v[0:4]), v[6], true
		case nfqaPayload:
			p.payload, p.hasPayload = v[:len(v):len(v)], true
		case nfqaCapLen:
			if len(v) < 4 {
				return msgBad, 0, rest
			}
			p.capLen, p.hasCapLen = binary.BigEndian.Uint32(v[0:4]), true
		}
		next := (al + 3) &^ 3
		if next >= len(attrs) {
			break
		}
		attrs = attrs[next:]
	}
	return msgPacket, 0, rest
}

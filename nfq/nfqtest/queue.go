package nfqtest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"

	"github.com/florianl/go-nfqueue/v2"
	"github.com/mdlayher/netlink"
)

// ErrVerdictsFull is returned by Send when the test does not drain Verdicts
// fast enough.
var ErrVerdictsFull = errors.New("nfqtest: verdict channel full")

// Verdict is one verdict a Queue received.
type Verdict struct {
	Queue   uint16 // the queue number the message names (nfgenmsg res_id)
	ID      uint32
	Verdict int    // nfqueue.NfAccept, nfqueue.NfDrop, ...
	Packet  []byte // the replacement packet (a copy); nil when the verdict carried none
}

// Netlink constants of the NFQUEUE wire format
// (include/uapi/linux/netfilter/nfnetlink_queue.h), written out here rather
// than shared with package nfq, so that the fake checks nfq against an
// independent reading of the format.
const (
	subsysQueue   = 3
	msgPacket     = 0
	msgVerdict    = 1
	attrPacketHdr = 1
	attrVerdict   = 2
	attrPayload   = 10
	attrCapLen    = 14
)

// datagram is one thing Recv delivers: bytes or a receive error.
type datagram struct {
	b   []byte
	err error
}

// Queue is a fake NFQUEUE socket that implements nfq.Queue at the message
// boundary. A test feeds it packets with Packet (any attribute set with
// Attribute, raw datagrams with Datagram, receive errors with Error); Recv
// hands them out as NFQUEUE netlink datagrams, as many as are waiting, and
// Send decodes the verdict datagrams the dispatcher writes: each verdict
// appears on the Verdicts channel, also after Close. A datagram Send cannot
// decode is an error (and recorded by Errors).
type Queue struct {
	in       chan datagram
	verdicts chan Verdict
	stop     chan struct{}

	pending *datagram // an error held back by Recv; Recv has one caller

	mu     sync.Mutex
	closed bool
	errs   []error
}

// NewQueue returns a Queue whose input and verdict channels hold up to
// buffer messages each (at least 1).
func NewQueue(buffer int) *Queue {
	buffer = max(buffer, 1)
	return &Queue{
		in:       make(chan datagram, buffer),
		verdicts: make(chan Verdict, buffer),
		stop:     make(chan struct{}),
	}
}

// Packet queues a packet with id, seen at the netfilter hook (nfq.HookLocalOut,
// nfq.HookLocalIn or any other value). It blocks while the input buffer is
// full.
func (q *Queue) Packet(id uint32, hook uint8, payload []byte) {
	p := slices.Clone(payload)
	if p == nil {
		p = []byte{}
	}
	q.Attribute(nfqueue.Attribute{PacketID: &id, Hook: &hook, Payload: &p})
}

// Attribute queues a message with the attributes of a that are set (nil
// fields are left out), for tests of malformed messages. PacketID and Hook
// make up NFQA_PACKET_HDR (a missing one is sent as 0 when the other is
// set); Payload and CapLen are sent as NFQA_PAYLOAD and NFQA_CAP_LEN.
func (q *Queue) Attribute(a nfqueue.Attribute) {
	q.Datagram(EncodePacket(a))
}

// Datagram queues raw bytes as one datagram.
func (q *Queue) Datagram(b []byte) { q.in <- datagram{b: slices.Clone(b)} }

// Error queues a receive error: Recv returns it in turn.
func (q *Queue) Error(err error) { q.in <- datagram{err: err} }

// Verdicts returns the channel on which verdicts appear, in the order they
// were sent.
func (q *Queue) Verdicts() <-chan Verdict { return q.verdicts }

// Errors returns the errors of Send calls whose datagram did not decode.
func (q *Queue) Errors() []error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.errs)
}

// Recv implements nfq.Queue: it waits for the first datagram, then takes
// every other one already waiting, up to len(bufs). A receive error queued
// after some datagrams is returned by the next call.
func (q *Queue) Recv(bufs [][]byte, sizes []int) (int, error) {
	n := 0
	for n < len(bufs) && n < len(sizes) {
		var d datagram
		switch {
		case q.pending != nil:
			d, q.pending = *q.pending, nil
		case n == 0:
			select {
			case d = <-q.in:
			case <-q.stop:
				return 0, net.ErrClosed
			}
		default:
			select {
			case d = <-q.in:
			default:
				return n, nil
			}
		}
		if d.err != nil {
			if n == 0 {
				return 0, d.err
			}
			q.pending = &d
			return n, nil
		}
		copy(bufs[n], d.b)
		sizes[n] = len(d.b)
		n++
	}
	return n, nil
}

// Send implements nfq.Queue: it decodes the datagram's verdict messages.
func (q *Queue) Send(iov [][]byte) error {
	vs, err := DecodeVerdicts(slices.Concat(iov...))
	if err != nil {
		q.mu.Lock()
		q.errs = append(q.errs, err)
		q.mu.Unlock()
		return err
	}
	for _, v := range vs {
		select {
		case q.verdicts <- v:
		default:
			return ErrVerdictsFull
		}
	}
	return nil
}

// Close makes Recv fail with net.ErrClosed. It is idempotent.
func (q *Queue) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.stop)
	}
	return nil
}

// EncodePacket returns one NFQNL_MSG_PACKET netlink message with the
// attributes of a that are set.
func EncodePacket(a nfqueue.Attribute) []byte {
	ae := netlink.NewAttributeEncoder()
	if a.PacketID != nil || a.Hook != nil {
		hdr := make([]byte, 7)
		if a.PacketID != nil {
			binary.BigEndian.PutUint32(hdr, *a.PacketID)
		}
		binary.BigEndian.PutUint16(hdr[4:], 0x0800)
		if a.Hook != nil {
			hdr[6] = *a.Hook
		}
		ae.Bytes(attrPacketHdr, hdr)
	}
	if a.CapLen != nil {
		ae.Bytes(attrCapLen, binary.BigEndian.AppendUint32(nil, *a.CapLen))
	}
	if a.Payload != nil {
		ae.Bytes(attrPayload, *a.Payload)
	}
	attrs, err := ae.Encode()
	if err != nil {
		panic(fmt.Sprintf("nfqtest: encode attributes: %v", err)) // only for payloads over 64 KiB: a test bug
	}
	m := netlink.Message{
		Header: netlink.Header{Length: uint32(16 + 4 + len(attrs)), Type: netlink.HeaderType(subsysQueue<<8 | msgPacket)},
		Data:   append([]byte{0, 0, 0, 0}, attrs...),
	}
	b, err := m.MarshalBinary()
	if err != nil {
		panic(fmt.Sprintf("nfqtest: encode message: %v", err))
	}
	return b
}

// EncodeError returns an NLMSG_ERROR message carrying -errno, as the kernel
// sends for a refused verdict.
func EncodeError(errno int32) []byte {
	m := netlink.Message{
		Header: netlink.Header{Length: 16 + 4 + 16, Type: netlink.Error},
		Data:   append(binary.NativeEndian.AppendUint32(nil, uint32(-errno)), make([]byte, 16)...),
	}
	b, _ := m.MarshalBinary()
	return b
}

// DecodeVerdicts decodes a datagram of NFQNL_MSG_VERDICT messages, as the
// kernel's nfnetlink would, and fails on anything else.
func DecodeVerdicts(b []byte) ([]Verdict, error) {
	var out []Verdict
	for len(b) > 0 {
		if len(b) < 16 {
			return out, fmt.Errorf("nfqtest: %d trailing bytes", len(b))
		}
		n := int(binary.NativeEndian.Uint32(b))
		al := (n + 3) &^ 3
		if n < 16 || al > len(b) {
			return out, fmt.Errorf("nfqtest: nlmsg_len %d of %d bytes", n, len(b))
		}
		var m netlink.Message
		if err := m.UnmarshalBinary(b[:al]); err != nil {
			return out, fmt.Errorf("nfqtest: message: %w", err)
		}
		b = b[al:]
		if m.Header.Type != netlink.HeaderType(subsysQueue<<8|msgVerdict) || m.Header.Flags != netlink.Request {
			return out, fmt.Errorf("nfqtest: not a verdict: %+v", m.Header)
		}
		if len(m.Data) < 4 || m.Data[0] != 0 || m.Data[1] != 0 {
			return out, fmt.Errorf("nfqtest: bad nfgenmsg % x", m.Data[:min(4, len(m.Data))])
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			return out, fmt.Errorf("nfqtest: attributes: %w", err)
		}
		v, seen := Verdict{Queue: binary.BigEndian.Uint16(m.Data[2:4])}, false
		for ad.Next() {
			switch ad.Type() {
			case attrVerdict:
				vb := ad.Bytes()
				if len(vb) != 8 {
					return out, fmt.Errorf("nfqtest: verdict header of %d bytes", len(vb))
				}
				v.Verdict, v.ID, seen = int(binary.BigEndian.Uint32(vb)), binary.BigEndian.Uint32(vb[4:]), true
			case attrPayload:
				v.Packet = slices.Clone(ad.Bytes())
				if v.Packet == nil {
					v.Packet = []byte{}
				}
			default:
				return out, fmt.Errorf("nfqtest: unexpected attribute %d", ad.Type())
			}
		}
		if err := ad.Err(); err != nil {
			return out, fmt.Errorf("nfqtest: attributes: %w", err)
		}
		if !seen {
			return out, errors.New("nfqtest: verdict message without NFQA_VERDICT_HDR")
		}
		out = append(out, v)
	}
	return out, nil
}

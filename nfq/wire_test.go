package nfq

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/florianl/go-nfqueue/v2"
	"github.com/mdlayher/netlink"

	"github.com/tcpcryptd/tcpcrypt/nfq/nfqtest"
	"github.com/tcpcryptd/tcpcrypt/packet"
)

// encodeAttr builds one packet message through nfqtest's encoder (which uses
// mdlayher/netlink: an independent writer of the format).
func encodeAttr(id *uint32, hook *uint8, payload []byte, capLen *uint32) []byte {
	a := nfqueue.Attribute{PacketID: id, Hook: hook, CapLen: capLen}
	if payload != nil {
		a.Payload = &payload
	}
	return nfqtest.EncodePacket(a)
}

func TestNextMessage(t *testing.T) {
	id, hook, capLen := uint32(0xdeadbeef), HookLocalIn, uint32(9000)
	pkt := []byte{0x45, 1, 2, 3, 4}
	two := append(encodeAttr(&id, &hook, pkt, &capLen), encodeAttr(&id, &hook, nil, nil)...)
	var p nfqPacket
	kind, _, rest := nextMessage(two, &p)
	if kind != msgPacket || !p.hasHdr || p.id != id || p.hook != hook || !p.hasPayload ||
		!bytes.Equal(p.payload, pkt) || !p.hasCapLen || p.capLen != capLen {
		t.Fatalf("first message: kind %d %+v", kind, p)
	}
	if cap(p.payload) != len(pkt) {
		t.Errorf("payload capacity %d reaches past the attribute", cap(p.payload))
	}
	kind, _, rest = nextMessage(rest, &p)
	if kind != msgPacket || p.hasPayload || p.hasCapLen || !p.hasHdr || rest != nil {
		t.Fatalf("second message: kind %d %+v rest %d", kind, p, len(rest))
	}
	if kind, errno, _ := nextMessage(nfqtest.EncodeError(2), &p); kind != msgError || errno != 2 {
		t.Errorf("error message: kind %d errno %d", kind, errno)
	}
	if kind, _, _ := nextMessage(nfqtest.EncodeError(0), &p); kind != msgIgnored {
		t.Errorf("acknowledgement: kind %d", kind)
	}
	good := encodeAttr(&id, &hook, pkt, nil)
	bad := map[string][]byte{
		"short":          good[:10],
		"length too big": append([]byte{0xff, 0xff, 0, 0}, good[4:]...),
		"attr cut": func() []byte {
			b := bytes.Clone(good)
			binary.NativeEndian.PutUint32(b, uint32(len(b)-5))
			return b[:len(b)-5]
		}(),
		"short hdr attr": func() []byte { b := bytes.Clone(good); binary.NativeEndian.PutUint16(b[20:], 8); return b }(),
	}
	for name, b := range bad {
		if kind, _, _ := nextMessage(b, &p); kind != msgBad {
			t.Errorf("%s: kind %d, want msgBad", name, kind)
		}
	}
	if n := testing.AllocsPerRun(100, func() { nextMessage(two, &p) }); n != 0 {
		t.Errorf("nextMessage allocates %.0f times", n)
	}
}

// FuzzNextMessage: nextMessage never panics, never reads past a message,
// and agrees with mdlayher/netlink's decoding on every datagram that parses.
func FuzzNextMessage(f *testing.F) {
	id, hook, capLen := uint32(7), HookLocalOut, uint32(100)
	f.Add(encodeAttr(&id, &hook, []byte{0x45, 0, 0, 20}, &capLen))
	f.Add(append(encodeAttr(&id, &hook, []byte{1}, nil), encodeAttr(nil, nil, []byte{2, 3}, nil)...))
	f.Add(nfqtest.EncodeError(2))
	f.Add([]byte{})
	f.Add(make([]byte, 16))
	f.Fuzz(func(t *testing.T, b []byte) {
		var p nfqPacket
		msgs := 0
		for rest := b; len(rest) > 0 && msgs < 1<<16; msgs++ {
			var kind msgKind
			before := len(rest)
			kind, _, rest = nextMessage(rest, &p)
			if len(rest) >= before {
				t.Fatalf("no progress: %d bytes left of %d", len(rest), before)
			}
			if kind == msgPacket && p.hasPayload && len(p.payload) > len(b) {
				t.Fatalf("payload of %d bytes from a %d-byte datagram", len(p.payload), len(b))
			}
		}
		// The oracle: where netlink parses the datagram, every packet
		// message's header and payload must match.
		nm, ok := splitMessages(b)
		if !ok {
			return
		}
		rest := b
		for _, m := range nm {
			kind, _, r := nextMessage(rest, &p)
			rest = r
			if m.Header.Type != netlink.HeaderType(nfnlSubsysQueue<<8|nfqnlMsgPacket) || len(m.Data) < nfgenLen {
				continue
			}
			if hasShortAttr(m.Data[nfgenLen:]) {
				continue // netlink passes over these; the kernel (and we) call them malformed
			}
			ad, err := netlink.NewAttributeDecoder(m.Data[nfgenLen:])
			if err != nil {
				continue
			}
			var want nfqPacket
			ok := true
			for ad.Next() {
				v := ad.Bytes()
				switch ad.Type() {
				case nfqaPacketHdr:
					if len(v) < packetHdrMinLen {
						ok = false
						break
					}
					want.id, want.hook, want.hasHdr = binary.BigEndian.Uint32(v), v[6], true
				case nfqaPayload:
					want.payload, want.hasPayload = v, true
				case nfqaCapLen:
					if len(v) < 4 {
						ok = false
						break
					}
					want.capLen, want.hasCapLen = binary.BigEndian.Uint32(v), true
				}
			}
			if ad.Err() != nil || !ok {
				continue
			}
			if kind != msgPacket || p.hasHdr != want.hasHdr || p.id != want.id || p.hook != want.hook ||
				p.hasPayload != want.hasPayload || !bytes.Equal(p.payload, want.payload) ||
				p.hasCapLen != want.hasCapLen || p.capLen != want.capLen {
				t.Fatalf("nextMessage %d %+v, netlink %+v", kind, p, want)
			}
		}
	})
}

// BenchmarkReceivePath measures the per-packet work of the reader outside
// the engine: parse the message in place, classify the segment, batch its
// verdict with the packet bytes.
func BenchmarkReceivePath(b *testing.B) {
	id, hook := uint32(1), HookLocalOut
	seg := tcpPkt(b, "10.0.0.1:1000", "10.0.0.2:80", 1, make([]byte, 1400))
	msg := encodeAttr(&id, &hook, seg, nil)
	bt := newBatch(discardQueue{}, 1, nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(seg)))
	var p nfqPacket
	for b.Loop() {
		if kind, _, _ := nextMessage(msg, &p); kind != msgPacket {
			b.Fatal("no packet")
		}
		if _, _, err := packet.Endpoints(p.payload); err != nil {
			b.Fatal(err)
		}
		if bt.full(p.payload) {
			_ = bt.send()
		}
		bt.add(p.id, nfqueue.NfAccept, p.payload)
	}
}

// discardQueue is a Queue whose Send discards.
type discardQueue struct{}

func (discardQueue) Recv([][]byte, []int) (int, error) { return 0, nil }
func (discardQueue) Send([][]byte) error               { return nil }
func (discardQueue) Close() error                      { return nil }

// splitMessages decodes a datagram with mdlayher/netlink, message by message;
// false if any message does not decode.
func splitMessages(b []byte) ([]netlink.Message, bool) {
	var out []netlink.Message
	for len(b) > 0 {
		if len(b) < nlmsgHdrLen {
			return nil, false
		}
		n := int(binary.NativeEndian.Uint32(b))
		al := min((n+3)&^3, len(b))
		if n < nlmsgHdrLen || n > len(b) {
			return nil, false
		}
		var m netlink.Message
		if err := m.UnmarshalBinary(b[:n]); err != nil {
			return nil, false
		}
		out = append(out, m)
		b = b[al:]
	}
	return out, true
}

// hasShortAttr reports whether an attribute of b has a length under its own
// 4-byte header, which the kernel's nla_ok refuses.
func hasShortAttr(b []byte) bool {
	for len(b) >= nlaHdrLen {
		n := int(binary.NativeEndian.Uint16(b))
		if n < nlaHdrLen {
			return true
		}
		n = (n + 3) &^ 3
		if n >= len(b) {
			return false
		}
		b = b[n:]
	}
	return false
}

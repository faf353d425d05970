package cryptdump

import (
	"fmt"
	"net/netip"
	"sort"
	"time"

	"github.com/tcpcryptd/tcpcrypt/internal/pcapio"
	"github.com/tcpcryptd/tcpcrypt/packet"
	"github.com/tcpcryptd/tcpcrypt/packet/seq"
)

// keptPkt is a packet kept for Rewrite.
type keptPkt struct {
	t  time.Time
	ip []byte
	cn *conn
	h  *half
}

// frameMap places one verified frame: its stream offsets (c..end), where
// its data starts (data), how many data bytes it has (n), and the plaintext
// offset of its first data byte (p).
type frameMap struct {
	c, end, data, n, p uint64
}

// plainOffset maps a stream offset of h's direction to the plaintext offset:
// how many verified data bytes lie before it. ok is false past the verified
// part.
func (h *half) plainOffset(c int64) (uint64, bool) {
	if c <= 0 || len(h.frames) == 0 {
		return 0, len(h.frames) > 0 || c <= 0
	}
	u := uint64(c)
	i := sort.Search(len(h.frames), func(i int) bool { return h.frames[i].end > u })
	if i == len(h.frames) {
		last := h.frames[len(h.frames)-1]
		return last.p + last.n, u == last.end
	}
	f := h.frames[i]
	switch {
	case u <= f.data:
		return f.p, true
	case u >= f.data+f.n:
		return f.p + f.n, true
	}
	return f.p + (u - f.data), true
}

// offsetOf unwraps a sequence number of h's direction to a stream offset
// (the first byte after the SYN is 0), for streams under 4 GiB.
func (h *half) offsetOf(v seq.Value) int64 {
	ref := h.span / 2
	return ref + int64(int32(uint32(v-h.isn.Add(1))-uint32(ref)))
}

// Rewrite writes every kept IP packet (Capture.Keep must have been set
// before the packets were added, and Analyze called; frames without IP,
// such as ARP, are not kept) to w as raw IP: the packets of
// a connection whose keys were found carry the verified plaintext in place
// of the frames, with sequence and acknowledgment numbers counting
// plaintext bytes, so that a protocol analyser sees the application's
// stream. Unverified stream bytes are left out; SACK options are removed
// (their blocks would count stream bytes). Other packets are copied as
// they are.
func (c *Capture) Rewrite(w *pcapio.Writer) error {
	var ob packet.OptionBuilder
	for _, k := range c.kept {
		out := k.ip
		if k.cn != nil && k.h.keyed && k.h.syn {
			var err error
			if out, err = rewritePkt(&ob, k); err != nil {
				return err
			}
		}
		if out == nil {
			continue
		}
		if err := w.WritePacket(k.t, out); err != nil {
			return err
		}
	}
	return nil
}

// rewritePkt rewrites one packet of a keyed connection.
func rewritePkt(ob *packet.OptionBuilder, k keptPkt) ([]byte, error) {
	var p packet.Packet
	if err := packet.Parse(k.ip, &p); err != nil {
		return k.ip, nil
	}
	h := k.h
	peer := &k.cn.client
	if h == peer {
		peer = &k.cn.server
	}
	t := p.TCP
	flags := t.Flags()
	var payload []byte
	newSeq := t.Seq()
	if flags&packet.FlagSYN == 0 {
		c0 := h.offsetOf(t.Seq())
		c1 := c0 + int64(len(t.Payload()))
		p0, _ := h.plainOffset(c0)
		p1, _ := h.plainOffset(c1)
		if p1 > uint64(len(h.plain)) {
			p1 = uint64(len(h.plain))
		}
		if p0 < p1 {
			payload = h.plain[p0:p1]
		}
		newSeq = h.isn.Add(1).Add(seq.Size(p0))
	}
	newAck := t.Ack()
	if flags&packet.FlagACK != 0 && peer.syn && peer.keyed {
		a := peer.offsetOf(t.Ack())
		extra := uint64(0)
		if peer.fin && a > peer.offsetOf(peer.finSeq) {
			a, extra = peer.offsetOf(peer.finSeq), 1
		}
		pa, _ := peer.plainOffset(a)
		newAck = peer.isn.Add(1).Add(seq.Size(pa + extra))
	}
	ob.Reset()
	it := packet.NewOptionIter(t.Options())
	for {
		kind, _, ok := it.Next()
		if !ok {
			break
		}
		if kind == packet.OptSACK {
			continue
		}
		if err := ob.AddRaw(it.Raw()); err != nil {
			break
		}
	}
	out, err := packet.Rebuild(nil, &p, ob.Bytes(), payload)
	if err != nil {
		return nil, fmt.Errorf("rewrite %s: %w", netip.AddrPortFrom(p.Src, t.SrcPort()), err)
	}
	var q packet.Packet
	if err := packet.Parse(out, &q); err != nil {
		return nil, fmt.Errorf("rewrite: %w", err)
	}
	q.TCP.SetSeq(newSeq)
	q.TCP.SetAck(newAck)
	q.FixTCPChecksum()
	return out, nil
}

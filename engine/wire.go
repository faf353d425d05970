package engine

import (
	"encoding/binary"
	"errors"

	"github.com/tcpcryptd/tcpcrypt/packet"
	"github.com/tcpcryptd/tcpcrypt/packet/seq"
)

// seg is one parsed segment being processed.
type seg struct {
	p       *packet.Packet
	raw     []byte // the packet as handed to Process (borrowed)
	dir     Dir
	flags   uint8
	seq     seq.Value
	ack     seq.Value
	opts    []byte
	payload []byte
}

func (s *seg) has(f uint8) bool { return s.flags&f != 0 }

// hdr holds the TCP header fields of a rewritten segment.
type hdr struct {
	seq, ack seq.Value
	flags    uint8
	window   uint16
	urgent   uint16
}

var errTooLarge = errors.New("engine: rewritten packet over 65531 bytes")

// rebuild returns a copy of p, in a packet buffer of the engine's pool, with
// the option area opts (padded), the given payload and header fields. Every
// other IP and TCP field is kept; lengths and both checksums are full and
// correct (DESIGN.md: a modified packet must not rely on checksum offload).
func (e *Engine) rebuild(p *packet.Packet, opts, payload []byte, h hdr) ([]byte, error) {
	n := p.IPHdrLen + packet.TCPHeaderLen + len(opts) + len(payload)
	if n > maxPacket {
		return nil, errTooLarge
	}
	buf := e.pkts.get(n)
	out, err := packet.Rebuild(buf, p, opts, payload)
	if err != nil {
		e.pkts.put(buf)
		return nil, err
	}
	t := packet.TCP(out[p.IPHdrLen:])
	// Rebuild wrote a full checksum; adjust it for the fields we change
	// (RFC 1624), which is exact and cheaper than summing the payload again.
	ck := t.Checksum()
	if old := t.Seq(); old != h.seq {
		ck = packet.UpdateChecksum32(ck, uint32(old), uint32(h.seq))
		t.SetSeq(h.seq)
	}
	if old := t.Ack(); old != h.ack {
		ck = packet.UpdateChecksum32(ck, uint32(old), uint32(h.ack))
		t.SetAck(h.ack)
	}
	oldW := binary.BigEndian.Uint16(t[12:14])
	newW := oldW&0xff00 | uint16(h.flags)
	if oldW != newW {
		ck = packet.UpdateChecksum16(ck, oldW, newW)
		t.SetFlags(h.flags)
	}
	if old := t.Window(); old != h.window {
		ck = packet.UpdateChecksum16(ck, old, h.window)
		t.SetWindow(h.window)
	}
	if old := t.Urgent(); old != h.urgent {
		ck = packet.UpdateChecksum16(ck, old, h.urgent)
		t.SetUrgent(h.urgent)
	}
	t.SetChecksum(ck)
	return out, nil
}

// buildLen is the length of the packet packet.Build makes of fl (IPv6 at
// worst), to size its buffer.
func buildLen(fl *packet.Fields) int {
	return packet.IPv6HeaderLen + packet.TCPHeaderLen + len(fl.Options) + len(fl.Payload)
}

// optEdit describes how to rewrite a segment's option area.
type optEdit struct {
	dropSACK bool           // remove SACK options (replaced by sack)
	sack     [][2]seq.Value // SACK blocks to add, as many as fit
	eno      []byte         // a whole ENO option to add (must fit)
	dropENO  bool           // remove ENO options
	mss      uint16         // clamp the MSS option to at most this (0: keep)
	addMSS   bool           // insert MSS mss when there is none
}

var errNoRoom = errors.New("engine: TCP option area full")

// editOptions returns the rewritten option area in b's storage.
func editOptions(b *packet.OptionBuilder, opts []byte, ed *optEdit) ([]byte, error) {
	b.Reset()
	it := packet.NewOptionIter(opts)
	sawMSS := false
	for {
		kind, data, ok := it.Next()
		if !ok {
			break
		}
		switch {
		case kind == packet.OptSACK && ed.dropSACK:
			continue
		case kind == packet.OptENO && ed.dropENO:
			continue
		case kind == packet.OptMSS && len(data) == 2 && ed.mss != 0:
			sawMSS = true
			v := min(binary.BigEndian.Uint16(data), ed.mss)
			if err := b.Add(packet.OptMSS, []byte{byte(v >> 8), byte(v)}); err != nil {
				return nil, err
			}
			continue
		}
		if err := b.AddRaw(it.Raw()); err != nil {
			return nil, err
		}
	}
	if ed.addMSS && !sawMSS && ed.mss != 0 {
		if err := b.Add(packet.OptMSS, []byte{byte(ed.mss >> 8), byte(ed.mss)}); err != nil {
			return nil, err
		}
	}
	if ed.eno != nil {
		if err := b.AddRaw(ed.eno); err != nil {
			return nil, errNoRoom
		}
	}
	if err := addSACK(b, ed.sack); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// addSACK appends a SACK option with as many of blocks as fit.
func addSACK(b *packet.OptionBuilder, blocks [][2]seq.Value) error {
	n := min(len(blocks), packet.MaxSACKBlocks)
	for ; n > 0 && b.Room() < 2+8*n; n-- {
	}
	if n == 0 {
		return nil
	}
	var blk [8 * packet.MaxSACKBlocks]byte
	data := blk[:8*n]
	for i := 0; i < n; i++ {
		binary.BigEndian.PutUint32(data[8*i:], uint32(blocks[i][0]))
		binary.BigEndian.PutUint32(data[8*i+4:], uint32(blocks[i][1]))
	}
	return b.Add(packet.OptSACK, data)
}

// synOptions reads what the engine needs from a SYN's option area.
func synOptions(opts []byte, si *synInfo) {
	si.wscale = -1
	it := packet.NewOptionIter(opts)
	for {
		kind, data, ok := it.Next()
		if !ok {
			return
		}
		switch kind {
		case packet.OptMSS:
			if len(data) == 2 {
				si.mss = binary.BigEndian.Uint16(data)
			}
		case packet.OptWindowScale:
			if len(data) == 1 {
				si.wscale = int8(min(data[0], 14))
			}
		case packet.OptSACKPermitted:
			si.sackOK = true
		case packet.OptTimestamps:
			if len(data) == 8 {
				si.ts = true
				si.tsValue = binary.BigEndian.Uint32(data)
			}
		}
	}
}

// tsOption returns the TSval of a segment's Timestamps option.
func tsOption(opts []byte) (uint32, bool) {
	v, _, ok := packet.Timestamps(opts)
	return v, ok
}

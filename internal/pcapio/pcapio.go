// Package pcapio reads packet captures in the pcap and pcapng formats and
// writes pcap files, in pure Go, for tcpcryptdump and its tests. It also
// strips the link-layer header of the link types Linux tools produce
// (Ethernet, raw IP, Linux cooked SLL and SLL2, BSD loopback), giving the
// IP packet.
//
// The reader never trusts a length field: every block and record is bounded
// (MaxRecord) before anything is allocated, and a malformed file gives an
// error matching ErrFormat, never a panic.
package pcapio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// Link types (the LINKTYPE_ registry of tcpdump.org).
const (
	LinkNull     = 0   // BSD loopback: 4-byte address family in host order
	LinkEthernet = 1   // Ethernet II, with 802.1Q / 802.1ad tags
	LinkRaw      = 101 // raw IPv4 or IPv6
	LinkLoop     = 108 // OpenBSD loopback: 4-byte family, big-endian
	LinkSLL      = 113 // Linux cooked capture v1
	LinkIPv4     = 228 // raw IPv4
	LinkIPv6     = 229 // raw IPv6
	LinkSLL2     = 276 // Linux cooked capture v2
)

// MaxRecord bounds the bytes of one packet record or pcapng block the reader
// accepts (snap lengths in the wild go up to 262144).
const MaxRecord = 1 << 20

// ErrFormat is matched by every error about the file's contents.
var ErrFormat = errors.New("pcapio: malformed capture")

// ErrLinkType is matched when a packet's link type is not one Payload knows.
var ErrLinkType = errors.New("pcapio: unsupported link type")

func formatErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrFormat, fmt.Sprintf(format, args...))
}

// Packet is one captured packet.
type Packet struct {
	Time     time.Time
	LinkType uint32
	// Data is the captured bytes (CapLen of them); it is valid until the
	// next call to Next.
	Data []byte
	// OrigLen is the packet's length on the wire; more than len(Data) when
	// the capture was cut at the snap length.
	OrigLen int
}

// Reader reads packets from a pcap or pcapng stream.
type Reader struct {
	r   io.Reader
	ng  bool
	bo  binary.ByteOrder
	buf []byte

	// pcap
	link  uint32
	nanos bool

	// pcapng: interfaces of the current section
	ifaces []iface
}

type iface struct {
	link uint32
	res  tsres
}

// tsres is a pcapng timestamp resolution: units per second as 10^exp or
// 2^exp.
type tsres struct {
	pow2 bool
	exp  uint8
}

// NewReader reads the file header (pcap) or the first section header block
// (pcapng) from r.
func NewReader(r io.Reader) (*Reader, error) {
	rd := &Reader{r: r}
	var magic [4]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil {
		return nil, formatErr("reading the file magic: %v", err)
	}
	switch {
	case binary.LittleEndian.Uint32(magic[:]) == 0x0a0d0d0a:
		rd.ng = true
		if err := rd.readSHB(); err != nil {
			return nil, err
		}
		return rd, nil
	case binary.LittleEndian.Uint32(magic[:]) == 0xa1b2c3d4:
		rd.bo = binary.LittleEndian
	case binary.BigEndian.Uint32(magic[:]) == 0xa1b2c3d4:
		rd.bo = binary.BigEndian
	case binary.LittleEndian.Uint32(magic[:]) == 0xa1b23c4d:
		rd.bo, rd.nanos = binary.LittleEndian, true
	case binary.BigEndian.Uint32(magic[:]) == 0xa1b23c4d:
		rd.bo, rd.nanos = binary.BigEndian, true
	default:
		return nil, formatErr("not a pcap or pcapng file (magic %x)", magic)
	}
	var hdr [20]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, formatErr("reading the pcap header: %v", err)
	}
	if v := rd.bo.Uint16(hdr[0:]); v != 2 {
		return nil, formatErr("pcap version %d.%d", v, rd.bo.Uint16(hdr[2:]))
	}
	// The link type sits in the low 16 bits; the upper bits carry FCS
	// information (pcap-savefile(5)), which we do not use.
	rd.link = rd.bo.Uint32(hdr[16:]) & 0xffff
	return rd, nil
}

// fill reads exactly n bytes into the reader's scratch buffer.
func (rd *Reader) fill(n int) ([]byte, error) {
	if n < 0 || n > MaxRecord {
		return nil, formatErr("record of %d bytes", n)
	}
	if cap(rd.buf) < n {
		rd.buf = make([]byte, n)
	}
	b := rd.buf[:n]
	if _, err := io.ReadFull(rd.r, b); err != nil {
		return nil, formatErr("truncated record: %v", err)
	}
	return b, nil
}

// Next returns the next packet, or io.EOF at the clean end of the file.
func (rd *Reader) Next() (Packet, error) {
	if rd.ng {
		return rd.nextNG()
	}
	var hdr [16]byte
	n, err := io.ReadFull(rd.r, hdr[:])
	if n == 0 && errors.Is(err, io.EOF) {
		return Packet{}, io.EOF
	}
	if err != nil {
		return Packet{}, formatErr("truncated record header: %v", err)
	}
	sec, frac := rd.bo.Uint32(hdr[0:]), rd.bo.Uint32(hdr[4:])
	capLen, origLen := rd.bo.Uint32(hdr[8:]), rd.bo.Uint32(hdr[12:])
	if capLen > MaxRecord {
		return Packet{}, formatErr("record of %d bytes", capLen)
	}
	data, err := rd.fill(int(capLen))
	if err != nil {
		return Packet{}, err
	}
	ns := int64(frac) * 1000
	if rd.nanos {
		ns = int64(frac)
	}
	return Packet{
		Time:     time.Unix(int64(sec), ns).UTC(),
		LinkType: rd.link,
		Data:     data,
		OrigLen:  int(max(origLen, capLen)),
	}, nil
}

// pcapng block types.
const (
	blockSHB = 0x0a0d0d0a
	blockIDB = 0x00000001
	blockSPB = 0x00000003
	blockEPB = 0x00000006
	blockOPB = 0x00000002 // obsolete packet block
)

// readSHB reads the rest of a section header block whose type has just
// been read, and starts a new section.
func (rd *Reader) readSHB() error {
	var lenBOM [8]byte
	if _, err := io.ReadFull(rd.r, lenBOM[:]); err != nil {
		return formatErr("truncated section header: %v", err)
	}
	switch {
	case binary.LittleEndian.Uint32(lenBOM[4:]) == 0x1a2b3c4d:
		rd.bo = binary.LittleEndian
	case binary.BigEndian.Uint32(lenBOM[4:]) == 0x1a2b3c4d:
		rd.bo = binary.BigEndian
	default:
		return formatErr("section header byte-order magic %x", lenBOM[4:])
	}
	total := rd.bo.Uint32(lenBOM[:4])
	if total < 28 || total%4 != 0 || total > MaxRecord {
		return formatErr("section header of %d bytes", total)
	}
	body, err := rd.fill(int(total) - 12)
	if err != nil {
		return err
	}
	if v := rd.bo.Uint16(body[0:]); v != 1 {
		return formatErr("pcapng version %d", v)
	}
	if rd.bo.Uint32(body[len(body)-4:]) != total {
		return formatErr("section header lengths disagree")
	}
	rd.ifaces = rd.ifaces[:0]
	return nil
}

// nextNG returns the next packet of a pcapng stream, reading the blocks in
// between (interfaces, new sections) and skipping unknown ones.
func (rd *Reader) nextNG() (Packet, error) {
	for {
		var hdr [8]byte
		n, err := io.ReadFull(rd.r, hdr[:4])
		if n == 0 && errors.Is(err, io.EOF) {
			return Packet{}, io.EOF
		}
		if err != nil {
			return Packet{}, formatErr("truncated block header: %v", err)
		}
		if binary.LittleEndian.Uint32(hdr[:4]) == blockSHB {
			if err := rd.readSHB(); err != nil {
				return Packet{}, err
			}
			continue
		}
		if _, err := io.ReadFull(rd.r, hdr[4:]); err != nil {
			return Packet{}, formatErr("truncated block header: %v", err)
		}
		typ, total := rd.bo.Uint32(hdr[0:]), rd.bo.Uint32(hdr[4:])
		if total < 12 || total%4 != 0 || total > MaxRecord {
			return Packet{}, formatErr("block 0x%x of %d bytes", typ, total)
		}
		blk, err := rd.fill(int(total) - 8)
		if err != nil {
			return Packet{}, err
		}
		if rd.bo.Uint32(blk[len(blk)-4:]) != total {
			return Packet{}, formatErr("block 0x%x: lengths disagree", typ)
		}
		body := blk[:len(blk)-4]
		switch typ {
		case blockIDB:
			if err := rd.addIface(body); err != nil {
				return Packet{}, err
			}
		case blockEPB, blockOPB:
			return rd.enhanced(typ, body)
		case blockSPB:
			if len(body) < 4 {
				return Packet{}, formatErr("simple packet block of %d bytes", len(body))
			}
			if len(rd.ifaces) == 0 {
				return Packet{}, formatErr("simple packet block before any interface")
			}
			orig := int(rd.bo.Uint32(body))
			data := body[4:]
			if orig < len(data) {
				data = data[:orig]
			}
			return Packet{LinkType: rd.ifaces[0].link, Data: data, OrigLen: orig}, nil
		}
	}
}

// addIface records an interface description block.
func (rd *Reader) addIface(body []byte) error {
	if len(body) < 8 {
		return formatErr("interface block of %d bytes", len(body))
	}
	if len(rd.ifaces) >= 1<<16 {
		return formatErr("more than 65536 interfaces")
	}
	ifc := iface{link: uint32(rd.bo.Uint16(body)), res: tsres{exp: 6}}
	opts := body[8:]
	for len(opts) >= 4 {
		code, l := rd.bo.Uint16(opts), int(rd.bo.Uint16(opts[2:]))
		if code == 0 {
			break
		}
		pad := (l + 3) &^ 3
		if 4+pad > len(opts) {
			return formatErr("interface option %d overruns its block", code)
		}
		if code == 9 && l == 1 { // if_tsresol
			v := opts[4]
			ifc.res = tsres{pow2: v&0x80 != 0, exp: v & 0x7f}
		}
		opts = opts[4+pad:]
	}
	rd.ifaces = append(rd.ifaces, ifc)
	return nil
}

// enhanced decodes an enhanced (or obsolete) packet block.
func (rd *Reader) enhanced(typ uint32, body []byte) (Packet, error) {
	if len(body) < 20 {
		return Packet{}, formatErr("packet block of %d bytes", len(body))
	}
	id := uint32(rd.bo.Uint16(body))
	if typ == blockEPB {
		id = rd.bo.Uint32(body)
	}
	if id >= uint32(len(rd.ifaces)) {
		return Packet{}, formatErr("packet block for interface %d of %d", id, len(rd.ifaces))
	}
	ifc := rd.ifaces[id]
	ts := uint64(rd.bo.Uint32(body[4:]))<<32 | uint64(rd.bo.Uint32(body[8:]))
	capLen, orig := rd.bo.Uint32(body[12:]), rd.bo.Uint32(body[16:])
	if uint64(capLen) > uint64(len(body)-20) {
		return Packet{}, formatErr("packet of %d bytes in a block of %d", capLen, len(body))
	}
	return Packet{
		Time:     ifc.res.time(ts),
		LinkType: ifc.link,
		Data:     body[20 : 20+capLen],
		OrigLen:  int(max(orig, capLen)),
	}, nil
}

// time converts a timestamp in the resolution's units.
func (r tsres) time(ts uint64) time.Time {
	var perSec uint64 = 1
	for i := uint8(0); i < r.exp; i++ {
		next := perSec * 10
		if r.pow2 {
			next = perSec * 2
		}
		if next/perSec == 0 || next > 1e18 {
			break // beyond nanoseconds: keep what fits
		}
		perSec = next
	}
	sec := ts / perSec
	frac := ts % perSec
	ns := frac * 1_000_000_000 / perSec
	if perSec > 1_000_000_000 {
		ns = frac / (perSec / 1_000_000_000)
	}
	if sec > 1<<40 {
		sec = 1 << 40
	}
	return time.Unix(int64(sec), int64(ns)).UTC()
}

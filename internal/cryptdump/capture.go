// Package cryptdump decrypts and verifies tcpcrypt connections in a packet
// capture with the secrets of tcpcryptd's key log: it tracks TCP
// connections, reassembles each direction by sequence number, settles TCP-ENO
// from the SYN and SYN-ACK, parses Init1 and Init2, derives the session keys
// (RFC 8548 §3.3-§3.5) and authenticates every frame (§4.2), following
// rekeys (§3.8) and checking FINp (§3.7). It is the engine of tcpcryptdump.
package cryptdump

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"slices"
	"time"

	"github.com/tcpcryptd/tcpcrypt/eno"
	"github.com/tcpcryptd/tcpcrypt/internal/pcapio"
	"github.com/tcpcryptd/tcpcrypt/packet"
	"github.com/tcpcryptd/tcpcrypt/packet/seq"
)

// Stats counts the packets of a capture that were not TCP segments.
type Stats struct {
	Packets   int // records read
	NotIP     int // link-layer frames without IPv4/IPv6 (ARP...)
	NotTCP    int // IP packets that are not (parseable, unfragmented) TCP
	Truncated int // records cut by the snap length (their bytes count as missing)
}

// Capture collects the TCP connections of a capture. Add packets with Add
// (or a whole file with ReadCapture), then call Analyze.
type Capture struct {
	// Keep makes Add keep every packet, for Rewrite.
	Keep    bool
	kept    []keptPkt
	conns   []*conn
	byTuple map[[2]netip.AddrPort]*conn
	Stats   Stats
}

// NewCapture returns an empty Capture.
func NewCapture() *Capture {
	return &Capture{byTuple: map[[2]netip.AddrPort]*conn{}}
}

// conn is one TCP connection: the half of its active opener (client) and
// of its passive opener (server).
type conn struct {
	client, server half
	first          time.Time
	noHandshake    bool // data before any SYN of this connection
	simOpen        bool // the server sent a SYN without ACK
	synData        bool // a SYN carried payload
}

// half is what one endpoint sent.
type half struct {
	ep       netip.AddrPort
	syn      bool      // its SYN (or SYN-ACK) was captured
	isn      seq.Value // valid when syn
	eno      []byte    // the ENO option of its first SYN, nil if none
	enoCount int
	synDiff  bool // a retransmitted SYN carried other options
	synOpts  []byte

	firstENO bool // its first non-SYN segment carried ENO
	nonSYN   bool // a non-SYN segment was seen
	ackSeen  bool
	maxAck   seq.Value
	segs     []dataSeg
	fin      bool
	finSeq   seq.Value // sequence number of the FIN flag

	// Filled by verification, for Rewrite: the verified frames in stream
	// order and their plaintext, and the stream length seen.
	frames    []frameMap
	plain     []byte
	keyed     bool
	keep      bool
	span      int64
	finDiffer bool
	rst       bool
}

// dataSeg is the payload of one captured segment.
type dataSeg struct {
	seq  seq.Value
	data []byte
}

// ReadCapture adds every packet of a pcap or pcapng stream.
func (c *Capture) ReadCapture(r io.Reader) error {
	rd, err := pcapio.NewReader(r)
	if err != nil {
		return err
	}
	for {
		p, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		c.Stats.Packets++
		if p.OrigLen > len(p.Data) {
			c.Stats.Truncated++
			continue
		}
		ip, ok, err := pcapio.IPPacket(p.LinkType, p.Data)
		if err != nil && errors.Is(err, pcapio.ErrLinkType) {
			return err
		}
		if err != nil || !ok {
			c.Stats.NotIP++
			continue
		}
		c.Add(p.Time, ip)
	}
}

// Add adds one IP packet; anything but an unfragmented TCP segment is
// counted in Stats.NotTCP. ip is copied where needed.
func (c *Capture) Add(t time.Time, ip []byte) {
	var p packet.Packet
	if err := packet.Parse(ip, &p); err != nil {
		c.Stats.NotTCP++
		if c.Keep {
			c.kept = append(c.kept, keptPkt{t: t, ip: slices.Clone(ip)})
		}
		return
	}
	src, dst := p.SrcAddrPort(), p.DstAddrPort()
	key := [2]netip.AddrPort{src, dst}
	if src.Compare(dst) > 0 {
		key = [2]netip.AddrPort{dst, src}
	}
	tcp := p.TCP
	flags := tcp.Flags()
	syn, ack := flags&packet.FlagSYN != 0, flags&packet.FlagACK != 0
	cn := c.byTuple[key]
	if syn && !ack {
		switch {
		case cn == nil:
		case cn.client.ep == src && cn.client.syn && cn.client.isn != tcp.Seq():
			cn = nil // a new connection on the same tuple
		case cn.server.ep == src && !cn.server.syn && !cn.noHandshake && cn.client.syn:
			cn.simOpen = true
		}
	}
	if cn == nil {
		cn = &conn{first: t}
		cn.client.ep, cn.server.ep = src, dst
		if !syn || ack {
			// Mid-connection: guess the SYN-ACK's sender is the server.
			if syn {
				cn.client.ep, cn.server.ep = dst, src
			}
			cn.noHandshake = !syn
		}
		c.byTuple[key] = cn
		c.conns = append(c.conns, cn)
	}
	h := &cn.client
	if src == cn.server.ep {
		h = &cn.server
	}
	if c.Keep {
		c.kept = append(c.kept, keptPkt{t: t, ip: slices.Clone(p.Buf), cn: cn, h: h})
	}
	opts := tcp.Options()
	payload := tcp.Payload()
	if syn {
		if len(payload) > 0 {
			cn.synData = true
		}
		if !h.syn {
			h.syn = true
			h.isn = tcp.Seq()
			raw, n, _ := eno.FindENO(opts)
			h.eno, h.enoCount = slices.Clone(raw), n
			h.synOpts = slices.Clone(opts)
		} else if tcp.Seq() == h.isn && !bytes.Equal(opts, h.synOpts) {
			raw, _, _ := eno.FindENO(opts)
			if !bytes.Equal(raw, h.eno) {
				h.synDiff = true
			}
		}
	} else {
		if !h.nonSYN {
			h.nonSYN = true
			h.firstENO = eno.HasENO(opts)
		}
		if len(payload) > 0 {
			if !h.syn && !cn.noHandshake {
				cn.noHandshake = true
			}
			h.segs = append(h.segs, dataSeg{seq: tcp.Seq(), data: slices.Clone(payload)})
		}
	}
	if ack {
		a := tcp.Ack()
		if !h.ackSeen || h.maxAck.LessThan(a) {
			h.maxAck = a
		}
		h.ackSeen = true
	}
	if flags&packet.FlagFIN != 0 {
		fs := tcp.Seq().Add(seq.Size(len(payload)))
		if syn {
			fs = fs.Add(1)
		}
		if h.fin && fs != h.finSeq {
			h.finDiffer = true
		}
		if !h.fin {
			h.fin, h.finSeq = true, fs
		}
	}
	if flags&packet.FlagRST != 0 {
		h.rst = true
	}
}

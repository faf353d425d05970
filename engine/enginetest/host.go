package enginetest

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

const nicID tcpip.NICID = 1

// Host is one end of a Pair: a gVisor stack with one NIC, its Middle and the
// pumps that move its packets.
type Host struct {
	name   string
	cfg    HostConfig
	addr4  netip.Addr
	addr6  netip.Addr
	stack  *stack.Stack
	ep     *channel.Endpoint
	out    *link // toward the peer
	peer   *Host
	mu     sync.Mutex // serialises calls into cfg.Middle
	stats  hostCounters
	tickIv time.Duration
}

type hostCounters struct {
	outPackets, inPackets, gsoMerged, synOut, badChecksum, injectDrops atomic.Uint64
}

// HostStats counts what happened at one host.
type HostStats struct {
	OutPackets  uint64 // packets read from the stack (after GSO coalescing)
	InPackets   uint64 // packets handed to the Middle (or stack) from the wire
	GSOMerged   uint64 // outbound segments merged into a super-packet
	SYNOut      uint64 // SYN segments (without ACK) sent by the stack
	BadChecksum uint64 // GSOPartialChecksum: modified packets dropped for a bad checksum
	InjectDrops uint64 // toLocal packets that were not IPv4/IPv6 and were dropped
}

func (h *Host) snapshot() HostStats {
	c := &h.stats
	return HostStats{
		OutPackets: c.outPackets.Load(), InPackets: c.inPackets.Load(),
		GSOMerged: c.gsoMerged.Load(), SYNOut: c.synOut.Load(),
		BadChecksum: c.badChecksum.Load(), InjectDrops: c.injectDrops.Load(),
	}
}

// Addr returns the host's IPv4 or IPv6 address.
func (h *Host) Addr(v6 bool) netip.Addr {
	if v6 {
		return h.addr6
	}
	return h.addr4
}

// Stack returns the host's gVisor stack, for tests that need raw endpoints.
func (h *Host) Stack() *stack.Stack { return h.stack }

// String returns "A" or "B".
func (h *Host) String() string { return h.name }

func newHost(name string, cfg HostConfig, mtu uint32, a4, a6 netip.Addr) (*Host, error) {
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol},
	})
	h := &Host{name: name, cfg: cfg, addr4: a4, addr6: a6, stack: s}
	fail := func(what string, err tcpip.Error) (*Host, error) {
		s.Destroy()
		return nil, fmt.Errorf("enginetest: host %s: %s: %s", name, what, err)
	}
	sack := tcpip.TCPSACKEnabled(!cfg.NoSACK)
	if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack); err != nil {
		return fail("enable SACK", err)
	}
	if cfg.RcvBuf > 0 {
		mod := tcpip.TCPModerateReceiveBufferOption(false)
		if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &mod); err != nil {
			return fail("receive buffer moderation", err)
		}
		rb := tcpip.TCPReceiveBufferSizeRangeOption{Min: min(cfg.RcvBuf, 4096), Default: cfg.RcvBuf, Max: cfg.RcvBuf}
		if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &rb); err != nil {
			return fail("receive buffer size", err)
		}
	}
	if cfg.MinRTO > 0 {
		rto := tcpip.TCPMinRTOOption(cfg.MinRTO)
		if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &rto); err != nil {
			return fail("minimum RTO", err)
		}
	}
	if cfg.SndBuf > 0 {
		sb := tcpip.TCPSendBufferSizeRangeOption{Min: min(cfg.SndBuf, 4096), Default: cfg.SndBuf, Max: cfg.SndBuf}
		if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &sb); err != nil {
			return fail("send buffer size", err)
		}
	}
	h.ep = channel.New(defaultQueueLen, mtu, "")
	if err := s.CreateNIC(nicID, h.ep); err != nil {
		return fail("create NIC", err)
	}
	for _, a := range []struct {
		proto  tcpip.NetworkProtocolNumber
		addr   netip.Addr
		prefix int
	}{{ipv4.ProtocolNumber, a4, 24}, {ipv6.ProtocolNumber, a6, 64}} {
		pa := tcpip.ProtocolAddress{
			Protocol:          a.proto,
			AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFromSlice(a.addr.AsSlice()), PrefixLen: a.prefix},
		}
		if err := s.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); err != nil {
			return fail("add address "+a.addr.String(), err)
		}
	}
	s.SetRouteTable([]tcpip.Route{
		{Destination: header.IPv4EmptySubnet, NIC: nicID},
		{Destination: header.IPv6EmptySubnet, NIC: nicID},
	})
	return h, nil
}

// readOut converts one outbound PacketBuffer to a fresh byte slice and
// releases it.
func readOut(pb *stack.PacketBuffer) []byte {
	b := make([]byte, 0, pb.Size())
	for _, v := range pb.AsSlices() {
		b = append(b, v...)
	}
	pb.DecRef()
	return b
}

// pumpOut moves packets from the stack through GSO coalescing and the
// Middle onto the wire until ctx ends.
func (h *Host) pumpOut(ctx context.Context) {
	batch := make([][]byte, 0, defaultGSOBatch)
	for {
		pb := h.ep.ReadContext(ctx)
		if pb == nil {
			return
		}
		batch = append(batch[:0], readOut(pb))
		for len(batch) < cap(batch) {
			pb := h.ep.Read()
			if pb == nil {
				break
			}
			batch = append(batch, readOut(pb))
		}
		if h.cfg.GSO {
			var n int
			batch, n = coalesceRun(batch, h.cfg.GSOMax, func() bool { return true })
			h.stats.gsoMerged.Add(uint64(n))
		}
		for i, p := range batch {
			batch[i] = nil
			h.stats.outPackets.Add(1)
			if s, ok := parseSeg(p); ok && s.flags()&(header.TCPFlagSyn|header.TCPFlagAck) == header.TCPFlagSyn {
				h.stats.synOut.Add(1)
			}
			h.outbound(p)
		}
	}
}

// outbound runs one packet from the stack through the Middle.
func (h *Host) outbound(p []byte) {
	if !h.cfg.GSOPartialChecksum {
		h.process(Outbound, p)
		return
	}
	s, ok := parseSeg(p)
	if !ok {
		h.process(Outbound, p)
		return
	}
	s.setPartialChecksum()
	orig := bytes.Clone(s.b)
	toWire, toLocal := h.call(Outbound, p)
	for i, w := range toWire {
		ws, ok := parseSeg(w)
		switch {
		case !ok:
		case bytes.Equal(ws.b, orig):
			ws.fixLengthsAndChecksums() // the kernel completes an unmodified packet
		case !ws.checksumsOK():
			h.stats.badChecksum.Add(1)
			toWire[i] = nil
		}
	}
	h.dispatch(toWire, toLocal)
}

// call runs the Middle (or pass-through) on one packet.
func (h *Host) call(dir Dir, p []byte) (toWire, toLocal [][]byte) {
	if h.cfg.Middle == nil {
		return PassThrough{}.Process(dir, p, time.Time{})
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cfg.Middle.Process(dir, p, time.Now())
}

// process runs one packet through the Middle and dispatches the results.
func (h *Host) process(dir Dir, p []byte) {
	toWire, toLocal := h.call(dir, p)
	h.dispatch(toWire, toLocal)
}

// dispatch sends toWire packets onto the link toward the peer and injects
// toLocal packets into this host's stack. nil entries are skipped.
func (h *Host) dispatch(toWire, toLocal [][]byte) {
	for _, p := range toWire {
		if p != nil {
			h.out.send(p)
		}
	}
	for _, p := range toLocal {
		if p != nil {
			h.inject(p)
		}
	}
}

// inject delivers one IP packet to the host's stack.
func (h *Host) inject(p []byte) {
	var proto tcpip.NetworkProtocolNumber
	switch {
	case len(p) > 0 && p[0]>>4 == 4:
		proto = ipv4.ProtocolNumber
	case len(p) > 0 && p[0]>>4 == 6:
		proto = ipv6.ProtocolNumber
	default:
		h.stats.injectDrops.Add(1)
		return
	}
	pb := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(p)})
	h.ep.InjectInbound(proto, pb)
	pb.DecRef()
}

// tickLoop calls the Middle's Tick every tick interval, or sooner when it
// reports an earlier deadline, until ctx ends.
func (h *Host) tickLoop(ctx context.Context) {
	t := time.NewTimer(h.tickIv)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h.mu.Lock()
		toWire, toLocal := h.cfg.Middle.Tick(time.Now())
		var next time.Time
		if d, ok := h.cfg.Middle.(Deadliner); ok {
			next = d.NextDeadline()
		}
		h.mu.Unlock()
		h.dispatch(toWire, toLocal)
		wait := h.tickIv
		if !next.IsZero() {
			wait = min(wait, max(time.Until(next), 0))
		}
		t.Reset(wait)
	}
}

// WithMiddle runs f with the host's Middle (nil for a host without one)
// while holding the lock that serialises calls into it, so a test can read
// or change the engine's state without racing the pumps.
func (h *Host) WithMiddle(f func(Middle)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f(h.cfg.Middle)
}

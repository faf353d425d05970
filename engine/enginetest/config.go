package enginetest

import "time"

// Default values applied by New for zero Config fields.
const (
	DefaultMTU          = 65535
	DefaultTickInterval = 2 * time.Millisecond
	DefaultSeed         = 1
	defaultQueueLen     = 8192 // packets buffered per channel endpoint
	defaultReorderK     = 3
	defaultReorderHold  = 5 * time.Millisecond
	defaultSplitMax     = 4
	defaultGSOBatch     = 64 // packets read at once when building super-packets
)

// Config describes a Pair. The zero value is a clean 65535-MTU wire between
// two hosts without engines.
type Config struct {
	// MTU of both hosts' links; 0 means DefaultMTU (65535, so single segments
	// up to ~64 KiB). Use 1500 for Ethernet-sized segments.
	MTU uint32
	// Seed seeds every random choice of the link (each direction derives its
	// own generator from it); 0 means DefaultSeed.
	Seed uint64
	// A and B configure the two hosts (A is 10.0.0.1 / fd00::1, B is
	// 10.0.0.2 / fd00::2).
	A, B HostConfig
	// AToB and BToA impair the two directions of the wire.
	AToB, BToA Impairment
	// OnWire, if set, sees every packet on the wire after impairment, just
	// before the receiving host's Middle. It may return pkt (possibly modified
	// in place), a different packet, or nil to drop it. Packets it returns are
	// delivered as they are: call FixChecksums after tampering unless a bad
	// checksum is the point. It runs on the link's goroutine, one call at a
	// time per direction, and must not block.
	OnWire func(dir WireDir, pkt []byte) []byte
	// CaptureLimit is how many of the most recent wire packets (after OnWire)
	// the Pair keeps for Capture; 0 keeps none.
	CaptureLimit int
	// CaptureSnap truncates each captured packet to this many bytes; 0 keeps
	// whole packets.
	CaptureSnap int
	// TickInterval is the period of Middle.Tick calls; 0 means
	// DefaultTickInterval.
	TickInterval time.Duration
}

// HostConfig configures one host.
type HostConfig struct {
	// Middle sits between the host's stack and the wire; nil means a host
	// without an engine (packets pass untouched, no Tick calls).
	Middle Middle
	// RcvBuf, if non-zero, fixes the TCP receive buffer (and so the advertised
	// window) of every connection on this host, with buffer auto-tuning off.
	// gVisor may enforce its own minimum.
	RcvBuf int
	// SndBuf, if non-zero, fixes the TCP send buffer size.
	SndBuf int
	// MinRTO, if non-zero, overrides gVisor's minimum TCP retransmission
	// timeout (200 ms), so that loss-heavy scenarios finish quickly.
	MinRTO time.Duration
	// NoSACK disables SACK on this host (it is enabled by default).
	NoSACK bool
	// GSO coalesces consecutive outbound data segments of a flow into
	// super-packets of up to GSOMax bytes before the Middle sees them, as the
	// kernel hands packets to NFQUEUE with NFQA_CFG_F_GSO.
	GSO bool
	// GSOMax bounds a super-packet's IP length; 0 or > 65535 means 65535.
	GSOMax int
	// GSOPartialChecksum makes every outbound TCP packet carry only the
	// pseudo-header sum in its checksum field (Linux CHECKSUM_PARTIAL), as
	// with GSO on a real queue. A packet the Middle returns toWire
	// byte-identical to its input gets its checksum completed (the kernel's
	// job on an unmodified verdict); any other packet must carry a full,
	// correct checksum or is dropped and counted in HostStats.BadChecksum.
	// Requires GSO.
	GSOPartialChecksum bool
}

// Impairment describes what one direction of the wire does to packets. All
// random choices come from a generator seeded from Config.Seed. Percentages
// are 0..100.
type Impairment struct {
	// LossPct drops packets.
	LossPct float64
	// DupPct sends a packet twice.
	DupPct float64
	// ReorderPct holds a packet back and releases it after 1..ReorderK later
	// packets have passed, or after ReorderHold, whichever comes first.
	ReorderPct float64
	// ReorderK bounds the reordering distance in packets; 0 means 3.
	ReorderK int
	// ReorderHold bounds how long a packet is held; 0 means 5 ms.
	ReorderHold time.Duration
	// Delay is added to every packet, plus a uniform random [0, Jitter).
	// Jitter reorders packets too.
	Delay, Jitter time.Duration
	// SplitPct cuts a TCP data segment into 2..SplitMax pieces at random
	// byte boundaries (seq, flags, lengths and checksums fixed).
	SplitPct float64
	// SplitMax bounds the pieces per split; 0 means 4.
	SplitMax int
	// CoalescePct joins a TCP data segment to the previous queued segment of
	// the same flow when it continues it in order, up to CoalesceMax bytes of
	// IP packet (0 means 65535). Only packets queued on the link together
	// are joined: coalescing never delays a packet.
	CoalescePct float64
	// CoalesceMax bounds a joined packet's IP length.
	CoalesceMax int
}

func (c *Config) withDefaults() Config {
	d := *c
	if d.MTU == 0 {
		d.MTU = DefaultMTU
	}
	if d.Seed == 0 {
		d.Seed = DefaultSeed
	}
	if d.TickInterval <= 0 {
		d.TickInterval = DefaultTickInterval
	}
	for _, h := range []*HostConfig{&d.A, &d.B} {
		if h.GSOMax <= 0 || h.GSOMax > maxIPPacket {
			h.GSOMax = maxIPPacket
		}
	}
	for _, im := range []*Impairment{&d.AToB, &d.BToA} {
		if im.ReorderK <= 0 {
			im.ReorderK = defaultReorderK
		}
		if im.ReorderHold <= 0 {
			im.ReorderHold = defaultReorderHold
		}
		if im.SplitMax < 2 {
			im.SplitMax = defaultSplitMax
		}
		if im.CoalesceMax <= 0 || im.CoalesceMax > maxIPPacket {
			im.CoalesceMax = maxIPPacket
		}
	}
	return d
}

package enginetest

import "time"

// Dir is the direction of a packet relative to the host whose Middle sees it.
type Dir uint8

const (
	// Outbound packets travel from the host's stack toward the wire.
	Outbound Dir = iota
	// Inbound packets travel from the wire toward the host's stack.
	Inbound
)

// String returns "outbound" or "inbound".
func (d Dir) String() string {
	switch d {
	case Outbound:
		return "outbound"
	case Inbound:
		return "inbound"
	}
	return "dir(?)"
}

// Middle is the hook on one host between its TCP stack and the wire: the seat
// of the packet-rewriting engine. The harness serialises every call into one
// host's Middle (a per-host mutex), so an implementation need not be safe for
// concurrent use. Distinct hosts' Middles are called concurrently.
type Middle interface {
	// Process takes ownership of pkt (one whole IPv4 or IPv6 packet) and returns
	// the packets to put on the wire toward the peer and the packets to deliver
	// to this host's stack. The harness takes ownership of the returned slices;
	// they may alias pkt.
	Process(dir Dir, pkt []byte, now time.Time) (toWire, toLocal [][]byte)
	// Tick runs timers. It is called at least every Config.TickInterval and,
	// when the Middle also implements Deadliner, soon after NextDeadline.
	Tick(now time.Time) (toWire, toLocal [][]byte)
}

// Deadliner is optionally implemented by a Middle that wants Tick called at a
// precise time. NextDeadline is called after every Tick (under the same lock);
// the zero time means "no deadline" (the regular tick interval still applies).
type Deadliner interface {
	NextDeadline() time.Time
}

// PassThrough is a Middle that forwards every packet unchanged: outbound
// packets to the wire, inbound packets to the local stack.
type PassThrough struct{}

// Process forwards pkt in its direction of travel.
func (PassThrough) Process(dir Dir, pkt []byte, _ time.Time) (toWire, toLocal [][]byte) {
	if dir == Outbound {
		return [][]byte{pkt}, nil
	}
	return nil, [][]byte{pkt}
}

// Tick does nothing.
func (PassThrough) Tick(time.Time) (toWire, toLocal [][]byte) { return nil, nil }

package nfq

import "sync/atomic"

// counter names one packet-path counter.
type counter uint8

const (
	cPacketsOut counter = iota
	cPacketsIn
	cAccepted
	cReplaced
	cDropped
	cHeld
	cReleased
	cShutdownDrops
	cInjectedToPeer
	cInjectedToLocal
	cInjectErrors
	cVerdictErrors
	cENOBUFS
	cRecvErrors
	cNonTCP
	cUnknownHook
	cParseErrors
	cTruncated
	cNoPacketID
	cBadMessages
	cEngineBugs
	cOversized
	cTicks
	cProtected
	cGuardErrors
	cUnprotectErrors
	cPanics
	numCounters
)

// counters is one shard's block of counters. Each shard has its own, so the
// hot path never shares a cache line with another shard's writes; Stats sums
// them.
type counters struct {
	c       [numCounters]atomic.Uint64
	heldNow atomic.Int64
	lat     latency  // verdict latency
	_       [64]byte // keep neighbouring blocks off this one's cache lines
}

func (c *counters) inc(i counter)        { c.c[i].Add(1) }
func (c *counters) get(i counter) uint64 { return c.c[i].Load() }

// Stats is a snapshot of a Dispatcher's counters. Counters only grow, except
// HeldNow. Verdict counters (Accepted, Replaced, Dropped) count verdicts
// written to the kernel, immediate and late (released) alike.
type Stats struct {
	PacketsOut uint64 `json:"packets_out"` // segments read at LOCAL_OUT
	PacketsIn  uint64 `json:"packets_in"`  // segments read at LOCAL_IN

	Accepted uint64 `json:"accepted"` // NF_ACCEPT unchanged
	Replaced uint64 `json:"replaced"` // NF_ACCEPT with new packet bytes
	Dropped  uint64 `json:"dropped"`  // NF_DROP on the engine's word (shutdown drops excluded)
	Held     uint64 `json:"held"`     // segments the engine held
	Released uint64 `json:"released"` // held segments settled by a late verdict
	HeldNow  int64  `json:"held_now"` // segments held right now
	// ShutdownDrops counts segments dropped because Run ended while the
	// engine held them.
	ShutdownDrops uint64 `json:"shutdown_drops"`

	InjectedToPeer  uint64 `json:"injected_to_peer"`
	InjectedToLocal uint64 `json:"injected_to_local"`
	InjectErrors    uint64 `json:"inject_errors"`  // raw-socket sends that failed
	VerdictErrors   uint64 `json:"verdict_errors"` // verdicts the queue refused to send

	ENOBUFS    uint64 `json:"enobufs"`     // kernel messages lost to a full socket buffer
	RecvErrors uint64 `json:"recv_errors"` // other receive errors (e.g. a verdict for an unknown id)

	NonTCP      uint64 `json:"non_tcp"`      // accepted unchanged: not TCP
	UnknownHook uint64 `json:"unknown_hook"` // accepted unchanged: neither LOCAL_OUT nor LOCAL_IN
	ParseErrors uint64 `json:"parse_errors"` // TCP packets without a readable flow key
	Truncated   uint64 `json:"truncated"`    // packets the kernel copied only in part
	NoPacketID  uint64 `json:"no_packet_id"` // messages without a packet id (no verdict possible)
	// BadMessages counts netlink messages that do not parse or are of a
	// type a queue does not send; they are skipped (no verdict possible).
	BadMessages uint64 `json:"bad_messages"`
	// EngineBugs counts results that break the engine contract: an unknown
	// or duplicate token, Replace without a packet, an unknown verdict.
	// Each is resolved safely (drop) and counted.
	EngineBugs uint64 `json:"engine_bugs"`
	// Oversized counts replacements longer than engine.MaxPacket: a verdict
	// cannot carry them (the netlink length would wrap and the kernel would
	// drop the verdict silently), so the segment is dropped instead.
	Oversized uint64 `json:"oversized"`
	Ticks     uint64 `json:"ticks"` // Engine.Tick calls

	// Protected counts flows handed to the Guard; GuardErrors those it
	// could not protect (each such flow is aborted, its segment dropped);
	// UnprotectErrors releases that failed (the flow stays queued until
	// the table is replaced: safe, only untidy).
	Protected       uint64 `json:"protected"`
	GuardErrors     uint64 `json:"guard_errors"`
	UnprotectErrors uint64 `json:"unprotect_errors"`
	// Panics counts engine calls that panicked; each is recovered, its
	// segment dropped and its flow aborted (see the package documentation).
	Panics uint64 `json:"panics"`

	// VerdictLatency is the time from the reader receiving a segment that
	// goes to an engine to its verdict being written: immediate verdicts,
	// late verdicts of held segments (measured to the late verdict) and
	// the drop that settles a segment whose token the engine reused.
	// Segments that never reach an engine (NonTCP, UnknownHook) and
	// shutdown drops are not recorded, so Count is Accepted + Replaced +
	// Dropped less the NonTCP and UnknownHook segments the readers accepted.
	// It is left out of the JSON form, which holds only numbers.
	VerdictLatency Histogram `json:"-"`
}

// sum adds block c into s.
func (s *Stats) sum(c *counters) {
	s.PacketsOut += c.get(cPacketsOut)
	s.PacketsIn += c.get(cPacketsIn)
	s.Accepted += c.get(cAccepted)
	s.Replaced += c.get(cReplaced)
	s.Dropped += c.get(cDropped)
	s.Held += c.get(cHeld)
	s.Released += c.get(cReleased)
	s.HeldNow += c.heldNow.Load()
	s.ShutdownDrops += c.get(cShutdownDrops)
	s.InjectedToPeer += c.get(cInjectedToPeer)
	s.InjectedToLocal += c.get(cInjectedToLocal)
	s.InjectErrors += c.get(cInjectErrors)
	s.VerdictErrors += c.get(cVerdictErrors)
	s.ENOBUFS += c.get(cENOBUFS)
	s.RecvErrors += c.get(cRecvErrors)
	s.NonTCP += c.get(cNonTCP)
	s.UnknownHook += c.get(cUnknownHook)
	s.ParseErrors += c.get(cParseErrors)
	s.Truncated += c.get(cTruncated)
	s.NoPacketID += c.get(cNoPacketID)
	s.BadMessages += c.get(cBadMessages)
	s.EngineBugs += c.get(cEngineBugs)
	s.Oversized += c.get(cOversized)
	s.Ticks += c.get(cTicks)
	s.Protected += c.get(cProtected)
	s.GuardErrors += c.get(cGuardErrors)
	s.UnprotectErrors += c.get(cUnprotectErrors)
	s.Panics += c.get(cPanics)
	s.VerdictLatency.add(&c.lat)
}

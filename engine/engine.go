// Package engine is the packet-rewriting heart of tcpcryptd: it makes two
// unmodified TCP stacks speak TCP-ENO (RFC 8547) and tcpcrypt (RFC 8548) by
// rewriting the segments they exchange.
//
// The caller (the nfq package, or a test harness) hands every TCP segment of
// the covered ports to Process, tagged with its direction: Outbound for a
// segment the local stack sent (OUTPUT hook), Inbound for one on its way to
// the local stack (INPUT hook). Process returns a verdict for that segment
// and any packets to inject; Tick drives timers. docs/engine-design.md
// describes the mechanisms; DESIGN.md lists the invariants kept here.
//
// The engine is pure and deterministic: no syscalls, no goroutines, no
// global state, no logging. Its clock and randomness come from Config. It
// is not safe for concurrent use: shard flows across engines or lock.
// Problems on the packet path are counted (Counters), never logged, and no
// packet content can make it panic.
package engine

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/tcpcryptd/tcpcrypt/crypto"
	"github.com/tcpcryptd/tcpcrypt/eno"
	"github.com/tcpcryptd/tcpcrypt/packet"
)

// Dir is the direction of a segment relative to the local stack.
type Dir uint8

const (
	// Outbound segments come from the local stack (OUTPUT hook).
	Outbound Dir = iota
	// Inbound segments are on their way to the local stack (INPUT hook).
	Inbound
)

func (d Dir) String() string {
	if d == Outbound {
		return "outbound"
	}
	return "inbound"
}

// Verdict says what to do with the segment handed to Process.
type Verdict uint8

const (
	// Accept lets the segment continue unchanged.
	Accept Verdict = iota
	// Replace lets Result.Packet continue in its place.
	Replace
	// Drop discards the segment.
	Drop
	// Hold keeps the segment queued: the caller keeps it under
	// Result.Token until a later Result lists it in Released.
	Hold
)

func (v Verdict) String() string {
	switch v {
	case Accept:
		return "accept"
	case Replace:
		return "replace"
	case Drop:
		return "drop"
	case Hold:
		return "hold"
	}
	return fmt.Sprintf("verdict(%d)", uint8(v))
}

// Token names a held segment.
type Token uint64

// Release settles a segment held earlier: Verdict is Accept, Replace (with
// Packet) or Drop.
type Release struct {
	Token   Token
	Verdict Verdict
	Packet  []byte
}

// Result is the outcome of Process or Tick.
//
// Ownership: every packet in a Result (Packet, each of ToPeer and ToLocal,
// Released[i].Packet) is the caller's, and the engine never reads or writes
// it again, until the caller hands it back with Engine.Recycle. The slices
// ToPeer and ToLocal themselves (the arrays of packets, not the packets) are
// the engine's: they are valid until the next call of Process, Tick,
// AbortFlow or ForgetClosed on the same engine, which reuses them; a caller
// that keeps the list longer copies it. Released, Protect and Unprotect are
// the caller's.
type Result struct {
	Verdict Verdict // for the segment given to Process; unused by Tick
	Packet  []byte  // Replace: the new packet
	Token   Token   // Hold: the token the segment is kept under
	// ToPeer are packets to send toward the wire (marked, so the queue
	// rules skip them).
	ToPeer [][]byte
	// ToLocal are packets to hand to the local stack (marked).
	ToLocal [][]byte
	// Released settles segments held earlier, in the order they were held.
	Released []Release
	// Protect lists flows that became protected: from now on the caller
	// must keep every packet of theirs queued to the engine, never passed
	// by fail-open or a rule change (DESIGN.md invariant 11). The caller
	// must install that protection before it carries out anything else
	// in this Result, since the verdicts and injections here may be the
	// flow's first encrypted bytes.
	Protect []Flow
	// Unprotect lists protected flows the engine has forgotten; the caller
	// may drop their protection after carrying out the rest of the Result.
	Unprotect []Flow
}

// Flow names one connection by its endpoints, the local one first.
type Flow struct {
	Local, Remote netip.AddrPort
}

func (f Flow) String() string { return f.Local.String() + " <-> " + f.Remote.String() }

// Mode is the policy for one connection.
type Mode uint8

const (
	// Exclude leaves the connection alone: no ENO, plain TCP.
	Exclude Mode = iota
	// Opportunistic tries tcpcrypt and falls back to plain TCP.
	Opportunistic
	// Required tries tcpcrypt and aborts the connection if it fails.
	Required
)

func (m Mode) String() string {
	switch m {
	case Exclude:
		return "exclude"
	case Opportunistic:
		return "opportunistic"
	case Required:
		return "required"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// Config configures an Engine. The zero value of every field except
// Policy selects a documented default.
type Config struct {
	// Now is the clock (default time.Now). Tick's argument should come
	// from the same clock.
	Now func() time.Time
	// Rand supplies nonces and private keys (default crypto/rand.Reader).
	Rand io.Reader
	// Policy chooses the mode of a new connection from its endpoints
	// (nil: Opportunistic for every connection).
	Policy func(local, remote netip.AddrPort) Mode
	// Decide, when set, replaces Policy: it chooses the mode of a new
	// connection and the per-connection controls it gets (see Options).
	Decide func(local, remote netip.AddrPort) Decision

	// TEPs lists the key-agreement TEPs, most preferred first (default
	// X25519, P-256).
	TEPs []uint8
	// AEADs lists the AEADs in preference order: what A offers in Init1
	// and how B chooses (default AES-128-GCM, ChaCha20-Poly1305,
	// AES-256-GCM).
	AEADs []crypto.AEADID
	// AppAware sets the ENO a bit; MandatoryAppAware requires the peer's
	// (RFC 8547 §4.2). SimOpenB sets b=1 on active opens, for simultaneous
	// open arranged with the peer (§4.3).
	AppAware, MandatoryAppAware, SimOpenB bool

	// Cache enables session resumption (RFC 8548 §3.5) when non-nil.
	Cache *crypto.Cache
	// ResumeNonceLen is the resumption nonce length, 0..8 (default 8;
	// -1 means 0).
	ResumeNonceLen int

	// RekeyBytes starts a rekey after this many plaintext bytes were
	// sent under one generation (0: never).
	RekeyBytes uint64
	// RekeyInterval starts a rekey when a generation is this old and
	// more data is sent (0: never).
	RekeyInterval time.Duration
	// LivenessInterval probes an established encrypted flow that saw no
	// packet for this long with a rekey and an empty frame, which the
	// peer must answer (RFC 8548 §3.9; see liveness.go). 0: never.
	LivenessInterval time.Duration

	// MaxFlows bounds the flow table (default 65536).
	MaxFlows int
	// MaxFlowBuffer bounds the wire bytes one flow buffers for
	// reassembly, and separately the plaintext it keeps until the local
	// stack acknowledges it; unacknowledged sent frames are bounded by
	// four times it (default 4 MiB; at least 128 KiB).
	MaxFlowBuffer int
	// MaxHeldPerFlow and MaxHeldTotal bound the bytes of segments held
	// while keys are missing (defaults 256 KiB and 64 MiB).
	MaxHeldPerFlow, MaxHeldTotal int
	// HoldTimeout is how long a segment may stay held before it is
	// dropped for TCP to retransmit (default 2 s).
	HoldTimeout time.Duration
	// HalfOpenTimeout expires flows whose handshake did not finish
	// (default 30 s). IdleTimeout aborts and forgets established flows
	// that saw no packet for that long (default 2 h). CloseTimeout is how
	// long a closed or reset flow lingers to translate stragglers
	// (default 30 s).
	HalfOpenTimeout, IdleTimeout, CloseTimeout time.Duration
	// InitRTO is the first retransmission timeout of engine-made
	// segments (Init messages, rekey frames); it doubles up to 8 s
	// (default 300 ms).
	InitRTO time.Duration
	// MaxRetransmits is how many times in a row the engine resends its own
	// unacknowledged bytes (Init message, rekey frames) before it gives up
	// and aborts the connection (default 20: about 2 minutes at the 8 s
	// ceiling). Any acknowledgment of them starts the count again.
	MaxRetransmits int

	// Budget is the memory budget for stream buffers, shared by every
	// engine given the same one (nil: a budget of DefaultMemoryLimit for
	// this engine alone). See Budget.
	Budget *Budget

	// Events, when set, is called for every connection-level event
	// (encrypted, fell back, aborted), synchronously from Process or Tick.
	// It is how the daemon logs, with the reason, each connection that falls
	// back or aborts, without the engine logging anything itself. It must not
	// block and must not call back into the engine.
	Events func(Event)
	// KeyLog, when set, receives the secrets of every connection, for
	// decrypting captures in a debugger (the debug mode RFC 8547 §5 allows):
	// KeyLogES with N_A and ES after each fresh key exchange, KeyLogSS with
	// the session id and ss once keys are installed. Off unless the operator
	// asks for it; the arguments are only valid during the call.
	KeyLog func(kind KeyLogKind, a, b []byte)
}

// MaxPacket is the largest packet the engine emits, in any Result: an
// NFQUEUE verdict carries the replacement in one netlink attribute whose
// 16-bit length includes its 4-byte header, so 65531 bytes is the most it can
// carry. Callers must refuse anything longer rather than pass it on.
const MaxPacket = 65531

// Defaults.
const (
	defaultMaxFlows    = 65536
	defaultFlowBuffer  = 4 << 20
	minFlowBuffer      = 128 << 10
	defaultHeldPerFlow = 256 << 10
	defaultHeldTotal   = 64 << 20
	defaultHoldTimeout = 2 * time.Second
	defaultHalfOpen    = 30 * time.Second
	defaultIdle        = 2 * time.Hour
	defaultClose       = 30 * time.Second
	defaultInitRTO     = 300 * time.Millisecond
	maxRTO             = 8 * time.Second
	defaultResumeNonce = 8
	maxInitLen         = 4096 // bound on a peer's Init message (message_len)
	defaultChunk       = 1400 // frame data size before the peer's MSS is known
	// maxPacket bounds every packet the engine emits (Replace, ToPeer,
	// ToLocal). A Replace goes back to the kernel as the payload attribute of
	// an NFQUEUE verdict, and a netlink attribute's 16-bit length counts its
	// own 4-byte header: 65531 bytes is the most a verdict can carry. A longer
	// packet wraps the length, the kernel rejects the verdict, and the segment
	// vanishes without an error (it stays queued, unanswered). gVisor-based
	// tests never saw this; on Linux every 64 KiB delivery to the local stack
	// was lost, and with it the connection's progress (e2e TestE2EChaos).
	// Injected packets obey the same bound for simplicity.
	maxPacket            = MaxPacket
	engineRSTBudget      = 8 // RSTs a dead flow sends in answer to stragglers
	redeliverMinInterval = 50 * time.Millisecond
	sendBufferFactor     = 4 // unacknowledged frames kept per flow: this many MaxFlowBuffer
	defaultMaxRetransmit = 20
	// maxEngineFrames bounds the empty frames the engine made itself
	// (answers to the peer's rekeys, RFC 8548 §3.8) that one flow keeps
	// unacknowledged. Every rekey must be answered by a frame of its own,
	// so past the bound the flow is aborted (rekey_flood): an honest peer
	// rekeys at most a few times per round trip.
	maxEngineFrames = 64
	// maxRecvFrames bounds the records of delivered frames one flow keeps
	// until the local stack acknowledges them; past it, new frames merge
	// into the last record (the wire ack then advances in larger steps).
	maxRecvFrames = 1024
)

// ErrConfig matches errors New returns for an unusable Config.
var ErrConfig = errors.New("engine: bad config")

func (c *Config) setDefaults() error {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if len(c.TEPs) == 0 {
		c.TEPs = []uint8{crypto.TEPX25519, crypto.TEPP256}
	}
	for _, t := range c.TEPs {
		if !crypto.SupportedTEP(t) {
			return fmt.Errorf("%w: TEP %#x not supported", ErrConfig, t)
		}
	}
	if err := (&eno.Config{TEPs: c.TEPs}).Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if len(c.AEADs) == 0 {
		c.AEADs = []crypto.AEADID{crypto.AES128GCM, crypto.ChaCha20Poly1305, crypto.AES256GCM}
	}
	if len(c.AEADs) > 255 {
		return fmt.Errorf("%w: more than 255 AEADs", ErrConfig)
	}
	for _, a := range c.AEADs {
		if !a.Supported() {
			return fmt.Errorf("%w: AEAD %v not supported", ErrConfig, a)
		}
	}
	switch {
	case c.ResumeNonceLen == 0:
		c.ResumeNonceLen = defaultResumeNonce
	case c.ResumeNonceLen < 0:
		c.ResumeNonceLen = 0
	case c.ResumeNonceLen > crypto.MaxResumeNonceLen:
		return fmt.Errorf("%w: resumption nonce over %d bytes", ErrConfig, crypto.MaxResumeNonceLen)
	}
	setInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	setInt(&c.MaxFlows, defaultMaxFlows)
	setInt(&c.MaxFlowBuffer, defaultFlowBuffer)
	c.MaxFlowBuffer = max(c.MaxFlowBuffer, minFlowBuffer)
	setInt(&c.MaxHeldPerFlow, defaultHeldPerFlow)
	setInt(&c.MaxHeldTotal, defaultHeldTotal)
	setDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	setDur(&c.HoldTimeout, defaultHoldTimeout)
	setDur(&c.HalfOpenTimeout, defaultHalfOpen)
	setDur(&c.IdleTimeout, defaultIdle)
	setDur(&c.CloseTimeout, defaultClose)
	setDur(&c.InitRTO, defaultInitRTO)
	setInt(&c.MaxRetransmits, defaultMaxRetransmit)
	if c.Budget == nil {
		c.Budget = NewBudget(DefaultMemoryLimit)
	}
	return nil
}

// Engine rewrites the segments of the connections it tracks. Create it with
// New; it is not safe for concurrent use.
type Engine struct {
	cfg    Config
	enoCfg eno.Config

	tab  table
	ctr  Counters
	out  Result
	next Token // last token handed out

	heldTotal int
	mem       int64   // bytes this engine's flows charge to cfg.Budget
	pool      bufPool // free stream buffers, shared by this engine's flows
	pkts      pktPool // free packet buffers (Recycle)
	// parsed is the segment Process is working on (it refers to the
	// caller's packet until the next call).
	parsed packet.Packet
	// handed is how many ToPeer and ToLocal entries the last Result
	// handed out in the arrays e.out reuses (begin clears them).
	handed [2]int
	// scratch takes the plaintext of frames with little data (openOne).
	scratch [64]byte
}

// New returns an Engine for cfg (a copy is kept; defaults are filled in).
func New(cfg Config) (*Engine, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg}
	e.enoCfg = eno.Config{
		TEPs:              append([]uint8(nil), cfg.TEPs...),
		AppAware:          cfg.AppAware,
		MandatoryAppAware: cfg.MandatoryAppAware,
		SimOpenB:          cfg.SimOpenB,
	}
	e.tab.init(cfg.MaxFlows)
	return e, nil
}

// Counters returns a copy of the engine's counters.
func (e *Engine) Counters() Counters {
	c := e.ctr
	for _, f := range e.tab.flows {
		f.addTraffic(&c)
	}
	return c
}

// addTraffic adds f's frame and byte counts to c. Counters holds those of
// flows already forgotten; live flows are added when asked.
func (f *flow) addTraffic(c *Counters) {
	c.FramesOut += f.snd.frameCount
	c.FramesIn += f.rcv.frameCount
	c.BytesOut += f.snd.bytesOut
	c.BytesIn += f.rcv.bytesIn
}

// NumFlows returns how many flows the engine tracks.
func (e *Engine) NumFlows() int { return len(e.tab.flows) }

// HeldBytes returns the bytes of segments currently held.
func (e *Engine) HeldBytes() int { return e.heldTotal }

// BufferedBytes returns the bytes all flows keep in their stream buffers
// (frames awaiting acknowledgment, reassembly, plaintext for re-delivery).
func (e *Engine) BufferedBytes() int {
	n := 0
	for _, f := range e.tab.flows {
		n += f.buffered()
	}
	return n
}

// finish hands the accumulated result to the caller.
func (e *Engine) finish() Result {
	r := e.finishTick()
	switch r.Verdict {
	case Accept:
		e.ctr.Accepted++
	case Replace:
		e.ctr.Replaced++
	case Drop:
		e.ctr.Dropped++
	case Hold:
		e.ctr.Held++
	}
	return r
}

// finishTick hands over the result of a Tick (no verdict to count).
func (e *Engine) finishTick() Result {
	r := e.out
	e.out = Result{ToPeer: reuse(r.ToPeer), ToLocal: reuse(r.ToLocal)}
	e.handed = [2]int{len(r.ToPeer), len(r.ToLocal)}
	e.ctr.InjectedToPeer += uint64(len(r.ToPeer))
	e.ctr.InjectedToLocal += uint64(len(r.ToLocal))
	return r
}

// maxReusedList bounds the packet lists (Result.ToPeer, ToLocal) whose
// arrays the engine keeps for its next Result.
const maxReusedList = 64

// reuse returns the array of a packet list handed out in the last Result,
// emptied, for the next one; its old entries stay until begin clears them,
// since the caller reads them until its next call.
func reuse(l [][]byte) [][]byte {
	if cap(l) > maxReusedList {
		return nil
	}
	return l[:0]
}

// begin starts a call that builds a Result: the packet lists handed out by
// the previous one are no longer the caller's, and their references to its
// packets are dropped. Anything a call left in the Result without finishing
// it (it panicked, and the caller recovered) is dropped too.
func (e *Engine) begin() {
	// Only the entries the last Result handed out (or a call that did not
	// finish appended) can be set: earlier ones were cleared by earlier
	// calls.
	p, l := e.out.ToPeer, e.out.ToLocal
	clear(p[:min(max(e.handed[0], len(p)), cap(p))])
	clear(l[:min(max(e.handed[1], len(l)), cap(l))])
	e.out = Result{ToPeer: p[:0], ToLocal: l[:0]}
}

// Recycle gives back a packet the engine returned in a Result (Packet, an
// element of ToPeer or ToLocal, or Released[i].Packet), once the caller is
// done with it: sent, injected, or dropped. The engine reuses its buffer
// for a later packet, so the caller must not read, write or keep pkt (or
// any slice of its buffer) after the call, and must recycle each packet at
// most once. Recycling is optional: a packet never recycled is simply left
// to the GC. Only packets the engine returned may be recycled: the engine
// keeps any buffer of one of its two packet capacities (2 KiB, 64 KiB) and
// would write into it later, so the caller's own buffers must never be
// passed (other capacities are ignored). Recycle does not change any
// Result's lists and may be called at any time between other calls (it is
// not safe for concurrent use either).
func (e *Engine) Recycle(pkt []byte) { e.pkts.put(pkt) }

func (e *Engine) toPeer(b []byte) {
	if b != nil {
		e.out.ToPeer = append(e.out.ToPeer, b)
	}
}

func (e *Engine) toLocal(b []byte) {
	if b != nil {
		e.out.ToLocal = append(e.out.ToLocal, b)
	}
}

func (e *Engine) replace(b []byte) {
	e.out.Verdict = Replace
	e.out.Packet = b
}

func (e *Engine) drop(r DropReason) {
	e.out.Verdict = Drop
	e.out.Packet = nil
	e.ctr.Drops[r]++
}

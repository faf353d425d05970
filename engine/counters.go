package engine

import (
	"fmt"

	"github.com/tcpcryptd/tcpcrypt/eno"
)

// DropReason says why the engine dropped a segment. Dropping is always safe
// for TCP: the sender retransmits (DESIGN.md invariant 5).
type DropReason uint8

const (
	DropNone         DropReason = iota
	DropUnparsable              // not a well-formed IPv4/IPv6 TCP packet we can rewrite
	DropHeldOverflow            // hold bound reached (per flow or in total)
	DropHoldTimeout             // held too long waiting for keys
	DropGap                     // outbound data starting beyond the framed stream
	DropRecvOverflow            // inbound bytes past the reassembly bound
	DropDead                    // the flow was aborted or reset
	DropConsumed                // inbound bytes buffered or consumed; nothing for the stack yet
	DropRequired                // required policy: a connection that cannot be encrypted
	DropInvalid                 // inconsistent segment: data after FIN, ack of unsent data
	DropRewrite                 // the rewritten segment could not be built
	DropSendOverflow            // new outbound data past the per-flow bound of unacknowledged frames
	DropMemory                  // bytes refused because the memory budget is used up (Config.Budget)
	DropUntrackedENO            // inbound non-SYN segment carrying ENO for a flow the engine does not track
	NumDropReasons              // number of drop reasons
)

var dropNames = [...]string{
	DropNone:         "none",
	DropUnparsable:   "unparsable",
	DropHeldOverflow: "held_overflow",
	DropHoldTimeout:  "hold_timeout",
	DropGap:          "gap",
	DropRecvOverflow: "recv_overflow",
	DropDead:         "dead_flow",
	DropConsumed:     "consumed",
	DropRequired:     "required",
	DropInvalid:      "invalid",
	DropRewrite:      "rewrite_failed",
	DropSendOverflow: "send_overflow",
	DropMemory:       "memory_limit",
	DropUntrackedENO: "untracked_eno",
}

func (r DropReason) String() string {
	if int(r) < len(dropNames) {
		return dropNames[r]
	}
	return fmt.Sprintf("drop(%d)", uint8(r))
}

// AbortReason says why the engine aborted a connection (RST toward both
// ends, DESIGN.md invariant 4).
type AbortReason uint8

const (
	AbortNone            AbortReason = iota
	AbortAuth                        // a frame failed authentication (RFC 8548 §3.6)
	AbortMalformedFrame              // a frame's clen cannot hold tag and flags
	AbortMalformedInit               // an Init message does not parse (RFC 8548 §4.1)
	AbortUnofferedCipher             // Init2 chose a cipher Init1 did not offer (§3.3)
	AbortNoCommonCipher              // Init1 offers no cipher we accept
	AbortInvalidKey                  // the peer's public key failed validation (§3.3, §5)
	AbortFINWithoutFINp              // TCP FIN without a verified FINp frame (§3.7)
	AbortDataAfterFIN                // frames after the FINp frame
	AbortRequired                    // required policy and ENO failed
	AbortIdle                        // encrypted flow idle past IdleTimeout
	AbortEvicted                     // a required flow evicted from a full table
	AbortInitTimeout                 // the key exchange never finished
	AbortInternal                    // sealing or key derivation failed, or the engine panicked on the flow
	AbortGuard                       // the caller could not protect the flow (Result.Protect)
	AbortRekeyFlood                  // the peer's rekeys left too many of our answers unacknowledged
	AbortRetransmitLimit             // our Init message or rekey frames were never acknowledged
	NumAbortReasons                  // number of abort reasons
)

var abortNames = [...]string{
	AbortNone:            "none",
	AbortAuth:            "auth_failed",
	AbortMalformedFrame:  "malformed_frame",
	AbortMalformedInit:   "malformed_init",
	AbortUnofferedCipher: "unoffered_cipher",
	AbortNoCommonCipher:  "no_common_cipher",
	AbortInvalidKey:      "invalid_public_key",
	AbortFINWithoutFINp:  "fin_without_finp",
	AbortDataAfterFIN:    "data_after_finp",
	AbortRequired:        "required",
	AbortIdle:            "idle_timeout",
	AbortEvicted:         "evicted",
	AbortInitTimeout:     "init_timeout",
	AbortInternal:        "internal",
	AbortGuard:           "guard_failed",
	AbortRekeyFlood:      "rekey_flood",
	AbortRetransmitLimit: "retransmit_limit",
}

func (r AbortReason) String() string {
	if int(r) < len(abortNames) {
		return abortNames[r]
	}
	return fmt.Sprintf("abort(%d)", uint8(r))
}

// FallbackReason says why a connection went on as plain TCP. The first
// values mirror eno.FallbackReason; the rest are the engine's own.
type FallbackReason uint8

const (
	FallbackNone           FallbackReason = iota
	FallbackNoLocalENO                    // eno: we sent no ENO
	FallbackLocalMalformed                // eno: our own option does not parse
	FallbackDuplicateENO                  // eno: the peer's SYN had several ENO options
	FallbackNoPeerENO                     // eno: the peer's SYN or SYN-ACK had no ENO
	FallbackMalformed                     // eno: the peer's option is malformed
	FallbackVacuous                       // eno: a SYN carried no TEP
	FallbackRoleClash                     // eno: both sent the same b bit
	FallbackAppAware                      // eno: mandatory app-aware mode, peer a=0
	FallbackNoCommonTEP                   // eno: no valid TEP
	FallbackNoENOOnACK                    // eno: the first ACK received had no ENO
	FallbackNoOptionSpace                 // our SYN or SYN-ACK had no room for ENO
	FallbackSYNData                       // SYN with data or a Fast Open cookie
	FallbackNoAnswer                      // passive: no acceptable TEP to answer with
	FallbackTableFull                     // flow table full: SYN not tracked
	FallbackSimOpen                       // simultaneous open without arranged roles
	FallbackEvicted                       // half-open flow evicted from a full table; goes on as plain TCP
	NumFallbackReasons                    // number of fallback reasons
)

var fallbackNames = [...]string{
	FallbackNone:           "none",
	FallbackNoLocalENO:     "no_local_eno",
	FallbackLocalMalformed: "local_malformed",
	FallbackDuplicateENO:   "duplicate_eno",
	FallbackNoPeerENO:      "no_peer_eno",
	FallbackMalformed:      "malformed_eno",
	FallbackVacuous:        "vacuous_eno",
	FallbackRoleClash:      "role_clash",
	FallbackAppAware:       "app_aware_required",
	FallbackNoCommonTEP:    "no_common_tep",
	FallbackNoENOOnACK:     "no_eno_on_ack",
	FallbackNoOptionSpace:  "no_option_space",
	FallbackSYNData:        "syn_data",
	FallbackNoAnswer:       "no_answer",
	FallbackTableFull:      "table_full",
	FallbackSimOpen:        "simultaneous_open",
	FallbackEvicted:        "evicted",
}

func (r FallbackReason) String() string {
	if int(r) < len(fallbackNames) {
		return fallbackNames[r]
	}
	return fmt.Sprintf("fallback(%d)", uint8(r))
}

// fallbackFromENO maps a negotiation failure to a FallbackReason.
func fallbackFromENO(r eno.FallbackReason) FallbackReason {
	switch r {
	case eno.ReasonNoLocalENO:
		return FallbackNoLocalENO
	case eno.ReasonLocalMalformed:
		return FallbackLocalMalformed
	case eno.ReasonDuplicateENO:
		return FallbackDuplicateENO
	case eno.ReasonNoPeerENO:
		return FallbackNoPeerENO
	case eno.ReasonMalformed:
		return FallbackMalformed
	case eno.ReasonVacuous:
		return FallbackVacuous
	case eno.ReasonRoleClash:
		return FallbackRoleClash
	case eno.ReasonAppAwareRequired:
		return FallbackAppAware
	case eno.ReasonNoCommonTEP:
		return FallbackNoCommonTEP
	case eno.ReasonNoENOOnACK:
		return FallbackNoENOOnACK
	}
	return FallbackNone
}

// Counters are the engine's statistics. Every drop, abort and fallback is
// counted by reason (DESIGN.md invariant 10).
type Counters struct {
	PacketsOut, PacketsIn uint64 // segments given to Process, by direction

	Accepted, Replaced, Dropped, Held uint64 // verdicts of Process
	Released                          uint64 // held segments settled
	InjectedToPeer, InjectedToLocal   uint64 // engine-made packets

	FlowsTracked   uint64 // flows created by a SYN
	FlowsEncrypted uint64 // flows whose keys were established
	FlowsResumed   uint64 // of those, resumed sessions
	FlowsClosed    uint64 // flows that ended with both FINs acknowledged or a RST
	FlowsEvicted   uint64 // flows evicted from a full table
	FlowsExpired   uint64 // flows ended by a timeout (idle, half-open), not by their linger
	FlowsProtected uint64 // flows handed to the caller's guard (Result.Protect)

	// Frames sealed and verified, and the plaintext bytes in them, over all
	// flows (live and gone).
	FramesOut, FramesIn uint64
	BytesOut, BytesIn   uint64

	Rekeys uint64 // rekeys we started or answered
	// LivenessProbes counts rekeys started to probe an idle flow (RFC
	// 8548 §3.9); they are counted in Rekeys too.
	LivenessProbes uint64
	// FramesShrunk counts the switches of a flow's frames from a whole
	// segment to one MSS at a retransmission by the kernel (send.go,
	// shrinkFrames).
	FramesShrunk uint64
	// FramesGrown counts the switches back to frames as large as the
	// segment, after growBackBytes acknowledged without a retransmission.
	FramesGrown uint64
	Retransmits uint64 // engine-made segments sent again (Init, rekey frames)
	Redelivered uint64 // plaintext re-delivered to the local stack
	OOOPruned   uint64 // out-of-order wire bytes discarded to make room under the memory budget

	Drops     [NumDropReasons]uint64
	Aborts    [NumAbortReasons]uint64
	Fallbacks [NumFallbackReasons]uint64
}

// Each calls fn for every counter with a stable name, for export.
func (c *Counters) Each(fn func(name string, v uint64)) {
	fn("packets_out", c.PacketsOut)
	fn("packets_in", c.PacketsIn)
	fn("accepted", c.Accepted)
	fn("replaced", c.Replaced)
	fn("dropped", c.Dropped)
	fn("held", c.Held)
	fn("released", c.Released)
	fn("injected_to_peer", c.InjectedToPeer)
	fn("injected_to_local", c.InjectedToLocal)
	fn("flows_tracked", c.FlowsTracked)
	fn("flows_encrypted", c.FlowsEncrypted)
	fn("flows_resumed", c.FlowsResumed)
	fn("flows_closed", c.FlowsClosed)
	fn("flows_evicted", c.FlowsEvicted)
	fn("flows_expired", c.FlowsExpired)
	fn("flows_protected", c.FlowsProtected)
	fn("frames_out", c.FramesOut)
	fn("frames_in", c.FramesIn)
	fn("bytes_out", c.BytesOut)
	fn("bytes_in", c.BytesIn)
	fn("rekeys", c.Rekeys)
	fn("liveness_probes", c.LivenessProbes)
	fn("frames_shrunk", c.FramesShrunk)
	fn("frames_grown", c.FramesGrown)
	fn("retransmits", c.Retransmits)
	fn("redelivered", c.Redelivered)
	fn("ooo_pruned_bytes", c.OOOPruned)
	for i := DropReason(1); i < NumDropReasons; i++ {
		fn("drop_"+i.String(), c.Drops[i])
	}
	for i := AbortReason(1); i < NumAbortReasons; i++ {
		fn("abort_"+i.String(), c.Aborts[i])
	}
	for i := FallbackReason(1); i < NumFallbackReasons; i++ {
		fn("fallback_"+i.String(), c.Fallbacks[i])
	}
}

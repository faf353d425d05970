package eno

import (
	"bytes"
	"fmt"
)

// Role is a host's TCP-ENO role (RFC 8547 §4.3): A sent b=0, B sent b=1.
// The zero value means "no role" (negotiation failed).
type Role uint8

// Roles.
const (
	RoleNone Role = iota
	RoleA
	RoleB
)

// String returns "A", "B" or "none".
func (r Role) String() string {
	switch r {
	case RoleA:
		return "A"
	case RoleB:
		return "B"
	}
	return "none"
}

// Config is one endpoint's ENO policy.
type Config struct {
	// TEPs lists the acceptable TEP ids, most preferred FIRST. BuildSYN and
	// Answer offer only these; Negotiate goes by what LocalSYN actually
	// offered, so both ends always reach the same choice.
	TEPs []uint8
	// AppAware is the local a bit (RFC 8547 §4.2); it defaults to false.
	AppAware bool
	// MandatoryAppAware sends a=1 and fails negotiation unless the peer sent
	// a=1 as well (mandatory application-aware mode, §4.2).
	MandatoryAppAware bool
	// SimOpenB sets b=1 before an active open, for a simultaneous open
	// arranged in advance (§4.2, §4.3). Only one of the two ends may set it;
	// against an ordinary passive opener it makes ENO fail.
	SimOpenB bool
}

// LocalA reports the a bit this configuration sends.
func (c *Config) LocalA() bool { return c.AppAware || c.MandatoryAppAware }

// Validate checks the TEP list: ids in 0x20..0x7f, no repeats.
func (c *Config) Validate() error {
	var seen [128]bool
	for _, t := range c.TEPs {
		if t < MinTEP || t > MaxTEP {
			return fmt.Errorf("eno: config: TEP 0x%02x: %w", t, ErrBadTEP)
		}
		if seen[t] {
			return fmt.Errorf("eno: config: TEP 0x%02x listed twice: %w", t, ErrBadTEP)
		}
		seen[t] = true
	}
	return nil
}

// FallbackReason says why ENO negotiation failed and the connection falls
// back to plain TCP. Its String is a stable name fit for counters.
type FallbackReason uint8

// Fallback reasons, in the order Negotiate checks them.
const (
	ReasonNone             FallbackReason = iota // negotiation succeeded
	ReasonNoLocalENO                             // we sent no ENO option
	ReasonLocalMalformed                         // our own option does not parse (a bug)
	ReasonDuplicateENO                           // the peer's SYN carried more than one ENO option (§4.1)
	ReasonNoPeerENO                              // the peer's SYN carried no ENO option (§4.6)
	ReasonMalformed                              // the peer's SYN-form option is malformed (§4.4)
	ReasonVacuous                                // either SYN carried no TEP suboption (§4.6)
	ReasonRoleClash                              // both sides sent the same b bit (§4.3), e.g. an echoing middlebox
	ReasonAppAwareRequired                       // mandatory app-aware mode and the peer sent a=0 (§4.2)
	ReasonNoCommonTEP                            // no valid TEP in B's option (§4.5)
	ReasonNoENOOnACK                             // the first ACK segment received carried no ENO (§4.6)
)

var reasonNames = [...]string{
	ReasonNone:             "ok",
	ReasonNoLocalENO:       "no-local-eno",
	ReasonLocalMalformed:   "local-malformed",
	ReasonDuplicateENO:     "duplicate-eno",
	ReasonNoPeerENO:        "no-peer-eno",
	ReasonMalformed:        "malformed",
	ReasonVacuous:          "vacuous",
	ReasonRoleClash:        "b-clash",
	ReasonAppAwareRequired: "app-aware-required",
	ReasonNoCommonTEP:      "no-common-tep",
	ReasonNoENOOnACK:       "no-eno-on-ack",
}

// String returns the reason's stable name.
func (r FallbackReason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// Input is everything Negotiate needs about one connection's handshake.
type Input struct {
	Config Config
	// Passive is true when we answered a SYN with a SYN-ACK. Roles come from
	// the b bits actually sent, so this is only a consistency check: a passive
	// opener whose LocalSYN has b=0 fails with ReasonRoleClash.
	Passive bool
	// LocalSYN is our SYN-form ENO option exactly as transmitted (nil if we
	// sent none). For a passive opener this is the SYN-ACK's option.
	LocalSYN []byte
	// PeerSYN is the peer's SYN-form ENO option as received (nil if none),
	// e.g. the first raw result of FindENO.
	PeerSYN []byte
	// PeerSYNENOCount is how many ENO options the peer's SYN carried (the
	// count from FindENO). 0 with a non-nil PeerSYN is read as 1.
	PeerSYNENOCount int
	// PeerACKHasENO: the first ACK segment received carried ENO. For the
	// active opener that is the SYN-ACK, for the passive opener the third
	// segment of the handshake (§4.6).
	PeerACKHasENO bool
	// Valid reports whether a TEP suboption pair is acceptable under the
	// TEP's rules (§4.5 condition 2), e.g. tcpcrypt's resumption halves. It
	// is called only for TEPs both sides offered exactly once. nil accepts
	// every such pair.
	Valid func(tep uint8, local, peer Suboption) bool
}

// Result is the outcome of Negotiate. When OK is false only Reason (and Err
// for a malformed option) are meaningful, and the connection is plain TCP.
type Result struct {
	OK     bool
	Reason FallbackReason // ReasonNone when OK
	Err    error          // the parse error for ReasonMalformed / ReasonLocalMalformed

	TEP     uint8 // negotiated TEP id
	V       bool  // v bit of the TEP byte B sent for it
	TEPByte uint8 // byte 0 of the session id: TEP | v<<7 as B sent it (§5.1)
	Role    Role  // our role
	PeerA   bool  // the peer's a bit
	LocalA  bool  // our a bit as sent

	// LocalSub and PeerSub are the two suboptions of the negotiated TEP
	// (their data copied).
	LocalSub, PeerSub Suboption
	// Transcript is A's SYN ENO option | B's SYN ENO option, exactly as on
	// the wire (RFC 8547 §4.8); a fresh copy.
	Transcript []byte
}

func fail(r FallbackReason, err error) Result { return Result{Reason: r, Err: err} }

// Negotiate decides the outcome of TCP-ENO for one connection (RFC 8547
// §4.3-§4.6, RFC 8548 §3.2). It is a pure function of its input.
//
// Checks, in order (the first that fails names the reason): we sent ENO and
// it parses; the peer's SYN carried exactly one ENO option and it parses;
// neither option is vacuous; the b bits differ (roles: b=0 is A, b=1 is B);
// mandatory app-aware mode sees the peer's a=1; B's option holds a valid TEP;
// the first ACK received carried ENO.
//
// The negotiated TEP is the LAST TEP id in B's option that is valid: both
// options carry exactly one suboption for it (a repeated id is not valid,
// since neither tcpcrypt nor this package defines repetition), and Valid
// accepts the pair. Config.TEPs is not consulted: our own option already
// lists only what we accept, and filtering again could make the two ends
// disagree. The v bit plays no part in the
// choice (RFC 8548 §3.2).
func Negotiate(in Input) Result {
	if in.LocalSYN == nil {
		return fail(ReasonNoLocalENO, nil)
	}
	local, err := ParseSYN(in.LocalSYN)
	if err != nil {
		return fail(ReasonLocalMalformed, fmt.Errorf("eno: our own option: %w", err))
	}
	if in.PeerSYNENOCount > 1 {
		return fail(ReasonDuplicateENO, nil)
	}
	if in.PeerSYN == nil {
		return fail(ReasonNoPeerENO, nil)
	}
	peer, err := ParseSYN(in.PeerSYN)
	if err != nil {
		return fail(ReasonMalformed, fmt.Errorf("eno: peer option: %w", err))
	}
	if local.Vacuous() || peer.Vacuous() {
		return fail(ReasonVacuous, nil)
	}
	if local.B() == peer.B() || (in.Passive && !local.B()) {
		return fail(ReasonRoleClash, nil)
	}
	if in.Config.MandatoryAppAware && !peer.A() {
		return fail(ReasonAppAwareRequired, nil)
	}
	a, b, role := &local, &peer, RoleA
	if local.B() {
		a, b, role = &peer, &local, RoleB
	}
	// Walk B's option from its end: the last valid TEP wins (§4.5).
	var (
		found         bool
		subA, subB    Suboption
		localS, peerS Suboption
		chosen        uint8
	)
	for i := len(b.Subs) - 1; i >= 0 && !found; i-- {
		t := b.Subs[i].ID
		if b.Count(t) != 1 || a.Count(t) != 1 {
			continue
		}
		subB = b.Subs[i]
		subA = a.Lookup(t)[0]
		localS, peerS = subA, subB
		if role == RoleB {
			localS, peerS = subB, subA
		}
		if in.Valid != nil && !in.Valid(t, localS, peerS) {
			continue
		}
		found, chosen = true, t
	}
	if !found {
		return fail(ReasonNoCommonTEP, nil)
	}
	if !in.PeerACKHasENO {
		return fail(ReasonNoENOOnACK, nil)
	}
	tr := make([]byte, 0, len(a.Raw)+len(b.Raw))
	tr = append(append(tr, a.Raw...), b.Raw...)
	return Result{
		OK:         true,
		TEP:        chosen,
		V:          subB.V,
		TEPByte:    subB.Byte(),
		Role:       role,
		PeerA:      peer.A(),
		LocalA:     local.A(),
		LocalSub:   localS.clone(),
		PeerSub:    peerS.clone(),
		Transcript: tr,
	}
}

// Transcript returns A's option followed by B's option (RFC 8547 §4.8) as a
// fresh slice, for callers that track raw options themselves.
func Transcript(aSYN, bSYN []byte) []byte {
	return bytes.Join([][]byte{aSYN, bSYN}, nil)
}

package eno

import (
	"errors"
	"fmt"
)

// BuildSYN builds the active opener's SYN-form ENO option (RFC 8547 §4.1,
// §4.2; RFC 8548 §3.2, §3.5).
//
// Layout: the global suboption first, but only when a or b is set (the
// implicit 0x00 costs nothing); then one v=0 byte per TEP in cfg.TEPs, least
// preferred first so that, should we end up as B in a simultaneous open, the
// most preferred is last (§4.5); then extra, in the given order. extra is for
// data-carrying suboptions such as a tcpcrypt resumption offer: the last one
// needs no length byte, so put a single resumption suboption there. A TEP
// that appears in extra is not also offered fresh (a resumption offer implies
// a fresh one, RFC 8548 §3.2).
//
// maxLen is the space budget for the whole option (kind and length bytes
// included), e.g. 40 minus the other SYN options; values above 40 or <= 0
// mean 40. When the option does not fit, the least preferred fresh TEPs are
// dropped first. ErrNoSpace is returned when nothing is left to offer or the
// extras alone do not fit; ErrNoTEP when there is nothing to offer at all.
func BuildSYN(cfg Config, maxLen int, extra ...Suboption) (Option, error) {
	if err := cfg.Validate(); err != nil {
		return Option{}, err
	}
	if maxLen <= 0 || maxLen > MaxOptionLen {
		maxLen = MaxOptionLen
	}
	var o Option
	if g := globalByte(cfg.LocalA(), cfg.SimOpenB); g != 0 {
		o.Global, o.HasGlobal = g, true
	}
	// Fresh TEPs, most preferred first, minus those the extras cover.
	fresh := make([]uint8, 0, len(cfg.TEPs))
	for _, t := range cfg.TEPs {
		inExtra := false
		for _, e := range extra {
			if e.ID == t {
				inExtra = true
			}
		}
		if !inExtra {
			fresh = append(fresh, t)
		}
	}
	if len(fresh) == 0 && len(extra) == 0 {
		return Option{}, fmt.Errorf("eno: build SYN: %w", ErrNoTEP)
	}
	for keep := len(fresh); keep >= 0; keep-- {
		if keep == 0 && len(extra) == 0 {
			break
		}
		subs := make([]Suboption, 0, keep+len(extra))
		for i := keep - 1; i >= 0; i-- {
			subs = append(subs, Suboption{ID: fresh[i]})
		}
		subs = append(subs, extra...)
		o.Subs = subs
		n, err := o.Len()
		if err != nil && !errors.Is(err, ErrTooLong) {
			return Option{}, fmt.Errorf("eno: build SYN: %w", err)
		}
		if err == nil && n <= maxLen {
			return o, nil
		}
	}
	return Option{}, fmt.Errorf("eno: build SYN in %d bytes: %w", maxLen, ErrNoSpace)
}

func globalByte(a, b bool) uint8 {
	var g uint8
	if a {
		g |= GlobalA
	}
	if b {
		g |= GlobalB
	}
	return g
}

// Answer builds the passive opener's SYN-ACK ENO option for a received SYN's
// option; it is AnswerWithin with the whole 40-byte budget.
func Answer(cfg Config, peer Option, choose func(peer Suboption) (Suboption, bool)) (Option, bool) {
	return AnswerWithin(cfg, peer, MaxOptionLen, choose)
}

// AnswerWithin builds the passive opener's SYN-ACK ENO option (RFC 8547
// §4.2, §4.5, §4.6; RFC 8548 §3.2): an explicit global suboption with b=1 (and
// a=1 when cfg says so), then exactly one TEP suboption.
//
// The TEP is our most preferred entry of cfg.TEPs that the peer offered
// exactly once. For it, choose(peerSub) returns the suboption to answer with
// (same ID; a tcpcrypt resumption reply with v=1 and data, or a plain v=0
// byte for a fresh exchange) or ok=false to move on to our next TEP. A nil
// choose answers v=0. choose should have no side effects: negotiation is only
// settled by Negotiate. If a data-carrying answer does not fit maxLen (the
// whole option's budget, <= 0 or > 40 meaning 40), the same TEP is answered
// with v=0 instead, which asks for a fresh exchange (RFC 8548 §3.5).
//
// ok=false means "send no ENO": the peer's option is vacuous, its b bit is
// set (roles would clash), mandatory app-aware mode sees a=0, or no TEP is
// acceptable. So a vacuous SYN-ACK option is never produced.
func AnswerWithin(cfg Config, peer Option, maxLen int, choose func(peer Suboption) (Suboption, bool)) (Option, bool) {
	if maxLen <= 0 || maxLen > MaxOptionLen {
		maxLen = MaxOptionLen
	}
	if peer.Vacuous() || peer.B() || (cfg.MandatoryAppAware && !peer.A()) {
		return Option{}, false
	}
	o := Option{HasGlobal: true, Global: globalByte(cfg.LocalA(), true)}
	for _, t := range cfg.TEPs {
		if t < MinTEP || t > MaxTEP || peer.Count(t) != 1 {
			continue
		}
		ps := peer.Lookup(t)[0]
		sub := Suboption{ID: t}
		if choose != nil {
			s, ok := choose(ps)
			if !ok {
				continue
			}
			if s.ID != t {
				continue // a choose that changes the TEP is a bug; skip it
			}
			sub = s
		}
		o.Subs = []Suboption{sub}
		if n, err := o.Len(); err == nil && n <= maxLen {
			return o, true
		}
		o.Subs = []Suboption{{ID: t}}
		if n, err := o.Len(); err == nil && n <= maxLen {
			return o, true
		}
	}
	return Option{}, false
}

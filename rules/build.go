package rules

import (
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Ruleset is the intended content of the daemon's table, as plain data. Build
// makes it without touching the kernel; Apply sends it.
type Ruleset struct {
	// Queue is the queue mechanism the rules use.
	Queue QueueKind
	// Chains are the base chains, output first.
	Chains []Chain
	// Maps are, when the rules spread packets over several queues by the
	// flow hash, the verdict maps the queueing rules look up and the
	// regular chains they jump to (see QueueMap); empty otherwise.
	Maps []QueueMap
}

// Chain is one chain of the table: a base chain (type filter, policy accept)
// in Ruleset.Chains, a regular chain, without hook and priority, in a QueueMap.
type Chain struct {
	Name     string                 // OutputChainName or InputChainName; a QueueMap's chain name
	Hook     nftables.ChainHook     // output or input (base chains)
	Priority nftables.ChainPriority // OutputPriority or InputPriority (base chains)
	Rules    []Rule                 // in evaluation order, the mark rule first
}

// Rule is one rule: its expressions in order and a comment shown by `nft list`
// (the policy entry and the verdict, e.g. "local 443 opportunistic: queue 7463
// bypass").
type Rule struct {
	Comment string     // stored as the rule's userdata comment
	Exprs   []expr.Any // evaluated in order; the last one is the verdict
}

// direction is the hook a chain sits on.
type direction uint8

const (
	dirOutput direction = iota
	dirInput
)

// Build returns the rule set for cfg and policies using queue mechanism kind.
// It validates everything (see Config.Validate and Normalize) and is pure.
//
// Each chain starts with a rule accepting packets whose mark is cfg.Mark; the
// output chain also accepts cfg.PeerMark (see Config.PeerMark). Then come the
// two guard rules (see GuardSet4): packets of protected flows are queued
// without bypass, before any per-port rule can accept or bypass them. Then,
// for every policy entry in Normalize order and for each side it covers (local
// before remote), one rule matches TCP, the port (output: source port for
// SideLocal, destination port for SideRemote; input the reverse), and, with a
// prefix, the network family and the peer address (destination on output,
// source on input). Exclude entries accept; the others queue, with the bypass
// flag that cfg.Bypass gives their mode. With several queues spread by the
// flow hash, queueing rules end in a verdict-map lookup instead (see
// QueueMap), and Maps holds the maps and their chains.
func Build(cfg Config, policies []Policy, kind QueueKind) (*Ruleset, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if kind != QueueNative && kind != QueueCompat {
		return nil, fmt.Errorf("%w: queue kind %v", ErrConfig, kind)
	}
	norm, err := Normalize(policies)
	if err != nil {
		return nil, err
	}
	rs := &Ruleset{Queue: kind, Maps: queueMaps(kind, cfg)}
	for _, d := range []direction{dirOutput, dirInput} {
		c := Chain{Name: OutputChainName, Hook: *nftables.ChainHookOutput, Priority: OutputPriority}
		if d == dirInput {
			c = Chain{Name: InputChainName, Hook: *nftables.ChainHookInput, Priority: InputPriority}
		}
		c.Rules = append(c.Rules, markRule(cfg.Mark, "tcpcryptd packets to the local stack"))
		if d == dirOutput {
			c.Rules = append(c.Rules, markRule(cfg.PeerMark, "tcpcryptd packets to the peer"))
		}
		c.Rules = append(c.Rules, guardRule(cfg, kind, d, false), guardRule(cfg, kind, d, true))
		for _, p := range norm {
			for _, s := range []Side{SideLocal, SideRemote} {
				if p.Side&s != 0 {
					c.Rules = append(c.Rules, policyRule(cfg, kind, d, p, s))
				}
			}
		}
		rs.Chains = append(rs.Chains, c)
	}
	return rs, nil
}

// markRule accepts the daemon's own packets: meta mark == mark.
func markRule(mark uint32, comment string) Rule {
	return Rule{
		Comment: comment,
		Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(mark)},
			&expr.Verdict{Kind: expr.VerdictAccept},
		},
	}
}

// policyRule is the rule for one side s of policy p in direction d.
func policyRule(cfg Config, kind QueueKind, d direction, p Policy, s Side) Rule {
	var exprs []expr.Any
	if p.Prefix.IsValid() {
		exprs = append(exprs, prefixMatch(p.Prefix, d == dirOutput)...)
	}
	// Port field: source port offset 0, destination port offset 2 (RFC 9293 §3.1).
	// Our port is the source on output; a peer's port is the destination.
	portOffset := uint32(2)
	if (s == SideLocal) == (d == dirOutput) {
		portOffset = 0
	}
	exprs = append(exprs,
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: portOffset, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(p.Port)},
	)
	one := p
	one.Side = s
	if p.Mode == ModeExclude {
		exprs = append(exprs, &expr.Verdict{Kind: expr.VerdictAccept})
		return Rule{Comment: one.String() + ": accept", Exprs: exprs}
	}
	bypass := cfg.Bypass.For(p.Mode)
	exprs = append(exprs, queueVerdict(kind, cfg, bypass)...)
	return Rule{Comment: one.String() + ": " + queueComment(cfg, bypass), Exprs: exprs}
}

// queueComment describes the queue verdict for rule comments, because `nft
// list` cannot print the compat NFQUEUE target: e.g. "queue 7463-7466 symhash
// bypass", "queue 7463-7466 fanout no-bypass" or "queue 7463 no-bypass".
func queueComment(cfg Config, bypass bool) string {
	s := fmt.Sprintf("queue %d", cfg.QueueNum)
	if n := cfg.queueCount(); n > 1 {
		s += fmt.Sprintf("-%d", uint32(cfg.QueueNum)+uint32(n)-1)
	}
	switch {
	case cfg.CPUFanout:
		s += " fanout"
	case cfg.flowBalanced():
		s += " symhash"
	}
	if bypass {
		return s + " bypass"
	}
	return s + " no-bypass"
}

// prefixMatch matches the peer address against pfx: the destination on output,
// the source on input. The family check (meta nfproto) keeps IPv4 and IPv6
// packets apart in the inet table; a /0 prefix only checks the family.
func prefixMatch(pfx netip.Prefix, output bool) []expr.Any {
	addr := pfx.Addr()
	nfproto, off, n := byte(unix.NFPROTO_IPV4), uint32(12), uint32(4) // IPv4 saddr
	if addr.Is6() {
		nfproto, off, n = unix.NFPROTO_IPV6, 8, 16 // IPv6 saddr
	}
	if output {
		off += n // daddr follows saddr in both headers
	}
	exprs := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{nfproto}},
	}
	if pfx.Bits() == 0 {
		return exprs
	}
	exprs = append(exprs, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n})
	if pfx.Bits() < addr.BitLen() {
		mask := make([]byte, n)
		for i := range pfx.Bits() {
			mask[i/8] |= 0x80 >> (i % 8)
		}
		exprs = append(exprs, &expr.Bitwise{
			SourceRegister: 1, DestRegister: 1, Len: n,
			Mask: mask, Xor: make([]byte, n),
		})
	}
	return append(exprs, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr.AsSlice()})
}

package daemon

import (
	"net/netip"
	"sync/atomic"

	"github.com/tcpcryptd/tcpcrypt/engine"
	"github.com/tcpcryptd/tcpcrypt/rules"
)

// Matcher decides a connection's mode from a rule list the way the nftables
// rules built from the same list decide whether its segments are queued: the
// entries in rules.Normalize order (exclude first, then longer prefixes),
// each side of an entry local before remote, first match wins. A SideLocal
// entry matches the local port, a SideRemote entry the remote port; a prefix
// matches the remote address of its own family only.
type Matcher struct {
	norm []rules.Policy
}

// NewMatcher returns a Matcher for ps (validated and sorted with
// rules.Normalize).
func NewMatcher(ps []rules.Policy) (*Matcher, error) {
	norm, err := rules.Normalize(ps)
	if err != nil {
		return nil, err
	}
	return &Matcher{norm: norm}, nil
}

// Match returns the rule that covers the connection (local, remote), and
// false when none does.
func (m *Matcher) Match(local, remote netip.AddrPort) (rules.Policy, bool) {
	if m == nil {
		return rules.Policy{}, false
	}
	raddr := remote.Addr().Unmap()
	for _, p := range m.norm {
		if p.Prefix.IsValid() {
			pa := p.Prefix.Addr()
			if pa.Is4() != raddr.Is4() || !p.Prefix.Contains(raddr) {
				continue
			}
		}
		if p.Side&rules.SideLocal != 0 && local.Port() == p.Port {
			return p, true
		}
		if p.Side&rules.SideRemote != 0 && remote.Port() == p.Port {
			return p, true
		}
	}
	return rules.Policy{}, false
}

// Mode returns the engine mode for the connection: the mode of the matching
// rule, or engine.Exclude when no rule covers it.
func (m *Matcher) Mode(local, remote netip.AddrPort) engine.Mode {
	p, ok := m.Match(local, remote)
	if !ok {
		return engine.Exclude
	}
	return engineMode(p.Mode)
}

// Decide returns the engine's decision for the connection: the mode and
// the per-connection controls of the matching rule (engine.Decision), or
// engine.Exclude when no rule covers it.
func (m *Matcher) Decide(local, remote netip.AddrPort) engine.Decision {
	p, ok := m.Match(local, remote)
	if !ok {
		return engine.Decision{Mode: engine.Exclude}
	}
	return engine.Decision{Mode: engineMode(p.Mode), Options: engineOptions(p.Options)}
}

// engineOptions maps a rule's options onto the engine's controls.
func engineOptions(o rules.Options) engine.Options {
	return engine.Options{
		NoResume:          o&rules.OptNoResume != 0,
		NoCache:           o&rules.OptNoCache != 0,
		MandatoryAppAware: o&rules.OptAppAware != 0,
	}
}

// Covered reports whether the connection's segments are queued to the
// daemon (a matching rule that is not exclude).
func (m *Matcher) Covered(local, remote netip.AddrPort) bool {
	return m.Mode(local, remote) != engine.Exclude
}

func engineMode(m rules.Mode) engine.Mode {
	switch m {
	case rules.ModeOpportunistic:
		return engine.Opportunistic
	case rules.ModeRequired:
		return engine.Required
	}
	return engine.Exclude
}

// policySwitch holds the Matcher in force. The engines call Policy from
// their worker goroutines; rule changes Store a new Matcher, which applies
// to connections that start afterwards.
type policySwitch struct {
	cur atomic.Pointer[Matcher]
}

// Policy is an engine.Config.Policy function (the mode alone).
func (s *policySwitch) Policy(local, remote netip.AddrPort) engine.Mode {
	return s.cur.Load().Mode(local, remote)
}

// Decide is the engine.Config.Decide function: the mode and the rule's
// per-connection controls.
func (s *policySwitch) Decide(local, remote netip.AddrPort) engine.Decision {
	return s.cur.Load().Decide(local, remote)
}

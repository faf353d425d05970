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

// Policy is the engine.Config.Policy function.
func (s *policySwitch) Policy(local, remote netip.AddrPort) engine.Mode {
	return s.cur.Load().Mode(local, remote)
}

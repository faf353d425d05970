package ctl

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
)

// Side says which end of a connection a rule's port belongs to.
type Side string

// Side values.
const (
	// SideLocal matches connections whose local port is the rule's port
	// (services of this host).
	SideLocal Side = "local"
	// SideRemote matches connections whose remote port is the rule's port
	// (connections this host opens to that port).
	SideRemote Side = "remote"
	// SideBoth matches either.
	SideBoth Side = "both"
)

// Mode is the policy a rule applies.
type Mode string

// Mode values.
const (
	// ModeOpportunistic encrypts when the peer supports tcpcrypt and passes
	// plain TCP otherwise.
	ModeOpportunistic Mode = "opportunistic"
	// ModeRequired refuses plain TCP (RFC 8547 §4.7 mandatory encryption).
	ModeRequired Mode = "required"
	// ModeExclude leaves the matching traffic alone.
	ModeExclude Mode = "exclude"
)

// Option is a per-connection control a rule gives the connections it
// matches.
type Option string

// Option values.
const (
	// OptionNoResume ignores session resumption: every matched connection
	// does a fresh key exchange (RFC 8548 §3.5).
	OptionNoResume Option = "noresume"
	// OptionNoCache caches no session secret from matched connections
	// (RFC 8548 §3.5).
	OptionNoCache Option = "nocache"
	// OptionAppAware is the mandatory application-aware mode (RFC 8547
	// §4.2): encrypt only when the peer's ENO option also has a = 1.
	OptionAppAware Option = "appaware"
)

// Rule is one per-port policy entry.
type Rule struct {
	// Port is the TCP port, 1..65535.
	Port uint16 `json:"port"`
	// Side is which end's port Port is.
	Side Side `json:"side"`
	// Prefix optionally restricts the rule to peers whose address is inside
	// it; it must be in canonical (masked) form. Omitted in JSON when unset.
	Prefix netip.Prefix `json:"prefix,omitzero"`
	// Mode is the policy applied.
	Mode Mode `json:"mode"`
	// Options are the rule's per-connection controls, each at most once
	// (none on an exclude rule). Omitted in JSON when empty; the daemon
	// lists them in the order noresume, nocache, appaware.
	Options []Option `json:"options,omitempty"`
	// Source says where a rule in force comes from, in rules.list answers
	// only: "command line" (--rule), a configuration file's path, or
	// "state" (added at run time, kept in the state file). It is ignored
	// in rules.add and rules.del, and by Equal.
	Source string `json:"source,omitempty"`
}

// Validate reports whether r is complete and well formed; the error wraps
// ErrBadRequest.
func (r Rule) Validate() error {
	if r.Port == 0 {
		return fmt.Errorf("%w: rule port must be 1..65535", ErrBadRequest)
	}
	switch r.Side {
	case SideLocal, SideRemote, SideBoth:
	default:
		return fmt.Errorf("%w: rule side %q: want local, remote or both", ErrBadRequest, r.Side)
	}
	switch r.Mode {
	case ModeOpportunistic, ModeRequired, ModeExclude:
	default:
		return fmt.Errorf("%w: rule mode %q: want opportunistic, required or exclude", ErrBadRequest, r.Mode)
	}
	for i, o := range r.Options {
		switch o {
		case OptionNoResume, OptionNoCache, OptionAppAware:
		default:
			return fmt.Errorf("%w: rule option %q: want noresume, nocache or appaware", ErrBadRequest, o)
		}
		if slices.Contains(r.Options[:i], o) {
			return fmt.Errorf("%w: rule option %q given twice", ErrBadRequest, o)
		}
	}
	if r.Mode == ModeExclude && len(r.Options) > 0 {
		return fmt.Errorf("%w: an exclude rule takes no options", ErrBadRequest)
	}
	if r.Prefix != (netip.Prefix{}) {
		if !r.Prefix.IsValid() {
			return fmt.Errorf("%w: rule prefix is invalid", ErrBadRequest)
		}
		if r.Prefix.Addr().Is4In6() {
			return fmt.Errorf("%w: rule prefix %s: use the plain IPv4 form", ErrBadRequest, r.Prefix)
		}
		if r.Prefix != r.Prefix.Masked() {
			return fmt.Errorf("%w: rule prefix %s has host bits set (did you mean %s?)",
				ErrBadRequest, r.Prefix, r.Prefix.Masked())
		}
	}
	return nil
}

// String formats r as "443/local required" or "443/remote 10.0.0.0/8
// opportunistic", with options last: "443/local required +noresume+nocache".
func (r Rule) String() string {
	s := strconv.Itoa(int(r.Port)) + "/" + string(r.Side)
	if r.Prefix.IsValid() {
		s += " " + r.Prefix.String()
	}
	s += " " + string(r.Mode)
	for i, o := range r.Options {
		if i == 0 {
			s += " +"
		} else {
			s += "+"
		}
		s += string(o)
	}
	return s
}

// Equal reports whether r and o are the same rule, options compared as
// sets.
func (r Rule) Equal(o Rule) bool {
	if r.Port != o.Port || r.Side != o.Side || r.Prefix != o.Prefix || r.Mode != o.Mode || len(r.Options) != len(o.Options) {
		return false
	}
	for _, x := range r.Options {
		if !slices.Contains(o.Options, x) {
			return false
		}
	}
	return true
}

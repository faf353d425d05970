package ctl

import (
	"fmt"
	"net/netip"
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

// String formats r as "443/local required" or "443/remote 10.0.0.0/8 opportunistic".
func (r Rule) String() string {
	s := strconv.Itoa(int(r.Port)) + "/" + string(r.Side)
	if r.Prefix.IsValid() {
		s += " " + r.Prefix.String()
	}
	return s + " " + string(r.Mode)
}

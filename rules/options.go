package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ErrOption is returned (wrapped) for an unknown option or one the rule's
// mode cannot carry.
var ErrOption = errors.New("rules: bad option")

// Options are per-connection controls a rule gives the connections it
// matches, as a set of bits. They change what the daemon does with a
// queued connection, not which segments are queued, so the nftables rules
// built from a list do not depend on them. The zero Options is none.
type Options uint8

// Option bits.
const (
	// OptNoResume ignores session resumption for the connection: a fresh
	// key exchange, with no cached secret offered or accepted (RFC 8548
	// §3.5).
	OptNoResume Options = 1 << iota
	// OptNoCache caches no session secret derived from the connection
	// (RFC 8548 §3.5).
	OptNoCache
	// OptAppAware is the mandatory application-aware mode of RFC 8547
	// §4.2: the daemon sends a = 1 and falls back to plain TCP (or, under
	// required, refuses the connection) unless the peer also sends a = 1.
	OptAppAware
)

// optionNames lists the options in their canonical order.
var optionNames = []struct {
	bit  Options
	name string
}{
	{OptNoResume, "noresume"},
	{OptNoCache, "nocache"},
	{OptAppAware, "appaware"},
}

// allOptions is every defined bit.
const allOptions = OptNoResume | OptNoCache | OptAppAware

// OptionNames returns the names of the defined options in canonical order.
func OptionNames() []string {
	out := make([]string, len(optionNames))
	for i, n := range optionNames {
		out[i] = n.name
	}
	return out
}

// ParseOption returns the bit named name ("noresume", "nocache",
// "appaware"). Errors wrap ErrOption.
func ParseOption(name string) (Options, error) {
	for _, n := range optionNames {
		if name == n.name {
			return n.bit, nil
		}
	}
	return 0, fmt.Errorf("%w %q: want one of %s", ErrOption, name, strings.Join(OptionNames(), ", "))
}

// Names returns the names of the bits set in o, in canonical order, with
// "option(0xN)" for undefined bits.
func (o Options) Names() []string {
	var out []string
	for _, n := range optionNames {
		if o&n.bit != 0 {
			out = append(out, n.name)
		}
	}
	if extra := o &^ allOptions; extra != 0 {
		out = append(out, fmt.Sprintf("option(%#x)", uint8(extra)))
	}
	return out
}

// String returns the names joined with "+" ("" for none), e.g.
// "noresume+appaware".
func (o Options) String() string { return strings.Join(o.Names(), "+") }

// Validate refuses undefined bits.
func (o Options) Validate() error {
	if extra := o &^ allOptions; extra != 0 {
		return fmt.Errorf("%w: undefined bits %#x", ErrOption, uint8(extra))
	}
	return nil
}

// MarshalJSON encodes o as an array of option names.
func (o Options) MarshalJSON() ([]byte, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	names := o.Names()
	if names == nil {
		names = []string{}
	}
	return json.Marshal(names)
}

// UnmarshalJSON decodes an array of option names; an unknown or repeated
// name is an error wrapping ErrOption.
func (o *Options) UnmarshalJSON(b []byte) error {
	var names []string
	if err := json.Unmarshal(b, &names); err != nil {
		return fmt.Errorf("%w: want an array of names: %w", ErrOption, err)
	}
	var v Options
	for _, n := range names {
		bit, err := ParseOption(n)
		if err != nil {
			return err
		}
		if v&bit != 0 {
			return fmt.Errorf("%w %q: given twice", ErrOption, n)
		}
		v |= bit
	}
	*o = v
	return nil
}

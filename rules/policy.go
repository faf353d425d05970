package rules

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// Sentinel errors returned (wrapped) by validation.
var (
	ErrPort      = errors.New("rules: port must be 1..65535")
	ErrSide      = errors.New("rules: unknown side")
	ErrMode      = errors.New("rules: unknown mode")
	ErrPrefix    = errors.New("rules: bad address prefix")
	ErrDuplicate = errors.New("rules: duplicate rule")
	ErrConfig    = errors.New("rules: invalid config")
)

// Side says which end of a connection the policy's port belongs to.
type Side uint8

// Side values. The zero Side is invalid.
const (
	// SideLocal is a service port of this host: traffic to and from a port we
	// listen on (output matches the source port, input the destination port).
	SideLocal Side = 1
	// SideRemote is a peer's port: connections we originate to that port
	// (output matches the destination port, input the source port).
	SideRemote Side = 2
	// SideBoth is SideLocal and SideRemote together.
	SideBoth = SideLocal | SideRemote
)

var sideNames = map[Side]string{SideLocal: "local", SideRemote: "remote", SideBoth: "both"}

// String returns "local", "remote", "both", or "side(N)" for invalid values.
func (s Side) String() string {
	if n, ok := sideNames[s]; ok {
		return n
	}
	return fmt.Sprintf("side(%d)", uint8(s))
}

// MarshalText implements encoding.TextMarshaler.
func (s Side) MarshalText() ([]byte, error) {
	if _, ok := sideNames[s]; !ok {
		return nil, fmt.Errorf("%w: %d", ErrSide, uint8(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler; it accepts the names
// String returns for valid values.
func (s *Side) UnmarshalText(b []byte) error {
	for v, n := range sideNames {
		if string(b) == n {
			*s = v
			return nil
		}
	}
	return fmt.Errorf("%w: %q", ErrSide, b)
}

// Mode is what happens to the matched traffic.
type Mode uint8

// Mode values. The zero Mode is opportunistic.
const (
	// ModeOpportunistic queues the traffic; the daemon encrypts when the peer
	// supports tcpcrypt and passes plain TCP otherwise.
	ModeOpportunistic Mode = 0
	// ModeRequired queues the traffic and the daemon refuses plain TCP.
	ModeRequired Mode = 1
	// ModeExclude accepts the traffic without queueing it. Exclude entries are
	// evaluated before all others.
	ModeExclude Mode = 2
)

var modeNames = map[Mode]string{ModeOpportunistic: "opportunistic", ModeRequired: "required", ModeExclude: "exclude"}

// String returns "opportunistic", "required", "exclude", or "mode(N)".
func (m Mode) String() string {
	if n, ok := modeNames[m]; ok {
		return n
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// MarshalText implements encoding.TextMarshaler.
func (m Mode) MarshalText() ([]byte, error) {
	if _, ok := modeNames[m]; !ok {
		return nil, fmt.Errorf("%w: %d", ErrMode, uint8(m))
	}
	return []byte(m.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *Mode) UnmarshalText(b []byte) error {
	for v, n := range modeNames {
		if string(b) == n {
			*m = v
			return nil
		}
	}
	return fmt.Errorf("%w: %q", ErrMode, b)
}

// Policy is one entry of the port policy.
type Policy struct {
	// Port is the TCP port, 1..65535.
	Port uint16 `json:"port"`
	// Side says whether Port is ours (a listening port) or the peer's.
	Side Side `json:"side"`
	// Prefix, when valid, restricts the entry to peers inside it (IPv4 or
	// IPv6). The zero Prefix matches every peer of both families.
	Prefix netip.Prefix `json:"prefix,omitzero"`
	// Mode is opportunistic, required or exclude.
	Mode Mode `json:"mode"`
	// Options are the per-connection controls of the matched connections
	// (none on an exclude entry). Omitted in JSON when none, so state
	// files written before options existed read the same.
	Options Options `json:"options,omitzero"`
}

// String formats p for logs and rule comments, e.g. "local 443 2001:db8::/32 required",
// with any options last ("local 443 required +noresume+nocache").
func (p Policy) String() string {
	s := fmt.Sprintf("%v %d", p.Side, p.Port)
	if p.Prefix.IsValid() {
		s += " " + p.Prefix.String()
	}
	s += " " + p.Mode.String()
	if p.Options != 0 {
		s += " +" + p.Options.String()
	}
	return s
}

// Validate checks one entry on its own: port, side, mode, options and prefix (see
// CheckPrefix). Its errors do not repeat the entry: the caller that knows
// where the entry came from names it.
func (p Policy) Validate() error {
	if p.Port == 0 {
		return ErrPort
	}
	if _, ok := sideNames[p.Side]; !ok {
		return fmt.Errorf("%w: %d", ErrSide, uint8(p.Side))
	}
	if _, ok := modeNames[p.Mode]; !ok {
		return fmt.Errorf("%w: %d", ErrMode, uint8(p.Mode))
	}
	if err := p.Options.Validate(); err != nil {
		return err
	}
	if p.Mode == ModeExclude && p.Options != 0 {
		return fmt.Errorf("%w: an exclude rule takes no options (%v)", ErrOption, p.Options)
	}
	if p.Prefix == (netip.Prefix{}) {
		return nil
	}
	return CheckPrefix(p.Prefix)
}

// CheckPrefix is the one test of a rule's address prefix, used for rules from
// the command line, the configuration file, the state file and the control
// socket alike. It refuses an invalid prefix, an IPv4 prefix written in IPv6
// form (::ffff:a.b.c.d/n: the rules see IPv4 peers only as IPv4 addresses)
// and a prefix with host bits set (10.1.2.3/8: a typo as often as not, so it
// is refused rather than silently widened to 10.0.0.0/8). Errors wrap
// ErrPrefix.
func CheckPrefix(p netip.Prefix) error {
	switch {
	case !p.IsValid():
		return fmt.Errorf("%w %v", ErrPrefix, p)
	case p.Addr().Is4In6():
		return fmt.Errorf("%w %v: an IPv4-mapped IPv6 prefix; write it as IPv4", ErrPrefix, p)
	case p != p.Masked():
		return fmt.Errorf("%w %v: host bits set (did you mean %v?)", ErrPrefix, p, p.Masked())
	}
	return nil
}

// ParsePrefix parses a rule's address prefix written as ADDRESS/BITS and
// checks it with CheckPrefix. Errors wrap ErrPrefix and quote s.
func ParsePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%w %q: want ADDRESS/BITS, such as 10.0.0.0/8 or 2001:db8::/32", ErrPrefix, s)
	}
	if err := CheckPrefix(p); err != nil {
		return netip.Prefix{}, err
	}
	return p, nil
}

// Normalize validates policies and returns a sorted copy. An invalid entry's
// error names the entry (its String form).
//
// Two entries are duplicates, and rejected with ErrDuplicate, when they have the
// same port and the same prefix and their sides overlap (both is local plus
// remote), whatever their modes: one of them would be dead.
//
// The order is deterministic: exclude entries first (so they win over any other
// entry), then longer prefixes before shorter ones (so a narrower entry wins
// over a wider one), then by port, side, address family and address.
func Normalize(policies []Policy) ([]Policy, error) {
	out := make([]Policy, 0, len(policies))
	for _, p := range policies {
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("rule %v: %w", p, err)
		}
		out = append(out, p)
	}
	for i := range out {
		for j := range i {
			a, b := out[j], out[i]
			if a.Port == b.Port && a.Prefix == b.Prefix && a.Side&b.Side != 0 {
				return nil, fmt.Errorf("%w: %v overlaps %v (same port and prefix, overlapping sides)", ErrDuplicate, b, a)
			}
		}
	}
	slices.SortStableFunc(out, comparePolicy)
	return out, nil
}

func comparePolicy(a, b Policy) int {
	if c := cmp.Compare(rankMode(a.Mode), rankMode(b.Mode)); c != 0 {
		return c
	}
	if c := cmp.Compare(prefixBits(b.Prefix), prefixBits(a.Prefix)); c != 0 {
		return c // longer prefix first
	}
	if c := cmp.Compare(a.Port, b.Port); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Side, b.Side); c != 0 {
		return c
	}
	return a.Prefix.Addr().Compare(b.Prefix.Addr())
}

func rankMode(m Mode) int {
	if m == ModeExclude {
		return 0
	}
	return 1
}

// prefixBits is -1 for "any address", so that a /0 of one family is still more
// specific than no prefix at all.
func prefixBits(p netip.Prefix) int {
	if !p.IsValid() {
		return -1
	}
	return p.Bits()
}

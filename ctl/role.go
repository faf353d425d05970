package ctl

import "fmt"

// Role is one end's TCP-ENO role (RFC 8547 §4.3). The active opener (the
// end that called connect, e.g. net.Dial) is A and the passive opener (the
// end that accepted) is B, unless both opened at once and the applications
// arranged the roles. An application binding the session id into its
// authentication must bind the role too (RFC 8547 §5.1).
type Role uint8

// Roles. RoleNone is the zero value: no role (ENO did not succeed).
const (
	RoleNone Role = iota
	RoleA
	RoleB
)

// String returns "A", "B", or "" for RoleNone.
func (r Role) String() string {
	switch r {
	case RoleA:
		return "A"
	case RoleB:
		return "B"
	case RoleNone:
		return ""
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// Peer returns the other end's role (RoleNone for RoleNone).
func (r Role) Peer() Role {
	switch r {
	case RoleA:
		return RoleB
	case RoleB:
		return RoleA
	}
	return RoleNone
}

// MarshalText implements encoding.TextMarshaler: "A", "B" or "".
func (r Role) MarshalText() ([]byte, error) {
	if r > RoleB {
		return nil, fmt.Errorf("ctl: invalid role %d", uint8(r))
	}
	return []byte(r.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler; it accepts "A", "B"
// and "".
func (r *Role) UnmarshalText(b []byte) error {
	switch string(b) {
	case "A":
		*r = RoleA
	case "B":
		*r = RoleB
	case "":
		*r = RoleNone
	default:
		return fmt.Errorf("ctl: bad role %q: want \"A\", \"B\" or \"\"", b)
	}
	return nil
}

package ctl

import (
	"encoding/hex"
	"fmt"
	"net/netip"
)

// Conn describes one connection tracked by the daemon. Its JSON field names are
// part of protocol version 1 and of tcnetstat's --json output; they only grow.
type Conn struct {
	// Local and Remote are the connection's endpoints as seen from this host
	// ("192.0.2.1:443", "[2001:db8::1]:443"). IPv4 addresses are never mapped
	// into IPv6.
	Local  netip.AddrPort `json:"local"`
	Remote netip.AddrPort `json:"remote"`
	// State is the daemon's state name for the flow (for example "handshake",
	// "encrypted", "plain", "closing"); the set is defined by the daemon.
	State string `json:"state"`
	// Role is this host's TCP-ENO role (RFC 8547 §4.3), "A" or "B" in JSON,
	// or RoleNone ("") before roles are known or when ENO failed.
	Role Role `json:"role"`
	// TEP is the negotiated encryption protocol; zero when none.
	TEP TEP `json:"tep"`
	// AEAD is the negotiated frame cipher name (RFC 8548 §7), e.g.
	// "AEAD_AES_128_GCM"; empty when none.
	AEAD string `json:"aead"`
	// SessionID is the session id (RFC 8547 §5.1, at least 33 bytes) as lower
	// case hex in JSON; empty when the connection has none.
	SessionID HexBytes `json:"session_id"`
	// Resumed says the session was resumed from a cached secret (RFC 8548 §3.5).
	Resumed bool `json:"resumed"`
	// BytesIn/BytesOut count application (plaintext) bytes received/sent;
	// FramesIn/FramesOut count tcpcrypt frames.
	BytesIn   uint64 `json:"bytes_in"`
	BytesOut  uint64 `json:"bytes_out"`
	FramesIn  uint64 `json:"frames_in"`
	FramesOut uint64 `json:"frames_out"`
	// AgeSeconds is the time since the daemon first saw the connection.
	AgeSeconds float64 `json:"age_seconds"`
	// LastError is the most recent error recorded for the flow (an abort
	// reason, or for a fallen-back connection what FallbackReason names);
	// empty when none.
	LastError string `json:"last_error"`
	// FallbackReason is set for a connection that fell back to plain TCP
	// (State "plain"): the stable name of the reason, e.g. "no_peer_eno"
	// when the peer has no tcpcrypt (the engine_fallback_* counter names
	// without their prefix); empty otherwise.
	FallbackReason string `json:"fallback_reason"`
}

// TEP names a TCP encryption protocol: its registry name and its 7-bit id
// (RFC 8548 §7, e.g. 0x23 "TCPCRYPT_ECDHE_Curve25519").
type TEP struct {
	Name string `json:"name"`
	ID   uint8  `json:"id"`
}

// String returns the name, or the id in hex when the name is empty, or "" for
// the zero TEP.
func (t TEP) String() string {
	switch {
	case t.Name != "":
		return t.Name
	case t.ID != 0:
		return fmt.Sprintf("0x%02x", t.ID)
	}
	return ""
}

// HexBytes is a byte string carried as lower case hex in JSON.
type HexBytes []byte

// String returns the bytes as lower case hex.
func (h HexBytes) String() string { return hex.EncodeToString(h) }

// MarshalText implements encoding.TextMarshaler.
func (h HexBytes) MarshalText() ([]byte, error) {
	out := make([]byte, hex.EncodedLen(len(h)))
	hex.Encode(out, h)
	return out, nil
}

// UnmarshalText implements encoding.TextUnmarshaler; it accepts upper or lower
// case hex.
func (h *HexBytes) UnmarshalText(b []byte) error {
	out := make([]byte, hex.DecodedLen(len(b)))
	n, err := hex.Decode(out, b)
	if err != nil {
		return fmt.Errorf("ctl: bad hex: %w", err)
	}
	if n == 0 {
		*h = nil
		return nil
	}
	*h = out[:n]
	return nil
}

// Status is the daemon's state summary returned by the "status" operation.
type Status struct {
	// Version is the daemon's version string.
	Version string `json:"version"`
	// UptimeSeconds is the time since the daemon started.
	UptimeSeconds float64 `json:"uptime_seconds"`
	// Queues lists the NFQUEUE numbers the daemon reads.
	Queues []uint16 `json:"queues"`
	// Balance says how the rules spread connections over the queues:
	// "flow" (a hash of addresses and ports: connections between two hosts
	// use every queue), "address" (the address pair alone, on kernels
	// without nftables' hash: they share one queue), or "none" (one queue).
	Balance string `json:"balance,omitempty"`
	// Rules is the number of policy rules installed.
	Rules int `json:"rules"`
	// Connections is the number of tracked connections.
	Connections int `json:"connections"`
	// Counters holds the daemon's named counters (drop reasons, fallbacks...).
	Counters map[string]uint64 `json:"counters"`
	// StartupCheck is the outcome of the start-up self check.
	StartupCheck Check `json:"startup_check"`
	// FailOpen reports the queue bypass policy: true means covered traffic
	// passes in plain text while the daemon is not reading the queue.
	FailOpen bool `json:"fail_open"`
}

// Check is the result of a self check.
type Check struct {
	// Result is "passed", "failed" or "skipped".
	Result string `json:"result"`
	// Detail explains a failure or skip.
	Detail string `json:"detail,omitempty"`
}

// VersionInfo is the result of the "version" operation.
type VersionInfo struct {
	// Protocol is the control protocol version the server speaks.
	Protocol int `json:"protocol"`
	// Daemon is the daemon's version string.
	Daemon string `json:"daemon"`
}

package engine

import (
	"net/netip"

	"github.com/tcpcryptd/tcpcrypt/crypto"
	"github.com/tcpcryptd/tcpcrypt/eno"
)

// EventKind names a connection-level event reported through Config.Events.
type EventKind uint8

const (
	// EventEncrypted: keys are installed and the connection is protected.
	EventEncrypted EventKind = iota + 1
	// EventFallback: ENO failed and the connection goes on as plain TCP
	// (or is aborted right after, under the Required policy).
	EventFallback
	// EventAbort: the connection was reset toward both ends.
	EventAbort
)

func (k EventKind) String() string {
	switch k {
	case EventEncrypted:
		return "encrypted"
	case EventFallback:
		return "fallback"
	case EventAbort:
		return "abort"
	}
	return "event(?)"
}

// Event describes one connection-level event. Reason is the stable name of
// the fallback or abort reason (the same names Counters.Each uses).
type Event struct {
	Kind          EventKind
	Local, Remote netip.AddrPort
	Mode          Mode
	Reason        string
	Err           error // the error behind an abort, if any
	Role          eno.Role
	TEP           uint8
	AEAD          crypto.AEADID
	SessionID     []byte // EventEncrypted only; a copy
	Resumed       bool
}

// KeyLogKind says which secrets a Config.KeyLog call carries.
type KeyLogKind uint8

const (
	// KeyLogES carries N_A and the ECDH shared secret ES of a fresh key
	// exchange (RFC 8548 §3.3).
	KeyLogES KeyLogKind = iota + 1
	// KeyLogSS carries the session id and the session secret ss[i] that
	// keys the connection (RFC 8548 §3.4, §3.5).
	KeyLogSS
)

func (k KeyLogKind) String() string {
	switch k {
	case KeyLogES:
		return "TCPCRYPT_ES"
	case KeyLogSS:
		return "TCPCRYPT_SS"
	}
	return "TCPCRYPT_?"
}

// event reports ev for flow f, when the caller asked for events.
func (e *Engine) event(f *flow, ev Event) {
	if e.cfg.Events == nil {
		return
	}
	ev.Local, ev.Remote, ev.Mode = f.key.local, f.key.remote, f.mode
	ev.Role, ev.TEP, ev.AEAD, ev.Resumed = f.neg.Role, f.neg.TEP, f.aead, f.resumed
	e.cfg.Events(ev)
}

// keyLog hands secrets to Config.KeyLog when it is set.
func (e *Engine) keyLog(kind KeyLogKind, a, b []byte) {
	if e.cfg.KeyLog != nil {
		e.cfg.KeyLog(kind, a, b)
	}
}

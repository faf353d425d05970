package bind

import (
	"errors"
	"fmt"
)

// Sentinel errors. PSK and ConnSAS wrap them with context; match them with
// errors.Is.
var (
	// ErrMismatch: the peer's MAC is not the one a holder of the key would
	// send for its role on this connection. Either the peer holds a
	// different key, or the two ends do not share one tcpcrypt session: a
	// man in the middle terminated tcpcrypt on each side, or a relay
	// spliced two connections, or the message was replayed or reflected.
	ErrMismatch = errors.New("bind: peer's proof does not match")
	// ErrSameRole: the peer claims the same TCP-ENO role as this end. Both
	// ends of one tcpcrypt session have opposite roles (RFC 8547 §4.3), so
	// the two ends are on different sessions (for example two clients that
	// each dialled a relay), or our own message was reflected back. It
	// matches ErrMismatch too.
	ErrSameRole = fmt.Errorf("%w: both ends claim the same role", ErrMismatch)
	// ErrNotEncrypted: the connection has no tcpcrypt session id (plain
	// TCP: the port is not covered, TCP-ENO fell back, or the handshake did
	// not finish before the deadline; or conn is not a TCP connection).
	// These errors also match ctl.ErrNotEncrypted, and ctl.ErrNotFound
	// when the daemon does not track the connection at all, or
	// ctl.ErrNotTCP.
	ErrNotEncrypted = errors.New("bind: connection is not encrypted by tcpcrypt")
	// ErrTimeout: the exchange did not finish before the context's deadline
	// (or DefaultTimeout). The error PSK returns then matches
	// context.DeadlineExceeded too.
	ErrTimeout = errors.New("bind: timed out")
	// ErrProtocol: the peer sent bytes that are not a bind message of a
	// version this package speaks, or closed the connection before its
	// message was complete: typically a peer that does not run the binding.
	ErrProtocol = errors.New("bind: protocol error")
	// ErrShortKey: the key given to PSK is shorter than MinKeyLen.
	ErrShortKey = errors.New("bind: key too short")
)

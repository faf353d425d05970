package ctl

import (
	"errors"
	"fmt"
)

// Code is a protocol error code carried in an error reply.
type Code string

// Error codes of protocol version 1.
const (
	CodeNotFound           Code = "not_found"           // the daemon does not track the connection (or the rule)
	CodeNoSession          Code = "no_session"          // the connection is not encrypted, or not yet (RFC 8547 §5.1)
	CodeForbidden          Code = "forbidden"           // the peer may not perform this operation
	CodeBadRequest         Code = "bad_request"         // malformed request, unknown op, invalid arguments
	CodeTooLarge           Code = "too_large"           // request line over the limit; the server closes
	CodeUnsupportedVersion Code = "unsupported_version" // "v" is not a version the server speaks
	CodeBusy               Code = "busy"                // too many clients; the server closes
	CodeInternal           Code = "internal"            // the daemon failed to serve the request
)

// Sentinel errors. Every error reply from the daemon is an *Error that
// matches the sentinel of its code with errors.Is; the application helpers
// (ConnInfo, SessionID, WaitSession) fail with one of the first six.
var (
	// ErrNotEncrypted: the daemon tracks the connection, or tracked it, and
	// it is plain TCP: TCP-ENO fell back (the peer has no tcpcrypt, or
	// another reason the error message names) or the connection was
	// aborted. It will not become encrypted. Code no_session.
	ErrNotEncrypted = errors.New("ctl: connection is not encrypted")
	// ErrPending: the daemon tracks the connection and its key exchange has
	// not finished (role A is keyed only when the peer's Init2 arrives,
	// RFC 8548 §3.3). Ask again, or use WaitSession. It does not match
	// ErrNotEncrypted. Code no_session with "pending".
	ErrPending = errors.New("ctl: key exchange not finished yet")
	// ErrNotFound: the daemon does not track the connection: its port is
	// not covered by a rule, it began before the daemon started, or it has
	// ended. For rules.del, there is no such rule. Code not_found.
	ErrNotFound = errors.New("ctl: not tracked by tcpcryptd")
	// ErrDaemonUnavailable: no daemon answered at the control address (the
	// socket is absent or refused, the connection was lost, or a call timed
	// out).
	ErrDaemonUnavailable = errors.New("ctl: tcpcrypt daemon unavailable")
	// ErrUntrustedDaemon: the process serving the unix control socket does
	// not run as the expected user (root for tcpcryptd), so its answers are
	// not believed. See Dialer.DaemonUID.
	ErrUntrustedDaemon = errors.New("ctl: control socket is not served by tcpcryptd's user")
	// ErrNotTCP: the application helpers were given a connection whose
	// addresses are not TCP addresses.
	ErrNotTCP = errors.New("ctl: not a TCP connection")

	// ErrNoSession is ErrNotEncrypted under its former name (the same
	// value, kept for existing callers); new code should use
	// ErrNotEncrypted.
	ErrNoSession = ErrNotEncrypted

	// ErrForbidden: mutations need root on the unix socket.
	ErrForbidden = errors.New("ctl: forbidden")
	// ErrBadRequest: malformed request or invalid arguments.
	ErrBadRequest = errors.New("ctl: bad request")
	// ErrTooLarge: a request line exceeded the server's limit.
	ErrTooLarge = errors.New("ctl: request too large")
	// ErrUnsupportedVersion: client and server speak different versions.
	ErrUnsupportedVersion = errors.New("ctl: unsupported protocol version")
	// ErrBusy: the server has too many clients.
	ErrBusy = errors.New("ctl: server busy")
	// ErrInternal: the daemon failed internally.
	ErrInternal = errors.New("ctl: internal daemon error")
	// ErrProtocol: the server's reply violated the protocol.
	ErrProtocol = errors.New("ctl: protocol error")
)

var codeSentinel = map[Code]error{
	CodeNotFound:           ErrNotFound,
	CodeNoSession:          ErrNotEncrypted,
	CodeForbidden:          ErrForbidden,
	CodeBadRequest:         ErrBadRequest,
	CodeTooLarge:           ErrTooLarge,
	CodeUnsupportedVersion: ErrUnsupportedVersion,
	CodeBusy:               ErrBusy,
	CodeInternal:           ErrInternal,
}

// Error is an error reply: a code and the daemon's message.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	// Pending is set with CodeNoSession when the key exchange has not
	// finished yet; the error then matches ErrPending, not ErrNotEncrypted.
	Pending bool `json:"pending,omitempty"`
}

// Error returns "ctl: " and the daemon's message, which names the
// connection (or rule) once and says what is wrong with it.
func (e *Error) Error() string {
	if e.Message == "" {
		return "ctl: " + string(e.Code)
	}
	return "ctl: " + e.Message
}

// Is makes an *Error match the sentinel of its code: ErrPending instead of
// ErrNotEncrypted for a pending no_session.
func (e *Error) Is(target error) bool {
	if e.Code == CodeNoSession && e.Pending {
		return target == ErrPending
	}
	s, ok := codeSentinel[e.Code]
	return ok && s == target
}

// daemonError wraps a transport failure so that it matches ErrDaemonUnavailable.
func daemonError(addr, op string, err error) error {
	return fmt.Errorf("%w at %s: %s: %w", ErrDaemonUnavailable, addr, op, err)
}

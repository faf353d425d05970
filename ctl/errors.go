package ctl

import (
	"errors"
	"fmt"
)

// Code is a protocol error code carried in an error reply.
type Code string

// Error codes of protocol version 1.
const (
	CodeNotFound           Code = "not_found"           // the daemon does not track the connection or rule
	CodeNoSession          Code = "no_session"          // the connection has no session id (RFC 8547 §5.1)
	CodeForbidden          Code = "forbidden"           // the peer may not perform this operation
	CodeBadRequest         Code = "bad_request"         // malformed request, unknown op, invalid arguments
	CodeTooLarge           Code = "too_large"           // request line over the limit; the server closes
	CodeUnsupportedVersion Code = "unsupported_version" // "v" is not a version the server speaks
	CodeBusy               Code = "busy"                // too many clients; the server closes
	CodeInternal           Code = "internal"            // the daemon failed to serve the request
)

// Sentinel errors. A Backend returns (wrapped) ErrNotFound, ErrNoSession or
// ErrBadRequest to select the reply's code; any other error is "internal".
// On the client side every error reply is an *Error that matches the sentinel
// of its code with errors.Is.
var (
	// ErrNotFound: the daemon does not know the connection (or rule).
	ErrNotFound = errors.New("ctl: not found")
	// ErrNoSession: the daemon knows the connection but it has no session id,
	// because TCP-ENO fell back, the flow is plain, or the handshake has not
	// finished (RFC 8547 §5.1 requires an error in that case).
	ErrNoSession = errors.New("ctl: connection has no session id")
	// ErrNotEncrypted is what the application helpers (SessionID, ConnInfo)
	// report for a connection without a session id; an *Error with code
	// no_session matches both ErrNoSession and ErrNotEncrypted.
	ErrNotEncrypted = errors.New("ctl: connection is not encrypted")
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
	// ErrDaemonUnavailable: no daemon answered at the address (not running,
	// socket missing or refused, connection lost, or timed out).
	ErrDaemonUnavailable = errors.New("ctl: tcpcrypt daemon unavailable")
	// ErrNotTCP: the application helpers were given a connection whose
	// addresses are not TCP addresses.
	ErrNotTCP = errors.New("ctl: not a TCP connection")
	// ErrProtocol: the server's reply violated the protocol.
	ErrProtocol = errors.New("ctl: protocol error")
)

var codeSentinel = map[Code]error{
	CodeNotFound:           ErrNotFound,
	CodeNoSession:          ErrNoSession,
	CodeForbidden:          ErrForbidden,
	CodeBadRequest:         ErrBadRequest,
	CodeTooLarge:           ErrTooLarge,
	CodeUnsupportedVersion: ErrUnsupportedVersion,
	CodeBusy:               ErrBusy,
	CodeInternal:           ErrInternal,
}

// Error is an error reply: a code and a human-readable message.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// Error implements error.
func (e *Error) Error() string {
	if e.Message == "" {
		return "ctl: " + string(e.Code)
	}
	return fmt.Sprintf("ctl: %s: %s", e.Code, e.Message)
}

// Is makes an *Error match the sentinel of its code (and ErrNotEncrypted for
// no_session).
func (e *Error) Is(target error) bool {
	if s, ok := codeSentinel[e.Code]; ok && s == target {
		return true
	}
	return e.Code == CodeNoSession && target == ErrNotEncrypted
}

// codeOf maps a handler error to the reply code.
func codeOf(err error) Code {
	var ce *Error
	switch {
	case errors.As(err, &ce):
		return ce.Code
	case errors.Is(err, ErrNoSession), errors.Is(err, ErrNotEncrypted):
		return CodeNoSession
	case errors.Is(err, ErrNotFound):
		return CodeNotFound
	case errors.Is(err, ErrForbidden):
		return CodeForbidden
	case errors.Is(err, ErrBadRequest):
		return CodeBadRequest
	}
	return CodeInternal
}

// daemonError wraps a transport failure so that it matches ErrDaemonUnavailable.
func daemonError(addr, op string, err error) error {
	return fmt.Errorf("%w at %s: %s: %w", ErrDaemonUnavailable, addr, op, err)
}

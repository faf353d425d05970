package ctl

import (
	"context"
	"net/netip"
)

// Backend is what the daemon provides to the control server. Calls may run
// concurrently from several clients; each gets a context with the server's
// BackendTimeout. Errors select the reply code: wrap ErrNotFound,
// ErrNoSession or ErrBadRequest; anything else is reported as "internal".
type Backend interface {
	// Status returns the daemon's summary.
	Status(ctx context.Context) (Status, error)
	// Connections returns every tracked connection, in any order. The server
	// streams them one per line, so there is no count limit.
	Connections(ctx context.Context) ([]Conn, error)
	// SessionID returns the connection with endpoints local and remote (as
	// seen from this host). It returns ErrNotFound when the daemon does not
	// track the connection and ErrNoSession when it does but the connection
	// has no session id (ENO fell back, plain flow, handshake unfinished). A
	// nil error with an empty Conn.SessionID is treated as ErrNoSession.
	SessionID(ctx context.Context, local, remote netip.AddrPort) (Conn, error)
	// Rules returns the installed policy rules.
	Rules(ctx context.Context) ([]Rule, error)
	// AddRule installs a rule (already validated with Rule.Validate) and
	// persists it. A duplicate or conflicting rule should wrap ErrBadRequest.
	AddRule(ctx context.Context, r Rule) error
	// DelRule removes the rule equal to r; ErrNotFound when there is none.
	DelRule(ctx context.Context, r Rule) error
}

package ctlserver

import (
	"context"
	"net/netip"

	"github.com/tcpcryptd/tcpcrypt/ctl"
)

// Backend is what the daemon provides to the control server. Calls may run
// concurrently from several clients; each gets a context with the server's
// BackendTimeout. Errors select the reply code: return a *ctl.Error, or wrap
// ctl.ErrNotFound, ctl.ErrNotEncrypted, ctl.ErrPending or ctl.ErrBadRequest;
// anything else is reported as "internal".
type Backend interface {
	// Status returns the daemon's summary.
	Status(ctx context.Context) (ctl.Status, error)
	// Connections returns every tracked connection, in any order. The server
	// streams them one per line, so there is no count limit.
	Connections(ctx context.Context) ([]ctl.Conn, error)
	// SessionID returns the connection with endpoints local and remote (as
	// seen from this host). It fails with ctl.ErrNotFound when the daemon
	// does not track the connection, ctl.ErrNotEncrypted when it is plain
	// TCP (fell back, aborted) and ctl.ErrPending while its key exchange
	// runs. The server puts "LOCAL -> REMOTE: " before the error's text (a
	// *ctl.Error's Message), so the error should not name the connection. A
	// nil error with an empty Conn.SessionID is treated as ctl.ErrNotEncrypted.
	SessionID(ctx context.Context, local, remote netip.AddrPort) (ctl.Conn, error)
	// Rules returns the installed policy rules.
	Rules(ctx context.Context) ([]ctl.Rule, error)
	// AddRule installs a rule (already validated with Rule.Validate) and
	// persists it. A duplicate or conflicting rule should wrap ctl.ErrBadRequest.
	AddRule(ctx context.Context, r ctl.Rule) error
	// DelRule removes the rule equal to r; ctl.ErrNotFound when there is none.
	DelRule(ctx context.Context, r ctl.Rule) error
	// FlushCache removes the cached resumption secret that the tracked
	// connection local -> remote used or created, so it can never be
	// resumed, and keeps the connection from caching one later (RFC 8548
	// §3.5 "flush cache state"). It returns how many secrets went (0 or
	// more) and fails with ctl.ErrNotFound when the daemon does not track
	// the connection. As for SessionID, the error should not name the
	// connection.
	FlushCache(ctx context.Context, local, remote netip.AddrPort) (int, error)
}

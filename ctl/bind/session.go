package bind

// This file is the package's only dependency on package ctl: it asks the
// local daemon for a connection's session id and role.

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/tcpcryptd/tcpcrypt/ctl"
)

// sessionSource returns conn's session id and whether this end is TCP-ENO
// role A. Its errors wrap ErrNotEncrypted when the connection has no
// session id. Tests replace it.
var sessionSource = sessionOf

// sessionOf asks the daemon at the default address ($TCPCRYPT_CTL or
// ctl.DefaultAddress) for conn's session with ctl.WaitSession: right after
// connect the tcpcrypt key exchange may still be in flight (RFC 8548 §3.3),
// and WaitSession waits it out until ctx ends. A connection that fell back
// to plain TCP, that the daemon does not track, or that is not TCP is plain
// at once.
func sessionOf(ctx context.Context, conn net.Conn) (sid []byte, isA bool, err error) {
	info, err := ctl.WaitSession(ctx, conn)
	switch {
	case err == nil:
		return info.SessionID, info.Role == ctl.RoleA, nil
	case errors.Is(err, ctl.ErrPending):
		return nil, false, fmt.Errorf("%w: no session id before the deadline: %w", ErrNotEncrypted, err)
	case errors.Is(err, ctl.ErrNotEncrypted):
		return nil, false, fmt.Errorf("%w: %w", ErrNotEncrypted, err)
	case errors.Is(err, ctl.ErrNotFound), errors.Is(err, ctl.ErrNotTCP):
		// Not tracked (no rule covers the port) or not TCP at all.
		return nil, false, fmt.Errorf("%w (%w): %w", ErrNotEncrypted, ctl.ErrNotEncrypted, err)
	default:
		return nil, false, fmt.Errorf("bind: %w", err)
	}
}

package bind

// This file is the package's only dependency on package ctl: it asks the
// local daemon for a connection's session id and role.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/tcpcryptd/tcpcrypt/ctl"
)

// sessionSource returns conn's session id and whether this end is TCP-ENO
// role A. Its errors wrap ErrNotEncrypted when the connection has no
// session id. Tests replace it.
var sessionSource = sessionOf

// sessionPoll bounds the wait between two lookups while the daemon knows
// the connection but its key exchange has not finished.
const sessionPoll = 50 * time.Millisecond

// sessionOf asks the daemon at the default address ($TCPCRYPT_CTL or
// ctl.DefaultAddress) for conn's session. Right after connect the tcpcrypt
// key exchange may still be in flight (the daemon reports no_session until
// Init1 and Init2 have passed, RFC 8548 §3.3), so a no_session answer is
// asked again until ctx ends; a connection the daemon does not track, or
// one that is not TCP, is plain at once.
func sessionOf(ctx context.Context, conn net.Conn) (sid []byte, isA bool, err error) {
	c, err := ctl.Dial(ctx, "")
	if err != nil {
		return nil, false, fmt.Errorf("bind: %w", err)
	}
	defer c.Close()
	wait := 5 * time.Millisecond
	var pending error // the last no_session answer
	for {
		info, err := c.ConnInfo(ctx, conn)
		switch {
		case err == nil:
			return info.SessionID, info.Role == "A", nil
		case errors.Is(err, ctl.ErrNotFound), errors.Is(err, ctl.ErrNotTCP):
			// Not tracked (no rule covers the port, or TCP-ENO fell back
			// and the flow was forgotten), or not TCP at all.
			return nil, false, fmt.Errorf("%w (%w): %w", ErrNotEncrypted, ctl.ErrNotEncrypted, err)
		case errors.Is(err, ctl.ErrNotEncrypted):
			pending = err
		case pending != nil && ctx.Err() != nil:
			// The deadline cut a lookup short while we waited for the
			// key exchange: the answer so far is "no session".
			return nil, false, fmt.Errorf("%w: no session id before the deadline (%w): %w", ErrNotEncrypted, ctx.Err(), pending)
		default:
			return nil, false, fmt.Errorf("bind: %w", err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, false, fmt.Errorf("%w: no session id before the deadline (%w): %w", ErrNotEncrypted, ctx.Err(), pending)
		case <-t.C:
		}
		wait = min(2*wait, sessionPoll)
	}
}

package ctl

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/tcpcryptd/tcpcrypt/internal/ctlproto"
)

// ProtocolVersion is the control protocol version this package speaks.
const ProtocolVersion = 1

// Info is what an application learns about its own encrypted connection.
type Info struct {
	// SessionID is the connection's session id (RFC 8547 §5.1): an opaque
	// value of at least 33 bytes whose first byte names the TEP. Both ends
	// of one connection see the same value.
	SessionID []byte
	// Role is this end's TCP-ENO role: RoleA for the end that opened the
	// connection (net.Dial), RoleB for the end that accepted it. Bind it
	// together with the session id (RFC 8547 §5.1).
	Role Role
	// TEP and AEAD name the negotiated encryption protocol and cipher,
	// e.g. "TCPCRYPT_ECDHE_Curve25519" and "AEAD_AES_128_GCM".
	TEP  string
	AEAD string
	// Resumed says the session was resumed from a cached secret
	// (RFC 8548 §3.5) rather than keyed by a fresh key exchange.
	Resumed bool
}

// DefaultWaitTimeout bounds WaitSession when its context has no deadline.
const DefaultWaitTimeout = 10 * time.Second

// SessionID returns the session id of conn (a TCP connection of this host),
// asking the daemon at the default address; the errors are those of
// ConnInfo.
func SessionID(conn net.Conn) ([]byte, error) {
	info, err := ConnInfo(conn)
	return info.SessionID, err
}

// ConnInfo returns the session id, role and algorithms of conn, asking the
// daemon at the default address ($TCPCRYPT_CTL, else DefaultAddress) within
// DefaultTimeout. It fails with an error matching
//
//   - ErrNotEncrypted: the connection is plain TCP (the message says why,
//     e.g. the peer has no tcpcrypt);
//   - ErrPending: the key exchange has not finished (just after Dial or
//     Accept; see WaitSession);
//   - ErrNotFound: the daemon does not track it (port not covered);
//   - ErrDaemonUnavailable: no daemon answered;
//   - ErrUntrustedDaemon: the control socket is not served by root;
//   - ErrNotTCP: conn is not a TCP connection.
func ConnInfo(conn net.Conn) (Info, error) {
	return ConnInfoContext(context.Background(), conn)
}

// ConnInfoContext is ConnInfo bounded by ctx (DefaultTimeout when ctx has
// no deadline).
func ConnInfoContext(ctx context.Context, conn net.Conn) (Info, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	c, err := Dial(ctx, "")
	if err != nil {
		return Info{}, err
	}
	defer c.Close()
	return c.ConnInfo(ctx, conn)
}

// WaitSession is ConnInfo that waits out the key exchange: while the daemon
// answers ErrPending it asks again, after 5 ms at first and then at most
// every 100 ms, until the session is keyed, another error comes back, or
// ctx ends (then the error matches ErrPending and wraps ctx's cause).
// Without a deadline on ctx, DefaultWaitTimeout applies. Role A's session
// is keyed when the peer's Init2 arrives, one round trip after the first
// data segment (RFC 8548 §3.3); role B's when Init1 arrives; so right after
// Dial or Accept, wait with this rather than calling ConnInfo.
func WaitSession(ctx context.Context, conn net.Conn) (Info, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultWaitTimeout)
		defer cancel()
	}
	c, err := Dial(ctx, "")
	if err != nil {
		return Info{}, err
	}
	defer c.Close()
	return c.WaitSession(ctx, conn)
}

// SessionID is like the package-level SessionID, using c.
func (c *Client) SessionID(ctx context.Context, conn net.Conn) ([]byte, error) {
	info, err := c.ConnInfo(ctx, conn)
	return info.SessionID, err
}

// ConnInfo is like the package-level ConnInfo, using c.
func (c *Client) ConnInfo(ctx context.Context, conn net.Conn) (Info, error) {
	local, remote, err := ConnAddrs(conn)
	if err != nil {
		return Info{}, err
	}
	cn, err := c.SessionIDFor(ctx, local, remote)
	if err != nil {
		return Info{}, err
	}
	return Info{
		SessionID: cn.SessionID,
		Role:      cn.Role,
		TEP:       cn.TEP.String(),
		AEAD:      cn.AEAD,
		Resumed:   cn.Resumed,
	}, nil
}

// Poll intervals of WaitSession.
const (
	waitFirst = 5 * time.Millisecond
	waitMax   = 100 * time.Millisecond
)

// WaitSession is like the package-level WaitSession, using c; ctx bounds
// the wait (without a deadline, each call is bounded by DefaultTimeout and
// the wait only by ctx).
func (c *Client) WaitSession(ctx context.Context, conn net.Conn) (Info, error) {
	pause := waitFirst
	var pending error
	for {
		info, err := c.ConnInfo(ctx, conn)
		if !isPending(err) {
			if err != nil && pending != nil && ctx.Err() != nil {
				// The context ended during a call: still pending, as far
				// as the daemon last said.
				return Info{}, fmt.Errorf("%w (%w)", pending, context.Cause(ctx))
			}
			return info, err
		}
		pending = err
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return Info{}, fmt.Errorf("%w (%w)", err, context.Cause(ctx))
		case <-t.C:
		}
		pause = min(2*pause, waitMax)
	}
}

func isPending(err error) bool {
	ce, ok := err.(*Error)
	return ok && ce.Is(ErrPending)
}

// ConnAddrs returns conn's local and remote TCP endpoints in the daemon's
// canonical form: IPv4-mapped IPv6 addresses unmapped, zones dropped. It
// fails with ErrNotTCP when either address is not a *net.TCPAddr.
func ConnAddrs(conn net.Conn) (local, remote netip.AddrPort, err error) {
	la, ok1 := conn.LocalAddr().(*net.TCPAddr)
	ra, ok2 := conn.RemoteAddr().(*net.TCPAddr)
	if !ok1 || !ok2 || la == nil || ra == nil {
		return local, remote, fmt.Errorf("%w: %s -> %s", ErrNotTCP, conn.LocalAddr(), conn.RemoteAddr())
	}
	return ctlproto.Canonical(la.AddrPort()), ctlproto.Canonical(ra.AddrPort()), nil
}

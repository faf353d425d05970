package ctl

import (
	"context"
	"fmt"
	"net"
	"net/netip"
)

// Info is what an application learns about its own connection.
type Info struct {
	// SessionID is the connection's session id (RFC 8547 §5.1): an opaque
	// value of at least 33 bytes whose first byte names the TEP.
	SessionID []byte
	// Role is this end's TCP-ENO role, "A" or "B". Applications binding the
	// session id into their authentication must bind the role too (RFC 8547
	// §5.1), e.g. by hashing role || session id.
	Role string
	// TEP and AEAD name the negotiated encryption protocol and cipher.
	TEP  string
	AEAD string
	// Encrypted is true when the connection is protected by tcpcrypt. It is
	// always true when the error is nil.
	Encrypted bool
}

// SessionID returns the session id of conn (a TCP connection of this host),
// asking the daemon at the default address. It fails with an error matching
// ErrNotEncrypted when the connection has no session id, ErrNotFound when the
// daemon does not track it, ErrDaemonUnavailable when no daemon answers, and
// ErrNotTCP for a non-TCP conn.
func SessionID(conn net.Conn) ([]byte, error) {
	info, err := ConnInfo(conn)
	return info.SessionID, err
}

// ConnInfo returns the session id, role and algorithms of conn, asking the
// daemon at the default address; the errors are those of SessionID.
func ConnInfo(conn net.Conn) (Info, error) {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	c, err := Dial(ctx, "")
	if err != nil {
		return Info{}, err
	}
	defer c.Close()
	return c.ConnInfo(ctx, conn)
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
		return Info{}, fmt.Errorf("ctl: %s -> %s: %w", local, remote, err)
	}
	if cn.Role != "A" && cn.Role != "B" {
		return Info{}, fmt.Errorf("%w: session of %s -> %s has role %q", ErrProtocol, local, remote, cn.Role)
	}
	return Info{
		SessionID: cn.SessionID,
		Role:      cn.Role,
		TEP:       cn.TEP.String(),
		AEAD:      cn.AEAD,
		Encrypted: true,
	}, nil
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
	return unmapAddrPort(la.AddrPort()), unmapAddrPort(ra.AddrPort()), nil
}

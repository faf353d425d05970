// Package ctl is the client library of tcpcryptd's control socket: what an
// application imports to learn the tcpcrypt session of its own TCP
// connections, and what tcnetstat and tcpcryptctl use. (The daemon's server
// side is internal; docs/ctl-protocol.md describes the wire protocol.)
//
// # Session ids for applications
//
// An application that authenticates its peer can bind the tcpcrypt session
// into that authentication (RFC 8547 §5.1), so that a man in the middle who
// terminated tcpcrypt on both sides is caught: ConnInfo(conn) returns the
// session id and this end's Role. Both ends see the same session id; the
// end that opened the connection (net.Dial) is RoleA and the end that
// accepted it is RoleB. Bind both, e.g. each side proves knowledge of a
// shared secret with HMAC(secret, role || session id) and checks the peer's
// proof against the peer's role (Role.Peer). See Example_bindSessionID.
//
// Right after Dial or Accept the key exchange may still be running (role A
// is keyed only when the peer's Init2 arrives, RFC 8548 §3.3): ConnInfo then
// fails with ErrPending. WaitSession waits it out, polling the daemon, and
// is what an application should call first thing on a new connection.
//
// Failures match one sentinel each with errors.Is:
//
//	ErrNotEncrypted       plain TCP: TCP-ENO fell back (e.g. the peer has no tcpcrypt; the message says why) or the connection was aborted
//	ErrPending            the key exchange has not finished yet
//	ErrNotFound           the daemon does not track the connection: its port is not covered by a rule, or it began before the daemon
//	ErrDaemonUnavailable  no daemon answered (socket absent or refused, timeout)
//	ErrUntrustedDaemon    the control socket is not served by root
//	ErrNotTCP             the net.Conn is not TCP
//
// Error messages name the connection once, for example
//
//	ctl: 10.77.0.2:59884 -> 10.77.0.1:8095: not encrypted: fell back to plain TCP 3s ago: the peer has no tcpcrypt (no TCP-ENO option in its SYN or SYN-ACK) (no_peer_eno)
//	ctl: 10.77.0.2:59884 -> 10.77.0.1:8095: not tracked by tcpcryptd (no rule covers its port, or it began before the daemon started)
//
// # Which daemon
//
// The package-level functions dial DefaultAddress (/run/tcpcrypt/ctl), or
// the address in $TCPCRYPT_CTL when it is set (a socket path, or :PORT for
// the daemon's loopback TCP port; see ParseAddress). Dial and Dialer give a
// Client for several calls, with contexts.
//
// When it connects, the client learns which uid serves the socket: on a
// unix socket from SO_PEERCRED, on the loopback TCP port by asking the
// kernel (sock_diag) who owns the server's end. It believes session ids only
// from a server running as root or as the client's own uid
// (Dialer.DaemonUID), so that another local user cannot stand in for a
// daemon that is not running and hand out session ids of its choosing.
//
// Every call is bounded: by the context's deadline, or else by
// DefaultTimeout (WaitSession: DefaultWaitTimeout).
package ctl

// Package ctl is tcpcryptd's control plane: a versioned JSON-lines protocol,
// the server the daemon runs, and the client library used by tcnetstat,
// tcpcryptctl and by applications that want their connection's session id.
//
// # Applications
//
// An application that authenticates its peer can bind the tcpcrypt session
// into that authentication (RFC 8547 §5.1): ConnInfo(conn) returns the
// session id and this end's role, "A" or "B"; both must be bound, e.g. each
// side proves knowledge of a shared secret with HMAC(secret, role || id).
// Errors are matchable with errors.Is: ErrNotEncrypted (no session id: ENO
// fell back, plain flow, or handshake unfinished), ErrNotFound (the daemon
// does not track the connection), ErrDaemonUnavailable (no daemon answered)
// and ErrNotTCP. See Example_bindSessionID.
//
// # Protocol (version 1)
//
// A client connects to the unix socket (default /run/tcpcrypt/ctl) or to
// the loopback TCP port, and sends requests, one JSON object per line:
//
//	{"v":1,"id":7,"op":"sessid","args":{"local":"192.0.2.1:40000","remote":"[2001:db8::7]:443"}}
//
// "v" is ProtocolVersion; "id" is any unsigned integer and is echoed. Each
// request gets one final reply line:
//
//	{"v":1,"id":7,"ok":true,"result":{...}}
//	{"v":1,"id":7,"ok":false,"error":{"code":"no_session","message":"..."}}
//
// except netstat, which first streams one {"v":1,"id":7,"item":{Conn}} line
// per connection and then ends with {"v":1,"id":7,"ok":true,"result":{"count":N}};
// there is no limit on the number of connections. Operations: version,
// status, netstat, sessid, rules.list, rules.add, rules.del (see the Op
// constants). Error codes: not_found, no_session, forbidden, bad_request,
// too_large, unsupported_version, busy, internal (see the Code constants).
// Several requests may be sent on one connection.
//
// JSON member names are stable (they only grow). A Conn is
//
//	local, remote      "addr:port" strings, IPv6 as "[addr]:port", never 4-in-6
//	state              the daemon's flow state name
//	role               "A", "B" or ""
//	tep                {"name": ..., "id": ...}
//	aead               cipher name or ""
//	session_id         lower case hex (33 bytes for tcpcrypt) or ""
//	resumed            bool
//	bytes_in/out       plaintext bytes received/sent
//	frames_in/out      tcpcrypt frames received/sent
//	age_seconds        number
//	last_error         string, "" when none
//
// and a Rule is {"port", "side": local|remote|both, "prefix" (optional CIDR),
// "mode": opportunistic|required|exclude}.
//
// # Access control
//
// Read-only operations are open to every local user: the unix socket is
// mode 0666 (it is created under umask 077 and then opened up, so it is
// never briefly wider than intended). rules.add and rules.del are accepted
// only on the unix socket from a peer whose SO_PEERCRED uid is 0; on the TCP
// port they are always forbidden. The TCP port listens on 127.0.0.1 and ::1
// only.
//
// # Robustness
//
// The server bounds request lines (MaxRequestLine: a longer line gets a
// too_large reply and the connection is closed), idle time and reply write
// time per client, the number of clients (busy), and each backend call. A
// client that disconnects or stops reading ends only its own conversation.
// The client library puts a timeout on every call (DefaultTimeout, or the
// context's deadline). docs/ctl-protocol.md has the full description.
package ctl

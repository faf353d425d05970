// Package ctlserver is the server side of tcpcryptd's control protocol
// (docs/ctl-protocol.md): the listeners (a unix socket with SO_PEERCRED
// checks and stale-socket detection, loopback TCP), per-client limits and
// timeouts, authorisation of rule changes, and the request handler, which
// calls a Backend the daemon implements. The data types it serves are those
// of package ctl; the wire form is internal/ctlproto.
package ctlserver

// Package ctlproto holds the wire form of tcpcryptd's control protocol
// (version 1): the request and reply lines that the client library in ctl
// and the server in internal/ctlserver exchange, and the line reader both
// use. The data carried inside (connections, rules, status) are the ctl
// package's types; docs/ctl-protocol.md describes the protocol in full.
package ctlproto

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net/netip"
)

// ProtocolVersion is the control protocol version. Every request and reply
// line carries it as "v".
const ProtocolVersion = 1

// Size limits of the protocol.
const (
	// MaxRequestLine is the server's default limit on one request line,
	// newline included. A longer line gets a too_large reply and the
	// connection closes.
	MaxRequestLine = 64 << 10
	// MaxReplyLine is the client's limit on one reply line.
	MaxReplyLine = 16 << 20
)

// Op names an operation.
type Op string

// Operations of protocol version 1.
const (
	OpVersion   Op = "version"    // result: ctl.VersionInfo
	OpStatus    Op = "status"     // result: ctl.Status
	OpNetstat   Op = "netstat"    // streams ctl.Conn items, then result: NetstatResult
	OpSessID    Op = "sessid"     // args: SessIDArgs; result: ctl.Conn (with a session id)
	OpRulesList Op = "rules.list" // result: RulesResult
	OpRulesAdd  Op = "rules.add"  // args: ctl.Rule; no result; root on the unix socket only
	OpRulesDel  Op = "rules.del"  // args: ctl.Rule; no result; root on the unix socket only
	// OpCacheFlush flushes the resumption cache state of one connection
	// (RFC 8548 §3.5). args: SessIDArgs; result: CacheFlushResult; root on
	// the unix socket only.
	OpCacheFlush Op = "cache.flush"
)

// Mutates reports whether op changes daemon state (and so needs root).
func (op Op) Mutates() bool { return op == OpRulesAdd || op == OpRulesDel || op == OpCacheFlush }

// CacheFlushResult is the result of OpCacheFlush: how many cached session
// secrets went (0 when the connection left none in the cache).
type CacheFlushResult struct {
	Flushed int `json:"flushed"`
}

// Request is one request line.
type Request struct {
	// V is the protocol version; it must be ProtocolVersion.
	V int `json:"v"`
	// ID is chosen by the client and echoed in every line of the reply.
	ID uint64 `json:"id"`
	// Op is the operation.
	Op Op `json:"op"`
	// Args holds the operation's arguments, if any.
	Args json.RawMessage `json:"args,omitempty"`
}

// SessIDArgs are the arguments of OpSessID: the connection's endpoints as
// seen from the daemon's host.
type SessIDArgs struct {
	Local  netip.AddrPort `json:"local"`
	Remote netip.AddrPort `json:"remote"`
}

// Error is the "error" member of an error reply.
type Error struct {
	// Code is one of the codes listed in docs/ctl-protocol.md (ctl.Code).
	Code string `json:"code"`
	// Message is one complete human-readable sentence about the failure.
	Message string `json:"message"`
	// Pending, only with code no_session, says that the daemon tracks the
	// connection and its key exchange has not finished yet: asking again
	// shortly may succeed. Omitted when false (protocol version 1 grew it;
	// older clients ignore it).
	Pending bool `json:"pending,omitempty"`
}

// Response is a final reply line. Exactly one of Result (when OK, and only
// for operations with a result) and Error (when !OK) is present.
type Response struct {
	V      int             `json:"v"`
	ID     uint64          `json:"id"`
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *Error          `json:"error,omitempty"`
}

// StreamItem is one streamed line of a netstat reply. It has no "ok" member;
// the final line of the reply is a Response.
type StreamItem struct {
	V    int             `json:"v"`
	ID   uint64          `json:"id"`
	Item json.RawMessage `json:"item"`
}

// NetstatResult is the result of the final netstat line: how many items were
// streamed before it.
type NetstatResult struct {
	Count int `json:"count"`
}

// ErrLineTooLong is returned by ReadLine for a line over the limit.
var ErrLineTooLong = errors.New("ctl: line too long")

// ReadLine returns the next line (without its newline) of at most max bytes,
// newline excluded. A final line without a newline is returned at EOF.
func ReadLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(line)+len(frag) > max+1 || (err != nil && len(line)+len(frag) > max) {
			return nil, ErrLineTooLong
		}
		line = append(line, frag...)
		switch {
		case err == nil:
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			return line, nil
		}
		return nil, err
	}
}

// Canonical turns an IPv4-mapped IPv6 address into plain IPv4 and drops any
// zone, so that both ends look connections up in one form.
func Canonical(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port())
}

// LoopbackHosts lists the loopback addresses a TCP control address with
// host h stands for: h itself, or both 127.0.0.1 and ::1 when h is the zero
// Addr.
func LoopbackHosts(h netip.Addr) []netip.Addr {
	if h.IsValid() {
		return []netip.Addr{h}
	}
	return []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1}), netip.IPv6Loopback()}
}

// RulesResult is the result of OpRulesList; R is ctl.Rule (a type
// parameter, because the rule type belongs to package ctl, which imports
// this one).
type RulesResult[R any] struct {
	Rules []R `json:"rules"`
}

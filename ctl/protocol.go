package ctl

import (
	"encoding/json"
	"net/netip"
)

// ProtocolVersion is the control protocol version this package speaks. Every
// request and reply line carries it as "v".
const ProtocolVersion = 1

// Size limits of the protocol.
const (
	// MaxRequestLine is the default limit on one request line, newline
	// included. A longer line gets a too_large reply and the connection closes.
	MaxRequestLine = 64 << 10
	// MaxReplyLine is the client's limit on one reply line.
	MaxReplyLine = 16 << 20
)

// Op names an operation.
type Op string

// Operations of protocol version 1.
const (
	OpVersion   Op = "version"    // result: VersionInfo
	OpStatus    Op = "status"     // result: Status
	OpNetstat   Op = "netstat"    // streams Conn items, then result: NetstatResult
	OpSessID    Op = "sessid"     // args: SessIDArgs; result: Conn (with a session id)
	OpRulesList Op = "rules.list" // result: RulesResult
	OpRulesAdd  Op = "rules.add"  // args: Rule; no result; root on the unix socket only
	OpRulesDel  Op = "rules.del"  // args: Rule; no result; root on the unix socket only
)

// mutates reports whether op changes daemon state (and so needs root).
func (op Op) mutates() bool { return op == OpRulesAdd || op == OpRulesDel }

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

// RulesResult is the result of OpRulesList.
type RulesResult struct {
	Rules []Rule `json:"rules"`
}

package engine

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/tcpcryptd/tcpcrypt/crypto"
	"github.com/tcpcryptd/tcpcrypt/eno"
)

// FlowInfo describes one tracked connection end, for status tools and for
// applications asking for their session id (RFC 8547 §5.1).
type FlowInfo struct {
	Local, Remote netip.AddrPort
	State         State
	Mode          Mode
	Role          eno.Role      // RoleNone until ENO succeeded
	TEP           uint8         // negotiated TEP id (0 until ENO succeeded)
	AEAD          crypto.AEADID // 0 until keys exist
	SessionID     []byte        // nil until keys exist (a copy)
	Resumed       bool
	BytesOut      uint64 // plaintext bytes the local stack sent, framed
	BytesIn       uint64 // plaintext bytes delivered to the local stack
	FramesOut     uint64
	FramesIn      uint64
	Age           time.Duration
	Abort         AbortReason // why the flow was aborted, if it was
	LastError     string      // the error behind the abort, if any
}

// Snapshot returns every tracked flow, sorted by local then remote
// endpoint.
func (e *Engine) Snapshot() []FlowInfo {
	now := e.cfg.Now()
	out := make([]FlowInfo, 0, len(e.tab.flows))
	for _, f := range e.tab.flows {
		out = append(out, f.info(now))
	}
	slices.SortFunc(out, func(a, b FlowInfo) int {
		if c := a.Local.Compare(b.Local); c != 0 {
			return c
		}
		return cmp.Compare(a.Remote.String(), b.Remote.String())
	})
	return out
}

// Lookup returns the flow with the given endpoints.
func (e *Engine) Lookup(local, remote netip.AddrPort) (FlowInfo, bool) {
	f := e.tab.flows[flowKey{local: local, remote: remote}]
	if f == nil {
		return FlowInfo{}, false
	}
	return f.info(e.cfg.Now()), true
}

func (f *flow) info(now time.Time) FlowInfo {
	fi := FlowInfo{
		Local: f.key.local, Remote: f.key.remote,
		State: f.state, Mode: f.mode,
		Role: f.neg.Role, TEP: f.neg.TEP,
		AEAD: f.aead, Resumed: f.resumed,
		BytesOut: f.snd.bytesOut, BytesIn: f.rcv.bytesIn,
		FramesOut: f.snd.frameCount, FramesIn: f.rcv.frameCount,
		Age:   now.Sub(f.created),
		Abort: f.abortReason,
	}
	if f.sessionID != nil {
		fi.SessionID = append([]byte(nil), f.sessionID...)
	}
	if f.lastErr != nil {
		fi.LastError = f.lastErr.Error()
	}
	return fi
}

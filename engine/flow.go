package engine

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/tcpcryptd/tcpcrypt/crypto"
	"github.com/tcpcryptd/tcpcrypt/eno"
	"github.com/tcpcryptd/tcpcrypt/packet/seq"
)

// State is the state of one tracked connection.
//
//	active open                           passive open
//	outbound SYN+ENO                       inbound SYN+ENO
//	      |                                      |
//	StateSynSent                          StateSynReceived   (our SYN-ACK carries Answer)
//	      | inbound SYN-ACK, ENO ok              |
//	StateENOAgreed                               |
//	      | our next segment (45 02)             | inbound ACK with ENO
//	      +------------> StateKeyExchange <------+   (Init1 / Init2 in flight)
//	                            | keys derived (or at once when resumed)
//	                      StateEstablished
//	                            | both FINs acknowledged
//	                       StateClosed
//
// ENO failing in the first states forgets the flow (plain TCP), or aborts
// it under the Required policy. From any state, a RST moves to StateReset
// and an abort (verification failure, bad Init, ...) to StateAborted; the
// last three states linger for CloseTimeout and then the flow is forgotten.
type State uint8

const (
	StateSynSent     State = iota // active: our SYN carried ENO; waiting for the SYN-ACK
	StateSynReceived              // passive: the peer's SYN carried ENO; our SYN-ACK answers it
	StateENOAgreed                // active: the SYN-ACK settled ENO; encryption starts with our next segment
	StateKeyExchange              // encryption on; Init messages in flight, keys missing
	StateEstablished              // keys both ways
	StateClosed                   // both FINs acknowledged; lingering
	StateAborted                  // the engine aborted the connection; lingering
	StateReset                    // an endpoint's RST passed; lingering
)

var stateNames = [...]string{
	StateSynSent:     "syn-sent",
	StateSynReceived: "syn-received",
	StateENOAgreed:   "eno-agreed",
	StateKeyExchange: "key-exchange",
	StateEstablished: "established",
	StateClosed:      "closed",
	StateAborted:     "aborted",
	StateReset:       "reset",
}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// halfOpen reports whether the handshake has not finished.
func (s State) halfOpen() bool { return s <= StateENOAgreed }

// encrypting reports whether segments are rewritten (encryption is on).
func (s State) encrypting() bool { return s == StateKeyExchange || s == StateEstablished }

// dead reports whether the flow only lingers.
func (s State) dead() bool { return s >= StateClosed }

// Dead reports whether the connection is over (closed, aborted or reset)
// and the flow only lingers to answer stragglers.
func (s State) Dead() bool { return s.dead() }

// flowKey identifies a flow by its local and remote endpoints. Each end of a
// loopback connection is its own flow (DESIGN.md invariant 9).
type flowKey struct {
	local, remote netip.AddrPort
}

// heldPkt is a segment kept while keys are missing.
type heldPkt struct {
	token Token
	pkt   []byte // our copy
	at    time.Time
}

// synInfo is what the engine remembers of one side's SYN.
type synInfo struct {
	isn     seq.Value
	mss     uint16 // 0 if absent
	wscale  int8   // -1 if absent
	sackOK  bool
	ts      bool
	seen    bool
	synWnd  uint16
	eno     []byte // the SYN-form ENO option exactly as sent/received (nil if none)
	enoCnt  int
	enoOpt  eno.Option // parsed (peer side only), Raw cleared
	tsValue uint32
}

// flow is one tracked connection end.
type flow struct {
	key   flowKey
	state State
	mode  Mode
	opts  Options // per-connection controls (controls.go)
	// protected: the caller was told (Result.Protect) to keep this flow
	// queued; forget tells it to stop (Result.Unprotect).
	protected bool
	active    bool // we saw the local SYN-only: the local stack opened actively
	created   time.Time
	seen      time.Time // last packet

	local, peer synInfo // the two SYNs
	neg         eno.Result
	carryENO    bool // RFC 8547 §4.6: add 45 02 until a non-SYN segment arrives
	simOpen     bool // the peer's SYN crossed ours (RFC 8547 §4.3)
	sentSYNACK  bool // simultaneous open: our SYN-ACK went out

	// Key exchange.
	priv       *crypto.PrivateKey
	nonce      []byte // our Init nonce
	initMsg    []byte // our Init message as sent (nil on resumption)
	peerInit   []byte // the peer's Init message as received
	offered    []crypto.AEADID
	sched      *crypto.Schedule
	enc        *crypto.Encoder
	open       opener
	aead       crypto.AEADID
	sessionID  []byte
	resumed    bool
	wasA       bool // role in the original session (fixes traffic directions)
	chain      crypto.ChainID
	chainIndex uint32
	resume     *resumeOffer // active side: resumption offered in our SYN
	resumeAns  *resumeOffer // passive side: resumption accepted in our SYN-ACK

	snd      sendHalf
	rcv      recvHalf
	sndReady bool // snd initialised (its C stream exists)
	rcvReady bool
	keys     bool // both directions have keys

	held      []heldPkt
	heldBytes int

	// Last values the local stack sent, for segments the engine builds.
	lastWnd     uint16
	haveWnd     bool
	lastTSval   uint32
	peerTSval   uint32
	ackedToPeer int64 // highest wire ack we sent the peer (an offset)
	urgP        int64 // P offset of the last urgent byte announced by URGp

	// Last ack/window given to the local stack, to tell whether an
	// inbound segment that completes no frame says something new.
	toLocalAck seq.Value
	toLocalWnd uint16

	// Engine retransmission of its own bytes (Init, rekey frames).
	rtxAt    time.Time
	rtxRTO   time.Duration
	rtxTries int    // retransmissions since the engine's bytes last made progress
	rtxMark  uint64 // snd.engineAcked when rtxTries was last reset

	// Re-delivery of plaintext the local stack has not acknowledged.
	redeliverAt time.Time
	lastDeliver time.Time

	// Rekey bookkeeping.
	genStart      time.Time
	bytesSinceGen uint64

	charged     int64 // bytes charged to the budget (Engine.account)
	chargedSend int64 // of which for the sending half

	abortReason AbortReason
	lastErr     error
	rstBudget   int

	// Table bookkeeping.
	deadline time.Time // timer heap key
	heapIdx  int
	list     *flowList // eviction list the flow is on, or nil
	prev     *flow
	next     *flow
}

func (f *flow) buffered() int {
	n := f.heldBytes
	if f.sndReady {
		n += f.snd.buffered()
	}
	if f.rcvReady {
		n += f.rcv.buffered() + f.rcv.plain.size()
	}
	return n
}

// release frees everything the flow holds except held packets (which the
// engine settles first).
func (f *flow) release() {
	f.snd.release()
	f.rcv.release()
	if f.sched != nil {
		f.sched.Destroy()
		f.sched = nil
	}
	f.enc = nil
	f.open = opener{}
	f.priv = nil
	clear(f.nonce)
	f.initMsg, f.peerInit = nil, nil
}

// opener opens the peer's frames, tracking the remote generation
// (RFC 8548 §3.8): a frame with the rekey bit is opened with the next
// generation's key, and the generation is raised only once it verifies.
type opener struct {
	sched *crypto.Schedule
	dir   crypto.Direction
	gen   uint32
}

// openFrame verifies frame, found at wire offset off, and appends its data
// to dst (crypto.FrameKey.OpenData: straight into dst, no copy).
func (o *opener) openFrame(dst, frame []byte, off uint64) (crypto.Plain, []byte, error) {
	g := o.gen
	if frame[0]&1 != 0 {
		g++
		if g == 0 {
			return crypto.Plain{}, dst, crypto.ErrStreamExhausted
		}
	}
	k, err := o.sched.Key(g, o.dir)
	if err != nil {
		return crypto.Plain{}, dst, err
	}
	p, dst, err := k.OpenData(dst, off, frame)
	if err != nil {
		return crypto.Plain{}, dst, err
	}
	o.gen = g
	return p, dst, nil
}

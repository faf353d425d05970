package nfq

import (
	"context"
	"time"

	"github.com/florianl/go-nfqueue/v2"

	"github.com/tcpcryptd/tcpcrypt/engine"
)

// Engine is the part of *engine.Engine that a worker drives. Process borrows
// pkt for the call only. Implementations need not be safe for concurrent use:
// each worker owns one.
type Engine interface {
	Process(pkt []byte, dir engine.Dir) engine.Result
	Tick(now time.Time) engine.Result
	// NextDeadline is when Tick should run next; the zero time means no
	// timer is pending.
	NextDeadline() time.Time
	// AbortFlow aborts a live flow (see engine.Engine.AbortFlow).
	AbortFlow(f engine.Flow, r engine.AbortReason) (engine.Result, bool)
}

// Guard keeps the packets of protected flows coming to the queues, whatever
// the per-port rules say and whether a daemon reads the queues or not
// (DESIGN.md invariant 11). A worker calls Protect for a Result's Protect
// list before it carries out anything else in that Result, and Unprotect for
// its Unprotect list after. Both must be safe for concurrent use.
type Guard interface {
	Protect(flows ...engine.Flow) error
	Unprotect(flows ...engine.Flow) error
}

var _ Engine = (*engine.Engine)(nil)

// Queue is one NFQUEUE handle. *nfqueue.Nfqueue implements it; nfqtest.Queue
// is an in-memory fake.
//
// RegisterWithErrorFunc starts delivering packets to fn on one goroutine
// owned by the queue, until ctx ends or fn or errfn returns non-zero. The
// Attribute's Payload is valid only during the call. SetVerdict and
// SetVerdictModPacket may be called from any goroutine. Close stops delivery
// and waits for the delivering goroutine to finish.
type Queue interface {
	RegisterWithErrorFunc(ctx context.Context, fn nfqueue.HookFunc, errfn nfqueue.ErrorFunc) error
	SetVerdict(id uint32, verdict int) error
	SetVerdictModPacket(id uint32, verdict int, packet []byte) error
	Close() error
}

var _ Queue = (*nfqueue.Nfqueue)(nil)

// Injector sends packets the engine made. ToPeer sends toward the wire,
// ToLocal toward the local stack; both take a complete IPv4 or IPv6 packet,
// which they may keep only for the call. Both must be safe for concurrent
// use: every worker calls them.
type Injector interface {
	ToPeer(pkt []byte) error
	ToLocal(pkt []byte) error
}

// Netfilter hook numbers (enum nf_inet_hooks) as reported in the NFQUEUE
// packet header.
const (
	HookPreRouting  uint8 = 0 // NF_INET_PRE_ROUTING
	HookLocalIn     uint8 = 1 // NF_INET_LOCAL_IN: inbound segments
	HookForward     uint8 = 2 // NF_INET_FORWARD
	HookLocalOut    uint8 = 3 // NF_INET_LOCAL_OUT: outbound segments
	HookPostRouting uint8 = 4 // NF_INET_POST_ROUTING
)

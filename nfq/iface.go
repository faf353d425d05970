package nfq

import (
	"time"

	"github.com/tcpcryptd/tcpcrypt/engine"
)

// Engine is the part of *engine.Engine that a queue drives. Process borrows
// pkt for the call only. Implementations need not be safe for concurrent use:
// each queue owns one.
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
// (DESIGN.md invariant 11). A queue calls Protect for a Result's Protect
// list before it carries out anything else in that Result, and Unprotect for
// its Unprotect list after. Both must be safe for concurrent use.
type Guard interface {
	Protect(flows ...engine.Flow) error
	Unprotect(flows ...engine.Flow) error
}

var _ Engine = (*engine.Engine)(nil)

// Queue is one NFQUEUE handle's netlink socket, at the message boundary:
// the dispatcher reads datagrams of NFQUEUE messages from it (packets, and
// error replies to verdicts) and writes datagrams of verdict messages to it,
// in the kernel's wire format (include/uapi/linux/netfilter/
// nfnetlink_queue.h). The queue must already be bound and configured.
// *KernelQueue is the real socket; nfqtest.Queue is an in-memory fake that
// speaks the same messages.
//
// Recv blocks until at least one datagram is ready, then reads as many as are
// ready, up to len(bufs): datagram i into bufs[i], its full length in
// sizes[i] (larger than len(bufs[i]) when it was cut). Only one goroutine
// calls Recv. Send writes the concatenation of iov as one datagram; it may be
// called from any goroutine. Close makes a blocked and every later Recv fail
// with an error matching net.ErrClosed; the kernel drops the packets still
// waiting for a verdict.
type Queue interface {
	Recv(bufs [][]byte, sizes []int) (int, error)
	Send(iov [][]byte) error
	Close() error
}

// Injector sends packets the engine made. ToPeer sends toward the wire,
// ToLocal toward the local stack; both take a complete IPv4 or IPv6 packet,
// which they may keep only for the call. Both must be safe for concurrent
// use: every queue calls them.
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

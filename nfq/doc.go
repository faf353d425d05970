// Package nfq is the kernel I/O glue of tcpcryptd: it reads the TCP segments
// that the rules package steers into NFQUEUE, hands each one to a rewriting
// engine, writes the engine's verdict back to the kernel, and sends the
// packets the engine makes through marked raw sockets.
//
// Nothing here decides anything about TCP-ENO or tcpcrypt: that is the
// engine's job. nfq only moves bytes, keeps order and counts.
//
// # Data path
//
// One NFQUEUE handle is opened per queue number (Config.QueueNum,
// Config.QueueCount), and each queue has its own engine, made by
// Config.NewEngine. A queue's reader goroutine does everything for its
// packets: it reads many datagrams per system call (recvmmsg) into receive
// buffers it reuses, parses the NFQUEUE messages in place, works out the
// direction from the netfilter hook (NF_INET_LOCAL_OUT is engine.Outbound,
// NF_INET_LOCAL_IN is engine.Inbound), runs the engine on the segment where
// it lies in the receive buffer, and batches the verdicts, which it sends
// with the packet bytes passed by iovec, in as few sendmsg calls per receive
// batch as the socket's send buffer allows (raised to take batches of up to
// 1 MiB). There is no hand-off between goroutines and no copy of the segment.
//
// The rules pick a packet's queue from a hash of its addresses and ports that
// is the same in both directions (nftables' symhash, see rules.QueueMap; the
// address-pair hash of xt_NFQUEUE on kernels without it), so both directions
// of a connection, and both ends of a loopback connection seen at the two
// hooks, reach the same queue and engine, and the segments of one flow are
// processed in the order the kernel queued them, while connections between
// the same two hosts spread over all queues.
//
// A second goroutine per queue runs the engine's Tick whenever its
// NextDeadline passes; a lock per queue, taken once per receive batch by the
// reader and once per tick, keeps the two (and Inspect) apart.
//
// Engines are not safe for concurrent use: each belongs to its queue. A
// Result is applied in this order:
//
//  0. the flows in Protect are handed to Config.Guard, synchronously: the
//     rest of the Result may hold the flow's first encrypted bytes, and from
//     then on its packets must never bypass the daemon. If the guard fails,
//     nothing of the Result leaves (no injection; the segment and every
//     release dropped) and those flows are aborted through AbortFlow;
//  1. ToPeer, then ToLocal packets are injected (Injector), so that a
//     daemon-made packet such as Init2 precedes the data it enables;
//  2. a Hold verdict stores the segment's queue and packet id under its
//     token;
//  3. Released entries get their late verdicts, in the engine's order;
//  4. the segment's own verdict is written: Accept as NF_ACCEPT, Drop as
//     NF_DROP, Replace as NF_ACCEPT with the new packet bytes;
//  5. the flows in Unprotect are handed to Config.Guard to be released.
//
// # Engine panics
//
// A panic in Process is recovered: the segment is dropped, the flow it
// belongs to is aborted (AbortFlow with engine.AbortInternal: RSTs both
// ways) so that it cannot go on with half-updated state, and Stats.Panics
// counts it; the error log (with the stack) is rate-limited to one message a
// second. A panic in Tick is recovered and counted. A panic in the abort
// itself is not recovered: the process dies, and the guard keeps encrypted
// flows from leaking until the next instance destroys them.
//
// # Packets nfq does not hand to an engine
//
// Segments seen at a hook other than LOCAL_OUT or LOCAL_IN (only possible if
// someone else queues to our queue numbers) and packets that are not TCP are
// accepted unchanged and counted. A TCP packet nfq cannot key (truncated
// before the ports, an IP fragment, ESP, an unknown IP version) is counted
// as a parse error and still handed to the queue's engine, which decides;
// the engine drops what it cannot parse, because such a segment may belong
// to an encrypted flow. Netlink messages that do not parse are skipped and
// counted (Stats.BadMessages); error replies to verdicts are counted as
// receive errors.
//
// # Shutdown and held packets
//
// A held packet is plaintext that the engine could not yet encrypt (keys were
// missing). Accepting it unmodified could put application bytes on the wire
// in the clear on a connection that negotiated encryption, so on shutdown
// every held packet is dropped (NF_DROP). Dropping is safe: TCP retransmits. The kernel applies
// the same policy on its own: when the queue handle is unbound or its socket
// closed, it drops every packet still waiting for a verdict.
//
// # Errors and logging
//
// Nothing is logged per packet. Every anomaly has a counter (Stats). The
// injected *slog.Logger sees lifecycle events (start, stop, fatal queue
// errors) and, at most once a second, engine panics and guard failures.
//
// A reader keeps reading after ENOBUFS (the kernel dropped messages because
// the socket buffer was full; counted) and after other receive errors
// (counted; a thousand in a row end Run with an error), and stops when the
// socket is closed or Run's context ends.
//
// # go-nfqueue
//
// go-nfqueue opens the netlink socket. Binding, configuration, reading and
// verdicts are written here on that socket (KernelQueue), because
// go-nfqueue binds a queue only together with starting its own reader,
// which receives one message per system call into a new buffer, parses it
// into pointers and calls its hook on its own goroutine.
package nfq

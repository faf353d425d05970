// Package rules owns the nftables rules that steer selected TCP ports of this
// host into NFQUEUE for tcpcryptd.
//
// The daemon owns exactly one table, "inet tcpcrypt" (TableName). Everything
// else in the ruleset is left alone: the table is replaced atomically in one
// netlink batch (delete-if-exists, add table, chains and rules), and removed on
// exit the same way; the ruleset is never flushed.
//
// The table holds two guard sets (see GuardSet4); with several queues, two
// verdict maps, two select chains and one regular chain per queue and bypass
// flag (below); and two base chains:
//
//   - "output" (hook output, priority raw = -300, OutputPriority). Outbound
//     segments are queued before connection tracking (-200) looks at them, so
//     conntrack only ever sees what goes on the wire (ciphertext sequence
//     space). Inbound segments are tracked in prerouting, before any input
//     hook, i.e. also in wire space; both directions then agree and conntrack
//     window tracking does not flag the rewritten flow as invalid.
//   - "input" (hook input, priority mangle = -150, InputPriority): after routing
//     and conntrack, before the usual filter chains (priority 0), so the stack
//     and later filter rules see the plaintext segments the daemon hands back,
//     as with a mangle-table rewrite.
//
// Each chain first lets through packets that carry the daemon's local mark
// (Mark, DefaultMark): segments the daemon hands to the local stack itself
// through its marked raw socket (DESIGN.md invariant 6). The output chain also
// lets through the peer mark (PeerMark, DefaultPeerMark) of segments the daemon
// sends toward the peer; the input chain does not, because on a loopback
// connection the peer is local and its end of the flow must see them. Then one rule per policy entry and direction matches
// TCP, the port on the right header field, optionally the peer's address
// prefix, and either accepts (exclude) or queues the packet.
//
// # Fail-open is a policy
//
// A queue rule with the bypass flag lets packets pass untouched when no process
// listens on the queue: with the daemon dead, covered connections go out in
// cleartext, although the admin asked for encryption. Without bypass, they are
// dropped (black-holed) until the daemon is back. Config.Bypass chooses per Mode;
// DefaultConfig fails open for opportunistic entries and closed for required
// ones.
//
// # Queue expression
//
// The native nft "queue" expression is preferred. Kernels built without it but
// with nft_compat and the xtables NFQUEUE target get the compat form instead:
// an xt target "NFQUEUE" revision 3 whose payload is struct xt_NFQ_info_v3.
// DetectQueue decides which one works by probing the kernel.
//
// # Several queues
//
// With more than one queue (Config.QueueCount), a queueing rule does not end
// in the queue expression itself but in a jump to a select chain, which takes
// nftables' symmetric flow hash modulo the queue count, looks it up in a
// verdict map ("queues", or "queues-bypass" for rules with the bypass flag)
// whose entry i jumps to a regular chain holding the queue expression for
// queue QueueNum+i alone, and drops what the lookup misses (see QueueMap). Both directions of a connection reach the same queue, and so
// does a guarded flow, while connections between two hosts spread over all
// queues. DetectFlowHash probes for the hash expression; without it, and with
// Config.AddressHash, the queue expression balances by the address pair.
package rules

// Package enginetest is an in-process test harness for the packet-rewriting
// engine: two real TCP stacks (gVisor netstack) joined by a simulated wire with
// seeded impairment, and a pluggable Middle on each host where the engine sits.
//
// The data path for a packet sent by host A to host B is:
//
//	A's stack -> [A.GSO coalescing] -> A.Middle(Outbound) -> link A->B
//	  (loss, coalesce, split, duplicate, reorder, delay+jitter)
//	  -> Config.OnWire -> capture -> B.Middle(Inbound) -> B's stack
//
// A Middle's toLocal output goes straight into its own host's stack; its toWire
// output goes onto the link toward the peer. A nil Middle is a host without an
// engine (pass-through).
//
// The package is used only by tests; it is a normal package so that tests of
// several packages (engine, nfq) can share it. It may import gVisor; nothing
// outside tests may import it.
package enginetest

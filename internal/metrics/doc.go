// Package metrics exports tcpcryptd's statistics in the Prometheus text
// format.
//
// Nothing here runs on the packet path. A Collector reads the daemon's
// state when it is scraped: the engine counters summed over every worker
// (through the dispatcher's Inspect, as `tcpcryptctl status` does), the
// queue readers' counters, and the kernel's per-queue drop counters from
// /proc/net/netfilter/nfnetlink_queue. The one thing counted as it
// happens, Handshakes, is fed by the engine's connection events: one call
// per encrypted connection, never one per packet.
//
// A Server serves a private registry at GET /metrics and, given a Probe,
// the health endpoints GET /readyz (ready: the daemon's Readiness, its
// table, its queues and its workers all say so) and GET /livez; it has read
// and write timeouts and stops when its context ends.
package metrics

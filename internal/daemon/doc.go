// Package daemon is tcpcryptd itself: it wires the packet rewriter (engine),
// the queue reader (nfq), the nftables rules (rules) and the control server
// (ctl) into one long-running process, and owns the daemon's lifecycle.
//
// # Start-up
//
// Run checks privileges (CAP_NET_ADMIN and CAP_NET_RAW), loads the state
// file (rules added at run time, persisted as JSON), and looks for a table
// "inet tcpcrypt" left by an earlier instance. If there is one, that instance
// died without cleaning up, and connections it was encrypting are still open:
// the new engines know nothing of them, would pass their segments untouched,
// and the applications' next bytes would go out in plaintext. So every
// connection on a covered port is destroyed (sock_diag SOCK_DESTROY) before
// the queue rules go live again; see restart.go. Connections that existed
// before any daemon ran (no stale table) are left alone: they never were
// encrypted. Then the NFQUEUE dispatcher starts (one engine per worker,
// sharing one session cache for resumption), the rules are applied, the
// control server listens, the start-up check runs, and "ready" is logged.
//
// # Rules
//
// The policy in force is the union of the configured rules (--rule, or
// "rule" lines of the configuration file) and the state-file rules (added
// with tcpcryptctl). The nftables table and the engines' per-connection
// policy are built from the same list: the engine's policy reads an
// atomically swapped snapshot, so a rule change applies to new connections
// at once, without a restart.
//
// # Signals
//
// SIGTERM and SIGINT (a cancelled context) stop the control server, remove
// the table, and stop the queue readers. SIGHUP re-reads the configuration
// and state files and re-applies the rules.
package daemon

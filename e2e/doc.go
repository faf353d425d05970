// Package e2e holds tcpcryptd's end-to-end tests: each test builds its own
// network namespaces (two hosts over a veth pair, or two hosts and a router
// between them), starts the real binaries inside them (tcpcryptd, tcnetstat,
// tcpcryptctl, and the test programs in e2e/cmd and internal/cmd/chaosbox),
// moves checkable byte streams through real kernels, and watches the wire
// with an AF_PACKET capture.
//
// The tests need root (namespaces, nftables, NFQUEUE, raw sockets) and skip
// themselves with a message otherwise; CI runs them as root. They need the
// ip (iproute2) and nft (nftables) commands. Addresses are 10.99.x.0/24 and
// fd99::/64 inside the tests' own namespaces only; nothing touches the
// host's network. Every process a test starts is killed by its PID, and
// every namespace removed, when the test ends, pass or fail.
//
// Run them alone with
//
//	go test -count=1 -v ./e2e/
package e2e

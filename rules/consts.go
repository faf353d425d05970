package rules

import "github.com/google/nftables"

// Names and numbers shared by the rule set and the queue reader (nfq/). They are
// defined here, once, so that the two cannot drift apart.
const (
	// TableName is the name of the one table the daemon owns (family inet).
	TableName = "tcpcrypt"
	// OutputChainName is the base chain on the output hook.
	OutputChainName = "output"
	// InputChainName is the base chain on the input hook.
	InputChainName = "input"

	// DefaultMark is the packet mark (SO_MARK) of what the daemon hands to the
	// local stack itself; packets carrying it skip both chains. 0x7463 is "tc"
	// in ASCII.
	DefaultMark uint32 = 0x7463
	// DefaultPeerMark is the mark of what the daemon sends toward the peer
	// itself (Init messages, its own frames, RSTs). Only the output chain skips
	// it: when the peer is local too (loopback), the input chain must queue the
	// packet so that the receiving end's engine sees it.
	DefaultPeerMark uint32 = 0x7464
	// DefaultQueueNum is the first NFQUEUE number the rules send packets to.
	DefaultQueueNum uint16 = 7463
	// DefaultQueueCount is the number of queues used by default.
	DefaultQueueCount uint16 = 1

	// OutputPriority is the output chain's priority: raw (-300), before
	// conntrack. See the package documentation.
	OutputPriority nftables.ChainPriority = -300
	// InputPriority is the input chain's priority: mangle (-150).
	InputPriority nftables.ChainPriority = -150
)

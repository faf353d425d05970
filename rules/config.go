package rules

import "fmt"

// Config holds the queue and mark settings of a rule set. Start from
// DefaultConfig: the zero Config is invalid (mark 0).
type Config struct {
	// QueueNum is the first NFQUEUE number.
	QueueNum uint16
	// QueueCount is how many consecutive queues, starting at QueueNum, the
	// traffic is spread over; 0 means 1. By default the rules pick the queue
	// from a hash of the connection (both addresses and both ports) that is
	// symmetric in source and destination, so both directions of a connection
	// land on the same queue and connections between two hosts spread over
	// all queues (see QueueMap).
	QueueCount uint16
	// AddressHash leaves the choice to the NFQUEUE target's own hash of the
	// address pair (also symmetric), for kernels without nft_hash: all
	// connections between two hosts then share one queue.
	AddressHash bool
	// CPUFanout picks the queue by the current CPU instead of a hash
	// (needs QueueCount > 1). Then the two directions of one connection may reach
	// different queues, so the reader must share flow state across them.
	CPUFanout bool
	// Mark is the packet mark of packets the daemon hands to the local stack;
	// both chains let packets with exactly this mark through without queueing.
	// Must not be 0.
	Mark uint32
	// PeerMark is the packet mark of packets the daemon sends toward the peer;
	// only the output chain lets them through, so a loopback peer's input
	// chain still queues them. Must not be 0 nor equal Mark.
	PeerMark uint32
	// Bypass chooses fail-open per mode; see BypassPolicy.
	Bypass BypassPolicy
}

// BypassPolicy says, per mode, whether queue rules carry the bypass flag.
//
// With bypass, packets pass unqueued and untouched when no process listens on
// the queue (the daemon is down or restarting): connections keep working, but in
// cleartext. Without bypass they are dropped until the daemon is back. This is a
// security policy, so it is spelled out rather than implied. It is distinct
// from the queue reader's fail-open flag (NFQA_CFG_F_FAIL_OPEN), which covers a
// full queue while the daemon runs.
type BypassPolicy struct {
	// Opportunistic is the bypass flag for ModeOpportunistic entries.
	Opportunistic bool
	// Required is the bypass flag for ModeRequired entries. Setting it lets
	// "required" traffic leak in cleartext whenever the daemon is not running.
	Required bool
}

// For returns the bypass flag for mode m (false for ModeExclude, which does not
// queue).
func (b BypassPolicy) For(m Mode) bool {
	switch m {
	case ModeOpportunistic:
		return b.Opportunistic
	case ModeRequired:
		return b.Required
	}
	return false
}

// DefaultConfig returns queue DefaultQueueNum, DefaultQueueCount queue(s), mark
// DefaultMark, and bypass for opportunistic entries only: opportunistic traffic
// fails open, required traffic fails closed.
func DefaultConfig() Config {
	return Config{
		QueueNum:   DefaultQueueNum,
		QueueCount: DefaultQueueCount,
		Mark:       DefaultMark,
		PeerMark:   DefaultPeerMark,
		Bypass:     BypassPolicy{Opportunistic: true, Required: false},
	}
}

// queueCount is QueueCount with 0 read as 1.
func (c Config) queueCount() uint16 {
	if c.QueueCount == 0 {
		return 1
	}
	return c.QueueCount
}

// Validate reports an ErrConfig-wrapped error when the mark is 0, the queue
// range runs past 65535, CPUFanout is set with a single queue, or both
// CPUFanout and AddressHash are set.
func (c Config) Validate() error {
	if c.Mark == 0 || c.PeerMark == 0 {
		return fmt.Errorf("%w: marks must not be 0", ErrConfig)
	}
	if c.Mark == c.PeerMark {
		return fmt.Errorf("%w: mark and peer mark must differ", ErrConfig)
	}
	if last := uint32(c.QueueNum) + uint32(c.queueCount()) - 1; last > 0xffff {
		return fmt.Errorf("%w: queues %d..%d exceed 65535", ErrConfig, c.QueueNum, last)
	}
	if c.CPUFanout && c.queueCount() < 2 {
		return fmt.Errorf("%w: CPU fanout needs more than one queue", ErrConfig)
	}
	if c.CPUFanout && c.AddressHash {
		return fmt.Errorf("%w: CPU fanout and address hash are two different balancings", ErrConfig)
	}
	return nil
}

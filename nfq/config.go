package nfq

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors callers may match with errors.Is.
var (
	// ErrConfig matches errors for an unusable Config.
	ErrConfig = errors.New("nfq: bad config")
	// ErrQueueRange matches errors of ParseQueueRange.
	ErrQueueRange = errors.New("nfq: bad queue number or range")
	// ErrRunning is returned by a second call of Run.
	ErrRunning = errors.New("nfq: Run called twice")
	// ErrQueueClosed reports that a queue's socket went away while Run was
	// still supposed to read it.
	ErrQueueClosed = errors.New("nfq: queue closed unexpectedly")
)

// Defaults for Config fields left zero.
const (
	DefaultMaxQueueLen = 4096    // packets the kernel keeps waiting per queue
	DefaultReadBuffer  = 8 << 20 // bytes of netlink socket receive buffer
	// CopyRange is how many bytes of each packet we ask the kernel to copy
	// to us. The kernel caps the copy range at 65531 (the payload attribute's
	// 16-bit length counts its 4-byte header), so a longer packet (a GSO
	// packet over 64 KiB) arrives cut at 65531 bytes and is counted in
	// Stats.Truncated; the engine keeps the stack's packets under that
	// bound on the flows it tracks (its MSS ceiling).
	CopyRange = 0xffff
)

// Config configures a Dispatcher. NewEngine is required; every other zero
// field selects a default.
type Config struct {
	// QueueNum is the first NFQUEUE number and QueueCount how many
	// consecutive queues to read, one handle and one engine each (default
	// 1). They must match the rules (the daemon takes both from one place).
	QueueNum, QueueCount uint16
	// NewEngine makes the engine of queue QueueNum+i. Required.
	NewEngine func(queue int) (Engine, error)
	// Mark is the SO_MARK of the raw sockets that hand packets to the local
	// stack (ToLocal); both queue chains let it through. Open requires it.
	Mark uint32
	// PeerMark is the SO_MARK of the raw sockets that send toward the peer
	// (ToPeer); only the output chain lets it through, so that on loopback
	// the receiving end still sees the packet. Open requires it, different
	// from Mark.
	PeerMark uint32
	// MaxQueueLen bounds the packets the kernel keeps waiting for a verdict
	// per queue (default DefaultMaxQueueLen).
	MaxQueueLen uint32
	// FailOpen sets NFQA_CFG_F_FAIL_OPEN: when a queue is full the kernel
	// accepts packets unchanged instead of dropping them. That keeps
	// connections alive under overload at the price of sending plaintext on
	// flows that expected encryption; off by default.
	FailOpen bool
	// ReadBuffer is the netlink receive buffer in bytes (default
	// DefaultReadBuffer); it is set with SO_RCVBUFFORCE when permitted.
	ReadBuffer int
	// Guard protects the flows the engines report (Result.Protect). Nil
	// means none: then nothing keeps an encrypted flow's packets from
	// bypassing the daemon when it is gone, and Run logs a warning.
	Guard Guard
	// Now is the clock passed to Engine.Tick (default time.Now); use the
	// engines' clock.
	Now func() time.Time
	// Logger receives lifecycle events only (nil: discard).
	Logger *slog.Logger
}

func (c *Config) setDefaults() error {
	if c.QueueCount == 0 {
		c.QueueCount = 1
	}
	if last := uint32(c.QueueNum) + uint32(c.QueueCount) - 1; last > 0xffff {
		return fmt.Errorf("%w: queues %d..%d exceed 65535", ErrConfig, c.QueueNum, last)
	}
	if c.Mark != 0 && c.Mark == c.PeerMark {
		return fmt.Errorf("%w: mark and peer mark must differ", ErrConfig)
	}
	if c.MaxQueueLen == 0 {
		c.MaxQueueLen = DefaultMaxQueueLen
	}
	if c.ReadBuffer <= 0 {
		c.ReadBuffer = DefaultReadBuffer
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// ParseQueueRange parses the -p argument: one queue number ("7463") or an
// inclusive range ("7463-7466" or "7463:7466"). It returns the first queue
// and the number of queues.
func ParseQueueRange(s string) (first, count uint16, err error) {
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		lo, hi, isRange = strings.Cut(s, ":")
	}
	a, err := strconv.ParseUint(strings.TrimSpace(lo), 10, 16)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %q", ErrQueueRange, s)
	}
	if !isRange {
		return uint16(a), 1, nil
	}
	b, err := strconv.ParseUint(strings.TrimSpace(hi), 10, 16)
	if err != nil || b < a {
		return 0, 0, fmt.Errorf("%w: %q", ErrQueueRange, s)
	}
	if b-a+1 > 0xffff {
		return 0, 0, fmt.Errorf("%w: %q spans too many queues", ErrQueueRange, s)
	}
	return uint16(a), uint16(b - a + 1), nil
}

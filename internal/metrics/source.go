package metrics

import (
	"context"

	"github.com/tcpcryptd/tcpcrypt/engine"
	"github.com/tcpcryptd/tcpcrypt/nfq"
)

// Source is what a Collector reads at scrape time.
type Source interface {
	// Engines returns the engine counters summed over every worker and the
	// number of flows the engines track together.
	Engines(ctx context.Context) (engine.Counters, int, error)
	// NFQ returns the queue readers' and workers' counters and the
	// verdict-latency histogram.
	NFQ() nfq.Stats
}

// Dispatcher is the part of *nfq.Dispatcher that FromDispatcher reads.
type Dispatcher interface {
	Inspect(ctx context.Context, fn func(worker int, e nfq.Engine)) error
	Stats() nfq.Stats
}

var _ Dispatcher = (*nfq.Dispatcher)(nil)

// FromDispatcher returns a Source that reads d: each worker's engine on the
// worker's own goroutine (Dispatcher.Inspect), and d.Stats.
func FromDispatcher(d Dispatcher) Source { return dispatcherSource{d} }

type dispatcherSource struct{ d Dispatcher }

func (s dispatcherSource) Engines(ctx context.Context) (engine.Counters, int, error) {
	var (
		sum   engine.Counters
		flows int
	)
	err := s.d.Inspect(ctx, func(_ int, e nfq.Engine) {
		ee, ok := e.(*engine.Engine)
		if !ok {
			return
		}
		c := ee.Counters()
		AddCounters(&sum, &c)
		flows += ee.NumFlows()
	})
	if err != nil {
		return engine.Counters{}, 0, err
	}
	return sum, flows, nil
}

func (s dispatcherSource) NFQ() nfq.Stats { return s.d.Stats() }

// AddCounters adds src into dst, field by field.
func AddCounters(dst, src *engine.Counters) {
	dst.PacketsOut += src.PacketsOut
	dst.PacketsIn += src.PacketsIn
	dst.Accepted += src.Accepted
	dst.Replaced += src.Replaced
	dst.Dropped += src.Dropped
	dst.Held += src.Held
	dst.Released += src.Released
	dst.InjectedToPeer += src.InjectedToPeer
	dst.InjectedToLocal += src.InjectedToLocal
	dst.FlowsTracked += src.FlowsTracked
	dst.FlowsEncrypted += src.FlowsEncrypted
	dst.FlowsResumed += src.FlowsResumed
	dst.FlowsClosed += src.FlowsClosed
	dst.FlowsEvicted += src.FlowsEvicted
	dst.FlowsExpired += src.FlowsExpired
	dst.FlowsProtected += src.FlowsProtected
	dst.FramesOut += src.FramesOut
	dst.FramesIn += src.FramesIn
	dst.BytesOut += src.BytesOut
	dst.BytesIn += src.BytesIn
	dst.Rekeys += src.Rekeys
	dst.LivenessProbes += src.LivenessProbes
	dst.FramesShrunk += src.FramesShrunk
	dst.FramesGrown += src.FramesGrown
	dst.Retransmits += src.Retransmits
	dst.Redelivered += src.Redelivered
	dst.OOOPruned += src.OOOPruned
	for i := range dst.Drops {
		dst.Drops[i] += src.Drops[i]
	}
	for i := range dst.Aborts {
		dst.Aborts[i] += src.Aborts[i]
	}
	for i := range dst.Fallbacks {
		dst.Fallbacks[i] += src.Fallbacks[i]
	}
}

package nfq

import (
	"sync/atomic"
	"time"
)

// latencyBounds are the inclusive upper bounds of the verdict-latency
// buckets; one more bucket, without a bound, takes everything slower. They
// run from well under a typical immediate verdict (tens of microseconds) to
// the engine's hold timeouts (seconds).
var latencyBounds = [...]time.Duration{
	10 * time.Microsecond,
	25 * time.Microsecond,
	50 * time.Microsecond,
	100 * time.Microsecond,
	250 * time.Microsecond,
	500 * time.Microsecond,
	1 * time.Millisecond,
	2500 * time.Microsecond,
	5 * time.Millisecond,
	10 * time.Millisecond,
	25 * time.Millisecond,
	50 * time.Millisecond,
	100 * time.Millisecond,
	250 * time.Millisecond,
	500 * time.Millisecond,
	1 * time.Second,
	2500 * time.Millisecond,
}

// numLatencyBuckets counts the bounded buckets and the last, unbounded one.
const numLatencyBuckets = len(latencyBounds) + 1

// epoch is the origin of stamps. Durations since it are read from the
// monotonic clock, so a stamp is one int64 and wall-clock steps do not
// distort latencies.
var epoch = time.Now()

// stamp returns the monotonic time now, as a duration since epoch.
func stamp() time.Duration { return time.Since(epoch) }

// latency is one queue's verdict-latency histogram. observe only does
// atomic adds: no lock and no allocation on the packet path.
type latency struct {
	counts [numLatencyBuckets]atomic.Uint64
	sumNS  atomic.Uint64
}

// bucketOf returns the index of the bucket d falls in: the first whose
// bound is at least d, or the unbounded last one.
func bucketOf(d time.Duration) int {
	for i, b := range latencyBounds {
		if d <= b {
			return i
		}
	}
	return len(latencyBounds)
}

// observe records one verdict written d after its packet was read. A
// negative d (impossible with the monotonic clock) counts as zero.
func (l *latency) observe(d time.Duration) {
	d = max(d, 0)
	l.counts[bucketOf(d)].Add(1)
	l.sumNS.Add(uint64(d))
}

// Histogram is a snapshot of a latency histogram, summed over the queues.
//
// Counts are per bucket, not cumulative: Counts[i] for i < len(Bounds) is
// the number of observations d with Bounds[i-1] < d <= Bounds[i] (no lower
// limit for i == 0), and the last element, Counts[len(Bounds)], the number
// above the last bound. Count is the sum of Counts (so it always agrees with
// the buckets), Sum the total of every observation. Counts are taken one at
// a time while queues keep recording, so Sum may include a few observations
// that the buckets do not yet show, or the reverse.
type Histogram struct {
	// Bounds are the buckets' inclusive upper bounds, in increasing order.
	// They are the same in every snapshot; each snapshot has its own copy.
	Bounds []time.Duration
	// Counts has len(Bounds)+1 elements (see the type's documentation).
	Counts []uint64
	Sum    time.Duration
	Count  uint64
}

// add adds the histogram l into h, setting up h's bounds and buckets if h
// has none yet.
func (h *Histogram) add(l *latency) {
	if h.Counts == nil {
		h.Bounds = append([]time.Duration(nil), latencyBounds[:]...)
		h.Counts = make([]uint64, numLatencyBuckets)
	}
	for i := range l.counts {
		n := l.counts[i].Load()
		h.Counts[i] += n
		h.Count += n
	}
	h.Sum += time.Duration(l.sumNS.Load())
}

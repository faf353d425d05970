package metrics

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tcpcryptd/tcpcrypt/engine"
	"github.com/tcpcryptd/tcpcrypt/nfq"
)

// DefaultTimeout bounds how long a scrape waits for the workers to answer.
const DefaultTimeout = 5 * time.Second

// Options configure a Collector.
type Options struct {
	// Source is read at every scrape (required).
	Source Source
	// Handshakes, when set, is exported as tcpcrypt_handshakes_total.
	Handshakes *Handshakes
	// Memory, when set, is the engines' shared memory budget (an
	// *engine.Budget), exported as tcpcrypt_memory_bytes and
	// tcpcrypt_memory_limit_bytes.
	Memory Memory
	// QueueFile is the kernel's queue list ("": DefaultQueueFile). A file
	// that does not exist exports no kernel queue metrics.
	QueueFile string
	// Queues restricts the kernel queue metrics to these queue numbers
	// (nil: every queue in the file).
	Queues []uint16
	// Timeout bounds a scrape's wait for the workers (0: DefaultTimeout).
	Timeout time.Duration
	// Readiness, when set, is the daemon's own word on readiness: with
	// Live, Queues and the workers' answer it decides GET /readyz (see
	// Probe) and tcpcrypt_ready.
	Readiness *Readiness
	// Live, when set, is part of the readiness check: a non-nil error (one
	// line) means the daemon's rules are no longer in force.
	Live func(ctx context.Context) error
	// Rules, when set, returns how many rules the daemon holds now by
	// origin (e.g. "config", "state"), exported as tcpcrypt_rules.
	Rules func() map[string]int
	// Version is the daemon's version for tcpcrypt_build_info ("": the
	// main module's version from the build information).
	Version string
}

// Memory is what a Collector reads of the engines' memory budget.
type Memory interface {
	Used() int64
	Limit() int64
}

var _ Memory = (*engine.Budget)(nil)

// Collector is a prometheus.Collector that reads its Source at scrape time.
// Metric names and labels are listed in docs/tcpcryptd.md ("Metrics").
type Collector struct {
	o     Options
	probe *Probe
	build BuildInfo
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a Collector for o.
func NewCollector(o Options) *Collector {
	if o.QueueFile == "" {
		o.QueueFile = DefaultQueueFile
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	return &Collector{o: o, probe: NewProbe(o), build: ReadBuildInfo(o.Version)}
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("tcpcrypt_"+name, help, labels, nil)
}

// The metrics' descriptions. Engine metrics first, then the queue readers',
// then the kernel's.
var (
	descConnections = desc("connections_total",
		"Connections whose negotiation ended, each counted once: encrypted (reason fresh or "+
			"resumed) or fallback (ENO failed; reason says why).",
		"outcome", "reason")
	descAborts = desc("aborts_total",
		"Connections aborted (reset toward both ends), by reason; an abort may follow either "+
			"outcome of tcpcrypt_connections_total.", "reason")
	descHandshakes = desc("handshakes_total",
		"Encrypted connections (fresh and resumed) by key agreement and frame cipher.", "tep", "aead")
	descVerifyFail = desc("verification_failures_total",
		"Connections aborted because a frame failed authentication (RFC 8548 §3.6).")
	descDrops = desc("drops_total",
		"Segments dropped, by reason: the engine's reasons, shutdown (the daemon stopped "+
			"while they were held or queued) and oversized (a replacement too long for a verdict).", "reason")
	descFlows = desc("flows",
		"Connections the engines track right now.")
	descSegments = desc("engine_segments_total",
		"TCP segments given to the engines, by direction (in: LOCAL_IN, out: LOCAL_OUT).", "direction")
	descFlowsTracked = desc("flows_tracked_total",
		"Flows the engines started tracking (one per SYN of a covered connection).")
	descFlowsEnded = desc("flows_ended_total",
		"Flows the engines stopped tracking: closed (FINs acknowledged or RST), evicted "+
			"(table full) or expired (timeout).", "how")
	descFrames = desc("frames_total",
		"tcpcrypt frames sealed (out) and verified (in) by the engines.", "direction")
	descBytes = desc("bytes_total",
		"Application bytes carried in frames: sealed (out) and verified and delivered (in).", "direction")
	descRekeys = desc("rekeys_total",
		"Rekeys started or answered (RFC 8548 §3.8).")
	descLiveness = desc("liveness_probes_total",
		"Rekeys started to probe an idle encrypted connection (RFC 8548 §3.9); also counted in rekeys_total.")
	descRetransmits = desc("retransmits_total",
		"Engine-made segments sent again (Init messages, rekey frames).")
	descRedelivered = desc("redelivered_total",
		"Segments of plaintext delivered again to the local stack.")
	descOOOPruned = desc("ooo_pruned_bytes_total",
		"Out-of-order bytes discarded to make room for in-order data under the memory limit.")
	descMemory = desc("memory_bytes",
		"Bytes the engines keep in connection stream buffers right now (counted against --memory-limit).")
	descMemoryLimit = desc("memory_limit_bytes",
		"The engines' memory budget for connection stream buffers (--memory-limit).")

	descNFQPackets = desc("nfq_packets_total",
		"Packets read from the queues, by direction (in: LOCAL_IN, out: LOCAL_OUT).", "direction")
	descVerdicts = desc("nfq_verdicts_total",
		"Verdicts written to the kernel: accept (unchanged), replace (accepted with new "+
			"bytes) and drop, immediate and late alike.", "verdict")
	descHeldTotal = desc("held_packets_total",
		"Segments the engines held back for a late verdict.")
	descHeld = desc("held_packets",
		"Segments held right now, waiting for a late verdict.")
	descInjected = desc("injected_packets_total",
		"Engine-made packets sent through the raw sockets, toward the peer or the local stack.",
		"toward")
	descInjectErrors = desc("inject_errors_total",
		"Raw-socket sends that failed.")
	descENOBUFS = desc("nfq_enobufs_total",
		"Queue messages lost because the reader's socket buffer was full.")
	descNFQErrors = desc("nfq_errors_total",
		"Queue-reader problems, by kind: verdict (refused by the kernel), recv (other receive "+
			"errors), parse (TCP without a readable flow key), no_packet_id, "+
			"engine_bug (results that break the engine contract, resolved by a drop).", "kind")
	descTruncated = desc("nfq_truncated_total",
		"Packets the kernel copied to the daemon only in part; one that then has no readable "+
			"flow key is also in nfq_errors_total{kind=\"parse\"}.")
	descProtected = desc("protected_flows_total",
		"Flows handed to the guard (kept queued without bypass until they end, DESIGN.md invariant 11).")
	descGuardErrors = desc("guard_errors_total",
		"Guard failures, by kind: protect (the flow could not be protected and was aborted), "+
			"unprotect (a release made on the packet path failed; batched releases log their failures).", "kind")
	descPanics = desc("engine_panics_total",
		"Engine calls that panicked; each was recovered, its segment dropped and its flow aborted.")
	descVerdictLatency = desc("verdict_latency_seconds",
		"Time from reading a segment from the queue to writing its verdict, for segments "+
			"handed to the engines; a held segment is measured to its late verdict.")

	descBuildInfo = desc("build_info",
		"Always 1; the labels say which build of the daemon runs.", "version", "goversion", "revision")
	descReady = desc("ready",
		"1 when the daemon is ready (what GET /readyz answers 200 for: rules applied, every "+
			"queue bound and read), else 0.")
	descRules = desc("rules",
		"Rules the daemon holds now, by origin: config (command line and config file), state "+
			"(added at run time, kept in the state file), internal (the check server's port), "+
			"temporary (the start-up check's).", "origin")

	descKernelDropped = desc("kernel_queue_dropped_total",
		"Packets the kernel dropped because the queue was full; "+
			"from /proc/net/netfilter/nfnetlink_queue, a 32-bit counter that wraps.", "queue")
	descKernelUserDropped = desc("kernel_queue_user_dropped_total",
		"Packets the kernel could not hand to the daemon's socket (full buffer); "+
			"from /proc/net/netfilter/nfnetlink_queue, a 32-bit counter that wraps.", "queue")
)

var allDescs = []*prometheus.Desc{
	descBuildInfo, descReady, descRules,
	descConnections, descAborts, descHandshakes, descVerifyFail, descDrops, descFlows, descSegments,
	descFlowsTracked, descFlowsEnded, descFrames, descBytes, descRekeys, descLiveness, descRetransmits, descRedelivered,
	descOOOPruned, descMemory, descMemoryLimit,
	descNFQPackets, descVerdicts, descHeldTotal, descHeld, descInjected, descInjectErrors,
	descProtected, descGuardErrors, descPanics,
	descENOBUFS, descNFQErrors, descTruncated, descVerdictLatency, descKernelDropped, descKernelUserDropped,
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// Collect implements prometheus.Collector. When the engines cannot be read
// (the dispatcher stopped, or the workers did not answer within the
// timeout), their metrics are replaced by one invalid metric carrying the
// error; the other metrics are still collected.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.o.Timeout)
	defer cancel()
	gauge(ch, descBuildInfo, 1, c.build.Version, c.build.GoVersion, c.build.Revision)
	ec, flows, err := c.o.Source.Engines(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descConnections, err)
	} else {
		collectEngine(ch, &ec, flows)
	}
	if c.o.Readiness != nil {
		rerr := c.probe.checkDaemon(ctx)
		if rerr == nil && err != nil {
			rerr = workersErr(err)
		}
		gauge(ch, descReady, bool01(rerr == nil))
	}
	if c.o.Rules != nil {
		rs := c.o.Rules()
		for _, origin := range slices.Sorted(maps.Keys(rs)) {
			gauge(ch, descRules, float64(rs[origin]), origin)
		}
	}
	if m := c.o.Memory; m != nil {
		gauge(ch, descMemory, float64(m.Used()))
		gauge(ch, descMemoryLimit, float64(m.Limit()))
	}
	c.o.Handshakes.Each(func(tep, aead string, n uint64) {
		counter(ch, descHandshakes, n, tep, aead)
	})
	collectNFQ(ch, c.o.Source.NFQ(), &ec, err == nil)
	c.collectKernel(ch)
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v uint64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func collectEngine(ch chan<- prometheus.Metric, c *engine.Counters, flows int) {
	// The engine counts resumed sessions among the encrypted ones; split
	// them so that the series of the family add up to the connections.
	counter(ch, descConnections, c.FlowsEncrypted-min(c.FlowsResumed, c.FlowsEncrypted), "encrypted", "fresh")
	counter(ch, descConnections, c.FlowsResumed, "encrypted", "resumed")
	for r := engine.FallbackReason(1); r < engine.NumFallbackReasons; r++ {
		counter(ch, descConnections, c.Fallbacks[r], "fallback", r.String())
	}
	for r := engine.AbortReason(1); r < engine.NumAbortReasons; r++ {
		counter(ch, descAborts, c.Aborts[r], r.String())
	}
	counter(ch, descVerifyFail, c.Aborts[engine.AbortAuth])
	gauge(ch, descFlows, float64(flows))
	counter(ch, descSegments, c.PacketsIn, "in")
	counter(ch, descSegments, c.PacketsOut, "out")
	counter(ch, descFlowsTracked, c.FlowsTracked)
	counter(ch, descFlowsEnded, c.FlowsClosed, "closed")
	counter(ch, descFlowsEnded, c.FlowsEvicted, "evicted")
	counter(ch, descFlowsEnded, c.FlowsExpired, "expired")
	counter(ch, descFrames, c.FramesIn, "in")
	counter(ch, descFrames, c.FramesOut, "out")
	counter(ch, descBytes, c.BytesIn, "in")
	counter(ch, descBytes, c.BytesOut, "out")
	counter(ch, descRekeys, c.Rekeys)
	counter(ch, descLiveness, c.LivenessProbes)
	counter(ch, descRetransmits, c.Retransmits)
	counter(ch, descRedelivered, c.Redelivered)
	counter(ch, descOOOPruned, c.OOOPruned)
}

// collectNFQ exports the queue readers' counters, and tcpcrypt_drops_total,
// which mixes the engine's reasons (when withEngine) with the readers'
// shutdown and oversized drops.
func collectNFQ(ch chan<- prometheus.Metric, s nfq.Stats, ec *engine.Counters, withEngine bool) {
	if withEngine {
		for r := engine.DropReason(1); r < engine.NumDropReasons; r++ {
			counter(ch, descDrops, ec.Drops[r], r.String())
		}
	}
	counter(ch, descDrops, s.ShutdownDrops, "shutdown")
	counter(ch, descDrops, s.Oversized, "oversized")
	counter(ch, descNFQPackets, s.PacketsIn, "in")
	counter(ch, descNFQPackets, s.PacketsOut, "out")
	counter(ch, descVerdicts, s.Accepted, "accept")
	counter(ch, descVerdicts, s.Replaced, "replace")
	counter(ch, descVerdicts, s.Dropped, "drop")
	counter(ch, descHeldTotal, s.Held)
	gauge(ch, descHeld, float64(s.HeldNow))
	counter(ch, descInjected, s.InjectedToPeer, "peer")
	counter(ch, descInjected, s.InjectedToLocal, "local")
	counter(ch, descInjectErrors, s.InjectErrors)
	counter(ch, descENOBUFS, s.ENOBUFS)
	counter(ch, descNFQErrors, s.VerdictErrors, "verdict")
	counter(ch, descNFQErrors, s.RecvErrors, "recv")
	counter(ch, descNFQErrors, s.ParseErrors, "parse")
	counter(ch, descTruncated, s.Truncated)
	counter(ch, descNFQErrors, s.NoPacketID, "no_packet_id")
	counter(ch, descNFQErrors, s.EngineBugs, "engine_bug")
	counter(ch, descProtected, s.Protected)
	counter(ch, descGuardErrors, s.GuardErrors, "protect")
	counter(ch, descGuardErrors, s.UnprotectErrors, "unprotect")
	counter(ch, descPanics, s.Panics)
	histogram(ch, descVerdictLatency, &s.VerdictLatency)
}

// histogram exports h in seconds. Prometheus buckets are cumulative and
// leave out +Inf, whose count is the histogram's count.
func histogram(ch chan<- prometheus.Metric, d *prometheus.Desc, h *nfq.Histogram) {
	buckets := make(map[float64]uint64, len(h.Bounds))
	var cum uint64
	for i, b := range h.Bounds {
		if i < len(h.Counts) {
			cum += h.Counts[i]
		}
		buckets[b.Seconds()] = cum
	}
	ch <- prometheus.MustNewConstHistogram(d, h.Count, h.Sum.Seconds(), buckets)
}

func (c *Collector) collectKernel(ch chan<- prometheus.Metric) {
	qs, err := ReadQueueStats(c.o.QueueFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return
	case err != nil:
		ch <- prometheus.NewInvalidMetric(descKernelDropped, err)
		return
	}
	for _, q := range qs {
		if c.o.Queues != nil && !slices.Contains(c.o.Queues, q.Queue) {
			continue
		}
		label := strconv.Itoa(int(q.Queue))
		counter(ch, descKernelDropped, uint64(q.Dropped), label)
		counter(ch, descKernelUserDropped, uint64(q.UserDropped), label)
	}
}

// NewRegistry returns a private registry holding a Collector for o and the
// standard Go runtime and process collectors (go_*, process_*).
func NewRegistry(o Options) (*prometheus.Registry, error) {
	if o.Source == nil {
		return nil, errors.New("metrics: no source")
	}
	reg := prometheus.NewRegistry()
	for _, col := range []prometheus.Collector{
		NewCollector(o),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(col); err != nil {
			return nil, fmt.Errorf("metrics: register: %w", err)
		}
	}
	return reg, nil
}

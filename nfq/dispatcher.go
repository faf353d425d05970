package nfq

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/florianl/go-nfqueue/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/tcpcryptd/tcpcrypt/engine"
	"github.com/tcpcryptd/tcpcrypt/rules"
)

// ErrNotRunning is returned by Inspect when Run is not running.
var ErrNotRunning = errors.New("nfq: not running")

// Dispatcher reads segments from its queues, shards them over its workers
// (one engine each), writes verdicts and injects engine-made packets. Make it
// with Open (real kernel) or New (any Queue and Injector), then call Run once.
type Dispatcher struct {
	cfg     Config
	queues  []Queue
	inj     Injector
	workers []*worker
	readers []counters // one block per queue reader
	seed    maphash.Seed
	log     *slog.Logger
	// lastLog and suppressed rate-limit logLimited.
	lastLog    atomic.Int64
	suppressed atomic.Uint64

	started    atomic.Bool
	queuesOnce sync.Once
	queuesErr  error
	injOnce    sync.Once
	injErr     error
}

// New returns a Dispatcher over queues (queue i is number cfg.QueueNum+i)
// that injects through inj. It makes the workers' engines now, so engine
// errors surface here. The Dispatcher owns queues and inj from now on: Run
// closes them when it returns, as does Close (and inj too, if it is an
// io.Closer). cfg.QueueCount is taken from len(queues).
func New(cfg Config, queues []Queue, inj Injector) (*Dispatcher, error) {
	if len(queues) == 0 || len(queues) > 0xffff {
		return nil, fmt.Errorf("%w: %d queues", ErrConfig, len(queues))
	}
	if inj == nil {
		return nil, fmt.Errorf("%w: nil Injector", ErrConfig)
	}
	if cfg.NewEngine == nil {
		return nil, fmt.Errorf("%w: NewEngine is required", ErrConfig)
	}
	if cfg.QueueNum == 0 && cfg.QueueCount == 0 {
		cfg.QueueNum = rules.DefaultQueueNum
	}
	cfg.QueueCount = uint16(len(queues))
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	d := &Dispatcher{
		cfg:     cfg,
		queues:  queues,
		inj:     inj,
		readers: make([]counters, len(queues)),
		seed:    maphash.MakeSeed(),
		log:     cfg.Logger,
	}
	for i := range cfg.Workers {
		eng, err := cfg.NewEngine(i)
		if err != nil {
			return nil, fmt.Errorf("nfq: engine of worker %d: %w", i, err)
		}
		if eng == nil {
			return nil, fmt.Errorf("%w: NewEngine(%d) returned nil", ErrConfig, i)
		}
		d.workers = append(d.workers, newWorker(d, i, eng))
	}
	return d, nil
}

// Run reads and processes segments until ctx ends, then shuts down: it stops
// reading, closes the queues, drops every held or still-waiting segment
// (see the package documentation), stops the workers and closes the
// injector. It returns nil after a cancellation of ctx, or the error that
// stopped it early (a queue that could not be registered or whose socket
// went away). Run may be called only once; every goroutine it started has
// ended when it returns.
func (d *Dispatcher) Run(ctx context.Context) error {
	if !d.started.CompareAndSwap(false, true) {
		return ErrRunning
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		fatalOnce sync.Once
		fatal     error
	)
	fail := func(err error) {
		fatalOnce.Do(func() { fatal = err })
		cancel()
	}

	var wg sync.WaitGroup
	stop := make(chan struct{})
	for _, w := range d.workers {
		wg.Go(func() { w.run(stop) })
	}
	for i, q := range d.queues {
		num := int(d.cfg.QueueNum) + i
		err := q.RegisterWithErrorFunc(runCtx, d.hookFunc(runCtx, i), d.errFunc(runCtx, i, fail))
		if err != nil {
			fail(fmt.Errorf("nfq: register queue %d: %w", num, err))
			break
		}
	}
	if d.cfg.Guard == nil {
		d.log.Warn("nfq running without a guard: encrypted flows are not kept queued when the daemon is gone or rules change")
	}
	if runCtx.Err() == nil {
		d.log.Info("nfq running", "queue", d.cfg.QueueNum, "queues", len(d.queues),
			"workers", len(d.workers), "fail_open", d.cfg.FailOpen)
	}

	<-runCtx.Done()
	if fatal != nil {
		d.log.Error("nfq stopping on error", "err", fatal)
	}
	// Readers first: once the queues are closed nothing new reaches the
	// workers (and the kernel has dropped whatever still waited for a
	// verdict). Then the workers drop what they hold, then the injector.
	qerr := d.closeQueues()
	close(stop)
	wg.Wait()
	ierr := d.closeInjector()
	st := d.Stats()
	d.log.Info("nfq stopped", "packets_out", st.PacketsOut, "packets_in", st.PacketsIn,
		"shutdown_drops", st.ShutdownDrops, "enobufs", st.ENOBUFS)
	return errors.Join(fatal, qerr, ierr)
}

// Close closes the queues and the injector. Use it to release a Dispatcher
// whose Run was never called; after Run it does nothing. It must not be
// called while Run runs.
func (d *Dispatcher) Close() error {
	return errors.Join(d.closeQueues(), d.closeInjector())
}

func (d *Dispatcher) closeQueues() error {
	d.queuesOnce.Do(func() {
		var errs []error
		for i, q := range d.queues {
			if err := q.Close(); err != nil {
				errs = append(errs, fmt.Errorf("nfq: close queue %d: %w", int(d.cfg.QueueNum)+i, err))
			}
		}
		d.queuesErr = errors.Join(errs...)
	})
	return d.queuesErr
}

func (d *Dispatcher) closeInjector() error {
	d.injOnce.Do(func() {
		if c, ok := d.inj.(io.Closer); ok {
			if err := c.Close(); err != nil {
				d.injErr = fmt.Errorf("nfq: close injector: %w", err)
			}
		}
	})
	return d.injErr
}

// Stats returns a snapshot of the counters. It is safe to call at any time,
// from any goroutine.
func (d *Dispatcher) Stats() Stats {
	var s Stats
	for i := range d.readers {
		s.sum(&d.readers[i])
	}
	for _, w := range d.workers {
		s.sum(&w.c)
	}
	return s
}

// Workers returns the number of workers (and engines).
func (d *Dispatcher) Workers() int { return len(d.workers) }

// Inspect calls fn once for each worker's engine, on that worker's goroutine
// between two segments, so fn may read the engine (e.g. Snapshot or
// Counters after a type assertion to *engine.Engine) without a race. fn
// must be quick: the worker processes nothing while it runs. Inspect returns
// ErrNotRunning unless Run is running, or ctx's error if ctx ends first.
func (d *Dispatcher) Inspect(ctx context.Context, fn func(worker int, e Engine)) error {
	if !d.started.Load() {
		return ErrNotRunning
	}
	for _, w := range d.workers {
		done := make(chan struct{})
		call := func() {
			defer close(done)
			fn(w.idx, w.eng)
		}
		select {
		case w.ctl <- call:
		case <-w.exited:
			return ErrNotRunning
		case <-ctx.Done():
			return ctx.Err()
		}
		<-done // the worker runs call synchronously once it took it
	}
	return nil
}

// hookFunc returns the per-packet callback of queue qi. It runs on the
// queue's reader goroutine: it classifies, copies and hands off, and writes
// a verdict itself only for packets no engine should see.
func (d *Dispatcher) hookFunc(ctx context.Context, qi int) nfqueue.HookFunc {
	c := &d.readers[qi]
	q := d.queues[qi]
	nw := uint64(len(d.workers))
	return func(a nfqueue.Attribute) int {
		at := stamp() // start of the verdict latency
		if a.PacketID == nil {
			c.inc(cNoPacketID)
			return 0
		}
		id := *a.PacketID
		var dir engine.Dir
		hook := ^uint8(0)
		if a.Hook != nil {
			hook = *a.Hook
		}
		switch hook {
		case HookLocalOut:
			dir = engine.Outbound
			c.inc(cPacketsOut)
		case HookLocalIn:
			dir = engine.Inbound
			c.inc(cPacketsIn)
		default:
			c.inc(cUnknownHook)
			acceptUnchanged(q, c, id)
			return 0
		}
		var payload []byte
		if a.Payload != nil {
			payload = *a.Payload
		}
		if a.CapLen != nil && int(*a.CapLen) > len(payload) {
			c.inc(cTruncated)
		}
		key, kind := extractKey(payload, dir)
		var w *worker
		switch kind {
		case kindTCP:
			w = d.workers[key.hash(d.seed)%nw]
		case kindNotTCP:
			c.inc(cNonTCP)
			acceptUnchanged(q, c, id)
			return 0
		default:
			c.inc(cParseErrors)
			w = d.workers[0]
		}
		it := item{buf: getBuf(payload), q: qi, id: id, dir: dir, at: at}
		select {
		case w.in <- it:
			return 0
		case <-ctx.Done():
			// Left for the kernel, which drops it when the queue closes.
			putBuf(it.buf)
			return 1
		}
	}
}

func acceptUnchanged(q Queue, c *counters, id uint32) {
	if err := q.SetVerdict(id, nfqueue.NfAccept); err != nil {
		c.inc(cVerdictErrors)
		return
	}
	c.inc(cAccepted)
}

// errFunc returns the receive-error callback of queue qi: 0 keeps the reader
// going, anything else stops it.
func (d *Dispatcher) errFunc(ctx context.Context, qi int, fail func(error)) nfqueue.ErrorFunc {
	c := &d.readers[qi]
	num := int(d.cfg.QueueNum) + qi
	return func(err error) int {
		if ctx.Err() != nil {
			return 1 // shutting down (go-nfqueue's read-deadline wake-up)
		}
		switch {
		case errors.Is(err, unix.ENOBUFS):
			// The kernel could not deliver some packets: the socket buffer
			// was full. They are lost to us (the kernel keeps or drops them
			// per its queue); keep reading.
			c.inc(cENOBUFS)
			return 0
		case errors.Is(err, net.ErrClosed), errors.Is(err, os.ErrClosed), errors.Is(err, unix.EBADF):
			fail(fmt.Errorf("nfq: queue %d: %w: %w", num, ErrQueueClosed, err))
			return 1
		}
		var oe *netlink.OpError
		if errors.As(err, &oe) && oe.Timeout() {
			return 0
		}
		// Typically the error reply to a verdict for a packet id the kernel
		// no longer knows.
		c.inc(cRecvErrors)
		return 0
	}
}

// logInterval is the shortest time between two logLimited messages.
const logInterval = time.Second

// logLimited logs an error at most once per logInterval over all workers
// (DESIGN.md invariant 10), with the number of messages suppressed since the
// last one.
func (d *Dispatcher) logLimited(msg string, args ...any) {
	now := time.Now().UnixNano()
	last := d.lastLog.Load()
	if now-last < int64(logInterval) || !d.lastLog.CompareAndSwap(last, now) {
		d.suppressed.Add(1)
		return
	}
	if n := d.suppressed.Swap(0); n > 0 {
		args = append(args, "suppressed", n)
	}
	d.log.Error(msg, args...)
}

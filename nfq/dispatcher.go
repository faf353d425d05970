package nfq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNotRunning is returned by Inspect when Run is not running.
var ErrNotRunning = errors.New("nfq: not running")

// Dispatcher reads segments from its queues, runs each queue's engine on
// them, writes verdicts and injects engine-made packets. Make it with Open
// (real kernel) or New (any Queue and Injector), then call Run once.
type Dispatcher struct {
	cfg    Config
	queues []Queue
	inj    Injector
	shards []*shard // one per queue
	log    *slog.Logger
	// lastLog and suppressed rate-limit logLimited.
	lastLog    atomic.Int64
	suppressed atomic.Uint64

	started    atomic.Bool
	running    atomic.Bool // from Run's start to its end
	queuesOnce sync.Once
	queuesErr  error
	injOnce    sync.Once
	injErr     error
}

// New returns a Dispatcher over queues (queue i is number cfg.QueueNum+i)
// that injects through inj. It makes the queues' engines now (NewEngine(i)
// for queue i), so engine errors surface here. The Dispatcher owns queues
// and inj from now on: Run closes them when it returns, as does Close (and
// inj too, if it is an io.Closer). cfg.QueueCount is taken from len(queues).
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
	cfg.QueueCount = uint16(len(queues))
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	d := &Dispatcher{cfg: cfg, queues: queues, inj: inj, log: cfg.Logger}
	for i, q := range queues {
		eng, err := cfg.NewEngine(i)
		if err != nil {
			return nil, fmt.Errorf("nfq: engine of queue %d: %w", int(cfg.QueueNum)+i, err)
		}
		if eng == nil {
			return nil, fmt.Errorf("%w: NewEngine(%d) returned nil", ErrConfig, i)
		}
		d.shards = append(d.shards, newShard(d, i, q, eng))
	}
	return d, nil
}

// Run reads and processes segments until ctx ends, then shuts down: it stops
// reading, closes the queues, drops every held segment
// (see the package documentation), stops the timers and closes the
// injector. It returns nil after a cancellation of ctx, or the error that
// stopped it early (a queue whose socket went away, or that kept failing).
// Run may be called only once; every goroutine it started has
// ended when it returns.
func (d *Dispatcher) Run(ctx context.Context) error {
	if !d.started.CompareAndSwap(false, true) {
		return ErrRunning
	}
	d.running.Store(true)
	defer d.running.Store(false)
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
	shuttingDown := func() bool { return runCtx.Err() != nil }
	for _, sh := range d.shards {
		wg.Go(func() { sh.read(fail, shuttingDown) })
		wg.Go(func() { sh.timers(stop) })
	}
	if d.cfg.Guard == nil {
		d.log.Warn("nfq running without a guard: encrypted flows are not kept queued when the daemon is gone or rules change")
	}
	d.log.Info("nfq running", "queue", d.cfg.QueueNum, "queues", len(d.queues), "queue_full_fail_open", d.cfg.FailOpen)

	<-runCtx.Done()
	if fatal != nil {
		d.log.Error("nfq stopping on error", "err", fatal)
	}
	// Queues first: once they are closed the readers stop (and the kernel
	// has dropped whatever still waited for a verdict). Then the timers
	// stop, the shards drop what their engines hold, and the injector
	// closes.
	qerr := d.closeQueues()
	close(stop)
	wg.Wait()
	for _, sh := range d.shards {
		sh.shutdown()
	}
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
	for _, sh := range d.shards {
		s.sum(&sh.c)
	}
	return s
}

// Engines returns the number of engines: one per queue.
func (d *Dispatcher) Engines() int { return len(d.shards) }

// Inspect calls fn once for each queue's engine, between two receive
// batches (under the shard's lock), so fn may read the engine (e.g. Snapshot
// or Counters after a type assertion to *engine.Engine) without a race. fn
// must be quick: the queue processes nothing while it runs. Inspect returns
// ErrNotRunning unless Run is running, or ctx's error if ctx ends first.
func (d *Dispatcher) Inspect(ctx context.Context, fn func(queue int, e Engine)) error {
	if !d.running.Load() {
		return ErrNotRunning
	}
	for _, sh := range d.shards {
		if err := ctx.Err(); err != nil {
			return err
		}
		sh.mu.Lock()
		fn(sh.idx, sh.eng)
		sh.mu.Unlock()
	}
	return nil
}

// logInterval is the shortest time between two logLimited messages.
const logInterval = time.Second

// logLimited logs an error at most once per logInterval over all queues
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

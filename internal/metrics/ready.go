package metrics

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sync"
	"time"
)

// Paths of the health endpoints.
const (
	// ReadyPath answers 200 when the daemon encrypts what its rules cover
	// (see Probe), 503 with a one-line reason otherwise.
	ReadyPath = "/readyz"
	// LivePath answers 200 while the HTTP server runs: it tells a
	// supervisor that the process is not wedged, nothing more.
	LivePath = "/livez"
)

// DefaultProbeTimeout bounds how long a readiness check waits for the
// workers to answer. It is shorter than a scrape's wait so that a probe
// with a timeout of a few seconds gets an answer rather than a timeout.
const DefaultProbeTimeout = 2 * time.Second

// ErrNotReady is wrapped by every error Probe.Check returns.
var ErrNotReady = errors.New("not ready")

// notStarted is the reason a zero Readiness gives.
const notStarted = "starting"

// Readiness is the daemon's own word on whether it serves: set once the
// rules are applied and the queues are being read, cleared when it starts
// to stop. The zero value is not ready, with the reason "starting". It is
// safe for use from any goroutine; methods on a nil *Readiness report not
// ready.
type Readiness struct {
	mu     sync.Mutex
	ready  bool
	reason string
}

// SetReady marks the daemon ready.
func (r *Readiness) SetReady() {
	r.mu.Lock()
	r.ready, r.reason = true, ""
	r.mu.Unlock()
}

// SetNotReady marks the daemon not ready for reason (one line).
func (r *Readiness) SetNotReady(reason string) {
	r.mu.Lock()
	r.ready, r.reason = false, reason
	r.mu.Unlock()
}

// State returns whether the daemon said it is ready, and if not, why.
func (r *Readiness) State() (bool, string) {
	if r == nil {
		return false, "no readiness source"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.ready && r.reason == "" {
		return false, notStarted
	}
	return r.ready, r.reason
}

// Probe decides readiness for GET /readyz and the tcpcrypt_ready gauge.
// The daemon is ready when all of these hold, checked in this order at
// every call:
//   - its Readiness says so (rules applied, queue readers running, not
//     stopping);
//   - Options.Live, when set, returns nil (the daemon checks there that its
//     nftables table is still in the kernel);
//   - every queue of Options.Queues is bound: it is listed in the kernel's
//     queue file (a missing file means none is);
//   - the workers answer Source.Engines within DefaultProbeTimeout.
type Probe struct {
	o Options
}

// NewProbe returns a Probe reading o's Readiness, Live, Queues, QueueFile
// and Source.
func NewProbe(o Options) *Probe {
	if o.QueueFile == "" {
		o.QueueFile = DefaultQueueFile
	}
	return &Probe{o: o}
}

// Check returns nil when the daemon is ready, or an error wrapping
// ErrNotReady whose text says why in one line.
func (p *Probe) Check(ctx context.Context) error {
	if err := p.checkDaemon(ctx); err != nil {
		return err
	}
	if p.o.Source != nil {
		ctx, cancel := context.WithTimeout(ctx, DefaultProbeTimeout)
		defer cancel()
		if _, _, err := p.o.Source.Engines(ctx); err != nil {
			return workersErr(err)
		}
	}
	return nil
}

// workersErr is Check's error when the engines do not answer.
func workersErr(err error) error {
	return fmt.Errorf("%w: the engines do not answer: %w", ErrNotReady, err)
}

// checkDaemon is Check without the workers' answer (a scrape has that
// already).
func (p *Probe) checkDaemon(ctx context.Context) error {
	if ok, reason := p.o.Readiness.State(); !ok {
		return fmt.Errorf("%w: %s", ErrNotReady, reason)
	}
	if p.o.Live != nil {
		if err := p.o.Live(ctx); err != nil {
			return fmt.Errorf("%w: %w", ErrNotReady, err)
		}
	}
	if p.o.Queues != nil {
		if err := p.queuesBound(); err != nil {
			return fmt.Errorf("%w: %w", ErrNotReady, err)
		}
	}
	return nil
}

// queuesBound checks that every configured queue is in the queue file.
func (p *Probe) queuesBound() error {
	qs, err := ReadQueueStats(p.o.QueueFile)
	if errors.Is(err, fs.ErrNotExist) {
		return errors.New("no queue is bound (the kernel lists no nfnetlink_queue instance)")
	}
	if err != nil {
		return err
	}
	for _, want := range p.o.Queues {
		if !slices.ContainsFunc(qs, func(q QueueStats) bool { return q.Queue == want }) {
			return fmt.Errorf("queue %d is not bound", want)
		}
	}
	return nil
}

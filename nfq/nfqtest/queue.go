package nfqtest

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/florianl/go-nfqueue/v2"
)

// Errors of Queue.
var (
	// ErrVerdictsFull is returned by SetVerdict and SetVerdictModPacket when
	// the test does not drain Verdicts fast enough.
	ErrVerdictsFull = errors.New("nfqtest: verdict channel full")
	// ErrRegistered is returned by a second RegisterWithErrorFunc.
	ErrRegistered = errors.New("nfqtest: already registered")
	// ErrClosed is returned by RegisterWithErrorFunc after Close.
	ErrClosed = errors.New("nfqtest: queue closed")
)

// Verdict is one verdict a Queue received.
type Verdict struct {
	ID      uint32
	Verdict int    // nfqueue.NfAccept, nfqueue.NfDrop, ...
	Packet  []byte // the replacement packet (a copy); nil for SetVerdict
}

// message is one thing for the reader goroutine to deliver: an attribute set
// or a receive error.
type message struct {
	attr nfqueue.Attribute
	err  error
}

// Queue is a fake NFQUEUE handle that implements nfq.Queue. A test feeds it
// packets with Packet (any attribute set with Attribute, receive errors with
// Error); once registered, it hands them to the hook one at a time on its own
// goroutine, as go-nfqueue does, and stops when the registration context
// ends, a callback returns non-zero, or Close is called. Verdicts appear on
// the Verdicts channel, also after Close.
//
// To catch code that keeps the payload beyond the hook call, the Queue
// delivers every payload in one reused buffer and overwrites it with 0xAA
// bytes after the hook returns, as a pooled netlink receive buffer may.
type Queue struct {
	in       chan message
	verdicts chan Verdict
	stop     chan struct{}

	mu         sync.Mutex
	registered bool
	closed     bool
	wg         sync.WaitGroup
}

// NewQueue returns a Queue whose input and verdict channels hold up to
// buffer messages each (at least 1).
func NewQueue(buffer int) *Queue {
	buffer = max(buffer, 1)
	return &Queue{
		in:       make(chan message, buffer),
		verdicts: make(chan Verdict, buffer),
		stop:     make(chan struct{}),
	}
}

// Packet queues a packet with id, seen at the netfilter hook (nfq.HookLocalOut,
// nfq.HookLocalIn or any other value). payload is copied. It blocks while the
// input buffer is full.
func (q *Queue) Packet(id uint32, hook uint8, payload []byte) {
	p := slices.Clone(payload)
	if p == nil {
		p = []byte{}
	}
	q.Attribute(nfqueue.Attribute{PacketID: &id, Hook: &hook, Payload: &p})
}

// Attribute queues a as it is (nil fields stay nil), for tests of malformed
// messages. The payload, if any, is copied when delivered.
func (q *Queue) Attribute(a nfqueue.Attribute) { q.in <- message{attr: a} }

// Error queues a receive error for the error callback.
func (q *Queue) Error(err error) { q.in <- message{err: err} }

// Verdicts returns the channel on which verdicts appear, in the order they
// were set.
func (q *Queue) Verdicts() <-chan Verdict { return q.verdicts }

// RegisterWithErrorFunc starts delivering queued messages to fn and errfn.
func (q *Queue) RegisterWithErrorFunc(ctx context.Context, fn nfqueue.HookFunc, errfn nfqueue.ErrorFunc) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case q.closed:
		return ErrClosed
	case q.registered:
		return ErrRegistered
	}
	q.registered = true
	q.wg.Go(func() { q.deliver(ctx, fn, errfn) })
	return nil
}

func (q *Queue) deliver(ctx context.Context, fn nfqueue.HookFunc, errfn nfqueue.ErrorFunc) {
	var scratch []byte
	for {
		var m message
		select {
		case <-ctx.Done():
			return
		case <-q.stop:
			return
		case m = <-q.in:
		}
		if m.err != nil {
			if errfn(m.err) != 0 {
				return
			}
			continue
		}
		a := m.attr
		if a.Payload != nil {
			scratch = append(scratch[:0], *a.Payload...)
			a.Payload = &scratch
		}
		ret := fn(a)
		for i := range scratch {
			scratch[i] = 0xAA
		}
		if ret != 0 {
			return
		}
	}
}

// SetVerdict records a verdict without a packet.
func (q *Queue) SetVerdict(id uint32, verdict int) error {
	return q.record(Verdict{ID: id, Verdict: verdict})
}

// SetVerdictModPacket records a verdict with a (copied) replacement packet.
func (q *Queue) SetVerdictModPacket(id uint32, verdict int, packet []byte) error {
	p := slices.Clone(packet)
	if p == nil {
		p = []byte{}
	}
	return q.record(Verdict{ID: id, Verdict: verdict, Packet: p})
}

func (q *Queue) record(v Verdict) error {
	select {
	case q.verdicts <- v:
		return nil
	default:
		return ErrVerdictsFull
	}
}

// Close stops delivery and waits for the delivering goroutine to end. It is
// idempotent.
func (q *Queue) Close() error {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.stop)
	}
	q.mu.Unlock()
	q.wg.Wait()
	return nil
}

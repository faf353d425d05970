package nfqtest

import (
	"errors"
	"slices"
	"sync"
)

// ErrInjectFull is returned when the test does not drain an Injector's
// channels fast enough.
var ErrInjectFull = errors.New("nfqtest: injector channel full")

// Injector records injected packets; it implements nfq.Injector. Copies of
// the packets appear on the Peer and Local channels.
type Injector struct {
	peer, local chan []byte

	mu  sync.Mutex
	err error
}

// NewInjector returns an Injector whose channels hold up to buffer packets
// each (at least 1).
func NewInjector(buffer int) *Injector {
	buffer = max(buffer, 1)
	return &Injector{peer: make(chan []byte, buffer), local: make(chan []byte, buffer)}
}

// Peer returns the channel of packets sent with ToPeer.
func (i *Injector) Peer() <-chan []byte { return i.peer }

// Local returns the channel of packets sent with ToLocal.
func (i *Injector) Local() <-chan []byte { return i.local }

// SetError makes every later send fail with err (nil: succeed again). Failed
// sends are not recorded.
func (i *Injector) SetError(err error) {
	i.mu.Lock()
	i.err = err
	i.mu.Unlock()
}

// ToPeer records a copy of pkt on Peer.
func (i *Injector) ToPeer(pkt []byte) error { return i.send(i.peer, pkt) }

// ToLocal records a copy of pkt on Local.
func (i *Injector) ToLocal(pkt []byte) error { return i.send(i.local, pkt) }

func (i *Injector) send(ch chan []byte, pkt []byte) error {
	i.mu.Lock()
	err := i.err
	i.mu.Unlock()
	if err != nil {
		return err
	}
	select {
	case ch <- slices.Clone(pkt):
		return nil
	default:
		return ErrInjectFull
	}
}

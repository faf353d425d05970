package daemon

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/engine"
	"github.com/tcpcryptd/tcpcrypt/rules"
)

type fakeSets struct {
	mu                 sync.Mutex
	protect, unprotect []rules.Flow
	calls              int
	block              chan struct{} // Unprotect waits on it when non-nil
}

func (f *fakeSets) Protect(flows ...rules.Flow) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.protect = append(f.protect, flows...)
	return nil
}

func (f *fakeSets) Unprotect(flows ...rules.Flow) error {
	if f.block != nil {
		<-f.block
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.unprotect = append(f.unprotect, flows...)
	return nil
}

func (f *fakeSets) counts() (int, int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.protect), len(f.unprotect), f.calls
}

func testFlow(i int) engine.Flow {
	return engine.Flow{Local: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), uint16(1000+i)),
		Remote: netip.MustParseAddrPort("10.0.0.2:443")}
}

// TestGuardAdapter: Protect reaches the sets before it returns; releases are
// batched by one goroutine, and when its queue is full the caller releases
// synchronously rather than lose one; stopping drains the queue.
func TestGuardAdapter(t *testing.T) {
	fs := &fakeSets{block: make(chan struct{})}
	g := newGuard(fs, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	go g.run(ctx)
	if err := g.Protect(testFlow(0)); err != nil {
		t.Fatal(err)
	}
	if p, _, _ := fs.counts(); p != 1 {
		t.Fatalf("Protect returned before the flow was in the sets")
	}
	// The goroutine blocks in its first Unprotect; the queue fills up.
	n := guardReleaseQueue + 2
	done := make(chan struct{})
	go func() {
		for i := range n {
			_ = g.Unprotect(testFlow(i))
		}
		close(done)
	}()
	time.Sleep(50 * time.Millisecond)
	close(fs.block) // everything proceeds now
	<-done
	cancel()
	<-g.done
	_, u, calls := fs.counts()
	if u != n {
		t.Errorf("%d flows released, want %d", u, n)
	}
	if calls >= n {
		t.Errorf("%d Unprotect calls for %d flows: not batched", calls, n)
	}
}

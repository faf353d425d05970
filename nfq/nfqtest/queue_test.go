package nfqtest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/florianl/go-nfqueue/v2"
)

func TestQueue(t *testing.T) {
	q := NewQueue(4)
	type got struct {
		id      uint32
		hook    uint8
		payload []byte
		prev    []byte // the previous call's payload slice, as seen now
	}
	hooks := make(chan got, 4)
	errs := make(chan error, 4)
	var prev []byte // used on the delivering goroutine only
	err := q.RegisterWithErrorFunc(context.Background(), func(a nfqueue.Attribute) int {
		hooks <- got{*a.PacketID, *a.Hook, bytes.Clone(*a.Payload), bytes.Clone(prev)}
		prev = *a.Payload
		return 0
	}, func(err error) int { errs <- err; return 0 })
	if err != nil {
		t.Fatal(err)
	}
	if err := q.RegisterWithErrorFunc(context.Background(), nil, nil); !errors.Is(err, ErrRegistered) {
		t.Errorf("second register = %v", err)
	}
	q.Packet(7, 3, []byte{1, 2, 3})
	g := <-hooks
	if g.id != 7 || g.hook != 3 || !bytes.Equal(g.payload, []byte{1, 2, 3}) {
		t.Errorf("hook got %+v", g)
	}
	q.Packet(8, 1, []byte{4})
	// The second payload reuses the buffer: byte 0 is the new payload, the
	// rest still shows the scribbling done after the first call.
	if g := <-hooks; !bytes.Equal(g.prev, []byte{4, 0xAA, 0xAA}) {
		t.Errorf("first payload seen during the second call = %x, want 04aaaa", g.prev)
	}
	boom := errors.New("boom")
	q.Error(boom)
	if err := <-errs; err != boom {
		t.Errorf("errfn got %v", err)
	}
	if err := q.SetVerdictModPacket(7, nfqueue.NfAccept, []byte{9}); err != nil {
		t.Fatal(err)
	}
	if v := <-q.Verdicts(); v.ID != 7 || v.Verdict != nfqueue.NfAccept || !bytes.Equal(v.Packet, []byte{9}) {
		t.Errorf("verdict %+v", v)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.SetVerdict(8, nfqueue.NfDrop); err != nil {
		t.Errorf("verdict after Close: %v", err)
	}
	for range 4 {
		_ = q.SetVerdict(1, nfqueue.NfDrop)
	}
	if err := q.SetVerdict(1, nfqueue.NfDrop); !errors.Is(err, ErrVerdictsFull) {
		t.Errorf("full verdict channel: %v", err)
	}
	if err := q.RegisterWithErrorFunc(context.Background(), nil, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("register after Close = %v", err)
	}
}

func TestQueueStopsOnContext(t *testing.T) {
	q := NewQueue(1)
	ctx, cancel := context.WithCancel(context.Background())
	if err := q.RegisterWithErrorFunc(ctx, func(nfqueue.Attribute) int { return 0 }, func(error) int { return 0 }); err != nil {
		t.Fatal(err)
	}
	cancel()
	done := make(chan struct{})
	go func() { _ = q.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
}

func TestInjector(t *testing.T) {
	inj := NewInjector(1)
	p := []byte{1, 2}
	if err := inj.ToPeer(p); err != nil {
		t.Fatal(err)
	}
	p[0] = 9
	if got := <-inj.Peer(); !bytes.Equal(got, []byte{1, 2}) {
		t.Errorf("recorded %x, want a copy 0102", got)
	}
	if err := inj.ToLocal(p); err != nil {
		t.Fatal(err)
	}
	if err := inj.ToLocal(p); !errors.Is(err, ErrInjectFull) {
		t.Errorf("full channel: %v", err)
	}
	boom := errors.New("boom")
	inj.SetError(boom)
	if err := inj.ToPeer(p); err != boom {
		t.Errorf("ToPeer = %v, want boom", err)
	}
}

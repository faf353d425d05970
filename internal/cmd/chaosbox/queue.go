package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/florianl/go-nfqueue/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// box reads one queue and applies the Impairer's decisions.
type box struct {
	q   *nfqueue.Nfqueue
	inj *injector

	mu sync.Mutex
	im *Impairer

	verdictErrs, injectErrs, recvErrs atomic.Uint64
}

// openQueue opens queue num: whole packets, GSO super-packets only with gso
// (without it the kernel segments them first, and completes partial
// checksums, so a copy can be sent as it is).
func openQueue(num uint16, gso bool) (*nfqueue.Nfqueue, error) {
	var flags uint32
	if gso {
		flags |= nfqueue.NfQaCfgFlagGSO
	}
	q, err := nfqueue.Open(&nfqueue.Config{
		NfQueue: num, MaxPacketLen: 0xffff, MaxQueueLen: 8192,
		Copymode: nfqueue.NfQnlCopyPacket, Flags: flags, AfFamily: unix.AF_UNSPEC,
		WriteTimeout: time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("chaosbox: open queue %d: %w", num, err)
	}
	rc, err := q.Con.SyscallConn()
	if err == nil {
		_ = rc.Control(func(fd uintptr) {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 16<<20)
		})
	}
	return q, nil
}

// start binds the queue and starts reading it; the returned channel yields
// nil when ctx ends, or the receive error that stopped the reader.
func (b *box) start(ctx context.Context) (<-chan error, error) {
	stopped := make(chan error, 1)
	report := func(err error) {
		select {
		case stopped <- err:
		default:
		}
	}
	errFn := func(err error) int {
		if ctx.Err() != nil {
			report(nil)
			return 1
		}
		var op *netlink.OpError
		if errors.Is(err, unix.ENOBUFS) || (errors.As(err, &op) && op.Timeout()) {
			b.recvErrs.Add(1)
			return 0
		}
		report(err)
		return 1
	}
	if err := b.q.RegisterWithErrorFunc(ctx, b.hook, errFn); err != nil {
		return nil, fmt.Errorf("chaosbox: register: %w", err)
	}
	return stopped, nil
}

// loop releases held packets when they are due, until ctx ends (then it
// releases every held packet) or the reader stops.
func (b *box) loop(ctx context.Context, stopped <-chan error) error {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			b.mu.Lock()
			b.release(b.im.Drain())
			b.mu.Unlock()
			return nil
		case err := <-stopped:
			b.mu.Lock()
			b.release(b.im.Drain())
			b.mu.Unlock()
			if err != nil {
				return fmt.Errorf("chaosbox: receive: %w", err)
			}
			return nil
		case now := <-tick.C:
			b.mu.Lock()
			b.release(b.im.Due(now))
			b.mu.Unlock()
		}
	}
}

// hook is called by go-nfqueue for each packet, on its reader goroutine.
func (b *box) hook(a nfqueue.Attribute) int {
	if a.PacketID == nil {
		return 0
	}
	id := *a.PacketID
	b.mu.Lock()
	defer b.mu.Unlock()
	act, due := b.im.Packet(id, time.Now())
	switch act {
	case Pass:
		b.verdict(id, nfqueue.NfAccept)
	case Drop:
		b.verdict(id, nfqueue.NfDrop)
	case Duplicate:
		b.verdict(id, nfqueue.NfAccept)
		if a.Payload != nil {
			if err := b.inj.send(*a.Payload); err != nil {
				b.injectErrs.Add(1)
			}
		}
	case Hold:
		// verdict later, from release
	}
	b.release(due)
	return 0
}

func (b *box) release(ids []uint32) {
	for _, id := range ids {
		b.verdict(id, nfqueue.NfAccept)
	}
}

func (b *box) verdict(id uint32, v int) {
	if err := b.q.SetVerdict(id, v); err != nil {
		b.verdictErrs.Add(1)
	}
}

// injector sends copies of packets through raw sockets that carry the IP
// header, marked so that chaosbox's own rules let them through.
type injector struct{ fd4, fd6 int }

func newInjector(mark uint32) (*injector, error) {
	inj := &injector{fd4: -1, fd6: -1}
	for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
		fd, err := unix.Socket(fam, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		if err != nil {
			inj.close()
			return nil, fmt.Errorf("chaosbox: raw socket: %w", err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(mark)); err != nil {
			_ = unix.Close(fd)
			inj.close()
			return nil, fmt.Errorf("chaosbox: SO_MARK: %w", err)
		}
		if fam == unix.AF_INET {
			inj.fd4 = fd
		} else {
			inj.fd6 = fd
		}
	}
	return inj, nil
}

func (inj *injector) send(pkt []byte) error {
	switch {
	case len(pkt) >= 20 && pkt[0]>>4 == 4:
		return unix.Sendto(inj.fd4, pkt, 0, &unix.SockaddrInet4{Addr: [4]byte(pkt[16:20])})
	case len(pkt) >= 40 && pkt[0]>>4 == 6:
		return unix.Sendto(inj.fd6, pkt, 0, &unix.SockaddrInet6{Addr: [16]byte(pkt[24:40])})
	}
	return fmt.Errorf("chaosbox: not an IP packet")
}

func (inj *injector) close() {
	for _, fd := range []int{inj.fd4, inj.fd6} {
		if fd >= 0 {
			_ = unix.Close(fd)
		}
	}
}

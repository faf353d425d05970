package nfq

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/tcpcryptd/tcpcrypt/packet"
)

// Injection errors callers may match with errors.Is.
var (
	// ErrInjectPacket reports a packet too short to be IPv4 or IPv6.
	ErrInjectPacket = errors.New("nfq: inject: not an IPv4 or IPv6 packet")
	// ErrNoIPv6 reports an IPv6 packet while no IPv6 raw socket could be
	// opened (IPv6 disabled).
	ErrNoIPv6 = errors.New("nfq: inject: no IPv6 raw socket")
	// ErrInjectorClosed reports a send after Close.
	ErrInjectorClosed = errors.New("nfq: inject: injector closed")
)

// RawInjector sends complete IP packets through raw sockets that include the
// IP header (AF_INET with IP_HDRINCL, AF_INET6 with IPPROTO_RAW) and carry
// SO_MARK, so the queue rules let them through unqueued (DESIGN.md invariant
// 6). There are two pairs of sockets with different marks: packets toward the
// peer carry the peer mark, which only the output chain skips (on loopback the
// receiving end's input chain must still queue them), and packets for the
// local stack carry the local mark, which both chains skip. Each packet goes to
// its own destination address: toward the peer through the routing table, or,
// for a local destination, back up the local stack through loopback, even with
// the peer as source address. The sockets are non-blocking: a full send buffer
// is an error, not a stall. Safe for concurrent use; Close must not race with
// sends.
type RawInjector struct {
	peer, local rawPair
	closed      bool
}

// rawPair is one IPv4 and one IPv6 raw socket with the same mark; fd6 is -1
// when IPv6 is unavailable.
type rawPair struct{ fd4, fd6 int }

var _ Injector = (*RawInjector)(nil)

// NewRawInjector opens the raw sockets, marked peerMark (ToPeer) and
// localMark (ToLocal), in the calling thread's network namespace. Needs
// CAP_NET_RAW and CAP_NET_ADMIN (SO_MARK). A host without IPv6 gets an
// injector for IPv4 only.
func NewRawInjector(peerMark, localMark uint32) (*RawInjector, error) {
	peer, err := openPair(peerMark)
	if err != nil {
		return nil, err
	}
	local, err := openPair(localMark)
	if err != nil {
		_ = peer.close()
		return nil, err
	}
	return &RawInjector{peer: peer, local: local}, nil
}

func openPair(mark uint32) (rawPair, error) {
	fd4, err := rawSocket(unix.AF_INET, mark)
	if err != nil {
		return rawPair{}, err
	}
	if err := unix.SetsockoptInt(fd4, unix.IPPROTO_IP, unix.IP_HDRINCL, 1); err != nil {
		_ = unix.Close(fd4)
		return rawPair{}, fmt.Errorf("nfq: raw socket: IP_HDRINCL: %w", err)
	}
	fd6, err := rawSocket(unix.AF_INET6, mark)
	if errors.Is(err, unix.EAFNOSUPPORT) {
		fd6 = -1
	} else if err != nil {
		_ = unix.Close(fd4)
		return rawPair{}, err
	}
	return rawPair{fd4: fd4, fd6: fd6}, nil
}

func rawSocket(family int, mark uint32) (int, error) {
	// For AF_INET6, IPPROTO_RAW implies that the packet carries its header.
	fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return -1, fmt.Errorf("nfq: raw socket (family %d): %w", family, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(mark)); err != nil {
		_ = unix.Close(fd)
		return -1, fmt.Errorf("nfq: raw socket: SO_MARK: %w", err)
	}
	return fd, nil
}

// ToPeer sends pkt toward its destination on the wire.
func (r *RawInjector) ToPeer(pkt []byte) error { return r.send(&r.peer, pkt) }

// ToLocal hands pkt to the local stack (its destination is a local address).
func (r *RawInjector) ToLocal(pkt []byte) error { return r.send(&r.local, pkt) }

func (r *RawInjector) send(p *rawPair, pkt []byte) error {
	if len(pkt) == 0 {
		return ErrInjectPacket
	}
	if r.closed {
		return ErrInjectorClosed
	}
	var err error
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < packet.IPv4HeaderLen {
			return ErrInjectPacket
		}
		err = unix.Sendto(p.fd4, pkt, 0, &unix.SockaddrInet4{Addr: [4]byte(pkt[16:20])})
	case 6:
		if len(pkt) < packet.IPv6HeaderLen {
			return ErrInjectPacket
		}
		if p.fd6 < 0 {
			return ErrNoIPv6
		}
		err = unix.Sendto(p.fd6, pkt, 0, &unix.SockaddrInet6{Addr: [16]byte(pkt[24:40])})
	default:
		return ErrInjectPacket
	}
	if err != nil {
		return fmt.Errorf("nfq: inject: %w", err)
	}
	return nil
}

func (p *rawPair) close() error {
	var errs []error
	for _, fd := range []*int{&p.fd4, &p.fd6} {
		if *fd >= 0 {
			if err := unix.Close(*fd); err != nil {
				errs = append(errs, fmt.Errorf("nfq: close raw socket: %w", err))
			}
			*fd = -1
		}
	}
	return errors.Join(errs...)
}

// Close closes the sockets. It is idempotent.
func (r *RawInjector) Close() error {
	r.closed = true
	return errors.Join(r.peer.close(), r.local.close())
}

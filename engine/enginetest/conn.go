package enginetest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// ErrListenerClosed is returned by Listener.Accept after Close.
var ErrListenerClosed = errors.New("enginetest: listener closed")

// Conn is a TCP connection on one of the Pair's stacks: a net.Conn (gonet)
// that can also be aborted with a RST.
type Conn struct {
	*gonet.TCPConn
	ep tcpip.Endpoint
}

// Abort closes the connection with a RST instead of a FIN, like close(2)
// after SO_LINGER with a zero timeout.
func (c *Conn) Abort() {
	c.ep.SocketOptions().SetLinger(tcpip.LingerOption{Enabled: true, Timeout: 0})
	c.TCPConn.Close()
}

func netProto(v6 bool) tcpip.NetworkProtocolNumber {
	if v6 {
		return ipv6.ProtocolNumber
	}
	return ipv4.ProtocolNumber
}

func fullAddr(a netip.Addr, port uint16) tcpip.FullAddress {
	return tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFromSlice(a.AsSlice()), Port: port}
}

// Listener accepts TCP connections on one host.
type Listener struct {
	ep        tcpip.Endpoint
	wq        *waiter.Queue
	closed    chan struct{}
	closeOnce sync.Once
	addr      net.Addr
}

// Listen listens on this host's IPv4 or IPv6 address and port.
func (h *Host) Listen(v6 bool, port uint16) (*Listener, error) {
	var wq waiter.Queue
	ep, terr := h.stack.NewEndpoint(tcp.ProtocolNumber, netProto(v6), &wq)
	if terr != nil {
		return nil, fmt.Errorf("enginetest: listen on %s: new endpoint: %s", h, terr)
	}
	a := fullAddr(h.Addr(v6), port)
	if terr := ep.Bind(a); terr != nil {
		ep.Close()
		return nil, fmt.Errorf("enginetest: listen on %s port %d: bind: %s", h, port, terr)
	}
	if terr := ep.Listen(1024); terr != nil {
		ep.Close()
		return nil, fmt.Errorf("enginetest: listen on %s port %d: %s", h, port, terr)
	}
	addr := net.TCPAddrFromAddrPort(netip.AddrPortFrom(h.Addr(v6), port))
	return &Listener{ep: ep, wq: &wq, closed: make(chan struct{}), addr: addr}, nil
}

// Accept waits for the next connection. It returns ErrListenerClosed after
// Close.
func (l *Listener) Accept() (net.Conn, error) {
	return l.AcceptConn(context.Background())
}

// AcceptConn is Accept with a context and a concrete result type.
func (l *Listener) AcceptConn(ctx context.Context) (*Conn, error) {
	entry, ch := waiter.NewChannelEntry(waiter.ReadableEvents)
	l.wq.EventRegister(&entry)
	defer l.wq.EventUnregister(&entry)
	for {
		ep, wq, terr := l.ep.Accept(nil)
		if terr == nil {
			return &Conn{TCPConn: gonet.NewTCPConn(wq, ep), ep: ep}, nil
		}
		if _, ok := terr.(*tcpip.ErrWouldBlock); !ok {
			return nil, fmt.Errorf("enginetest: accept on %s: %s", l.addr, terr)
		}
		select {
		case <-ch:
		case <-l.closed:
			return nil, ErrListenerClosed
		case <-ctx.Done():
			return nil, fmt.Errorf("enginetest: accept on %s: %w", l.addr, ctx.Err())
		}
	}
}

// Close stops listening; pending Accepts return ErrListenerClosed.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		close(l.closed)
		l.ep.Close()
	})
	return nil
}

// Addr returns the listening address.
func (l *Listener) Addr() net.Addr { return l.addr }

// Dial opens a TCP connection from this host to the peer host's port.
func (h *Host) Dial(ctx context.Context, v6 bool, port uint16) (*Conn, error) {
	return h.DialFrom(ctx, v6, 0, port)
}

// DialFrom is Dial with the local port bound first (0 picks one).
func (h *Host) DialFrom(ctx context.Context, v6 bool, localPort, port uint16) (*Conn, error) {
	var wq waiter.Queue
	ep, terr := h.stack.NewEndpoint(tcp.ProtocolNumber, netProto(v6), &wq)
	if terr != nil {
		return nil, fmt.Errorf("enginetest: dial from %s: new endpoint: %s", h, terr)
	}
	entry, ch := waiter.NewChannelEntry(waiter.WritableEvents)
	wq.EventRegister(&entry)
	defer wq.EventUnregister(&entry)
	if localPort != 0 {
		if terr := ep.Bind(fullAddr(h.Addr(v6), localPort)); terr != nil {
			ep.Close()
			return nil, fmt.Errorf("enginetest: dial from %s: bind port %d: %s", h, localPort, terr)
		}
	}
	remote := netip.AddrPortFrom(h.peer.Addr(v6), port)
	terr = ep.Connect(fullAddr(remote.Addr(), port))
	if _, ok := terr.(*tcpip.ErrConnectStarted); ok {
		select {
		case <-ch:
			terr = ep.LastError()
		case <-ctx.Done():
			ep.Close()
			return nil, fmt.Errorf("enginetest: dial %s from %s: %w", remote, h, ctx.Err())
		}
	}
	if terr != nil {
		ep.Close()
		return nil, fmt.Errorf("enginetest: dial %s from %s: %s", remote, h, terr)
	}
	return &Conn{TCPConn: gonet.NewTCPConn(&wq, ep), ep: ep}, nil
}

// Listen listens on host B (the usual server).
func (p *Pair) Listen(v6 bool, port uint16) (*Listener, error) { return p.B.Listen(v6, port) }

// Dial connects from host A to host B's port.
func (p *Pair) Dial(ctx context.Context, v6 bool, port uint16) (*Conn, error) {
	return p.A.Dial(ctx, v6, port)
}

// Endpoint returns the gVisor endpoint under c, for socket options and
// state the net.Conn interface does not reach.
func (c *Conn) Endpoint() tcpip.Endpoint { return c.ep }

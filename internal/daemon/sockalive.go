package daemon

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// sockLiveness answers whether this host has a TCP socket for a tuple, for
// the fallback record (fallbacks.go). Methods on it may be called
// concurrently.
type sockLiveness interface {
	// alive reports whether a socket local -> remote exists in a connected
	// state (not TIME_WAIT or closed).
	alive(local, remote netip.AddrPort) (bool, error)
	// connected lists every socket in a connected state.
	connected() (flowSet, error)
}

// kernelSockets asks the kernel with sock_diag (NETLINK_INET_DIAG).
type kernelSockets struct{}

// diagNoCookie is INET_DIAG_NOCOOKIE: an exact lookup by tuple alone.
var diagNoCookie = [2]uint32{^uint32(0), ^uint32(0)}

// alive looks the tuple up with a non-dump SOCK_DIAG_BY_FAMILY request. An
// IPv4 tuple finds the socket also when it is an IPv6 socket with mapped
// addresses (the kernel looks IPv4 connections up in one table).
func (kernelSockets) alive(local, remote netip.AddrPort) (bool, error) {
	_, ok, err := lookupConnected(local, remote)
	return ok, err
}

// errNoSocket: no socket in a connected state has the tuple.
var errNoSocket = errors.New("no connected socket")

// owner returns the uid owning the connected socket local -> remote.
func (kernelSockets) owner(local, remote netip.AddrPort) (uint32, error) {
	s, ok, err := lookupConnected(local, remote)
	switch {
	case err != nil:
		return 0, err
	case !ok:
		return 0, fmt.Errorf("sock_diag: %v -> %v: %w", local, remote, errNoSocket)
	}
	return s.UID, nil
}

// lookupConnected finds the socket local -> remote in a connected state.
func lookupConnected(local, remote netip.AddrPort) (diagSock, bool, error) {
	c, err := netlink.Dial(unix.NETLINK_INET_DIAG, nil)
	if err != nil {
		return diagSock{}, false, fmt.Errorf("sock_diag: dial: %w", err)
	}
	defer c.Close()
	s := diagSock{Family: afInet6, Local: unmapAP(local), Remote: unmapAP(remote), Cookie: diagNoCookie}
	if s.Local.Addr().Is4() {
		s.Family = afInet
	}
	msgs, err := c.Execute(netlink.Message{
		Header: netlink.Header{Type: sockDiagByFamily, Flags: netlink.Request},
		Data:   marshalDiagReq(s.Family, ^uint32(0), &s),
	})
	if errors.Is(err, unix.ENOENT) {
		return diagSock{}, false, nil
	}
	if err != nil {
		return diagSock{}, false, fmt.Errorf("sock_diag: look up %v -> %v: %w", local, remote, err)
	}
	for _, m := range msgs {
		got, err := unmarshalDiagMsg(m.Data)
		if err != nil {
			return diagSock{}, false, err
		}
		if connectedStates&(1<<got.State) != 0 {
			return got, true, nil
		}
	}
	return diagSock{}, false, nil
}

// connected dumps the TCP sockets of both families in connected states.
func (kernelSockets) connected() (flowSet, error) {
	c, err := netlink.Dial(unix.NETLINK_INET_DIAG, nil)
	if err != nil {
		return nil, fmt.Errorf("sock_diag: dial: %w", err)
	}
	defer c.Close()
	set := flowSet{}
	for _, fam := range []uint8{afInet, afInet6} {
		socks, err := dumpTCP(c, fam)
		if err != nil {
			return nil, err
		}
		for _, s := range socks {
			set.add(s.Local, s.Remote)
		}
	}
	return set, nil
}

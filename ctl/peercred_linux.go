//go:build linux

package ctl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// serverUID returns the uid of the process that created the unix socket's
// other end (the daemon's listener), from SO_PEERCRED: the kernel records
// it at connect time, so the server cannot forge it.
func serverUID(c *net.UnixConn) (uint32, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("peer credentials: %w", err)
	}
	var uc *syscall.Ucred
	var serr error
	if err := rc.Control(func(fd uintptr) {
		uc, serr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return 0, fmt.Errorf("peer credentials: %w", err)
	}
	if serr != nil {
		return 0, fmt.Errorf("SO_PEERCRED: %w", serr)
	}
	return uc.Uid, nil
}

// sock_diag request of one TCP socket (linux/inet_diag.h, linux/sock_diag.h).
const (
	sockDiagByFamily = 20 // SOCK_DIAG_BY_FAMILY
	diagReqLen       = 56 // struct inet_diag_req_v2
	diagUIDOffset    = 64 // idiag_uid in struct inet_diag_msg
)

// tcpServerUID returns the uid owning the daemon's end of a loopback TCP
// control connection: TCP carries no credentials, but the kernel knows who
// owns the socket, and sock_diag reports it (as ss -e does) to any user.
func tcpServerUID(c *net.TCPConn) (uint32, error) {
	la, ok1 := c.LocalAddr().(*net.TCPAddr)
	ra, ok2 := c.RemoteAddr().(*net.TCPAddr)
	if !ok1 || !ok2 {
		return 0, errors.New("not a TCP connection")
	}
	server, client := ra.AddrPort(), la.AddrPort()
	family := uint8(unix.AF_INET6)
	if server.Addr().Unmap().Is4() {
		family = unix.AF_INET
	}
	req := make([]byte, diagReqLen)
	req[0], req[1] = family, unix.IPPROTO_TCP
	binary.NativeEndian.PutUint32(req[4:], ^uint32(0)) // any state
	id := req[8:]
	binary.BigEndian.PutUint16(id[0:], server.Port())
	binary.BigEndian.PutUint16(id[2:], client.Port())
	putAddr(id[4:20], server.Addr(), family)
	putAddr(id[20:36], client.Addr(), family)
	binary.NativeEndian.PutUint32(id[40:], ^uint32(0)) // INET_DIAG_NOCOOKIE
	binary.NativeEndian.PutUint32(id[44:], ^uint32(0))

	nc, err := netlink.Dial(unix.NETLINK_INET_DIAG, nil)
	if err != nil {
		return 0, fmt.Errorf("sock_diag: %w", err)
	}
	defer nc.Close()
	msgs, err := nc.Execute(netlink.Message{
		Header: netlink.Header{Type: sockDiagByFamily, Flags: netlink.Request},
		Data:   req,
	})
	if err != nil {
		return 0, fmt.Errorf("sock_diag: look up %s -> %s: %w", server, client, err)
	}
	if len(msgs) != 1 || len(msgs[0].Data) < diagUIDOffset+4 {
		return 0, fmt.Errorf("sock_diag: %d replies for %s -> %s", len(msgs), server, client)
	}
	return binary.NativeEndian.Uint32(msgs[0].Data[diagUIDOffset:]), nil
}

func putAddr(b []byte, a netip.Addr, family uint8) {
	if family == unix.AF_INET {
		v := a.Unmap().As4()
		copy(b, v[:])
		return
	}
	v := a.As16()
	copy(b, v[:])
}

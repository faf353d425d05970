package daemon

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// sock_diag message layout (linux/inet_diag.h). Ports and addresses are in
// network byte order; states, interface and cookie in host order.
const (
	sockDiagByFamily = 20 // SOCK_DIAG_BY_FAMILY
	sockDestroy      = 21 // SOCK_DESTROY

	diagSockIDLen = 48                     // struct inet_diag_sockid
	diagReqLen    = 8 + diagSockIDLen      // struct inet_diag_req_v2
	diagMsgLen    = 4 + diagSockIDLen + 20 // struct inet_diag_msg

	afInet     = 2  // AF_INET
	afInet6    = 10 // AF_INET6
	ipProtoTCP = 6
)

// TCP states (include/net/tcp_states.h).
const (
	tcpEstablished = 1
	tcpSynSent     = 2
	tcpSynRecv     = 3
	tcpFinWait1    = 4
	tcpFinWait2    = 5
	tcpCloseWait   = 8
	tcpLastAck     = 9
	tcpClosing     = 11
)

// connectedStates selects the sockets that carry or may carry data: every
// state but LISTEN, TIME_WAIT, CLOSE and request sockets.
const connectedStates = 1<<tcpEstablished | 1<<tcpSynSent | 1<<tcpSynRecv | 1<<tcpFinWait1 |
	1<<tcpFinWait2 | 1<<tcpCloseWait | 1<<tcpLastAck | 1<<tcpClosing

var errDiagShort = errors.New("sock_diag: short message")

// diagSock is one socket from a sock_diag dump.
type diagSock struct {
	Family        uint8
	State         uint8
	Local, Remote netip.AddrPort
	If            uint32
	Cookie        [2]uint32
	UID           uint32 // the socket's owner (idiag_uid); messages only
}

// marshalDiagReq encodes a struct inet_diag_req_v2 for TCP sockets of
// family in the given states, about socket s (zero for a dump).
func marshalDiagReq(family uint8, states uint32, s *diagSock) []byte {
	b := make([]byte, diagReqLen)
	b[0] = family
	b[1] = ipProtoTCP
	binary.NativeEndian.PutUint32(b[4:], states)
	if s != nil {
		putSockID(b[8:], s)
	}
	return b
}

func putSockID(b []byte, s *diagSock) {
	binary.BigEndian.PutUint16(b[0:], s.Local.Port())
	binary.BigEndian.PutUint16(b[2:], s.Remote.Port())
	putAddr(b[4:20], s.Local.Addr(), s.Family)
	putAddr(b[20:36], s.Remote.Addr(), s.Family)
	binary.NativeEndian.PutUint32(b[36:], s.If)
	binary.NativeEndian.PutUint32(b[40:], s.Cookie[0])
	binary.NativeEndian.PutUint32(b[44:], s.Cookie[1])
}

func putAddr(b []byte, a netip.Addr, family uint8) {
	switch {
	case !a.IsValid():
	case family == afInet && a.Unmap().Is4():
		v := a.Unmap().As4()
		copy(b, v[:])
	case family == afInet6:
		v := a.As16()
		copy(b, v[:])
	}
}

// unmarshalDiagMsg decodes a struct inet_diag_msg (attributes after it are
// ignored).
func unmarshalDiagMsg(b []byte) (diagSock, error) {
	if len(b) < diagMsgLen {
		return diagSock{}, errDiagShort
	}
	s := diagSock{Family: b[0], State: b[1]}
	id := b[4 : 4+diagSockIDLen]
	sport := binary.BigEndian.Uint16(id[0:])
	dport := binary.BigEndian.Uint16(id[2:])
	var src, dst netip.Addr
	switch s.Family {
	case afInet:
		src = netip.AddrFrom4([4]byte(id[4:8]))
		dst = netip.AddrFrom4([4]byte(id[20:24]))
	case afInet6:
		src = netip.AddrFrom16([16]byte(id[4:20]))
		dst = netip.AddrFrom16([16]byte(id[20:36]))
	default:
		return diagSock{}, fmt.Errorf("sock_diag: family %d", s.Family)
	}
	s.Local = netip.AddrPortFrom(src, sport)
	s.Remote = netip.AddrPortFrom(dst, dport)
	s.If = binary.NativeEndian.Uint32(id[36:])
	s.Cookie = [2]uint32{binary.NativeEndian.Uint32(id[40:]), binary.NativeEndian.Uint32(id[44:])}
	s.UID = binary.NativeEndian.Uint32(b[4+diagSockIDLen+12:]) // after expires, rqueue, wqueue
	return s, nil
}

package ctl

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// DefaultAddress is where the daemon listens and clients dial by default.
const DefaultAddress = "/run/tcpcrypt/ctl"

// EnvAddress names the environment variable that, when set, replaces
// DefaultAddress for clients given an empty address.
const EnvAddress = "TCPCRYPT_CTL"

// ErrBadAddress is returned (wrapped) by ParseAddress.
var ErrBadAddress = errors.New("ctl: bad control address")

// Address is a parsed control address.
type Address struct {
	// Network is "unix" or "tcp".
	Network string
	// Path is the unix socket path.
	Path string
	// Host is the TCP address, always a loopback address; the zero Addr means
	// both 127.0.0.1 and ::1.
	Host netip.Addr
	// Port is the TCP port (0 lets a listener pick one).
	Port uint16
}

// ParseAddress parses a control address as given to -u:
//
//	/run/tcpcrypt/ctl, ./ctl, unix:ctl   a unix socket path (anything with a '/', or "unix:" prefixed)
//	:7777, localhost:7777                TCP on 127.0.0.1 and ::1
//	127.0.0.1:7777, [::1]:7777           TCP on that loopback address only
//
// An empty string means DefaultAddress. TCP addresses must be loopback: the
// control protocol is unauthenticated and unencrypted.
func ParseAddress(s string) (Address, error) {
	switch {
	case s == "":
		return Address{Network: "unix", Path: DefaultAddress}, nil
	case strings.HasPrefix(s, "unix:"):
		if len(s) == len("unix:") {
			return Address{}, fmt.Errorf("%w: %q: empty socket path", ErrBadAddress, s)
		}
		return Address{Network: "unix", Path: s[len("unix:"):]}, nil
	case strings.Contains(s, "/"):
		return Address{Network: "unix", Path: s}, nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return Address{}, fmt.Errorf("%w: %q: want a socket path or [loopback-host]:port", ErrBadAddress, s)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return Address{}, fmt.Errorf("%w: %q: bad port", ErrBadAddress, s)
	}
	a := Address{Network: "tcp", Port: uint16(p)}
	switch host {
	case "", "localhost":
		return a, nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		return Address{}, fmt.Errorf("%w: %q: host must be a loopback address", ErrBadAddress, s)
	}
	ip = ip.Unmap()
	if !ip.IsLoopback() {
		return Address{}, fmt.Errorf("%w: %q: the control port is only offered on loopback", ErrBadAddress, s)
	}
	a.Host = ip
	return a, nil
}

// String formats a so that ParseAddress(a.String()) == a.
func (a Address) String() string {
	if a.Network == "unix" {
		if strings.Contains(a.Path, "/") && !strings.HasPrefix(a.Path, "unix:") {
			return a.Path
		}
		return "unix:" + a.Path
	}
	host := ""
	if a.Host.IsValid() {
		host = a.Host.String()
	}
	return net.JoinHostPort(host, strconv.Itoa(int(a.Port)))
}

// clientAddress picks the address a client dials: addr, else $TCPCRYPT_CTL,
// else DefaultAddress.
func clientAddress(addr string) (Address, error) {
	if addr == "" {
		addr = os.Getenv(EnvAddress)
	}
	a, err := ParseAddress(addr)
	if err != nil {
		return a, err
	}
	if a.Network == "tcp" && a.Port == 0 {
		return a, fmt.Errorf("%w: %q: port 0 cannot be dialled", ErrBadAddress, addr)
	}
	return a, nil
}

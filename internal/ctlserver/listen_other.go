//go:build !linux

package ctlserver

import (
	"errors"
	"net"
	"os"
)

// errNoUnix: the unix control socket with SO_PEERCRED is Linux-only.
var errNoUnix = errors.New("ctl: unix control socket is only supported on Linux")

func listenUnix(string, os.FileMode) (*net.UnixListener, error) { return nil, errNoUnix }

func peerCred(*net.UnixConn) (Peer, error) { return Peer{Network: "unix"}, errNoUnix }

func noIPv6(error) bool { return false }

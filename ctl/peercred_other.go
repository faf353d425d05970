//go:build !linux

package ctl

import (
	"errors"
	"net"
)

// serverUID is only implemented on Linux (SO_PEERCRED); elsewhere the
// daemon's identity is unknown and session ids are not believed.
func serverUID(*net.UnixConn) (uint32, error) {
	return 0, errors.New("peer credentials are only read on Linux")
}

func tcpServerUID(*net.TCPConn) (uint32, error) {
	return 0, errors.New("socket owners are only looked up on Linux")
}

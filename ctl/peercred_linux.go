//go:build linux

package ctl

import (
	"fmt"
	"net"
	"syscall"
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

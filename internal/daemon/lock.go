package daemon

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// instanceLockName is the abstract unix socket that marks a running daemon.
// Abstract socket names belong to a network namespace and vanish when their
// socket closes, even when the process is killed, so the lock is per
// namespace (like the table it protects) and never goes stale.
const instanceLockName = "@tcpcryptd-instance"

// ErrRunning reports that another daemon runs in this network namespace.
var ErrRunning = errors.New("another tcpcryptd is running in this network namespace")

// instanceLock holds the per-namespace instance lock.
type instanceLock struct{ fd int }

// lockInstance takes the instance lock, or fails with ErrRunning. Without
// it, a second daemon would take the first one's table for a stale one and
// remove it.
func lockInstance() (*instanceLock, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("instance lock: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: instanceLockName}); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EADDRINUSE) {
			return nil, ErrRunning
		}
		return nil, fmt.Errorf("instance lock: %w", err)
	}
	return &instanceLock{fd: fd}, nil
}

func (l *instanceLock) release() {
	if l != nil && l.fd >= 0 {
		unix.Close(l.fd)
		l.fd = -1
	}
}

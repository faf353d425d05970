package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

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

// ErrStateInUse reports that another daemon holds the state file's lock.
var ErrStateInUse = errors.New("state file in use by another tcpcryptd")

// lockStateFile takes an exclusive lock (flock) on path+".lock", so that two
// daemons, which the instance lock allows in different network namespaces,
// never share one state file and overwrite each other's rules. Only a lock
// held by another process stops the daemon (ErrStateInUse, naming the
// path); when the lock file cannot be made at all, a warning is logged and
// the daemon goes on unprotected. The returned function releases the lock.
func lockStateFile(path string, log *slog.Logger) (func(), error) {
	name := path + ".lock"
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		log.Warn("cannot lock the state file; another daemon could share it", "file", name, "err", err)
		return func() {}, nil
	}
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		log.Warn("cannot lock the state file; another daemon could share it", "file", name, "err", err)
		return func() {}, nil
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is locked (%s), probably by a daemon in another network namespace: "+
				"give each daemon its own --state and --control, as tcpcryptd@NAME.service does", ErrStateInUse, path, name)
		}
		log.Warn("cannot lock the state file; another daemon could share it", "file", name, "err", err)
		return func() {}, nil
	}
	return func() { f.Close() }, nil
}

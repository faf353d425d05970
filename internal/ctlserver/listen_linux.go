//go:build linux

package ctlserver

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// umaskMu serialises this package's umask changes (the umask is per process).
var umaskMu sync.Mutex

// listenUnix creates the control socket at path; see Server.ListenAddress.
func listenUnix(path string, mode os.FileMode) (*net.UnixListener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("ctl: create socket directory: %w", err)
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	umaskMu.Lock()
	old := syscall.Umask(0o077)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	syscall.Umask(old)
	umaskMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("ctl: listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, mode.Perm()); err != nil {
		l.Close()
		return nil, fmt.Errorf("ctl: chmod %s: %w", path, err)
	}
	return l, nil
}

// removeStale deals with an existing file at path: a socket nobody answers
// on is left over from a dead daemon and is removed; a live one, or anything
// that is not a socket, makes listening fail.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ctl: check %s: %w", path, err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("ctl: %s exists and is not a socket; not removing it", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%w: %s answers", ErrInUse, path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("ctl: probe existing socket %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("ctl: remove stale socket %s: %w", path, err)
	}
	return nil
}

// peerCred returns the unix peer's SO_PEERCRED credentials.
func peerCred(c *net.UnixConn) (Peer, error) {
	p := Peer{Network: "unix"}
	rc, err := c.SyscallConn()
	if err != nil {
		return p, fmt.Errorf("ctl: peer credentials: %w", err)
	}
	var uc *syscall.Ucred
	var serr error
	if err := rc.Control(func(fd uintptr) {
		uc, serr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return p, fmt.Errorf("ctl: peer credentials: %w", err)
	}
	if serr != nil {
		return p, fmt.Errorf("ctl: SO_PEERCRED: %w", serr)
	}
	p.Cred, p.UID, p.GID, p.PID = true, uc.Uid, uc.Gid, uc.Pid
	return p, nil
}

// noIPv6 reports whether err means the host cannot bind ::1.
func noIPv6(err error) bool {
	return errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EAFNOSUPPORT)
}

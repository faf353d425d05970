// Package netns creates and removes Linux network namespaces for root-only tests.
//
// A namespace made here is named and bind-mounted under /run/netns, the place
// iproute2 uses, so `ip netns exec NAME cmd` works on it. The package changes the
// network namespace of the calling OS thread only while a function runs inside
// the namespace (Do), and always restores it before the thread is released.
//
// Everything here needs CAP_SYS_ADMIN; NewForTest turns missing privileges into a
// test skip with a clear message. Only test code and root-only tools should
// import this package.
package netns

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// RunDir is where named namespaces are bind-mounted, as iproute2 expects.
const RunDir = "/run/netns"

// ErrPrivilege reports that the caller lacks the privileges to create or enter
// a network namespace (EPERM or EACCES from the kernel).
var ErrPrivilege = errors.New("netns: insufficient privilege")

// NS is a named network namespace created by New. Close removes it.
type NS struct {
	name string
	path string
	fd   int // open handle on the namespace; -1 once closed
}

// Name is the namespace's name, usable with `ip netns exec`.
func (n *NS) Name() string { return n.name }

// Path is the bind-mount path of the namespace under RunDir.
func (n *NS) Path() string { return n.path }

// Fd is an open file descriptor referring to the namespace, valid until Close.
// It suits nftables.WithNetNSFd and setns(2).
func (n *NS) Fd() int { return n.fd }

// New creates a fresh network namespace named prefix plus a random suffix,
// bind-mounts it under RunDir and brings its loopback interface up. The calling
// goroutine's thread keeps its original namespace.
func New(prefix string) (*NS, error) {
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("netns: random name: %w", err)
	}
	name := prefix + hex.EncodeToString(rnd[:])
	path := filepath.Join(RunDir, name)

	if err := os.MkdirAll(RunDir, 0o755); err != nil {
		return nil, classify("create "+RunDir, err)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return nil, classify("create mount point", err)
	}
	_ = f.Close()

	if err := bindNew(path); err != nil {
		_ = os.Remove(path)
		return nil, err
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		_ = unix.Unmount(path, unix.MNT_DETACH)
		_ = os.Remove(path)
		return nil, classify("open namespace", err)
	}
	n := &NS{name: name, path: path, fd: fd}
	if err := n.Do(loopbackUp); err != nil {
		_ = n.Close()
		return nil, err
	}
	return n, nil
}

// bindNew creates a new network namespace on a locked thread, bind-mounts it on
// path and switches the thread back.
func bindNew(path string) error {
	runtime.LockOSThread()
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return classify("open current namespace", err)
	}
	defer unix.Close(orig)

	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return classify("unshare", err)
	}
	mountErr := unix.Mount("/proc/thread-self/ns/net", path, "none", unix.MS_BIND, "")
	if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
		// The thread is stuck in the new namespace: leave it locked so the
		// runtime discards it when this goroutine ends.
		if mountErr == nil {
			_ = unix.Unmount(path, unix.MNT_DETACH)
		}
		return classify("restore namespace", err)
	}
	runtime.UnlockOSThread()
	if mountErr != nil {
		return classify("bind mount", mountErr)
	}
	return nil
}

// Do runs fn on a thread switched into the namespace, then switches the thread
// back. Sockets that fn creates belong to the namespace for their whole life and
// may be used from any goroutine afterwards. fn must not start goroutines that
// expect to inherit the namespace.
func (n *NS) Do(fn func() error) (err error) {
	if n.fd < 0 {
		return errors.New("netns: namespace closed")
	}
	runtime.LockOSThread()
	orig, oerr := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if oerr != nil {
		runtime.UnlockOSThread()
		return classify("open current namespace", oerr)
	}
	defer unix.Close(orig)
	if err := unix.Setns(n.fd, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return classify("enter "+n.name, err)
	}
	defer func() {
		if rerr := unix.Setns(orig, unix.CLONE_NEWNET); rerr != nil {
			// Keep the thread locked: the runtime discards it when the
			// goroutine ends, so no other code runs in the wrong namespace.
			err = errors.Join(err, classify("restore namespace", rerr))
			return
		}
		runtime.UnlockOSThread()
	}()
	return fn()
}

// Close unmounts and deletes the namespace's mount point and closes its handle.
// The kernel frees the namespace once no process, socket or handle refers to it.
// Close is idempotent.
func (n *NS) Close() error {
	if n.fd < 0 {
		return nil
	}
	var errs []error
	if err := unix.Close(n.fd); err != nil {
		errs = append(errs, fmt.Errorf("netns: close fd: %w", err))
	}
	n.fd = -1
	if err := unix.Unmount(n.path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
		errs = append(errs, fmt.Errorf("netns: unmount %s: %w", n.path, err))
	}
	if err := os.Remove(n.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("netns: remove %s: %w", n.path, err))
	}
	return errors.Join(errs...)
}

// loopbackUp sets IFF_UP on "lo" in the current namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("netns: socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("netns: ifreq: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return classify("get lo flags", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return classify("set lo up", err)
	}
	return nil
}

// classify wraps err with the operation and marks permission failures with
// ErrPrivilege.
func classify(op string, err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) || errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("netns: %s: %w: %w", op, ErrPrivilege, err)
	}
	return fmt.Errorf("netns: %s: %w", op, err)
}

package daemon

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Key-log line labels.
const (
	// KeyLogES labels a fresh key exchange: "TCPCRYPT_ES <N_A hex> <ES hex>",
	// the Init1 nonce and the ECDH shared secret (RFC 8548 §3.3).
	KeyLogES = "TCPCRYPT_ES"
	// KeyLogSS labels an established session: "TCPCRYPT_SS <session id hex>
	// <ss hex>" (RFC 8548 §3.4).
	KeyLogSS = "TCPCRYPT_SS"
)

// KeyLog appends session secrets to a file, one line per event, so that a
// packet analyser can decrypt captured traffic. Anyone who can read the file
// can decrypt the logged connections: it is off unless --keylog is given,
// and OpenKeyLog only writes to a regular file of the daemon's own with mode
// 0600. Each line is written with a single write(2)
// on a file opened with O_APPEND, so lines from concurrent callers, and from
// several processes, never interleave. A KeyLog is safe for concurrent use.
type KeyLog struct {
	mu     sync.Mutex
	f      *os.File
	buf    []byte
	errs   uint64
	closed bool
}

// OpenKeyLog opens (or creates, mode 0600) the key log at path for
// appending. Because it writes secrets, as root, to a path an administrator
// typed, it refuses anything but a plain file of its own:
//
//   - path itself is a symbolic link (O_NOFOLLOW; links in the directories
//     above it are followed);
//   - the opened file is not a regular file (directory, fifo, socket, device;
//     opened with O_NONBLOCK, so a fifo never blocks the start);
//   - it is owned by another uid than the daemon's effective uid;
//   - it has more than one hard link (its contents would also appear under
//     another name, perhaps in a directory other users can read).
//
// An existing file of ours with a mode other than 0600 is changed to 0600
// (through the open descriptor, so the check and the change concern the
// same file). The file is opened with O_CLOEXEC: no child inherits it.
func OpenKeyLog(path string) (*KeyLog, error) {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT|unix.O_NOFOLLOW|
		unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0o600)
	if err != nil {
		return nil, keyLogOpenError(path, err)
	}
	fail := func(format string, args ...any) (*KeyLog, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("keylog %s: %s", path, fmt.Sprintf(format, args...))
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fail("fstat: %v", err)
	}
	if typ := st.Mode & unix.S_IFMT; typ != unix.S_IFREG {
		return fail("is %s, not a regular file; refusing to write secrets to it", fileTypeName(typ))
	}
	if euid := uint32(os.Geteuid()); st.Uid != euid {
		return fail("is owned by uid %d, not by the daemon (uid %d); refusing to write secrets into another user's file (remove it or give another path)", st.Uid, euid)
	}
	if st.Nlink != 1 {
		return fail("has %d hard links; refusing to write secrets to a file that also exists under another name", st.Nlink)
	}
	if st.Mode&0o7777 != 0o600 {
		if err := unix.Fchmod(fd, 0o600); err != nil {
			return fail("has mode %04o and cannot be restricted to 0600: %v", st.Mode&0o7777, err)
		}
	}
	// O_NONBLOCK was only for the open; a regular file ignores it, but clear
	// it so the descriptor is an ordinary blocking one.
	if err := clearNonblock(fd); err != nil {
		return fail("%v", err)
	}
	return &KeyLog{f: os.NewFile(uintptr(fd), path)}, nil
}

// keyLogOpenError explains a failed open of the key log.
func keyLogOpenError(path string, err error) error {
	switch {
	case errors.Is(err, unix.ELOOP):
		return fmt.Errorf("keylog %s: is a symbolic link; refusing to follow it (give the link's target): %w", path, err)
	case errors.Is(err, unix.EISDIR):
		return fmt.Errorf("keylog %s: is a directory, not a regular file: %w", path, err)
	case errors.Is(err, unix.ENXIO):
		// O_WRONLY|O_NONBLOCK on a fifo without a reader, or a socket file.
		return fmt.Errorf("keylog %s: is a fifo or socket, not a regular file: %w", path, err)
	}
	return fmt.Errorf("keylog %s: %w", path, err)
}

// fileTypeName names a file type (the S_IFMT bits) for error messages.
func fileTypeName(typ uint32) string {
	switch typ {
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFIFO:
		return "a fifo"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFLNK:
		return "a symbolic link"
	}
	return fmt.Sprintf("of type %#o", typ)
}

// clearNonblock clears O_NONBLOCK on fd.
func clearNonblock(fd int) error {
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return fmt.Errorf("fcntl F_GETFL: %w", err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl&^unix.O_NONBLOCK); err != nil {
		return fmt.Errorf("fcntl F_SETFL: %w", err)
	}
	return nil
}

// Log appends "KIND <a hex> <b hex>\n". kind is KeyLogES or KeyLogSS; a kind
// that is empty or holds white space is a programmer error and is ignored.
// Write errors are counted (Errors), never returned: the key log must not
// disturb the packet path.
func (k *KeyLog) Log(kind string, a, b []byte) {
	if k == nil || kind == "" || strings.ContainsAny(kind, " \t\r\n") {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return
	}
	k.buf = append(k.buf[:0], kind...)
	k.buf = append(k.buf, ' ')
	k.buf = hex.AppendEncode(k.buf, a)
	k.buf = append(k.buf, ' ')
	k.buf = hex.AppendEncode(k.buf, b)
	k.buf = append(k.buf, '\n')
	if _, err := k.f.Write(k.buf); err != nil {
		k.errs++
	}
	clear(k.buf)
}

// Errors returns how many lines could not be written.
func (k *KeyLog) Errors() uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.errs
}

// Close closes the file; later Log calls do nothing.
func (k *KeyLog) Close() error {
	if k == nil {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return nil
	}
	k.closed = true
	return k.f.Close()
}

package daemon

import (
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
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
// and created with mode 0600. Each line is written with a single write(2)
// on a file opened with O_APPEND, so lines from concurrent callers, and from
// several processes, never interleave. A KeyLog is safe for concurrent use.
type KeyLog struct {
	mu     sync.Mutex
	f      *os.File
	buf    []byte
	errs   uint64
	closed bool
}

// OpenKeyLog opens (or creates) the key log at path for appending, and
// restricts an existing file to mode 0600.
func OpenKeyLog(path string) (*KeyLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("keylog: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, fmt.Errorf("keylog: %w", err)
	}
	return &KeyLog{f: f}, nil
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

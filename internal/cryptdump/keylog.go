package cryptdump

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/tcpcryptd/tcpcrypt/crypto"
)

// KeyLog holds the secrets read from tcpcryptd --keylog files:
//
//	TCPCRYPT_ES <N_A hex> <ES hex>         a fresh key exchange
//	TCPCRYPT_SS <session id hex> <ss hex>  a session (fresh or resumed)
//
// Blank lines, lines starting with '#' and lines with other labels are
// ignored.
type KeyLog struct {
	es map[string][]byte // by N_A
	ss []ssEntry
	// Bad counts lines with a known label that could not be parsed.
	Bad int
}

type ssEntry struct {
	sid, ss []byte
}

// NewKeyLog returns an empty key log.
func NewKeyLog() *KeyLog { return &KeyLog{es: map[string][]byte{}} }

// Read adds the lines of one key-log file. It fails only on a read error;
// malformed lines are counted in Bad and reported through warn (which may be
// nil) with name and line number.
func (k *KeyLog) Read(r io.Reader, name string, warn func(string)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<16)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if f[0] != "TCPCRYPT_ES" && f[0] != "TCPCRYPT_SS" {
			continue
		}
		if err := k.add(f); err != nil {
			k.Bad++
			if warn != nil {
				warn(fmt.Sprintf("%s:%d: %v", name, n, err))
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("key log %s: %w", name, err)
	}
	return nil
}

func (k *KeyLog) add(f []string) error {
	if len(f) != 3 {
		return fmt.Errorf("%s line with %d fields, want 3", f[0], len(f))
	}
	a, err := hex.DecodeString(f[1])
	if err != nil {
		return fmt.Errorf("%s: first field: %v", f[0], err)
	}
	b, err := hex.DecodeString(f[2])
	if err != nil {
		return fmt.Errorf("%s: second field: %v", f[0], err)
	}
	switch f[0] {
	case "TCPCRYPT_ES":
		if len(a) != crypto.NonceLen || len(b) == 0 {
			return fmt.Errorf("TCPCRYPT_ES with a %d-byte nonce and a %d-byte secret", len(a), len(b))
		}
		if _, dup := k.es[string(a)]; !dup {
			k.es[string(a)] = b
		}
	default:
		if len(a) != crypto.SessionIDLen || len(b) != crypto.KeyLen {
			return fmt.Errorf("TCPCRYPT_SS with a %d-byte session id and a %d-byte secret", len(a), len(b))
		}
		for _, e := range k.ss {
			if bytes.Equal(e.sid, a) && bytes.Equal(e.ss, b) {
				return nil
			}
		}
		k.ss = append(k.ss, ssEntry{sid: a, ss: b})
	}
	return nil
}

// Len returns how many ES and SS lines are held.
func (k *KeyLog) Len() (es, ss int) { return len(k.es), len(k.ss) }

// sessionSecret returns the ss logged for session id sid.
func (k *KeyLog) sessionSecret(sid []byte) ([]byte, bool) {
	for _, e := range k.ss {
		if bytes.Equal(e.sid, sid) {
			return e.ss, true
		}
	}
	return nil, false
}

// resumeCandidates returns every secret a resumed session may be keyed
// with: each logged ss[i] and the ss[i+1] derived from it (RFC 8548 §3.5).
func (k *KeyLog) resumeCandidates() [][]byte {
	out := make([][]byte, 0, 2*len(k.ss))
	for _, e := range k.ss {
		out = append(out, e.ss, crypto.NextSecret(e.ss))
	}
	return out
}

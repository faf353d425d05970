package bind

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParseMessage checks the parser of the peer's bytes: it never panics,
// refuses with ErrProtocol, accepts only what marshals back to the same
// bytes, and checkPrefix (used while reading) agrees with it on every
// prefix. Seeds are in testdata/fuzz/FuzzParseMessage.
func FuzzParseMessage(f *testing.F) {
	k, _ := macKey(vectorKey)
	f.Add(newMessage(k, roleA, vectorSID).marshal())
	f.Add([]byte("HTTP/1.1 200 OK\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseMessage(b)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v does not match ErrProtocol", err)
			}
			if len(b) == MessageLen && checkPrefix(b) == nil {
				t.Fatalf("checkPrefix accepts all %d bytes that parse refuses: %v", len(b), err)
			}
			return
		}
		if got := m.marshal(); !bytes.Equal(got, b) {
			t.Fatalf("marshal(parse(b)) = % x, want % x", got, b)
		}
		for i := range b {
			if err := checkPrefix(b[:i]); err != nil {
				t.Fatalf("a message's prefix of %d bytes refused: %v", i, err)
			}
		}
		if m.role != roleA && m.role != roleB || m.version != Version {
			t.Fatalf("parsed role %q version %d", m.role, m.version)
		}
	})
}

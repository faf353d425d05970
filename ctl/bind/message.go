package bind

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
)

// The bind message (docs/binding.md has the same table):
//
//	offset  length  field
//	0       4       magic 0x89 'T' 'C' 'B'
//	4       1       version, 0x01
//	5       1       sender's TCP-ENO role, 'A' (0x41) or 'B' (0x42)
//	6       32      HMAC-SHA256(K, macLabel || 0x00 || version || role || session id)
//
// with K = HKDF-SHA256(IKM = key, salt = keyLabel, info = "mac key"), 32
// bytes. Everything before the session id in the MAC input has a fixed
// length, so the input decodes uniquely.
const (
	// MessageLen is the length of a bind message on the stream.
	MessageLen = headerLen + macLen
	// Version is the protocol version this package sends and accepts.
	Version = 1

	headerLen = 6
	macLen    = sha256.Size
	offRole   = 5
	roleA     = 'A'
	roleB     = 'B'
)

// magic opens every bind message. Its first byte is not ASCII, so a
// text protocol's greeting ("220 ", "SSH-", "HTTP") fails at the first
// byte.
var magic = [4]byte{0x89, 'T', 'C', 'B'}

// Domain-separation labels, fixed for version 1.
const (
	keyLabel = "tcpcryptd bind psk v1"
	keyInfo  = "mac key"
	macLabel = "tcpcryptd bind psk v1 mac"
)

// message is a decoded bind message.
type message struct {
	version byte
	role    byte // roleA or roleB
	mac     [macLen]byte
}

// marshal returns the message's MessageLen bytes.
func (m message) marshal() []byte {
	b := make([]byte, 0, MessageLen)
	b = append(b, magic[:]...)
	b = append(b, m.version, m.role)
	return append(b, m.mac[:]...)
}

// checkPrefix reports whether b (at most MessageLen bytes) can begin a bind
// message: PSK calls it after every read, so that a peer that speaks
// another protocol is refused at its first wrong byte instead of after a
// timeout. The error wraps ErrProtocol.
func checkPrefix(b []byte) error {
	for i := 0; i < len(b) && i < len(magic); i++ {
		if b[i] != magic[i] {
			return fmt.Errorf("%w: peer sent % x, not a bind message", ErrProtocol, b[:i+1])
		}
	}
	if len(b) > 4 && b[4] != Version {
		return fmt.Errorf("%w: bind version %d, this end speaks %d", ErrProtocol, b[4], Version)
	}
	if len(b) > offRole && b[offRole] != roleA && b[offRole] != roleB {
		return fmt.Errorf("%w: role byte 0x%02x is neither A nor B", ErrProtocol, b[offRole])
	}
	if len(b) > MessageLen {
		return fmt.Errorf("%w: %d bytes, a bind message has %d", ErrProtocol, len(b), MessageLen)
	}
	return nil
}

// parseMessage decodes exactly MessageLen bytes. Any other length, or a
// prefix that checkPrefix refuses, is an error wrapping ErrProtocol.
func parseMessage(b []byte) (message, error) {
	if err := checkPrefix(b); err != nil {
		return message{}, err
	}
	if len(b) != MessageLen {
		return message{}, fmt.Errorf("%w: %d bytes, a bind message has %d", ErrProtocol, len(b), MessageLen)
	}
	m := message{version: b[4], role: b[offRole]}
	copy(m.mac[:], b[headerLen:])
	return m, nil
}

// macKey derives the HMAC key from the shared secret (HKDF-SHA256, RFC
// 5869), so that the secret itself never keys anything and the same secret
// used elsewhere gives unrelated MACs.
func macKey(secret []byte) ([]byte, error) {
	k, err := hkdf.Key(sha256.New, secret, []byte(keyLabel), keyInfo, sha256.Size)
	if err != nil {
		return nil, fmt.Errorf("bind: derive key: %w", err)
	}
	return k, nil
}

// proof is the MAC a holder of k sends as role on the session sid.
func proof(k []byte, role byte, sid []byte) [macLen]byte {
	h := hmac.New(sha256.New, k)
	h.Write([]byte(macLabel))
	h.Write([]byte{0, Version, role})
	h.Write(sid)
	var out [macLen]byte
	h.Sum(out[:0])
	return out
}

// newMessage builds this end's message.
func newMessage(k []byte, role byte, sid []byte) message {
	return message{version: Version, role: role, mac: proof(k, role, sid)}
}

// verify checks the peer's message against this end's role and session id:
// the peer must claim the other role (ErrSameRole otherwise) and carry the
// MAC for that role and sid (ErrMismatch otherwise, compared in constant
// time).
func (m *message) verify(k []byte, ourRole byte, sid []byte) error {
	if m.role == ourRole {
		return fmt.Errorf("%w (role %c)", ErrSameRole, ourRole)
	}
	want := proof(k, m.role, sid)
	if !hmac.Equal(m.mac[:], want[:]) {
		return fmt.Errorf("%w: MAC of the peer (role %c) is wrong for this session", ErrMismatch, m.role)
	}
	return nil
}

// roleByte maps isA to the role byte.
func roleByte(isA bool) byte {
	if isA {
		return roleA
	}
	return roleB
}

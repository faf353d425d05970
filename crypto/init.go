package crypto

import (
	"encoding/binary"
	"fmt"
)

// Init1 is the active key-exchange message A sends first (RFC 8548 §3.3,
// §4.1). Parsed values alias the parsed buffer.
type Init1 struct {
	// Ciphers is sym_cipher_list, exactly as sent (unknown ids included).
	Ciphers []AEADID
	// Nonce is N_A (NonceLen bytes).
	Nonce []byte
	// Pub is Pub_A in its wire encoding (PublicKeyLen bytes).
	Pub []byte
}

// Init2 is B's reply (RFC 8548 §3.3, §4.1). Parsed values alias the parsed
// buffer.
type Init2 struct {
	// Cipher is sym_cipher, the AEAD B chose from Init1's list.
	Cipher AEADID
	// Nonce is N_B (NonceLen bytes).
	Nonce []byte
	// Pub is Pub_B in its wire encoding (PublicKeyLen bytes).
	Pub []byte
}

const (
	init1Fixed = 4 + 4 + 1 // magic, message_len, nciphers
	init2Fixed = 4 + 4 + 2 // magic, message_len, sym_cipher
	initHeader = 8         // magic and message_len
)

// Len is the message_len Marshal writes: the message ends where Pub ends
// (RFC 8548 §4.1: the ignored field is empty when sending).
func (m *Init1) Len() int { return init1Fixed + 2*len(m.Ciphers) + len(m.Nonce) + len(m.Pub) }

// Len is the message_len Marshal writes.
func (m *Init2) Len() int { return init2Fixed + len(m.Nonce) + len(m.Pub) }

// Marshal appends the encoded Init1 to dst. It never sends ignored
// bytes. More than 255 ciphers is a programming error and panics.
func (m *Init1) Marshal(dst []byte) []byte {
	if len(m.Ciphers) > 255 {
		panic("tcpcrypt: Init1 with more than 255 ciphers")
	}
	dst = binary.BigEndian.AppendUint32(dst, Init1Magic)
	dst = binary.BigEndian.AppendUint32(dst, uint32(m.Len()))
	dst = append(dst, byte(len(m.Ciphers)))
	for _, c := range m.Ciphers {
		dst = binary.BigEndian.AppendUint16(dst, uint16(c))
	}
	dst = append(dst, m.Nonce...)
	return append(dst, m.Pub...)
}

// Marshal appends the encoded Init2 to dst. It never sends ignored bytes.
func (m *Init2) Marshal(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, Init2Magic)
	dst = binary.BigEndian.AppendUint32(dst, uint32(m.Len()))
	dst = binary.BigEndian.AppendUint16(dst, uint16(m.Cipher))
	dst = append(dst, m.Nonce...)
	return append(dst, m.Pub...)
}

// Offers reports whether id is in the Init1 cipher list. A uses it on the
// Init2 it receives: a sym_cipher it did not offer MUST abort the
// connection (RFC 8548 §3.3); wrap ErrCipherNotOffered then.
func (m *Init1) Offers(id AEADID) bool {
	for _, c := range m.Ciphers {
		if c == id {
			return true
		}
	}
	return false
}

// InitLen reads the message_len of the Init1 or Init2 message at the start
// of b (either magic is accepted; Parse checks which one). While fewer than
// 8 bytes are present it returns ok=false and a nil error. A wrong magic
// gives ErrBadMagic, a message_len below 8 ErrShortMessage. The RFC sets no
// upper bound on message_len; callers should bound what they buffer.
func InitLen(b []byte) (n int, ok bool, err error) {
	if len(b) < initHeader {
		return 0, false, nil
	}
	magic := binary.BigEndian.Uint32(b)
	if magic != Init1Magic && magic != Init2Magic {
		return 0, false, fmt.Errorf("tcpcrypt: Init magic 0x%08x: %w", magic, ErrBadMagic)
	}
	m := binary.BigEndian.Uint32(b[4:])
	if m < initHeader {
		return 0, false, fmt.Errorf("tcpcrypt: Init message_len %d: %w", m, ErrShortMessage)
	}
	return int(m), true, nil
}

// initBody checks the magic and message_len of an Init message at the start
// of b and returns the message (b cut to message_len).
func initBody(what string, magic uint32, b []byte) ([]byte, error) {
	if len(b) < initHeader {
		return nil, fmt.Errorf("tcpcrypt: parse %s: %d bytes: %w", what, len(b), ErrShortMessage)
	}
	if got := binary.BigEndian.Uint32(b); got != magic {
		return nil, fmt.Errorf("tcpcrypt: parse %s: magic 0x%08x: %w", what, got, ErrBadMagic)
	}
	m := binary.BigEndian.Uint32(b[4:])
	if uint64(len(b)) < uint64(m) {
		return nil, fmt.Errorf("tcpcrypt: parse %s: have %d of %d bytes: %w", what, len(b), m, ErrShortMessage)
	}
	return b[:m], nil
}

// parsePub cuts the TEP's public key from the start of b, the rest of the
// message. For P-256/P-521 it checks the pubkey_len field.
func parsePub(what string, tep uint8, b []byte) ([]byte, error) {
	n := PublicKeyLen(tep)
	if tep == TEPP256 || tep == TEPP521 {
		if len(b) < 2 {
			return nil, fmt.Errorf("tcpcrypt: parse %s: no room for pubkey_len: %w", what, ErrShortMessage)
		}
		if l := int(binary.BigEndian.Uint16(b)); l != n-2 {
			return nil, fmt.Errorf("tcpcrypt: parse %s: pubkey_len %d for TEP 0x%02x: %w", what, l, tep, ErrBadKeyLength)
		}
	}
	if len(b) < n {
		return nil, fmt.Errorf("tcpcrypt: parse %s: %d bytes left for a %d-byte key: %w", what, len(b), n, ErrShortMessage)
	}
	return b[:n:n], nil
}

// ParseInit1 parses the Init1 at the start of b for the negotiated TEP.
// b must hold at least message_len bytes; only those are examined (the
// stream bytes after them belong to the first frame). Bytes between the end
// of Pub_A and message_len are accepted and skipped (RFC 8548 §4.1).
//
// Unknown cipher ids are kept in Ciphers (SelectCipher skips them); an
// Init1 with no supported cipher at all is rejected with ErrUnknownCipher,
// since no Init2 could answer it. Repeated ids are accepted. The result
// aliases b.
func ParseInit1(tep uint8, b []byte) (Init1, error) {
	if !SupportedTEP(tep) {
		return Init1{}, fmt.Errorf("tcpcrypt: parse Init1: TEP 0x%02x: %w", tep, ErrUnsupportedTEP)
	}
	msg, err := initBody("Init1", Init1Magic, b)
	if err != nil {
		return Init1{}, err
	}
	if len(msg) < init1Fixed {
		return Init1{}, fmt.Errorf("tcpcrypt: parse Init1: message_len %d: %w", len(msg), ErrShortMessage)
	}
	k := int(msg[8])
	if k == 0 {
		return Init1{}, fmt.Errorf("tcpcrypt: parse Init1: %w", ErrNoCiphers)
	}
	rest := msg[init1Fixed:]
	if len(rest) < 2*k+NonceLen {
		return Init1{}, fmt.Errorf("tcpcrypt: parse Init1: message_len %d for %d ciphers: %w", len(msg), k, ErrShortMessage)
	}
	var m Init1
	m.Ciphers = make([]AEADID, k)
	known := false
	for i := range m.Ciphers {
		m.Ciphers[i] = AEADID(binary.BigEndian.Uint16(rest[2*i:]))
		known = known || m.Ciphers[i].Supported()
	}
	rest = rest[2*k:]
	m.Nonce = rest[:NonceLen:NonceLen]
	if m.Pub, err = parsePub("Init1", tep, rest[NonceLen:]); err != nil {
		return Init1{}, err
	}
	if !known {
		return Init1{}, fmt.Errorf("tcpcrypt: parse Init1: none of %v: %w", m.Ciphers, ErrUnknownCipher)
	}
	return m, nil
}

// ParseInit2 parses the Init2 at the start of b for the negotiated TEP,
// with the same length rules as ParseInit1. A sym_cipher this package does
// not implement gives ErrUnknownCipher; whether it was offered is the
// caller's check (Init1.Offers). The result aliases b.
func ParseInit2(tep uint8, b []byte) (Init2, error) {
	if !SupportedTEP(tep) {
		return Init2{}, fmt.Errorf("tcpcrypt: parse Init2: TEP 0x%02x: %w", tep, ErrUnsupportedTEP)
	}
	msg, err := initBody("Init2", Init2Magic, b)
	if err != nil {
		return Init2{}, err
	}
	if len(msg) < init2Fixed+NonceLen {
		return Init2{}, fmt.Errorf("tcpcrypt: parse Init2: message_len %d: %w", len(msg), ErrShortMessage)
	}
	var m Init2
	m.Cipher = AEADID(binary.BigEndian.Uint16(msg[8:]))
	rest := msg[init2Fixed:]
	m.Nonce = rest[:NonceLen:NonceLen]
	if m.Pub, err = parsePub("Init2", tep, rest[NonceLen:]); err != nil {
		return Init2{}, err
	}
	if !m.Cipher.Supported() {
		return Init2{}, fmt.Errorf("tcpcrypt: parse Init2: %v: %w", m.Cipher, ErrUnknownCipher)
	}
	return m, nil
}

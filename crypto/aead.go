package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// AEADID is an identifier from the "tcpcrypt AEAD Algorithms" registry
// (RFC 8548 §7, Table 5). It travels as 2 bytes, big-endian.
type AEADID uint16

// The AEAD algorithms of RFC 8548 §6, Table 3.
const (
	AES128GCM        AEADID = 0x0001 // AEAD_AES_128_GCM, REQUIRED
	AES256GCM        AEADID = 0x0002 // AEAD_AES_256_GCM, RECOMMENDED
	ChaCha20Poly1305 AEADID = 0x0010 // AEAD_CHACHA20_POLY1305, RECOMMENDED
)

// Supported reports whether this package implements the AEAD.
func (id AEADID) Supported() bool { return id.KeyLen() != 0 }

// KeyLen is ae_key_len: 16 for AES-128-GCM, 32 for the other two, 0 for an
// unsupported id.
func (id AEADID) KeyLen() int {
	switch id {
	case AES128GCM:
		return 16
	case AES256GCM, ChaCha20Poly1305:
		return 32
	}
	return 0
}

// TrafficKeyLen is ae_key_len + ae_nonce_len, the length of k_ab[j] and
// k_ba[j] (RFC 8548 §3.3); 0 for an unsupported id.
func (id AEADID) TrafficKeyLen() int {
	if !id.Supported() {
		return 0
	}
	return id.KeyLen() + AEADNonceLen
}

// String returns the registry name, or a hex form for unknown ids.
func (id AEADID) String() string {
	switch id {
	case AES128GCM:
		return "AEAD_AES_128_GCM"
	case AES256GCM:
		return "AEAD_AES_256_GCM"
	case ChaCha20Poly1305:
		return "AEAD_CHACHA20_POLY1305"
	}
	return fmt.Sprintf("AEAD(0x%04x)", uint16(id))
}

// newAEAD builds the cipher.AEAD for id with key (exactly KeyLen bytes).
func newAEAD(id AEADID, key []byte) (cipher.AEAD, error) {
	if !id.Supported() {
		return nil, fmt.Errorf("tcpcrypt: new AEAD %v: %w", id, ErrUnsupportedAEAD)
	}
	if len(key) != id.KeyLen() {
		return nil, fmt.Errorf("tcpcrypt: new AEAD %v: key of %d bytes: %w", id, len(key), ErrBadSecret)
	}
	if id == ChaCha20Poly1305 {
		return chacha20poly1305.New(key)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("tcpcrypt: new AEAD %v: %w", id, err)
	}
	return cipher.NewGCM(b)
}

// SelectCipher returns the first id of prefs (the passive host's preference
// order, RFC 8548 §3.3) that is supported and appears in offered (the
// Init1 list). Unknown ids in offered are skipped. ok is false when there
// is no common supported cipher.
func SelectCipher(offered, prefs []AEADID) (id AEADID, ok bool) {
	for _, p := range prefs {
		if !p.Supported() {
			continue
		}
		for _, o := range offered {
			if o == p {
				return p, true
			}
		}
	}
	return 0, false
}

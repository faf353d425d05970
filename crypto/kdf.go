package crypto

import (
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
)

// Extract is HKDF-Extract with SHA-256 (RFC 8548 §3.1, §5; RFC 5869 §2.2):
// HMAC-SHA256(salt, ikm), 32 bytes.
func Extract(salt, ikm []byte) []byte {
	prk, err := hkdf.Extract(sha256.New, ikm, salt)
	if err != nil {
		panic(fmt.Sprintf("tcpcrypt: HKDF-Extract: %v", err)) // only in FIPS-only mode with tiny keys
	}
	return prk
}

// CPRF is the tcpcrypt collision-resistant PRF (RFC 8548 §3.1, §5):
// HKDF-Expand with SHA-256, PRK = k, info = c, returning l bytes. l must be
// at most 255*32 = 8160; a larger l is a programming error and panics.
func CPRF(k, c []byte, l int) []byte {
	out, err := hkdf.Expand(sha256.New, k, string(c), l)
	if err != nil {
		panic(fmt.Sprintf("tcpcrypt: CPRF(l=%d): %v", l, err))
	}
	return out
}

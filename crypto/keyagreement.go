package crypto

import (
	"crypto/ecdh"
	"crypto/elliptic"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/cloudflare/circl/dh/x448"
)

// SupportedTEP reports whether tep (without the v bit) is one of the four
// tcpcrypt TEPs this package implements.
func SupportedTEP(tep uint8) bool {
	return tep >= TEPP256 && tep <= TEPX448
}

// PublicKeyLen is the length of a public key as it appears in Init1/Init2
// for the TEP: 32 (X25519), 56 (X448), or the 2-byte pubkey_len plus a
// compressed point, 35 (P-256) and 69 (P-521) (RFC 8548 §5). It is 0 for an
// unsupported TEP.
func PublicKeyLen(tep uint8) int {
	switch tep {
	case TEPX25519:
		return 32
	case TEPX448:
		return x448.Size
	case TEPP256:
		return 2 + 1 + 32
	case TEPP521:
		return 2 + 1 + 66
	}
	return 0
}

// SharedSecretLen is the length of ES for the TEP: 32 (X25519, P-256),
// 56 (X448), 66 (P-521); 0 for an unsupported TEP.
func SharedSecretLen(tep uint8) int {
	switch tep {
	case TEPX25519, TEPP256:
		return 32
	case TEPX448:
		return x448.Size
	case TEPP521:
		return 66
	}
	return 0
}

// PrivateKeyLen is the length of the raw private key NewPrivateKey takes:
// the RFC 7748 scalar bytes for X25519/X448, the big-endian scalar for
// P-256/P-521; 0 for an unsupported TEP.
func PrivateKeyLen(tep uint8) int {
	switch tep {
	case TEPX25519, TEPP256:
		return 32
	case TEPX448:
		return x448.Size
	case TEPP521:
		return 66
	}
	return 0
}

// nistCurve returns the crypto/ecdh and crypto/elliptic curves of a NIST
// TEP, or nil.
func nistCurve(tep uint8) (ecdh.Curve, elliptic.Curve) {
	switch tep {
	case TEPP256:
		return ecdh.P256(), elliptic.P256()
	case TEPP521:
		return ecdh.P521(), elliptic.P521()
	}
	return nil, nil
}

// PrivateKey is an ephemeral key-agreement private key for one TEP.
// RFC 8548 §3.3 asks that such keys be refreshed often and never stored
// persistently; this type is never serialized by this package.
type PrivateKey struct {
	tep  uint8
	ec   *ecdh.PrivateKey // X25519, P-256, P-521
	x448 x448.Key         // X448 scalar
	pub  []byte           // wire encoding
}

// NewPrivateKey builds a private key from fixed raw bytes (for test vectors
// and deterministic tests): for X25519/X448 the RFC 7748 scalar bytes
// (clamped during use, not here), for P-256/P-521 the big-endian scalar,
// which must lie in [1, n-1].
func NewPrivateKey(tep uint8, raw []byte) (*PrivateKey, error) {
	if !SupportedTEP(tep) {
		return nil, fmt.Errorf("tcpcrypt: new private key for TEP 0x%02x: %w", tep, ErrUnsupportedTEP)
	}
	if len(raw) != PrivateKeyLen(tep) {
		return nil, fmt.Errorf("tcpcrypt: new private key for TEP 0x%02x: %d bytes: %w", tep, len(raw), ErrBadPrivateKey)
	}
	k := &PrivateKey{tep: tep}
	switch tep {
	case TEPX448:
		copy(k.x448[:], raw)
		var pub x448.Key
		x448.KeyGen(&pub, &k.x448)
		k.pub = pub[:]
		return k, nil
	case TEPX25519:
		ec, err := ecdh.X25519().NewPrivateKey(raw)
		if err != nil {
			return nil, fmt.Errorf("tcpcrypt: new X25519 private key: %w: %v", ErrBadPrivateKey, err)
		}
		k.ec = ec
		k.pub = ec.PublicKey().Bytes()
		return k, nil
	}
	curve, _ := nistCurve(tep)
	ec, err := curve.NewPrivateKey(raw)
	if err != nil {
		return nil, fmt.Errorf("tcpcrypt: new private key for TEP 0x%02x: %w: %v", tep, ErrBadPrivateKey, err)
	}
	k.ec = ec
	k.pub = compressNIST(ec.PublicKey().Bytes())
	return k, nil
}

// compressNIST turns an uncompressed SEC1 point 04|X|Y into the tcpcrypt
// wire form: pubkey_len (2 bytes, big-endian) | (02 or 03) | X.
func compressNIST(uncompressed []byte) []byte {
	n := (len(uncompressed) - 1) / 2
	x, y := uncompressed[1:1+n], uncompressed[1+n:]
	out := make([]byte, 2+1+n)
	binary.BigEndian.PutUint16(out, uint16(1+n))
	out[2] = 0x02 | y[n-1]&1
	copy(out[3:], x)
	return out
}

// GenerateKey makes a fresh private key for the TEP, reading its scalar
// from rand (which should be crypto/rand.Reader outside tests). Unlike
// crypto/ecdh it really uses rand, so tests can be deterministic. NIST
// scalars are drawn by rejection sampling.
func GenerateKey(tep uint8, rand io.Reader) (*PrivateKey, error) {
	if !SupportedTEP(tep) {
		return nil, fmt.Errorf("tcpcrypt: generate key for TEP 0x%02x: %w", tep, ErrUnsupportedTEP)
	}
	raw := make([]byte, PrivateKeyLen(tep))
	defer clear(raw)
	for range 100 {
		if _, err := io.ReadFull(rand, raw); err != nil {
			return nil, fmt.Errorf("tcpcrypt: generate key for TEP 0x%02x: %w", tep, err)
		}
		if tep == TEPP521 {
			raw[0] &= 0x01 // the order of P-521 has 521 bits
		}
		k, err := NewPrivateKey(tep, raw)
		if err == nil {
			return k, nil
		}
	}
	return nil, fmt.Errorf("tcpcrypt: generate key for TEP 0x%02x: random source keeps failing: %w", tep, ErrBadPrivateKey)
}

// TEP returns the TEP the key belongs to.
func (k *PrivateKey) TEP() uint8 { return k.tep }

// Public returns the public key in its Init1/Init2 wire encoding
// (PublicKeyLen bytes). The caller may not modify it.
func (k *PrivateKey) Public() []byte { return k.pub }

// ECDH validates the peer's public key (wire encoding, as in Init1/Init2)
// and returns the shared secret ES: the X25519/X448 output, or for
// P-256/P-521 the x-coordinate of the shared point as a fixed-length
// big-endian string (32/66 bytes; the digest's reading of RFC 8548 §5).
//
// Errors: ErrInvalidPublicKey for a key of the wrong length, a bad
// pubkey_len, a point not on the curve, not in compressed form or at
// infinity (IEEE 1363 §A.16.10; P-256/P-521 have cofactor 1 so no order
// check is needed); ErrZeroSecret when X25519/X448 yield all zeros
// (RFC 7748 §6).
func (k *PrivateKey) ECDH(peerPub []byte) ([]byte, error) {
	if len(peerPub) != PublicKeyLen(k.tep) {
		return nil, fmt.Errorf("tcpcrypt: ECDH TEP 0x%02x: public key of %d bytes: %w", k.tep, len(peerPub), ErrInvalidPublicKey)
	}
	switch k.tep {
	case TEPX25519:
		pub, err := ecdh.X25519().NewPublicKey(peerPub)
		if err != nil {
			return nil, fmt.Errorf("tcpcrypt: ECDH X25519: %w: %v", ErrInvalidPublicKey, err)
		}
		es, err := k.ec.ECDH(pub)
		if err != nil || isZero(es) {
			// crypto/ecdh fails X25519 only for the all-zero output.
			return nil, fmt.Errorf("tcpcrypt: ECDH X25519: %w", ErrZeroSecret)
		}
		return es, nil
	case TEPX448:
		var pub, shared x448.Key
		copy(pub[:], peerPub)
		ok := x448.Shared(&shared, &k.x448, &pub)
		if !ok || isZero(shared[:]) {
			return nil, fmt.Errorf("tcpcrypt: ECDH X448: %w", ErrZeroSecret)
		}
		return shared[:], nil
	}
	curve, ell := nistCurve(k.tep)
	if int(binary.BigEndian.Uint16(peerPub)) != len(peerPub)-2 {
		return nil, fmt.Errorf("tcpcrypt: ECDH TEP 0x%02x: pubkey_len %d: %w", k.tep, binary.BigEndian.Uint16(peerPub), ErrInvalidPublicKey)
	}
	point := peerPub[2:]
	if point[0] != 0x02 && point[0] != 0x03 {
		return nil, fmt.Errorf("tcpcrypt: ECDH TEP 0x%02x: point not compressed: %w", k.tep, ErrInvalidPublicKey)
	}
	// UnmarshalCompressed checks x < p and that x^3-3x+b has a square
	// root, i.e. that the point is on the curve; infinity has no
	// compressed encoding. NewPublicKey checks the decompressed point once
	// more.
	x, y := elliptic.UnmarshalCompressed(ell, point)
	if x == nil {
		return nil, fmt.Errorf("tcpcrypt: ECDH TEP 0x%02x: point not on curve: %w", k.tep, ErrInvalidPublicKey)
	}
	n := len(point) - 1
	unc := make([]byte, 1+2*n)
	unc[0] = 0x04
	x.FillBytes(unc[1 : 1+n])
	y.FillBytes(unc[1+n:])
	pub, err := curve.NewPublicKey(unc)
	if err != nil {
		return nil, fmt.Errorf("tcpcrypt: ECDH TEP 0x%02x: %w: %v", k.tep, ErrInvalidPublicKey, err)
	}
	es, err := k.ec.ECDH(pub)
	if err != nil {
		return nil, fmt.Errorf("tcpcrypt: ECDH TEP 0x%02x: %w: %v", k.tep, ErrInvalidPublicKey, err)
	}
	return es, nil
}

// isZero reports, in constant time, whether b is all zeros.
func isZero(b []byte) bool {
	var acc byte
	for _, c := range b {
		acc |= c
	}
	return subtle.ConstantTimeByteEq(acc, 0) == 1
}

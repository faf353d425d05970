package crypto

import "errors"

// Sentinel errors. Functions wrap them with context; match with errors.Is.
// Every one of them is distinct from io.EOF, as RFC 8548 §3.3 and §3.6
// require of aborts.
var (
	// ErrUnsupportedTEP: the TEP id is not one of 0x21..0x24.
	ErrUnsupportedTEP = errors.New("tcpcrypt: unsupported TEP")
	// ErrUnsupportedAEAD: the AEAD id is not one this package implements.
	ErrUnsupportedAEAD = errors.New("tcpcrypt: unsupported AEAD")
	// ErrBadPrivateKey: raw private key bytes of the wrong size or value.
	ErrBadPrivateKey = errors.New("tcpcrypt: bad private key")
	// ErrInvalidPublicKey: the peer's public key failed validation
	// (RFC 8548 §5; IEEE 1363 §A.16.10 for P-256/P-521).
	ErrInvalidPublicKey = errors.New("tcpcrypt: invalid public key")
	// ErrZeroSecret: X25519/X448 produced the all-zero secret (RFC 7748 §6).
	ErrZeroSecret = errors.New("tcpcrypt: all-zero shared secret")

	// ErrBadMagic: an Init message does not start with the expected magic.
	ErrBadMagic = errors.New("tcpcrypt: bad Init magic")
	// ErrShortMessage: message_len is smaller than the fixed fields need,
	// or the buffer holds fewer than message_len bytes.
	ErrShortMessage = errors.New("tcpcrypt: Init message too short")
	// ErrNoCiphers: an Init1 with nciphers = 0.
	ErrNoCiphers = errors.New("tcpcrypt: Init1 lists no ciphers")
	// ErrBadKeyLength: the public key length (pubkey_len for P-256/P-521)
	// does not fit the TEP.
	ErrBadKeyLength = errors.New("tcpcrypt: bad public key length")
	// ErrUnknownCipher: an Init1 listing no supported AEAD, or an Init2
	// naming an unsupported one.
	ErrUnknownCipher = errors.New("tcpcrypt: unknown cipher")
	// ErrCipherNotOffered: the Init2 sym_cipher was not in our Init1 list
	// (RFC 8548 §3.3: A MUST abort). Returned by CheckInit2.
	ErrCipherNotOffered = errors.New("tcpcrypt: cipher not offered")

	// ErrAuth: an encryption frame failed authentication.
	ErrAuth = errors.New("tcpcrypt: frame authentication failed")
	// ErrFrameTooLong: a frame would need clen > 65535.
	ErrFrameTooLong = errors.New("tcpcrypt: frame too long")
	// ErrMalformedFrame: clen too small to hold a tag and flags byte, a
	// frame slice whose length disagrees with clen, or an authenticated
	// plaintext too short for its flags.
	ErrMalformedFrame = errors.New("tcpcrypt: malformed frame")
	// ErrStreamExhausted: the stream offset would pass 2^64 (RFC 8548 §3.6),
	// or the key generation counter would wrap.
	ErrStreamExhausted = errors.New("tcpcrypt: stream or generation space exhausted")
	// ErrKeyErased: the keys of that generation were erased.
	ErrKeyErased = errors.New("tcpcrypt: keys of that generation erased")
	// ErrBadSecret: a session secret of the wrong length.
	ErrBadSecret = errors.New("tcpcrypt: bad session secret")
)

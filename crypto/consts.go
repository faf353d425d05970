package crypto

// TEP identifiers of the four tcpcrypt key-agreement schemes (RFC 8548 §7,
// Table 4). The v bit (0x80) is not part of the identifier.
const (
	TEPP256   uint8 = 0x21 // TCPCRYPT_ECDHE_P256 (OPTIONAL)
	TEPP521   uint8 = 0x22 // TCPCRYPT_ECDHE_P521 (OPTIONAL)
	TEPX25519 uint8 = 0x23 // TCPCRYPT_ECDHE_Curve25519 (REQUIRED)
	TEPX448   uint8 = 0x24 // TCPCRYPT_ECDHE_Curve448 (RECOMMENDED)
)

// TEPResumeBit is the v bit of a TEP byte: set in a resumption suboption and
// in byte 0 of the session id of a resumed session (RFC 8548 §3.5).
const TEPResumeBit uint8 = 0x80

// Sizes fixed by RFC 8548 §5 for all four TEPs, and by §3.6/§4.2 for frames.
const (
	// NonceLen is N_A_LEN = N_B_LEN, the length of the Init nonces.
	NonceLen = 32
	// KeyLen is K_LEN, the length of session secrets and master keys.
	KeyLen = 32
	// SessionIDLen is the length of a tcpcrypt session id (TEP byte + K_LEN).
	SessionIDLen = 1 + KeyLen
	// ResumeIDLen is the length of resume[i]; each host sends half of it.
	ResumeIDLen = 18
	// ResumeHalfLen is the length of the half sent in a resumption suboption.
	ResumeHalfLen = ResumeIDLen / 2
	// MaxResumeNonceLen is the longest resumption nonce (RFC 8548 §3.5).
	MaxResumeNonceLen = 8

	// TagLen is the AEAD tag length of every supported AEAD.
	TagLen = 16
	// AEADNonceLen is ae_nonce_len, the same for every supported AEAD.
	AEADNonceLen = 12
	// FrameHeaderLen is the length of the control byte plus clen.
	FrameHeaderLen = 3
	// FrameOverhead is the size of a frame carrying no data and no urgent
	// field: header, flags byte and tag.
	FrameOverhead = FrameHeaderLen + 1 + TagLen
	// MaxCiphertextLen is the largest clen (RFC 8548 §3.6: below 2^16).
	MaxCiphertextLen = 65535
	// MaxFrameLen is the largest frame on the wire.
	MaxFrameLen = FrameHeaderLen + MaxCiphertextLen
	// MaxFrameData is the most application data one frame can carry when
	// URGp is clear (2 bytes fewer with URGp).
	MaxFrameData = MaxCiphertextLen - TagLen - 1
)

// Constants of the key schedule (RFC 8548 §4.3, Table 1).
const (
	constNextK  = 0x01
	constSessID = 0x02
	constRekey  = 0x03
	constKeyA   = 0x04
	constKeyB   = 0x05
	constResume = 0x06
)

// Magic numbers of the Init messages (RFC 8548 §4.3, Table 1).
const (
	Init1Magic uint32 = 0x15101a0e
	Init2Magic uint32 = 0x097105e0
)

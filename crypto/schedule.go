package crypto

import (
	"fmt"
	"math"
)

// FreshSecret computes ss[0], the pseudo-random key of a fresh key exchange
// (RFC 8548 §3.3):
//
//	ss[0] = Extract(salt = N_A, IKM = eno_transcript | Init1 | Init2 | ES)
//
// transcript is the ENO transcript of RFC 8547 §4.8 (A's SYN option then
// B's, kind and length bytes included); init1 and init2 are the messages
// exactly as transmitted, all message_len bytes (any ignored tail
// included, the digest's reading of §3.3).
func FreshSecret(nA, transcript, init1, init2, es []byte) []byte {
	ikm := make([]byte, 0, len(transcript)+len(init1)+len(init2)+len(es))
	ikm = append(ikm, transcript...)
	ikm = append(ikm, init1...)
	ikm = append(ikm, init2...)
	ikm = append(ikm, es...)
	defer clear(ikm)
	return Extract(nA, ikm)
}

// NextSecret computes ss[i+1] = CPRF(ss[i], CONST_NEXTK, K_LEN)
// (RFC 8548 §3.3), the secret a later connection may resume with.
func NextSecret(ss []byte) []byte {
	return CPRF(ss, []byte{constNextK}, KeyLen)
}

// SessionNonce returns sn[i] = nonce_a | nonce_b for a resumed session
// (RFC 8548 §3.5): nonce_a is the resumption nonce of the host that was A
// in the original session, nonce_b that of the original B. A fresh
// session's sn[0] is empty (nil).
func SessionNonce(nonceA, nonceB []byte) []byte {
	return append(append(make([]byte, 0, len(nonceA)+len(nonceB)), nonceA...), nonceB...)
}

// SessionID computes the 33-byte session id (RFC 8548 §3.4):
//
//	tepByte | CPRF(ss[i], CONST_SESSID | sn[i], K_LEN)
//
// where tepByte is the byte B sent for the negotiated TEP, v bit included
// (0x23 fresh, 0xa3 resumed for X25519).
func SessionID(tepByte uint8, ss, sn []byte) []byte {
	id := make([]byte, 1, SessionIDLen)
	id[0] = tepByte
	return append(id, CPRF(ss, append([]byte{constSessID}, sn...), KeyLen)...)
}

// ResumeID computes resume[i] = CPRF(ss[i], CONST_RESUME, 18)
// (RFC 8548 §3.5).
func ResumeID(ss []byte) [ResumeIDLen]byte {
	var r [ResumeIDLen]byte
	copy(r[:], CPRF(ss, []byte{constResume}, ResumeIDLen))
	return r
}

// ResumeHalves splits resume[i] of ss by the role this host had in the
// ORIGINAL session of the chain (RFC 8548 §3.5): the original A sends
// bytes 0..8 and expects 9..17 from its peer, the original B the reverse.
// mine is the half this host puts in its resumption suboption; peer is the
// half it must see from the other host.
func ResumeHalves(ss []byte, wasA bool) (mine, peer [ResumeHalfLen]byte) {
	r := ResumeID(ss)
	copy(mine[:], r[:ResumeHalfLen])
	copy(peer[:], r[ResumeHalfLen:])
	if !wasA {
		mine, peer = peer, mine
	}
	return mine, peer
}

// Direction names one of the two traffic keys of a generation.
type Direction uint8

const (
	// DirAB is k_ab: the host that was A in the original session encrypts
	// with it, the other host decrypts with it.
	DirAB Direction = iota
	// DirBA is k_ba, the other direction.
	DirBA
)

// String returns "ab" or "ba".
func (d Direction) String() string {
	if d == DirAB {
		return "ab"
	}
	return "ba"
}

// Directions returns the directions a host encrypts and decrypts with,
// from its role in the ORIGINAL session of the chain: RFC 8548 §3.5 keeps
// them for every session derived from one ss[0], whatever the role in a
// resumed connection.
func Directions(wasA bool) (send, recv Direction) {
	if wasA {
		return DirAB, DirBA
	}
	return DirBA, DirAB
}

// Schedule holds the master-key chain of one session (RFC 8548 §3.3,
// §3.8): mk[0] = CPRF(ss[i], CONST_REKEY | sn[i], K_LEN), mk[j] =
// CPRF(mk[j-1], CONST_REKEY, K_LEN), and for each generation j the traffic
// keys k_ab[j] = CPRF(mk[j], CONST_KEY_A, keylen+12) and k_ba[j] =
// CPRF(mk[j], CONST_KEY_B, keylen+12). Generations are derived on demand.
// It does not keep ss[i]. A Schedule is not safe for concurrent use.
type Schedule struct {
	aead AEADID
	base uint32       // generation of gens[0]
	gens []genKeys    // generations base .. base+len(gens)-1
	mk   [KeyLen]byte // master key of the newest generation in gens

	destroyed bool
}

type genKeys struct{ ab, ba *FrameKey }

// NewSchedule derives mk[0] and generation 0 from the session secret ss
// (ss[0] fresh, ss[i] resumed) and session nonce sn (nil when fresh).
func NewSchedule(ss, sn []byte, aead AEADID) (*Schedule, error) {
	if len(ss) != KeyLen {
		return nil, fmt.Errorf("tcpcrypt: new schedule: secret of %d bytes: %w", len(ss), ErrBadSecret)
	}
	if !aead.Supported() {
		return nil, fmt.Errorf("tcpcrypt: new schedule: %v: %w", aead, ErrUnsupportedAEAD)
	}
	s := &Schedule{aead: aead}
	mk := CPRF(ss, append([]byte{constRekey}, sn...), KeyLen)
	copy(s.mk[:], mk)
	clear(mk)
	g, err := s.trafficKeys(0)
	if err != nil {
		return nil, err
	}
	s.gens = append(s.gens, g)
	return s, nil
}

// trafficKeys derives k_ab and k_ba of generation gen from s.mk.
func (s *Schedule) trafficKeys(gen uint32) (genKeys, error) {
	ab, err := newFrameKey(s.aead, gen, DirAB, CPRF(s.mk[:], []byte{constKeyA}, s.aead.TrafficKeyLen()))
	if err != nil {
		return genKeys{}, err
	}
	ba, err := newFrameKey(s.aead, gen, DirBA, CPRF(s.mk[:], []byte{constKeyB}, s.aead.TrafficKeyLen()))
	if err != nil {
		return genKeys{}, err
	}
	return genKeys{ab, ba}, nil
}

// AEAD returns the session's AEAD.
func (s *Schedule) AEAD() AEADID { return s.aead }

// Keys returns k_ab[gen] and k_ba[gen], deriving the master keys up to gen
// if needed. ErrKeyErased if gen was erased; ErrStreamExhausted if
// deriving would pass generation 2^32-1.
func (s *Schedule) Keys(gen uint32) (ab, ba *FrameKey, err error) {
	if s.destroyed {
		return nil, nil, fmt.Errorf("tcpcrypt: keys of generation %d: schedule destroyed: %w", gen, ErrKeyErased)
	}
	if gen < s.base {
		return nil, nil, fmt.Errorf("tcpcrypt: keys of generation %d (oldest kept %d): %w", gen, s.base, ErrKeyErased)
	}
	for uint64(gen) >= uint64(s.base)+uint64(len(s.gens)) {
		top := s.base + uint32(len(s.gens)) - 1
		if top == math.MaxUint32 {
			return nil, nil, fmt.Errorf("tcpcrypt: keys of generation %d: %w", gen, ErrStreamExhausted)
		}
		next := CPRF(s.mk[:], []byte{constRekey}, KeyLen)
		copy(s.mk[:], next)
		clear(next)
		g, err := s.trafficKeys(top + 1)
		if err != nil {
			return nil, nil, err
		}
		s.gens = append(s.gens, g)
	}
	g := s.gens[gen-s.base]
	return g.ab, g.ba, nil
}

// Key returns the traffic key of generation gen in direction d (see Keys).
func (s *Schedule) Key(gen uint32, d Direction) (*FrameKey, error) {
	ab, ba, err := s.Keys(gen)
	if err != nil {
		return nil, err
	}
	if d == DirAB {
		return ab, nil
	}
	return ba, nil
}

// Erase forgets the keys of every generation below `below` (RFC 8548 §3.8:
// SHOULD erase older keys once no frame needs them), overwriting their
// nonce randomizers and making their FrameKeys fail with ErrKeyErased.
// The newest derived generation is always kept, because its master key is
// needed to derive later ones. The cipher.AEAD key schedules inside the
// standard library cannot be overwritten; they become garbage.
func (s *Schedule) Erase(below uint32) {
	if s.destroyed {
		return
	}
	top := s.base + uint32(len(s.gens)) - 1
	below = min(below, top)
	if below <= s.base {
		return
	}
	n := int(below - s.base)
	for _, g := range s.gens[:n] {
		g.ab.erase()
		g.ba.erase()
	}
	s.gens = append(s.gens[:0], s.gens[n:]...)
	s.base = below
}

// Oldest returns the oldest generation whose keys are still held.
func (s *Schedule) Oldest() uint32 { return s.base }

// Destroy erases every key of the schedule, including the newest master
// key. The Schedule cannot be used afterwards.
func (s *Schedule) Destroy() {
	for _, g := range s.gens {
		g.ab.erase()
		g.ba.erase()
	}
	clear(s.mk[:])
	s.gens = nil
	s.destroyed = true
}

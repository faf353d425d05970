package crypto

import (
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"slices"
)

// Bits of the frame control byte and the plaintext flags byte
// (RFC 8548 §4.2, §4.2.1). The other bits (cres, fres) are sent as zero and
// ignored on receipt.
const (
	controlRekey = 0x01
	flagFIN      = 0x01
	flagURG      = 0x02
)

// Plain is the content of one encryption frame (RFC 8548 §4.2).
type Plain struct {
	// FIN is FINp: this is the last frame of the stream (§3.7).
	FIN bool
	// URG is URGp: the plaintext carries the urgent field.
	URG bool
	// Urgent is the 2-byte urgent field (big-endian on the wire); valid
	// only when URG is set.
	Urgent uint16
	// Data is the application data; it may be empty.
	Data []byte
	// Rekey is the rekey bit of the control byte: the frame is the first
	// one under a newly raised generation (§3.8). Set by Open; Encoder
	// sets it on Seal. FrameKey.Seal sends what it holds.
	Rekey bool
}

// plainLen is the AEAD plaintext length of p: flags, urgent, data.
func plainLen(p *Plain) int {
	n := 1 + len(p.Data)
	if p.URG {
		n += 2
	}
	return n
}

// FrameLen is the size on the wire of a frame with dataLen bytes of data,
// with or without the urgent field: 3 + 1 (+2) + dataLen + 16.
func FrameLen(dataLen int, urg bool) int {
	n := FrameOverhead + dataLen
	if urg {
		n += 2
	}
	return n
}

// DataOffset is where the application data starts inside a sealed frame:
// 4, or 6 with the urgent field. A caller that writes the data at
// dst[len(dst)+DataOffset(urg):] before calling Seal (passing that slice as
// Plain.Data) gets a fully in-place encryption with no copy.
func DataOffset(urg bool) int {
	if urg {
		return FrameHeaderLen + 3
	}
	return FrameHeaderLen + 1
}

// FrameKey is one traffic key of one generation: the AEAD keyed with K and
// the nonce randomizer NR (RFC 8548 §3.3, §3.6). It is not safe for
// concurrent use (it keeps a nonce scratch buffer so Seal and Open do not
// allocate).
type FrameKey struct {
	aead  cipher.AEAD
	id    AEADID
	gen   uint32
	dir   Direction
	nr    [AEADNonceLen]byte
	nonce [AEADNonceLen]byte
}

// newFrameKey splits the traffic key tk into K and NR and keys the AEAD.
// tk is overwritten.
func newFrameKey(id AEADID, gen uint32, dir Direction, tk []byte) (*FrameKey, error) {
	defer clear(tk)
	kl := id.KeyLen()
	if len(tk) != kl+AEADNonceLen {
		return nil, fmt.Errorf("tcpcrypt: traffic key of %d bytes for %v: %w", len(tk), id, ErrBadSecret)
	}
	a, err := newAEAD(id, tk[:kl])
	if err != nil {
		return nil, err
	}
	k := &FrameKey{aead: a, id: id, gen: gen, dir: dir}
	copy(k.nr[:], tk[kl:])
	return k, nil
}

// NewFrameKey builds a FrameKey directly from a traffic key (K | NR,
// ae_key_len + 12 bytes), for tests and tools. Sessions use Schedule.
func NewFrameKey(id AEADID, trafficKey []byte) (*FrameKey, error) {
	return newFrameKey(id, 0, DirAB, slices.Clone(trafficKey))
}

func (k *FrameKey) erase() {
	k.aead = nil
	clear(k.nr[:])
	clear(k.nonce[:])
}

// AEAD returns the key's algorithm.
func (k *FrameKey) AEAD() AEADID { return k.id }

// Generation returns the key's generation j.
func (k *FrameKey) Generation() uint32 { return k.gen }

// Direction returns whether this is k_ab or k_ba.
func (k *FrameKey) Direction() Direction { return k.dir }

// setNonce computes N = frame_ID XOR NR into k.nonce, frame_ID being
// 4 zero bytes then the 8-byte big-endian offset (RFC 8548 §4.2.3).
func (k *FrameKey) setNonce(offset uint64) []byte {
	k.nonce = k.nr
	off := AEADNonceLen - 8
	binary.BigEndian.PutUint64(k.nonce[off:], binary.BigEndian.Uint64(k.nr[off:])^offset)
	return k.nonce[:]
}

// Seal appends the frame control | clen | ciphertext for p, starting at
// stream offset `offset` (the offset of its control byte in the sender's
// stream, RFC 8548 §3.6), to dst and returns the extended slice. The rekey
// bit is p.Rekey; cres and fres bits are sent as zero.
//
// Seal does not allocate when dst has room for FrameLen bytes. p.Data may
// overlap dst's spare capacity (see DataOffset for the in-place layout).
// ErrFrameTooLong if clen would exceed 65535; ErrStreamExhausted if the
// frame would end past offset 2^64-1; ErrKeyErased for an erased key.
func (k *FrameKey) Seal(dst []byte, offset uint64, p Plain) ([]byte, error) {
	plen, clen, flen, err := k.sealSizes(&p, offset)
	if err != nil {
		return dst, err
	}
	n := len(dst)
	dst = slices.Grow(dst, flen)[:n+flen]
	out := dst[n:]
	hdr := DataOffset(p.URG)
	// Data first: it may sit anywhere in dst's spare capacity, and copy is
	// a memmove.
	copy(out[hdr:], p.Data)
	putControl(out, &p, clen)
	putFlags(out[FrameHeaderLen:], &p)
	k.aead.Seal(out[FrameHeaderLen:FrameHeaderLen], k.setNonce(offset), out[FrameHeaderLen:FrameHeaderLen+plen], out[:FrameHeaderLen])
	return dst, nil
}

// sealSizes checks that p can be sealed at offset and returns the lengths
// of its plaintext (flags, urgent field, data), ciphertext and frame.
func (k *FrameKey) sealSizes(p *Plain, offset uint64) (plen, clen, flen int, err error) {
	plen = plainLen(p)
	clen = plen + TagLen
	if clen > MaxCiphertextLen {
		return 0, 0, 0, fmt.Errorf("tcpcrypt: seal %d data bytes: %w", len(p.Data), ErrFrameTooLong)
	}
	if k.aead == nil {
		return 0, 0, 0, fmt.Errorf("tcpcrypt: seal with generation %d: %w", k.gen, ErrKeyErased)
	}
	flen = FrameHeaderLen + clen
	if offset+uint64(flen) < offset {
		return 0, 0, 0, fmt.Errorf("tcpcrypt: seal at offset %d: %w", offset, ErrStreamExhausted)
	}
	return plen, clen, flen, nil
}

// putControl writes the frame's control byte and clen into out[:3].
func putControl(out []byte, p *Plain, clen int) {
	out[0] = 0
	if p.Rekey {
		out[0] = controlRekey
	}
	binary.BigEndian.PutUint16(out[1:], uint16(clen))
}

// putFlags writes the plaintext flags byte, and the urgent field when URG
// is set, at the start of in.
func putFlags(in []byte, p *Plain) {
	in[0] = 0
	if p.FIN {
		in[0] |= flagFIN
	}
	if p.URG {
		in[0] |= flagURG
		binary.BigEndian.PutUint16(in[1:], p.Urgent)
	}
}

// SealFrom is Seal for frame data that sits at buf[i:j], without copying it
// into dst first: the AEAD reads the plaintext flags byte (and urgent
// field) from the DataOffset(p.URG)-FrameHeaderLen bytes just before the
// data, buf[i-k:i], which SealFrom overwrites for the call and restores
// before it returns, and writes the ciphertext straight into dst. p.Data is
// ignored. buf must not be read or written by anything else during the
// call, and dst's spare capacity must not overlap buf. When i < k (no room
// before the data) it falls back to Seal, copying.
func (k *FrameKey) SealFrom(dst []byte, offset uint64, p Plain, buf []byte, i, j int) ([]byte, error) {
	pre := DataOffset(p.URG) - FrameHeaderLen
	if i < pre {
		p.Data = buf[i:j]
		return k.Seal(dst, offset, p)
	}
	p.Data = buf[i:j]
	_, clen, flen, err := k.sealSizes(&p, offset)
	if err != nil {
		return dst, err
	}
	n := len(dst)
	dst = slices.Grow(dst, flen)[:n+FrameHeaderLen]
	out := dst[n:]
	putControl(out, &p, clen)
	var saved [3]byte
	in := buf[i-pre : j]
	copy(saved[:pre], in)
	putFlags(in, &p)
	dst = k.aead.Seal(dst, k.setNonce(offset), in, dst[n:n+FrameHeaderLen])
	copy(in, saved[:pre])
	return dst, nil
}

// OpenData is Open that appends only the frame's data to dst (the flags
// byte and urgent field go into the returned Plain), decrypting straight
// into dst with no copy: the AEAD writes the flags byte over dst's last
// byte, which OpenData restores. frame must not overlap dst's spare
// capacity. An empty dst costs a copy of the data. On error dst is returned
// unchanged in length and content.
func (k *FrameKey) OpenData(dst []byte, offset uint64, frame []byte) (Plain, []byte, error) {
	dst = slices.Grow(dst, len(frame))
	n := len(dst)
	if n == 0 {
		p, err := k.Open(dst, offset, frame)
		if err != nil {
			return Plain{}, dst, err
		}
		// Open appended flags (and urgent) before the data: move it down
		// (append moves overlapping bytes correctly).
		dst = append(dst, p.Data...)
		p.Data = dst
		return p, dst, nil
	}
	last := dst[n-1]
	p, err := k.Open(dst[:n-1], offset, frame)
	dst[n-1] = last
	if err != nil {
		return Plain{}, dst, err
	}
	m := len(p.Data)
	if p.URG {
		copy(dst[n:n+m], p.Data) // the urgent field took two bytes of room
	}
	p.Data = dst[n : n+m]
	return p, dst[:n+m], nil
}

// Open authenticates and decrypts one whole frame (header included) found
// at stream offset `offset`. The AEAD plaintext is appended to dst and the
// returned Plain.Data aliases it; pass frame[3:3] as dst to decrypt in
// place. Nothing unauthenticated is returned: on ErrAuth Plain is empty.
// ErrMalformedFrame when len(frame) disagrees with clen, when clen cannot
// hold a tag and the flags byte, or when an authenticated plaintext is too
// short for URGp. Reserved cres/fres bits are ignored.
func (k *FrameKey) Open(dst []byte, offset uint64, frame []byte) (Plain, error) {
	if len(frame) < FrameHeaderLen {
		return Plain{}, fmt.Errorf("tcpcrypt: open frame of %d bytes: %w", len(frame), ErrMalformedFrame)
	}
	clen := int(binary.BigEndian.Uint16(frame[1:]))
	if clen != len(frame)-FrameHeaderLen || clen < TagLen+1 {
		return Plain{}, fmt.Errorf("tcpcrypt: open frame of %d bytes with clen %d: %w", len(frame), clen, ErrMalformedFrame)
	}
	if k.aead == nil {
		return Plain{}, fmt.Errorf("tcpcrypt: open with generation %d: %w", k.gen, ErrKeyErased)
	}
	n := len(dst)
	pt, err := k.aead.Open(dst, k.setNonce(offset), frame[FrameHeaderLen:], frame[:FrameHeaderLen])
	if err != nil {
		return Plain{}, fmt.Errorf("tcpcrypt: open frame at offset %d, generation %d: %w", offset, k.gen, ErrAuth)
	}
	pt = pt[n:]
	p := Plain{
		Rekey: frame[0]&controlRekey != 0,
		FIN:   pt[0]&flagFIN != 0,
		URG:   pt[0]&flagURG != 0,
	}
	pt = pt[1:]
	if p.URG {
		if len(pt) < 2 {
			return Plain{}, fmt.Errorf("tcpcrypt: frame at offset %d: URGp without urgent field: %w", offset, ErrMalformedFrame)
		}
		p.Urgent = binary.BigEndian.Uint16(pt)
		pt = pt[2:]
	}
	p.Data = pt
	return p, nil
}

package crypto

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Decoder turns one direction of a tcpcrypt stream, fed in pieces of any
// size, into verified frames (RFC 8548 §3.6, §3.8). It tracks the stream
// offset of each frame and the remote key generation: a frame with the
// rekey bit is opened with the next generation's key, and the remote
// generation is raised only once that frame verifies (digest §2.11
// suggestion: the rekey bit itself is not trustworthy until then).
//
// It buffers at most MaxFrameLen bytes (one maximal frame). The first error
// is sticky: every later call returns it. A Decoder is not safe for
// concurrent use.
type Decoder struct {
	s     *Schedule
	dir   Direction
	gen   uint32 // remote generation
	off   uint64 // stream offset of buf[start]
	buf   []byte
	start int
	err   error
}

// NewDecoder returns a Decoder that opens frames with the keys of direction
// dir (the peer's sending direction, see Directions) from s, the first
// frame starting at stream offset start: the peer's Init message length on
// a fresh connection, 0 on a resumed one (digest §2.9 [interp]).
func NewDecoder(s *Schedule, dir Direction, start uint64) *Decoder {
	return &Decoder{s: s, dir: dir, off: start}
}

// Write appends stream bytes to the decoder, copying them. It takes as
// many bytes as fit in the bound of MaxFrameLen buffered bytes and returns
// how many it took; when n < len(b) the caller must drain frames with Next
// and write the rest. After an error it takes nothing and returns it.
func (d *Decoder) Write(b []byte) (n int, err error) {
	if d.err != nil {
		return 0, d.err
	}
	if d.start > 0 {
		m := copy(d.buf, d.buf[d.start:])
		d.buf = d.buf[:m]
		d.start = 0
	}
	n = min(len(b), MaxFrameLen-len(d.buf))
	d.buf = append(d.buf, b[:n]...)
	return n, nil
}

// Next returns the next complete, verified frame and its stream offset.
// ok is false when no whole frame is buffered yet. Plain.Data aliases the
// decoder's buffer and is valid until the next Write or Next. An
// authentication failure (ErrAuth), a malformed frame (ErrMalformedFrame)
// or an erased key ends the stream: the error is returned now and from
// every later call.
func (d *Decoder) Next() (p Plain, offset uint64, ok bool, err error) {
	if d.err != nil {
		return Plain{}, 0, false, d.err
	}
	avail := d.buf[d.start:]
	if len(avail) < FrameHeaderLen {
		return Plain{}, 0, false, nil
	}
	clen := int(binary.BigEndian.Uint16(avail[1:]))
	if clen < TagLen+1 {
		return Plain{}, 0, false, d.fail(fmt.Errorf("tcpcrypt: frame at offset %d: clen %d: %w", d.off, clen, ErrMalformedFrame))
	}
	flen := FrameHeaderLen + clen
	if len(avail) < flen {
		return Plain{}, 0, false, nil
	}
	if d.off+uint64(flen) < d.off {
		return Plain{}, 0, false, d.fail(fmt.Errorf("tcpcrypt: frame at offset %d: %w", d.off, ErrStreamExhausted))
	}
	frame := avail[:flen]
	gen := d.gen
	if frame[0]&controlRekey != 0 {
		if gen == math.MaxUint32 {
			return Plain{}, 0, false, d.fail(fmt.Errorf("tcpcrypt: rekey past generation %d: %w", gen, ErrStreamExhausted))
		}
		gen++
	}
	key, err := d.s.Key(gen, d.dir)
	if err != nil {
		return Plain{}, 0, false, d.fail(err)
	}
	p, err = key.Open(frame[FrameHeaderLen:FrameHeaderLen], d.off, frame)
	if err != nil {
		return Plain{}, 0, false, d.fail(err)
	}
	offset = d.off
	d.gen = gen
	d.off += uint64(flen)
	d.start += flen
	if d.start == len(d.buf) {
		d.buf = d.buf[:0]
		d.start = 0
	}
	return p, offset, true, nil
}

func (d *Decoder) fail(err error) error {
	d.err = err
	d.buf = nil
	d.start = 0
	return err
}

// Generation returns the remote generation: the generation of the last
// verified frame (0 before any rekey).
func (d *Decoder) Generation() uint32 { return d.gen }

// Offset returns the stream offset of the next frame's first byte.
func (d *Decoder) Offset() uint64 { return d.off }

// Buffered returns how many bytes are held waiting for a whole frame.
func (d *Decoder) Buffered() int { return len(d.buf) - d.start }

// Err returns the sticky error, or nil.
func (d *Decoder) Err() error { return d.err }

// Encoder is the sending side of one direction: it tracks the local
// generation and the stream offset, and sets the rekey bit on the first
// frame of each newly raised generation (RFC 8548 §3.8). Frames are
// produced in stream order; bytes once sealed are fixed (retransmissions
// must resend them, never reseal, §3.6). Not safe for concurrent use.
type Encoder struct {
	s       *Schedule
	dir     Direction
	gen     uint32
	off     uint64
	pending bool
}

// NewEncoder returns an Encoder that seals with direction dir (this
// host's sending direction, see Directions), the first frame at stream
// offset start (our Init message length on a fresh connection, 0 on a
// resumed one).
func NewEncoder(s *Schedule, dir Direction, start uint64) *Encoder {
	return &Encoder{s: s, dir: dir, off: start}
}

// Seal appends the next frame for p to dst (see FrameKey.Seal; p.Rekey is
// ignored and replaced by the encoder's pending rekey) and advances the
// offset by its length. On error nothing changes.
func (e *Encoder) Seal(dst []byte, p Plain) ([]byte, error) {
	key, err := e.s.Key(e.gen, e.dir)
	if err != nil {
		return dst, err
	}
	p.Rekey = e.pending
	out, err := key.Seal(dst, e.off, p)
	if err != nil {
		return dst, err
	}
	e.off += uint64(len(out) - len(dst))
	e.pending = false
	return out, nil
}

// SealFrom is Seal for data at buf[i:j], sealed with FrameKey.SealFrom:
// no copy of the data, the bytes just before it borrowed for the flags
// (and urgent field) during the call and restored. p.Data is ignored.
func (e *Encoder) SealFrom(dst []byte, p Plain, buf []byte, i, j int) ([]byte, error) {
	key, err := e.s.Key(e.gen, e.dir)
	if err != nil {
		return dst, err
	}
	p.Rekey = e.pending
	out, err := key.SealFrom(dst, e.off, p, buf, i, j)
	if err != nil {
		return dst, err
	}
	e.off += uint64(len(out) - len(dst))
	e.pending = false
	return out, nil
}

// Rekey raises the local generation by one; the next frame sealed uses it
// and carries rekey = 1. It returns false, changing nothing, when a rekey is
// already pending (no frame has been sealed under the last raise, and the
// peer counts one generation per rekey frame) or the generation would wrap.
// On receiving a rekey the engine calls Rekey (and seals a frame, empty if
// need be) while Generation() < the Decoder's Generation().
func (e *Encoder) Rekey() bool {
	if e.pending || e.gen == math.MaxUint32 {
		return false
	}
	e.gen++
	e.pending = true
	return true
}

// RekeyPending reports whether the next frame will carry rekey = 1.
func (e *Encoder) RekeyPending() bool { return e.pending }

// Generation returns the local generation (already raised if a rekey is
// pending).
func (e *Encoder) Generation() uint32 { return e.gen }

// Offset returns the stream offset the next frame will start at.
func (e *Encoder) Offset() uint64 { return e.off }

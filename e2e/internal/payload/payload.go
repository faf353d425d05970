// Package payload generates and checks the recognisable test streams that the
// end-to-end tests send through tcpcryptd.
//
// A stream is a sequence of 64-byte text blocks. Every block starts with
// Marker, so any captured segment of plaintext longer than BlockLen+len(Marker)
// bytes contains the marker in full, and carries its block index and stream id
// in hex, so a receiver can check not only the bytes but their order: a frame
// delivered at the wrong offset, duplicated or dropped shows up as a mismatch
// at a known position.
//
//	<<tcpcrypt-e2e-plain>> 0000000000000000 0000002a ..............\n
package payload

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Marker starts every block. Its presence in a packet capture means
// plaintext of a test stream reached the wire.
const Marker = "<<tcpcrypt-e2e-plain>>"

// BlockLen is the length of one block.
const BlockLen = 64

// ErrMismatch matches the errors of Verifier.Write for bytes that differ from
// the expected stream.
var ErrMismatch = errors.New("payload: stream mismatch")

// Layout of a block (offsets into it).
const (
	idxAt    = len(Marker) + 1 // 16 hex digits of the block index
	streamAt = idxAt + 16 + 1  // 8 hex digits of the stream id
	fillAt   = streamAt + 8 + 1
)

const hexDigits = "0123456789abcdef"

// Block writes block number idx of stream id into b, which must hold BlockLen
// bytes.
func Block(b []byte, id uint32, idx uint64) {
	b = b[:BlockLen]
	copy(b, Marker)
	b[idxAt-1] = ' '
	putHex(b[idxAt:idxAt+16], idx)
	b[streamAt-1] = ' '
	putHex(b[streamAt:streamAt+8], uint64(id))
	b[fillAt-1] = ' '
	for i := fillAt; i < BlockLen-1; i++ {
		b[i] = '.'
	}
	b[BlockLen-1] = '\n'
}

// putHex writes v as len(b) lower-case hex digits, most significant first.
func putHex(b []byte, v uint64) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = hexDigits[v&0xf]
		v >>= 4
	}
}

// Fill writes the bytes of stream id from stream offset off into p.
func Fill(p []byte, id uint32, off uint64) {
	var blk [BlockLen]byte
	for len(p) > 0 {
		idx, in := off/BlockLen, int(off%BlockLen)
		if in == 0 && len(p) >= BlockLen {
			Block(p, id, idx)
			p, off = p[BlockLen:], off+BlockLen
			continue
		}
		Block(blk[:], id, idx)
		n := copy(p, blk[in:])
		p, off = p[n:], off+uint64(n)
	}
}

// Reader yields the first N bytes of stream ID. It implements io.Reader.
type Reader struct {
	ID  uint32
	N   uint64 // total length of the stream
	off uint64
}

// NewReader returns a Reader for the first n bytes of stream id.
func NewReader(id uint32, n uint64) *Reader { return &Reader{ID: id, N: n} }

// Read fills p with the next bytes of the stream; it returns io.EOF at the end.
func (r *Reader) Read(p []byte) (int, error) {
	if r.off >= r.N {
		return 0, io.EOF
	}
	if rem := r.N - r.off; uint64(len(p)) > rem {
		p = p[:rem]
	}
	Fill(p, r.ID, r.off)
	r.off += uint64(len(p))
	return len(p), nil
}

// Offset is the number of bytes read so far.
func (r *Reader) Offset() uint64 { return r.off }

// Verifier checks that the bytes written to it are stream ID from offset 0.
// It implements io.Writer; the first mismatch is sticky.
type Verifier struct {
	ID      uint32
	off     uint64
	scratch []byte
	err     error
}

// NewVerifier returns a Verifier for stream id.
func NewVerifier(id uint32) *Verifier { return &Verifier{ID: id} }

// Write compares p with the expected bytes at the current offset. It returns
// an error matching ErrMismatch, naming the first differing offset, when they
// differ, and that error again on every later call.
func (v *Verifier) Write(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	if cap(v.scratch) < len(p) {
		v.scratch = make([]byte, len(p))
	}
	want := v.scratch[:len(p)]
	Fill(want, v.ID, v.off)
	if !bytes.Equal(want, p) {
		i := 0
		for i < len(p) && p[i] == want[i] {
			i++
		}
		v.err = fmt.Errorf("%w: stream %08x offset %d: got %q, want %q", ErrMismatch, v.ID,
			v.off+uint64(i), excerpt(p, i), excerpt(want, i))
		return i, v.err
	}
	v.off += uint64(len(p))
	return len(p), nil
}

// Offset is the number of bytes verified so far.
func (v *Verifier) Offset() uint64 { return v.off }

// Err is the first mismatch, or nil.
func (v *Verifier) Err() error { return v.err }

// excerpt returns up to 16 bytes of b starting at i.
func excerpt(b []byte, i int) []byte {
	end := min(i+16, len(b))
	return b[i:end]
}

// Count returns how many times Marker occurs in b.
func Count(b []byte) int { return bytes.Count(b, []byte(Marker)) }

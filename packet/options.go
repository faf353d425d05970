package packet

import (
	"encoding/binary"

	"github.com/tcpcryptd/tcpcrypt/packet/seq"
)

// TCP option kinds used by tcpcryptd (IANA "TCP Option Kind Numbers").
const (
	OptEnd           = 0  // End of Option List (RFC 9293 §3.2)
	OptNOP           = 1  // No-Operation (RFC 9293 §3.2)
	OptMSS           = 2  // Maximum Segment Size (RFC 9293 §3.7.1)
	OptWindowScale   = 3  // Window Scale (RFC 7323 §2)
	OptSACKPermitted = 4  // SACK Permitted (RFC 2018 §2)
	OptSACK          = 5  // SACK blocks (RFC 2018 §3)
	OptTimestamps    = 8  // Timestamps (RFC 7323 §3)
	OptTFO           = 34 // TCP Fast Open cookie (RFC 7413 §4.1.1)
	OptENO           = 69 // TCP-ENO (RFC 8547 §4.1)
)

// MaxOptionsLen is the largest TCP option area: a data offset of 15 words
// leaves 60 - 20 = 40 bytes (RFC 9293 §3.1).
const MaxOptionsLen = 40

// OptionIter walks a TCP option area without allocating. NOP options are
// skipped; End of Option List, or the end of the area, ends the walk. The
// zero OptionIter is an empty walk.
//
// Malformed areas never make it panic or loop: an option with a missing
// length byte, a length below 2, or a length that runs past the area stops
// the walk with Err set (wrapping ErrBadOption). Options before the bad one
// are still returned.
type OptionIter struct {
	opts  []byte
	off   int
	last  int // start of the option Next last returned
	lastN int // its length, 0 when the last Next returned ok=false
	err   error
}

// NewOptionIter returns an iterator over the option area opts (typically
// TCP.Options()).
func NewOptionIter(opts []byte) OptionIter {
	return OptionIter{opts: opts}
}

// Next returns the next option's kind and data (the bytes after the kind and
// length bytes, aliasing the option area, so they may be rewritten in
// place). ok is false at the end of the area, at End of Option List, or on a
// malformed option (then Err is non-nil).
func (it *OptionIter) Next() (kind uint8, data []byte, ok bool) {
	it.lastN = 0
	for it.off < len(it.opts) {
		start := it.off
		kind = it.opts[start]
		switch kind {
		case OptEnd:
			it.off = len(it.opts)
			return 0, nil, false
		case OptNOP:
			it.off++
			continue
		}
		rest := len(it.opts) - start
		if rest < 2 {
			return it.fail(errOptShort)
		}
		n := int(it.opts[start+1])
		if n < 2 {
			return it.fail(errOptLen)
		}
		if n > rest {
			return it.fail(errOptOverrun)
		}
		it.off = start + n
		it.last, it.lastN = start, n
		return kind, it.opts[start+2 : start+n], true
	}
	return 0, nil, false
}

func (it *OptionIter) fail(err error) (uint8, []byte, bool) {
	it.err = err
	it.off = len(it.opts)
	return 0, nil, false
}

// Raw returns the whole option (kind, length and data) that Next last
// returned, aliasing the option area; pass it to OptionBuilder.AddRaw to
// copy an option unchanged. It is nil when the last Next returned ok=false.
func (it *OptionIter) Raw() []byte {
	if it.lastN == 0 {
		return nil
	}
	return it.opts[it.last : it.last+it.lastN]
}

// Err returns the error that stopped the walk, or nil.
func (it *OptionIter) Err() error { return it.err }

// FindOption returns the data of the first option of the given kind (kind
// must not be OptEnd or OptNOP). The walk stops at a malformed option:
// options after it are not found.
func FindOption(opts []byte, kind uint8) (data []byte, ok bool) {
	it := NewOptionIter(opts)
	for {
		k, d, ok := it.Next()
		if !ok {
			return nil, false
		}
		if k == kind {
			return d, true
		}
	}
}

// CountOption returns how many options of the given kind the area holds, up
// to the first malformed option.
func CountOption(opts []byte, kind uint8) int {
	it := NewOptionIter(opts)
	n := 0
	for {
		k, _, ok := it.Next()
		if !ok {
			return n
		}
		if k == kind {
			n++
		}
	}
}

// MSS returns the value of the first MSS option. ok is false when there is
// none or its length is not 4.
func MSS(opts []byte) (mss uint16, ok bool) {
	d, ok := FindOption(opts, OptMSS)
	if !ok || len(d) != 2 {
		return 0, false
	}
	return binary.BigEndian.Uint16(d), true
}

// SetMSS rewrites the value of the first MSS option in place. It reports
// false, changing nothing, when there is no well-formed MSS option. The
// caller must fix the TCP checksum afterwards.
func SetMSS(opts []byte, v uint16) bool {
	d, ok := FindOption(opts, OptMSS)
	if !ok || len(d) != 2 {
		return false
	}
	binary.BigEndian.PutUint16(d, v)
	return true
}

// WindowScale returns the shift count of the first Window Scale option.
func WindowScale(opts []byte) (shift uint8, ok bool) {
	d, ok := FindOption(opts, OptWindowScale)
	if !ok || len(d) != 1 {
		return 0, false
	}
	return d[0], true
}

// Timestamps returns TSval and TSecr of the first Timestamps option.
func Timestamps(opts []byte) (val, ecr uint32, ok bool) {
	d, ok := FindOption(opts, OptTimestamps)
	if !ok || len(d) != 8 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint32(d), binary.BigEndian.Uint32(d[4:]), true
}

// MaxSACKBlocks is the most SACK blocks an option area can carry: 2 + 4*8 =
// 34 bytes fit in 40, five blocks would not (RFC 2018 §3).
const MaxSACKBlocks = 4

// sackData returns the data of the first SACK option when it is well formed:
// a whole number (1 to 4) of 8-byte blocks.
func sackData(opts []byte) ([]byte, bool) {
	d, ok := FindOption(opts, OptSACK)
	if !ok || len(d) == 0 || len(d)%8 != 0 || len(d) > 8*MaxSACKBlocks {
		return nil, false
	}
	return d, true
}

// SACKBlocks returns the blocks of the first SACK option, each as {left
// edge, right edge}, and how many there are. n is 0 when there is no SACK
// option or it is malformed (length not 2 + 8k for k in 1..4).
func SACKBlocks(opts []byte) (blocks [MaxSACKBlocks][2]seq.Value, n int) {
	d, ok := sackData(opts)
	if !ok {
		return blocks, 0
	}
	for ; len(d) >= 8; d = d[8:] {
		blocks[n][0] = seq.Value(binary.BigEndian.Uint32(d))
		blocks[n][1] = seq.Value(binary.BigEndian.Uint32(d[4:]))
		n++
	}
	return blocks, n
}

// SetSACKBlock rewrites block i of the first SACK option in place. It
// reports false, changing nothing, when there is no well-formed SACK option
// or it has no block i. The caller must fix the TCP checksum afterwards.
func SetSACKBlock(opts []byte, i int, left, right seq.Value) bool {
	d, ok := sackData(opts)
	if !ok || i < 0 || i >= len(d)/8 {
		return false
	}
	binary.BigEndian.PutUint32(d[8*i:], uint32(left))
	binary.BigEndian.PutUint32(d[8*i+4:], uint32(right))
	return true
}

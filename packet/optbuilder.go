package packet

// OptionBuilder assembles a TCP option area in a fixed array, without
// allocating. Options are appended in order; an option that does not fit in
// the MaxOptionsLen bytes left is refused with ErrOptionsTooLong and leaves
// the builder unchanged, so the caller can decide to drop it and go on.
//
// To insert, remove or replace options, walk the old area with OptionIter
// and Add (or AddRaw) what should remain, with the new options where they
// belong. The zero OptionBuilder is empty and ready to use.
type OptionBuilder struct {
	buf [MaxOptionsLen]byte
	n   int
}

// Reset empties the builder.
func (b *OptionBuilder) Reset() { b.n = 0 }

// Add appends an option of the given kind with data after its kind and
// length bytes. OptEnd and OptNOP are single bytes and take no data. It
// returns ErrOptionsTooLong (wrapped) when the option does not fit, and
// ErrBadOption (wrapped) for data on EOL/NOP or over 253 bytes.
func (b *OptionBuilder) Add(kind uint8, data []byte) error {
	if kind == OptEnd || kind == OptNOP {
		if len(data) != 0 {
			return errOptSingle
		}
		if b.n+1 > MaxOptionsLen {
			return errOptNoFit
		}
		b.buf[b.n] = kind
		b.n++
		return nil
	}
	if len(data) > 253 {
		return errOptDataLen
	}
	n := 2 + len(data)
	if b.n+n > MaxOptionsLen {
		return errOptNoFit
	}
	b.buf[b.n] = kind
	b.buf[b.n+1] = byte(n)
	copy(b.buf[b.n+2:], data)
	b.n += n
	return nil
}

// AddRaw appends a complete option (kind, length, data) as it is. It checks
// that the option is well formed: a lone EOL or NOP byte, or a length byte
// equal to len(opt).
func (b *OptionBuilder) AddRaw(opt []byte) error {
	if len(opt) == 0 {
		return errOptShort
	}
	if opt[0] == OptEnd || opt[0] == OptNOP {
		if len(opt) != 1 {
			return errOptSingle
		}
		return b.Add(opt[0], nil)
	}
	if len(opt) < 2 || int(opt[1]) != len(opt) {
		return errOptRawLen
	}
	return b.Add(opt[0], opt[2:])
}

// Len returns the number of option bytes added so far, before padding.
func (b *OptionBuilder) Len() int { return b.n }

// Room returns how many more bytes fit.
func (b *OptionBuilder) Room() int { return MaxOptionsLen - b.n }

// Bytes returns the option area padded to a multiple of 4 bytes with zeros
// (an End of Option List followed by padding, RFC 9293 §3.1). The result is
// at most MaxOptionsLen bytes and aliases the builder: it stays valid until
// the next Add, AddRaw or Reset. Copy it to keep it.
func (b *OptionBuilder) Bytes() []byte {
	end := (b.n + 3) &^ 3
	clear(b.buf[b.n:end])
	return b.buf[:end]
}

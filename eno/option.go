package eno

import (
	"bytes"
	"fmt"
)

// Wire constants of RFC 8547.
const (
	// Kind is the TCP option kind of ENO (RFC 8547 §4.1, §11).
	Kind = 69
	// MaxOptionLen is the largest whole TCP option that fits a TCP header.
	MaxOptionLen = 40
	// MaxContentsLen is the largest ENO contents length (MaxOptionLen minus
	// the kind and length bytes).
	MaxContentsLen = MaxOptionLen - 2
	// MaxLengthByteData is the most data a length byte can announce (§4.4).
	MaxLengthByteData = 32

	// MinTEP and MaxTEP bound the 7-bit TEP identifier space (§3, §11).
	MinTEP = 0x20
	MaxTEP = 0x7f
	// TEPExperimental is the TEP id set aside for experiments (§11).
	TEPExperimental = 0x20

	// GlobalB is the b (passive role) bit of the global suboption (§4.2).
	GlobalB = 0x01
	// GlobalA is the a (application-aware) bit of the global suboption.
	GlobalA = 0x02
	// GlobalZ covers the reserved z1..z3 bits: sent as 0, ignored on receipt.
	GlobalZ = 0x1c

	vBit = 0x80 // the v bit of a suboption's first byte
)

// NonSYN is the non-SYN-form ENO option tcpcrypt sends: kind 69 with no
// contents (RFC 8547 §4.1; tcpcrypt gives the contents no meaning). Do not
// modify it.
var NonSYN = []byte{Kind, 2}

// Suboption is one TEP suboption of a SYN-form ENO option.
type Suboption struct {
	ID   uint8  // TEP id, 0x20..0x7f (the v bit removed)
	V    bool   // the v bit: the suboption carries data
	Data []byte // nil when V is false; may be empty when V is true and it was last
}

// Byte returns the suboption's first byte as on the wire: ID | v<<7.
func (s Suboption) Byte() uint8 {
	if s.V {
		return s.ID | vBit
	}
	return s.ID
}

// Equal reports whether s and t have the same id, v bit and data (a nil and
// an empty Data compare equal).
func (s Suboption) Equal(t Suboption) bool {
	return s.ID == t.ID && s.V == t.V && bytes.Equal(s.Data, t.Data)
}

func (s Suboption) clone() Suboption {
	if s.Data != nil {
		s.Data = bytes.Clone(s.Data) // non-nil for non-nil input, even when empty
	}
	return s
}

// Option is a SYN-form ENO option.
//
// ParseSYN keeps the exact received bytes in Raw (kind, length and contents),
// which is what the negotiation transcript needs (RFC 8547 §4.8). Marshal
// ignores Raw: it encodes Global, HasGlobal and Subs.
type Option struct {
	Global    uint8 // the first global suboption byte; meaningful when HasGlobal
	HasGlobal bool  // a global suboption was (or is to be) sent explicitly
	Subs      []Suboption
	Raw       []byte // set by ParseSYN: the whole option as received (aliases its input)
}

// GlobalByte returns the effective global suboption: the explicit one, or the
// implicit 0x00 when none was sent (RFC 8547 §4.2).
func (o *Option) GlobalByte() uint8 {
	if !o.HasGlobal {
		return 0
	}
	return o.Global
}

// A reports the a (application-aware) bit; false for an implicit global.
func (o *Option) A() bool { return o.GlobalByte()&GlobalA != 0 }

// B reports the b (passive role) bit; false for an implicit global.
func (o *Option) B() bool { return o.GlobalByte()&GlobalB != 0 }

// Vacuous reports whether the option carries no TEP suboption (RFC 8547 §4.6).
func (o *Option) Vacuous() bool { return len(o.Subs) == 0 }

// SYNTEP returns the option's SYN TEP, its last TEP suboption (§4.7).
func (o *Option) SYNTEP() (Suboption, bool) {
	if len(o.Subs) == 0 {
		return Suboption{}, false
	}
	return o.Subs[len(o.Subs)-1], true
}

// Lookup returns the suboptions for TEP id, in order.
func (o *Option) Lookup(id uint8) []Suboption {
	var out []Suboption
	for _, s := range o.Subs {
		if s.ID == id {
			out = append(out, s)
		}
	}
	return out
}

// Count returns how many suboptions carry TEP id.
func (o *Option) Count(id uint8) int {
	n := 0
	for _, s := range o.Subs {
		if s.ID == id {
			n++
		}
	}
	return n
}

// Clone returns a deep copy that no longer aliases the parsed buffer.
func (o *Option) Clone() Option {
	c := *o
	c.Raw = bytes.Clone(o.Raw)
	if o.Subs != nil {
		c.Subs = make([]Suboption, len(o.Subs))
		for i, s := range o.Subs {
			c.Subs[i] = s.clone()
		}
	}
	return c
}

// Equal compares the decoded meaning of two options: the effective global
// byte with its z bits ignored, whether it was explicit, and the suboptions.
// Raw is not compared.
func (o *Option) Equal(p *Option) bool {
	if o.HasGlobal != p.HasGlobal || o.GlobalByte()&^GlobalZ != p.GlobalByte()&^GlobalZ {
		return false
	}
	if len(o.Subs) != len(p.Subs) {
		return false
	}
	for i := range o.Subs {
		if !o.Subs[i].Equal(p.Subs[i]) {
			return false
		}
	}
	return true
}

// ParseSYN parses one whole SYN-form ENO option (kind, length, contents)
// strictly, following RFC 8547 §4.1-§4.4: len(raw) must equal the option's
// length byte, contents may not exceed 38 bytes, every length byte must be
// followed by a TEP id with v=1 and enough data. Only the first global
// suboption counts (§4.2); later ones are skipped. The returned Option's Raw
// is raw itself and its suboption data alias raw (see Option.Clone).
//
// Any error matches ErrMalformed and one specific sentinel; the caller must
// then ignore ENO in this SYN and disable encryption.
func ParseSYN(raw []byte) (Option, error) {
	if len(raw) < 2 {
		return Option{}, malformed(len(raw), ErrTruncated)
	}
	if raw[0] != Kind {
		return Option{}, malformed(0, ErrNotENO)
	}
	n := int(raw[1])
	switch {
	case n < 2:
		return Option{}, malformed(1, ErrOptionLength)
	case n > len(raw):
		return Option{}, malformed(1, ErrOptionOverrun)
	case n < len(raw):
		return Option{}, malformed(n, ErrTrailingBytes)
	case n-2 > MaxContentsLen:
		return Option{}, malformed(1, ErrTooLong)
	}
	o := Option{Raw: raw}
	c := raw[2:]
	for i := 0; i < len(c); {
		x := c[i]
		glt := x &^ vBit
		v := x&vBit != 0
		switch {
		case glt < MinTEP && !v: // global suboption
			if !o.HasGlobal {
				o.Global, o.HasGlobal = x, true
			}
			i++
		case glt < MinTEP: // length byte: nnnnn+1 bytes of data follow the TEP byte
			dl := int(glt) + 1
			if i+1 >= len(c) {
				return Option{}, malformed(2+i, ErrLengthByteOverrun)
			}
			t := c[i+1]
			if t&vBit == 0 || t&^vBit < MinTEP {
				return Option{}, malformed(3+i, ErrLengthByteTarget)
			}
			if i+2+dl > len(c) {
				return Option{}, malformed(2+i, ErrLengthByteOverrun)
			}
			o.Subs = append(o.Subs, Suboption{ID: t &^ vBit, V: true, Data: c[i+2 : i+2+dl : i+2+dl]})
			i += 2 + dl
		case !v: // TEP id without data
			o.Subs = append(o.Subs, Suboption{ID: glt})
			i++
		default: // TEP id whose data runs to the end of the option
			o.Subs = append(o.Subs, Suboption{ID: glt, V: true, Data: c[i+1 : len(c) : len(c)]})
			i = len(c)
		}
	}
	return o, nil
}

// Len returns the length of the whole option Marshal would produce, or an
// error if it cannot be encoded.
func (o *Option) Len() (int, error) {
	n := 2
	if o.HasGlobal {
		if o.Global > 0x1f {
			return 0, fmt.Errorf("eno: marshal: global 0x%02x: %w", o.Global, ErrBadGlobal)
		}
		n++
	}
	for i, s := range o.Subs {
		if s.ID < MinTEP || s.ID > MaxTEP {
			return 0, fmt.Errorf("eno: marshal: suboption %d id 0x%02x: %w", i, s.ID, ErrBadTEP)
		}
		n++
		if !s.V {
			if len(s.Data) != 0 {
				return 0, fmt.Errorf("eno: marshal: suboption %d has data but v=0: %w", i, ErrBadSuboption)
			}
			continue
		}
		if i != len(o.Subs)-1 { // not last: needs a length byte
			if len(s.Data) < 1 || len(s.Data) > MaxLengthByteData {
				return 0, fmt.Errorf("eno: marshal: suboption %d (not last) has %d data bytes: %w", i, len(s.Data), ErrBadSuboption)
			}
			n++
		}
		n += len(s.Data)
	}
	if n-2 > MaxContentsLen {
		return 0, fmt.Errorf("eno: marshal: %d bytes of contents: %w", n-2, ErrTooLong)
	}
	return n, nil
}

// Marshal appends the whole option (kind, length, contents) to dst. The
// global suboption comes first when HasGlobal, with its reserved z bits
// cleared (RFC 8547 §4.2); suboptions follow in order, each data-carrying one
// that is not last preceded by a length byte (§4.4). It fails with ErrTooLong
// past 38 bytes of contents, ErrBadTEP, ErrBadGlobal or ErrBadSuboption; dst
// is then returned unchanged.
func (o *Option) Marshal(dst []byte) ([]byte, error) {
	n, err := o.Len()
	if err != nil {
		return dst, err
	}
	dst = append(dst, Kind, byte(n))
	if o.HasGlobal {
		dst = append(dst, o.Global&^GlobalZ)
	}
	for i, s := range o.Subs {
		if s.V && i != len(o.Subs)-1 {
			dst = append(dst, vBit|byte(len(s.Data)-1))
		}
		dst = append(dst, s.Byte())
		if s.V {
			dst = append(dst, s.Data...)
		}
	}
	return dst, nil
}

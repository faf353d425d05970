package eno

import (
	"bytes"
	"errors"
	"math/rand"
	"testing"
)

func TestParseSYNValid(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want Option
	}{
		{"vacuous, implicit global", "45 02", Option{}},
		{"global only", "45 03 01", Option{HasGlobal: true, Global: 0x01}},
		{"fig 9 A SYN <X,Y>", "45 04 21 23", Option{Subs: []Suboption{{ID: tepX}, {ID: tepY}}}},
		{"fig 9 B SYN-ACK <b=1,Y>", "45 04 01 23", Option{HasGlobal: true, Global: 1, Subs: []Suboption{{ID: tepY}}}},
		{"a and b", "45 04 03 23", Option{HasGlobal: true, Global: 3, Subs: []Suboption{{ID: tepY}}}},
		{"z bits kept in Global, ignored by A/B", "45 03 1c", Option{HasGlobal: true, Global: 0x1c}},
		{"only the first global counts", "45 06 01 23 02 00", Option{HasGlobal: true, Global: 1, Subs: []Suboption{{ID: tepY}}}},
		{"global after a TEP", "45 04 23 03", Option{HasGlobal: true, Global: 3, Subs: []Suboption{{ID: tepY}}}},
		{"last TEP with v=1 and no data", "45 03 a3", Option{Subs: []Suboption{{ID: tepY, V: true, Data: []byte{}}}}},
		{"last TEP with data to the end", "45 06 24 a3 aa bb", Option{Subs: []Suboption{{ID: tepZ}, {ID: tepY, V: true, Data: []byte{0xaa, 0xbb}}}}},
		{"length byte then TEP", "45 07 80 a3 aa 24 01", Option{HasGlobal: true, Global: 1, Subs: []Suboption{{ID: tepY, V: true, Data: []byte{0xaa}}, {ID: tepZ}}}},
		{"length byte on the last suboption", "45 06 81 a3 aa bb", Option{Subs: []Suboption{{ID: tepY, V: true, Data: []byte{0xaa, 0xbb}}}}},
		{"two length-byte suboptions", "45 09 80 a1 01 81 a2 02 03", Option{Subs: []Suboption{{ID: tepX, V: true, Data: []byte{1}}, {ID: tepW, V: true, Data: []byte{2, 3}}}}},
		{"experimental and reserved ids", "45 04 20 7f", Option{Subs: []Suboption{{ID: 0x20}, {ID: 0x7f}}}},
		{"data-only tail of 37 bytes", "45 28 a3" + " 00" + stringsRepeat(" 11", 36), Option{Subs: []Suboption{{ID: tepY, V: true, Data: append([]byte{0}, bytes.Repeat([]byte{0x11}, 36)...)}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := h(t, tt.raw)
			got, err := ParseSYN(raw)
			if err != nil {
				t.Fatalf("ParseSYN(% x): %v", raw, err)
			}
			if !got.Equal(&tt.want) || got.Global != tt.want.Global {
				t.Errorf("ParseSYN(% x) = %+v, want %+v", raw, got, tt.want)
			}
			if !bytes.Equal(got.Raw, raw) {
				t.Errorf("Raw = % x, want % x", got.Raw, raw)
			}
		})
	}
}

func stringsRepeat(s string, n int) string {
	var b bytes.Buffer
	for range n {
		b.WriteString(s)
	}
	return b.String()
}

func TestParseSYNGlobalBits(t *testing.T) {
	for g := 0; g < 0x20; g++ {
		o := mustParse(t, []byte{Kind, 3, byte(g)})
		if o.A() != (g&2 != 0) || o.B() != (g&1 != 0) {
			t.Errorf("global 0x%02x: A=%v B=%v", g, o.A(), o.B())
		}
	}
	o := mustParse(t, []byte{Kind, 3, 0x23})
	if o.A() || o.B() || o.HasGlobal {
		t.Errorf("implicit global must read a=0 b=0, got %+v", o)
	}
}

func TestParseSYNMalformed(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want error
	}{
		{"empty", "", ErrTruncated},
		{"kind only", "45", ErrTruncated},
		{"wrong kind", "44 02", ErrNotENO},
		{"option length 0", "45 00", ErrOptionLength},
		{"option length 1", "45 01", ErrOptionLength},
		{"option length past buffer", "45 05 21 23", ErrOptionOverrun},
		{"bytes after the option", "45 03 21 23", ErrTrailingBytes},
		{"contents 39 bytes", "45 29" + stringsRepeat(" 21", 39), ErrTooLong},
		{"length byte last", "45 04 21 80", ErrLengthByteOverrun},
		{"length byte claims 2, has 1", "45 05 81 a3 aa", ErrLengthByteOverrun},
		{"length byte claims 32, has 1", "45 05 9f a3 aa", ErrLengthByteOverrun},
		{"length byte then global", "45 05 80 01 aa", ErrLengthByteTarget},
		{"length byte then TEP v=0", "45 05 80 23 aa", ErrLengthByteTarget},
		{"length byte then length byte", "45 06 80 80 a3 aa", ErrLengthByteTarget},
		{"length byte then 0x9f", "45 05 80 9f aa", ErrLengthByteTarget},
		{"length byte then 0x00", "45 05 80 00 aa", ErrLengthByteTarget},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := h(t, tt.raw)
			_, err := ParseSYN(raw)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParseSYN(% x) error = %v, want %v", raw, err, tt.want)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v does not match ErrMalformed", err)
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Offset < 0 || pe.Offset > len(raw) {
				t.Errorf("error %v: bad ParseError %+v", err, pe)
			}
		})
	}
}

// TestSentinelsDistinct makes sure no two malformed-case sentinels match each other.
func TestSentinelsDistinct(t *testing.T) {
	all := []error{ErrTruncated, ErrNotENO, ErrOptionLength, ErrOptionOverrun, ErrTrailingBytes,
		ErrTooLong, ErrLengthByteOverrun, ErrLengthByteTarget, ErrOptionArea}
	for i, a := range all {
		for j, b := range all {
			if i != j && errors.Is(a, b) {
				t.Errorf("%v matches %v", a, b)
			}
		}
	}
}

func TestMarshal(t *testing.T) {
	res := append([]byte{}, seqBytes(0x10, 17)...)
	tests := []struct {
		name string
		opt  Option
		want string
	}{
		{"vacuous implicit", Option{}, "45 02"},
		{"non-SYN form equals NonSYN", Option{}, "45 02"},
		{"fig 9 A", Option{Subs: []Suboption{{ID: tepX}, {ID: tepY}}}, "45 04 21 23"},
		{"fig 9 B", Option{HasGlobal: true, Global: GlobalB, Subs: []Suboption{{ID: tepY}}}, "45 04 01 23"},
		{"z bits cleared on send", Option{HasGlobal: true, Global: 0x1f, Subs: []Suboption{{ID: tepY}}}, "45 04 03 23"},
		{"explicit zero global", Option{HasGlobal: true, Subs: []Suboption{{ID: tepY}}}, "45 04 00 23"},
		{"Global ignored without HasGlobal", Option{Global: 3, Subs: []Suboption{{ID: tepY}}}, "45 03 23"},
		{"data last: no length byte", Option{Subs: []Suboption{{ID: tepZ}, {ID: tepY, V: true, Data: []byte{0xaa, 0xbb}}}}, "45 06 24 a3 aa bb"},
		{"data not last: length byte", Option{Subs: []Suboption{{ID: tepY, V: true, Data: []byte{0xaa, 0xbb}}, {ID: tepZ}}}, "45 07 81 a3 aa bb 24"},
		{"v=1 empty last", Option{Subs: []Suboption{{ID: tepY, V: true}}}, "45 03 a3"},
		{"32 bytes not last", Option{Subs: []Suboption{{ID: tepY, V: true, Data: bytes.Repeat([]byte{7}, 32)}, {ID: tepZ}}}, "45 25 9f a3" + stringsRepeat(" 07", 32) + " 24"},
		{"digest §3 resumption last", Option{Subs: []Suboption{{ID: tepZ}, {ID: tepY, V: true, Data: res}}}, "45 15 24 a3" + hexOf(res)},
		{"digest §3 resumption first", Option{Subs: []Suboption{{ID: tepY, V: true, Data: res}, {ID: tepZ}}}, "45 16 90 a3" + hexOf(res) + " 24"},
		{"38 bytes of contents", Option{Subs: []Suboption{{ID: tepY, V: true, Data: make([]byte, 37)}}}, "45 28 a3" + stringsRepeat(" 00", 37)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := h(t, tt.want)
			prefix := []byte{0xee}
			got, err := tt.opt.Marshal(prefix)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if !bytes.Equal(got[1:], want) || got[0] != 0xee {
				t.Fatalf("Marshal = % x, want ee % x", got, want)
			}
			if n, _ := tt.opt.Len(); n != len(want) {
				t.Errorf("Len = %d, want %d", n, len(want))
			}
			back := mustParse(t, got[1:])
			norm := tt.opt
			if norm.HasGlobal {
				norm.Global &^= GlobalZ
			}
			if !back.Equal(&norm) {
				t.Errorf("re-parse = %+v, want %+v", back, norm)
			}
		})
	}
	if !bytes.Equal(NonSYN, []byte{0x45, 0x02}) {
		t.Errorf("NonSYN = % x", NonSYN)
	}
}

func hexOf(b []byte) string {
	var s bytes.Buffer
	for _, c := range b {
		s.WriteString(" ")
		s.WriteString(hexByte(c))
	}
	return s.String()
}

func hexByte(c byte) string {
	const d = "0123456789abcdef"
	return string([]byte{d[c>>4], d[c&15]})
}

func TestMarshalErrors(t *testing.T) {
	tests := []struct {
		name string
		opt  Option
		want error
	}{
		{"39 bytes of contents", Option{Subs: []Suboption{{ID: tepY, V: true, Data: make([]byte, 38)}}}, ErrTooLong},
		{"39 TEP bytes", Option{Subs: func() []Suboption {
			s := make([]Suboption, 39)
			for i := range s {
				s[i] = Suboption{ID: 0x20 + byte(i)}
			}
			return s
		}()}, ErrTooLong},
		{"TEP id below 0x20", Option{Subs: []Suboption{{ID: 0x1f}}}, ErrBadTEP},
		{"TEP id above 0x7f", Option{Subs: []Suboption{{ID: 0x80}}}, ErrBadTEP},
		{"data with v=0", Option{Subs: []Suboption{{ID: tepY, Data: []byte{1}}}}, ErrBadSuboption},
		{"empty data, not last", Option{Subs: []Suboption{{ID: tepY, V: true}, {ID: tepZ}}}, ErrBadSuboption},
		{"33 bytes, not last", Option{Subs: []Suboption{{ID: tepY, V: true, Data: make([]byte, 33)}, {ID: tepZ}}}, ErrBadSuboption},
		{"global above 0x1f", Option{HasGlobal: true, Global: 0x20, Subs: []Suboption{{ID: tepY}}}, ErrBadGlobal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte{1, 2}
			got, err := tt.opt.Marshal(dst)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Marshal error = %v, want %v", err, tt.want)
			}
			if errors.Is(err, ErrMalformed) {
				t.Errorf("marshal error %v must not match ErrMalformed", err)
			}
			if !bytes.Equal(got, dst) {
				t.Errorf("dst changed on error: % x", got)
			}
		})
	}
}

// randomOption returns an encodable Option of random shape.
func randomOption(r *rand.Rand) Option {
	var o Option
	if r.Intn(2) == 0 {
		o.HasGlobal = true
		o.Global = byte(r.Intn(4))
	}
	for n := r.Intn(6); n > 0; n-- {
		s := Suboption{ID: byte(MinTEP + r.Intn(MaxTEP-MinTEP+1))}
		if r.Intn(3) == 0 {
			s.V = true
			s.Data = make([]byte, 1+r.Intn(8))
			r.Read(s.Data)
		}
		o.Subs = append(o.Subs, s)
	}
	if len(o.Subs) > 0 && r.Intn(4) == 0 { // empty data is only encodable last
		o.Subs[len(o.Subs)-1] = Suboption{ID: o.Subs[len(o.Subs)-1].ID, V: true, Data: []byte{}}
	}
	return o
}

func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 5000; i++ {
		o := randomOption(r)
		b, err := o.Marshal(nil)
		if errors.Is(err, ErrTooLong) {
			continue
		}
		if err != nil {
			t.Fatalf("Marshal(%+v): %v", o, err)
		}
		got, err := ParseSYN(b)
		if err != nil {
			t.Fatalf("ParseSYN(Marshal(%+v) = % x): %v", o, b, err)
		}
		if !got.Equal(&o) {
			t.Fatalf("round trip %+v -> % x -> %+v", o, b, got)
		}
		again, err := got.Marshal(nil)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("second Marshal = % x, %v; want % x", again, err, b)
		}
		c := got.Clone()
		for j := range b {
			b[j] ^= 0xff
		}
		if !c.Equal(&o) {
			t.Fatalf("Clone still aliases the parsed buffer: %+v", c)
		}
	}
}

// TestStrictPrefixes cuts every valid option's contents short. With the
// original length byte the option must fail (overrun); with the length byte
// fixed up it must either fail or decode to something different.
func TestStrictPrefixes(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	for i := 0; i < 2000; i++ {
		o := randomOption(r)
		b, err := o.Marshal(nil)
		if err != nil {
			continue
		}
		for cut := 0; cut < len(b); cut++ {
			if _, err := ParseSYN(b[:cut]); err == nil {
				t.Fatalf("prefix % x of % x parsed", b[:cut], b)
			}
			if cut < 2 {
				continue
			}
			p := append([]byte{}, b[:cut]...)
			p[1] = byte(cut)
			got, err := ParseSYN(p)
			if err == nil && got.Equal(&o) {
				t.Fatalf("shortened % x of % x decodes to the same option %+v", p, b, got)
			}
		}
	}
}

func TestRandomBytesNoPanic(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	buf := make([]byte, 48)
	for i := 0; i < 200000; i++ {
		n := r.Intn(len(buf) + 1)
		r.Read(buf[:n])
		if n >= 2 && r.Intn(2) == 0 {
			buf[0], buf[1] = Kind, byte(n)
		}
		o, err := ParseSYN(buf[:n])
		if err != nil {
			continue
		}
		if _, err := o.Marshal(nil); err != nil {
			t.Fatalf("parsed % x but cannot marshal it: %v", buf[:n], err)
		}
		FindENO(buf[:n])
	}
}

func TestOptionHelpers(t *testing.T) {
	o := mustParse(t, h(t, "45 07 80 a3 aa 24 22"))
	if s, ok := o.SYNTEP(); !ok || s.ID != tepW || s.V {
		t.Errorf("SYNTEP = %+v, %v; want 0x22", s, ok)
	}
	if _, ok := (&Option{}).SYNTEP(); ok {
		t.Errorf("vacuous option has a SYN TEP")
	}
	if o.Count(tepY) != 1 || o.Count(tepX) != 0 || len(o.Lookup(tepZ)) != 1 || o.Vacuous() {
		t.Errorf("Count/Lookup/Vacuous wrong for %+v", o)
	}
	if got := (Suboption{ID: tepY, V: true}).Byte(); got != 0xa3 {
		t.Errorf("Byte = 0x%02x", got)
	}
	empty := mustParse(t, h(t, "45 03 a3"))
	if c := empty.Clone(); c.Subs[0].Data == nil {
		t.Errorf("Clone turned empty data into nil")
	}
	if got := Transcript(h(t, "45 04 21 23"), h(t, "45 04 01 23")); !bytes.Equal(got, h(t, "45 04 21 23 45 04 01 23")) {
		t.Errorf("Transcript = % x", got)
	}
}

package eno

import (
	"bytes"
	"testing"
)

// FuzzParseSYN: no panic; a parsed option re-marshals (never longer) and
// re-parses to an equal option; Raw is the input.
func FuzzParseSYN(f *testing.F) {
	for _, s := range []string{"45 02", "45 04 21 23", "45 04 01 23", "45 07 80 a3 aa 24 01", "45 05 81 a3 aa", "45 05 80 23 aa", "45 00", "44 02"} {
		f.Add(h(f, s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		o, err := ParseSYN(raw)
		if err != nil {
			return
		}
		if !bytes.Equal(o.Raw, raw) {
			t.Fatalf("Raw = % x, want % x", o.Raw, raw)
		}
		b, err := o.Marshal(nil)
		if err != nil {
			t.Fatalf("Marshal of parsed % x: %v", raw, err)
		}
		if len(b) > len(raw) {
			t.Fatalf("Marshal grew % x to % x", raw, b)
		}
		back, err := ParseSYN(b)
		if err != nil {
			t.Fatalf("re-parse of % x (from % x): %v", b, raw, err)
		}
		if !back.Equal(&o) {
			t.Fatalf("% x -> %+v -> % x -> %+v", raw, o, b, back)
		}
	})
}

// FuzzFindENO: no panic; whatever is returned is one whole option of kind 69.
func FuzzFindENO(f *testing.F) {
	for _, s := range []string{"", "01 01 45 02", "45 03 23 01 45 03 24", "02 04 05", "00 45 02", "45 00"} {
		f.Add(h(f, s))
	}
	f.Fuzz(func(t *testing.T, opts []byte) {
		raw, n, _ := FindENO(opts)
		if (raw != nil) != (n > 0) {
			t.Fatalf("raw % x with count %d", raw, n)
		}
		if raw != nil && (len(raw) < 2 || raw[0] != Kind || int(raw[1]) != len(raw)) {
			t.Fatalf("raw % x is not one whole ENO option", raw)
		}
	})
}

// fuzzConfig derives a Config from fuzz bytes: valid, de-duplicated TEP ids.
func fuzzConfig(teps []byte, flags byte) Config {
	var c Config
	var seen [128]bool
	for _, t := range teps {
		t &= 0x7f
		if t >= MinTEP && !seen[t] {
			seen[t] = true
			c.TEPs = append(c.TEPs, t)
		}
	}
	c.AppAware = flags&1 != 0
	c.MandatoryAppAware = flags&2 != 0
	c.SimOpenB = flags&4 != 0
	return c
}

// checkResult asserts what any Result must satisfy for its input.
func checkResult(t *testing.T, in Input, r Result) {
	t.Helper()
	if r.OK != (r.Reason == ReasonNone) {
		t.Fatalf("OK=%v with reason %v", r.OK, r.Reason)
	}
	if !r.OK {
		return
	}
	l, err1 := ParseSYN(in.LocalSYN)
	p, err2 := ParseSYN(in.PeerSYN)
	if err1 != nil || err2 != nil {
		t.Fatalf("OK with unparsable options: %v %v", err1, err2)
	}
	if l.Count(r.TEP) != 1 || p.Count(r.TEP) != 1 {
		t.Fatalf("TEP 0x%02x not offered once by both", r.TEP)
	}
	if l.B() == p.B() || (r.Role == RoleB) != l.B() {
		t.Fatalf("role %v with local b=%v peer b=%v", r.Role, l.B(), p.B())
	}
	a, b := in.LocalSYN, in.PeerSYN
	bo := p
	if r.Role == RoleB {
		a, b, bo = b, a, l
	}
	if !bytes.Equal(r.Transcript, append(append([]byte{}, a...), b...)) {
		t.Fatalf("transcript % x", r.Transcript)
	}
	if r.TEPByte != bo.Lookup(r.TEP)[0].Byte() || r.TEPByte&0x7f != r.TEP || r.V != (r.TEPByte&0x80 != 0) {
		t.Fatalf("TEPByte 0x%02x for TEP 0x%02x", r.TEPByte, r.TEP)
	}
	if !r.LocalSub.Equal(l.Lookup(r.TEP)[0]) || !r.PeerSub.Equal(p.Lookup(r.TEP)[0]) {
		t.Fatalf("suboptions %+v %+v", r.LocalSub, r.PeerSub)
	}
	if in.Config.MandatoryAppAware && !r.PeerA {
		t.Fatalf("mandatory app-aware accepted a=0")
	}
}

// FuzzNegotiate: arbitrary option bytes on both sides never panic, every
// result is consistent with its input, and when both ends succeed they agree
// (same TEP, TEP byte and transcript; opposite roles). It also runs
// BuildSYN -> Answer -> Negotiate for the two fuzzed configs.
func FuzzNegotiate(f *testing.F) {
	f.Add(h(f, "45 04 21 23"), h(f, "45 04 01 23"), []byte{tepY, tepX}, []byte{tepY}, byte(0), byte(0), byte(0x30))
	f.Add(h(f, "45 04 23 21"), h(f, "45 06 01 21 23 24"), []byte{tepY, tepX}, []byte{tepZ, tepY, tepX}, byte(0), byte(4), byte(0x30))
	f.Add(h(f, "45 04 21 23"), h(f, "45 04 21 23"), []byte{tepY}, []byte{tepY}, byte(0), byte(0), byte(0x30))
	f.Add(h(f, "45 05 02 21 23"), h(f, "45 04 01 23"), []byte{tepY}, []byte{tepY}, byte(2), byte(2), byte(0x30))
	f.Add(h(f, "45 15 24 a3 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10"), h(f, "45 06 01 a3 09 08"), []byte{tepY, tepZ}, []byte{tepY}, byte(0), byte(0), byte(0x31))
	f.Add(h(f, "45 02"), h(f, "45 05 01 81 a3"), []byte{}, []byte{tepX}, byte(0), byte(0), byte(0x08))
	f.Fuzz(func(t *testing.T, x, y, tepsX, tepsY []byte, flagsX, flagsY, misc byte) {
		cx, cy := fuzzConfig(tepsX, flagsX), fuzzConfig(tepsY, flagsY)
		var valid func(uint8, Suboption, Suboption) bool
		if misc&1 != 0 { // a TEP-specific check in the style of tcpcrypt resumption
			valid = func(_ uint8, l, p Suboption) bool { return !(l.V && p.V) || bytes.Equal(l.Data, p.Data) }
		}
		inX := Input{Config: cx, Passive: misc&2 != 0, LocalSYN: x, PeerSYN: y, PeerSYNENOCount: 1 + int(misc>>2&1),
			PeerACKHasENO: misc&0x10 != 0, Valid: valid}
		inY := Input{Config: cy, Passive: misc&8 != 0, LocalSYN: y, PeerSYN: x, PeerSYNENOCount: 1,
			PeerACKHasENO: misc&0x20 != 0, Valid: valid}
		if misc&0x40 != 0 {
			inX.LocalSYN, inY.PeerSYN = nil, nil
		}
		rx, ry := Negotiate(inX), Negotiate(inY)
		checkResult(t, inX, rx)
		checkResult(t, inY, ry)
		if rx.OK && ry.OK {
			if rx.Role == ry.Role || rx.TEP != ry.TEP || rx.TEPByte != ry.TEPByte ||
				!bytes.Equal(rx.Transcript, ry.Transcript) || !rx.LocalSub.Equal(ry.PeerSub) {
				t.Fatalf("sides disagree: %+v vs %+v", rx, ry)
			}
		}

		// A full exchange between the two configs.
		syn, err := BuildSYN(cx, 40)
		if err != nil {
			return
		}
		synB := mustMarshal(t, syn)
		peer, err := ParseSYN(synB)
		if err != nil {
			t.Fatalf("BuildSYN output % x does not parse: %v", synB, err)
		}
		ans, ok := Answer(cy, peer, nil)
		if !ok {
			return
		}
		ansB, err := ans.Marshal(nil)
		if err != nil {
			t.Fatalf("Answer output %+v does not marshal: %v", ans, err)
		}
		ra := Negotiate(Input{Config: cx, LocalSYN: synB, PeerSYN: ansB, PeerACKHasENO: true})
		rb := Negotiate(Input{Config: cy, Passive: true, LocalSYN: ansB, PeerSYN: synB, PeerACKHasENO: ra.OK})
		if cx.MandatoryAppAware && !cy.LocalA() {
			if ra.OK || rb.OK {
				t.Fatalf("mandatory app-aware A accepted a=0 B")
			}
			return
		}
		if !ra.OK || !rb.OK || ra.TEP != rb.TEP || ra.Role != RoleA || rb.Role != RoleB || ra.TEP != ans.Subs[0].ID {
			t.Fatalf("clean exchange failed: cx=%+v cy=%+v A=%+v B=%+v", cx, cy, ra, rb)
		}
	})
}

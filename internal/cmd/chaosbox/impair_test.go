package main

import (
	"errors"
	"math"
	"slices"
	"testing"
	"time"
)

var t0 = time.Unix(1000, 0)

func defaults() Params { return Params{Gap: 3, MaxHold: 20 * time.Millisecond, MaxHeld: 8} }

func TestValidate(t *testing.T) {
	bad := []func(*Params){
		func(p *Params) { p.Loss = -0.1 },
		func(p *Params) { p.Reorder = 1.5 },
		func(p *Params) { p.Dup = math.NaN() },
		func(p *Params) { p.Gap = 0 },
		func(p *Params) { p.MaxHold = 0 },
		func(p *Params) { p.MaxHeld = 0 },
	}
	for i, f := range bad {
		p := defaults()
		f(&p)
		if err := p.Validate(); !errors.Is(err, errParams) {
			t.Errorf("case %d: Validate = %v, want errParams", i, err)
		}
	}
	if err := defaults().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

func TestAllOrNothing(t *testing.T) {
	tests := []struct {
		name string
		set  func(*Params)
		want Action
	}{
		{"clean", func(*Params) {}, Pass},
		{"loss 1", func(p *Params) { p.Loss = 1 }, Drop},
		{"dup 1", func(p *Params) { p.Dup = 1 }, Duplicate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := defaults()
			tt.set(&p)
			im := NewImpairer(p, 1)
			for i := range uint32(100) {
				if a, rel := im.Packet(i, t0); a != tt.want || rel != nil {
					t.Fatalf("packet %d: %v %v, want %v", i, a, rel, tt.want)
				}
			}
		})
	}
}

func TestReorderReleasesAfterGap(t *testing.T) {
	p := defaults()
	p.Reorder = 1
	p.MaxHeld = 1 // only one held at a time: the others pass
	im := NewImpairer(p, 1)
	var order []uint32
	for i := range uint32(8) {
		a, rel := im.Packet(i, t0)
		if a != Hold {
			order = append(order, i)
		}
		order = append(order, rel...)
	}
	order = append(order, im.Drain()...)
	// 0 held; 1,2 pass (full); at packet 3 (4th seen) 0 is due; 4 held ...
	want := []uint32{1, 2, 3, 0, 5, 6, 7, 4}
	if !slices.Equal(order, want) {
		t.Errorf("delivery order %v, want %v", order, want)
	}
	if st := im.Stats(); st.Reordered != 2 || st.HeldFull != 6 || st.Packets != 8 {
		t.Errorf("stats %+v", st)
	}
}

func TestReorderDeadline(t *testing.T) {
	p := defaults()
	p.Reorder = 1
	im := NewImpairer(p, 1)
	if a, _ := im.Packet(7, t0); a != Hold {
		t.Fatalf("not held: %v", a)
	}
	if d, ok := im.NextDeadline(); !ok || !d.Equal(t0.Add(p.MaxHold)) {
		t.Errorf("NextDeadline = %v %v", d, ok)
	}
	if got := im.Due(t0.Add(p.MaxHold - 1)); got != nil {
		t.Errorf("released early: %v", got)
	}
	if got := im.Due(t0.Add(p.MaxHold)); !slices.Equal(got, []uint32{7}) || im.Held() != 0 {
		t.Errorf("Due at deadline = %v, held %d", got, im.Held())
	}
	if _, ok := im.NextDeadline(); ok {
		t.Error("deadline with nothing held")
	}
}

func TestSeededRates(t *testing.T) {
	p := defaults()
	p.Loss, p.Reorder, p.Dup, p.MaxHeld = 0.05, 0.05, 0.05, 1000
	run := func(seed uint64) Stats {
		im := NewImpairer(p, seed)
		for i := range uint32(20000) {
			im.Packet(i, t0)
		}
		return im.Stats()
	}
	a, b := run(42), run(42)
	if a != b {
		t.Errorf("same seed, different decisions: %+v vs %+v", a, b)
	}
	if c := run(43); c == a {
		t.Errorf("different seeds gave identical decisions %+v", c)
	}
	// 5% of 20000 = 1000 each, loosely (the later checks see fewer packets).
	for name, n := range map[string]uint64{"dropped": a.Dropped, "reordered": a.Reordered, "duplicated": a.Duplicated} {
		if n < 700 || n > 1300 {
			t.Errorf("%s = %d, want about 1000", name, n)
		}
	}
}

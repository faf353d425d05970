package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Action is what happens to one packet.
type Action uint8

// Actions.
const (
	// Pass accepts the packet now.
	Pass Action = iota
	// Drop discards it (loss).
	Drop
	// Hold keeps it back: its verdict comes later, after younger packets
	// have passed (reordering).
	Hold
	// Duplicate accepts it and sends a copy right behind it.
	Duplicate
)

func (a Action) String() string {
	switch a {
	case Pass:
		return "pass"
	case Drop:
		return "drop"
	case Hold:
		return "hold"
	case Duplicate:
		return "duplicate"
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// errParams matches errors of Params.Validate.
var errParams = errors.New("chaosbox: bad impairment parameters")

// Params describes the impairments. The probabilities are independent per
// packet and checked in the order loss, reorder, duplicate.
type Params struct {
	Loss, Reorder, Dup float64 // probabilities, 0..1
	// Gap is how many younger packets overtake a held packet before it is
	// released (at least 1).
	Gap int
	// MaxHold releases a held packet after this long even when too few
	// packets followed it, so a quiet flow is never stalled for long.
	MaxHold time.Duration
	// MaxHeld bounds the packets held at once; past it, packets that would
	// be held pass instead.
	MaxHeld int
}

// Validate checks the ranges.
func (p Params) Validate() error {
	for _, v := range []float64{p.Loss, p.Reorder, p.Dup} {
		if !(v >= 0 && v <= 1) { // also refuses NaN
			return fmt.Errorf("%w: probability %v outside 0..1", errParams, v)
		}
	}
	if p.Gap < 1 || p.MaxHold <= 0 || p.MaxHeld < 1 {
		return fmt.Errorf("%w: gap %d, max hold %v, max held %d must be positive", errParams, p.Gap, p.MaxHold, p.MaxHeld)
	}
	return nil
}

// Stats counts what the impairer did.
type Stats struct {
	Packets    uint64 `json:"packets"`
	Dropped    uint64 `json:"dropped"`
	Reordered  uint64 `json:"reordered"`
	Duplicated uint64 `json:"duplicated"`
	HeldFull   uint64 `json:"held_full"` // holds refused because MaxHeld was reached
}

type held struct {
	id       uint32
	after    uint64 // release once this many packets were seen
	deadline time.Time
}

// Impairer decides the fate of each packet from a seeded random source, and
// keeps the list of held packets. It is not safe for concurrent use.
type Impairer struct {
	p     Params
	rng   *rand.Rand
	held  []held
	stats Stats
}

// NewImpairer returns an Impairer for p (which must be valid) drawing from a
// PCG generator seeded with seed: the same seed and packet sequence give the
// same decisions.
func NewImpairer(p Params, seed uint64) *Impairer {
	return &Impairer{p: p, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Packet decides what to do with the packet id seen at now. It also returns
// the held packets that are due now; the caller releases them after giving
// this packet its verdict, so that they arrive behind it.
func (im *Impairer) Packet(id uint32, now time.Time) (Action, []uint32) {
	im.stats.Packets++
	a := Pass
	switch {
	case im.hit(im.p.Loss):
		a = Drop
		im.stats.Dropped++
	case im.hit(im.p.Reorder):
		if len(im.held) >= im.p.MaxHeld {
			im.stats.HeldFull++
			break
		}
		a = Hold
		im.stats.Reordered++
		im.held = append(im.held, held{id: id, after: im.stats.Packets + uint64(im.p.Gap), deadline: now.Add(im.p.MaxHold)})
	case im.hit(im.p.Dup):
		a = Duplicate
		im.stats.Duplicated++
	}
	return a, im.due(now, false)
}

// hit draws one Bernoulli(p) sample; p == 0 draws nothing, so that an
// impairment switched off does not change the other ones' sequence.
func (im *Impairer) hit(p float64) bool {
	return p > 0 && im.rng.Float64() < p
}

// Due returns the held packets whose time is up at now.
func (im *Impairer) Due(now time.Time) []uint32 { return im.due(now, false) }

// Drain returns every held packet, oldest first, and forgets them.
func (im *Impairer) Drain() []uint32 { return im.due(time.Time{}, true) }

// NextDeadline is when the oldest held packet must be released at the
// latest; ok is false when nothing is held.
func (im *Impairer) NextDeadline() (time.Time, bool) {
	if len(im.held) == 0 {
		return time.Time{}, false
	}
	d := im.held[0].deadline
	for _, h := range im.held[1:] {
		if h.deadline.Before(d) {
			d = h.deadline
		}
	}
	return d, true
}

func (im *Impairer) due(now time.Time, all bool) []uint32 {
	var out []uint32
	kept := im.held[:0]
	for _, h := range im.held {
		if all || im.stats.Packets >= h.after || !now.Before(h.deadline) {
			out = append(out, h.id)
			continue
		}
		kept = append(kept, h)
	}
	clear(im.held[len(kept):])
	im.held = kept
	return out
}

// Stats returns the counters.
func (im *Impairer) Stats() Stats { return im.stats }

// Held is the number of packets held now.
func (im *Impairer) Held() int { return len(im.held) }

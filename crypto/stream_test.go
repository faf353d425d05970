package crypto

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

type gotFrame struct {
	p   Plain
	off uint64
	gen uint32
}

// drain writes b into d in chunks given by next and collects frames,
// copying their data.
func drain(t *testing.T, d *Decoder, b []byte, next func() int) ([]gotFrame, error) {
	t.Helper()
	var out []gotFrame
	for len(b) > 0 {
		n, err := d.Write(b[:min(next(), len(b))])
		if err != nil {
			return out, err
		}
		b = b[n:]
		for {
			p, off, ok, err := d.Next()
			if err != nil {
				return out, err
			}
			if !ok {
				break
			}
			p.Data = bytes.Clone(p.Data)
			out = append(out, gotFrame{p, off, d.Generation()})
		}
		if d.Buffered() > MaxFrameLen {
			t.Fatalf("decoder buffers %d bytes", d.Buffered())
		}
	}
	return out, nil
}

// stream seals plains with an Encoder, rekeying before the indexes in
// rekeyAt, and returns the stream and the expected frames.
func stream(t *testing.T, s *Schedule, start uint64, plains []Plain, rekeyAt map[int]bool) ([]byte, []gotFrame) {
	t.Helper()
	e := NewEncoder(s, DirAB, start)
	var b []byte
	var want []gotFrame
	for i, p := range plains {
		if rekeyAt[i] && !e.Rekey() {
			t.Fatal("Rekey refused")
		}
		off := e.Offset()
		rk := e.RekeyPending()
		var err error
		b, err = e.Seal(b, p)
		if err != nil {
			t.Fatal(err)
		}
		p.Rekey = rk
		want = append(want, gotFrame{p, off, e.Generation()})
	}
	if e.Offset() != start+uint64(len(b)) {
		t.Fatalf("encoder offset %d, stream ends at %d", e.Offset(), start+uint64(len(b)))
	}
	return b, want
}

func samePlain(a, b Plain) bool {
	return a.FIN == b.FIN && a.URG == b.URG && a.Rekey == b.Rekey && (!a.URG || a.Urgent == b.Urgent) && bytes.Equal(a.Data, b.Data)
}

func TestDecoderChunkings(t *testing.T) {
	plains := []Plain{
		{Data: []byte("one")},
		{},
		{URG: true, Urgent: 1, Data: []byte("urgent")},
		{Data: bytes.Repeat([]byte{9}, 3000)},
		{Data: []byte("after rekey")},
		{Data: bytes.Repeat([]byte{8}, MaxFrameData)},
		{Data: []byte("rekey again")},
		{FIN: true},
	}
	rekeyAt := map[int]bool{4: true, 6: true}
	chunkers := map[string]func(r *rand.Rand) func() int{
		"one byte":  func(*rand.Rand) func() int { return func() int { return 1 } },
		"all":       func(*rand.Rand) func() int { return func() int { return 1 << 30 } },
		"random":    func(r *rand.Rand) func() int { return func() int { return 1 + r.IntN(5000) } },
		"odd prime": func(*rand.Rand) func() int { return func() int { return 7919 } },
	}
	for _, id := range allAEADs {
		for name, ch := range chunkers {
			t.Run(fmt.Sprintf("%v/%s", id, name), func(t *testing.T) {
				s, _ := NewSchedule(seqBytes(1, 32), nil, id)
				b, want := stream(t, s, 77, plains, rekeyAt)
				d := NewDecoder(s, DirAB, 77)
				got, err := drain(t, d, b, ch(rand.New(rand.NewPCG(3, 4))))
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(want) {
					t.Fatalf("%d frames, want %d", len(got), len(want))
				}
				for i := range want {
					if !samePlain(got[i].p, want[i].p) || got[i].off != want[i].off || got[i].gen != want[i].gen {
						t.Fatalf("frame %d: got off %d gen %d %+v, want off %d gen %d", i, got[i].off, got[i].gen, got[i].p.Rekey, want[i].off, want[i].gen)
					}
				}
				if d.Generation() != 2 || d.Offset() != 77+uint64(len(b)) || d.Buffered() != 0 || d.Err() != nil {
					t.Fatalf("end state gen %d off %d buffered %d err %v", d.Generation(), d.Offset(), d.Buffered(), d.Err())
				}
			})
		}
	}
}

func TestDecoderWriteIsBounded(t *testing.T) {
	s, _ := NewSchedule(seqBytes(1, 32), nil, AES128GCM)
	b, want := stream(t, s, 0, []Plain{{Data: make([]byte, 40000)}, {Data: make([]byte, 40000)}, {FIN: true}}, nil)
	d := NewDecoder(s, DirAB, 0)
	n, err := d.Write(b)
	if err != nil || n != MaxFrameLen {
		t.Fatalf("Write took %d (err %v), want %d", n, err, MaxFrameLen)
	}
	got := 0
	for len(b) > 0 {
		b = b[n:]
		for {
			_, _, ok, err := d.Next()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			got++
		}
		if n, err = d.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if got != len(want) {
		t.Fatalf("%d frames, want %d", got, len(want))
	}
}

func TestDecoderErrorsAreSticky(t *testing.T) {
	s, _ := NewSchedule(seqBytes(1, 32), nil, ChaCha20Poly1305)
	b, _ := stream(t, s, 10, []Plain{{Data: []byte("a")}, {Data: []byte("b")}, {Data: []byte("c")}}, nil)
	flen := FrameLen(1, false)
	tests := []struct {
		name   string
		mutate func([]byte) []byte
		frames int
		want   error
	}{
		{"tampered second frame", func(b []byte) []byte { b[flen+5] ^= 1; return b }, 1, ErrAuth},
		{"clen too small", func(b []byte) []byte { b[flen+1], b[flen+2] = 0, 16; return b }, 1, ErrMalformedFrame},
		// A forged rekey bit makes the frame open under generation 1 and fail;
		// the generation must not move.
		{"forged rekey bit", func(b []byte) []byte { b[flen] |= 1; return b }, 1, ErrAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDecoder(s, DirAB, 10)
			got, err := drain(t, d, tt.mutate(bytes.Clone(b)), func() int { return 1 << 20 })
			if !errors.Is(err, tt.want) || len(got) != tt.frames {
				t.Fatalf("%d frames, err %v; want %d frames, %v", len(got), err, tt.frames, tt.want)
			}
			if d.Generation() != 0 {
				t.Fatalf("generation moved to %d", d.Generation())
			}
			if _, _, ok, err := d.Next(); ok || !errors.Is(err, tt.want) {
				t.Fatalf("not sticky: %v", err)
			}
			if n, err := d.Write([]byte{1}); n != 0 || !errors.Is(err, tt.want) {
				t.Fatalf("Write after error: %d %v", n, err)
			}
		})
	}
	// Wrong start offset: the first frame fails.
	d := NewDecoder(s, DirAB, 11)
	if _, err := drain(t, d, b, func() int { return 1 << 20 }); !errors.Is(err, ErrAuth) {
		t.Fatalf("wrong start offset: %v", err)
	}
	// Wrong direction.
	d = NewDecoder(s, DirBA, 10)
	if _, err := drain(t, d, b, func() int { return 1 << 20 }); !errors.Is(err, ErrAuth) {
		t.Fatalf("wrong direction: %v", err)
	}
	// Erased generation.
	s2, _ := NewSchedule(seqBytes(1, 32), nil, ChaCha20Poly1305)
	s2.Keys(1)
	s2.Erase(1)
	d = NewDecoder(s2, DirAB, 10)
	if _, err := drain(t, d, b, func() int { return 1 << 20 }); !errors.Is(err, ErrKeyErased) {
		t.Fatalf("erased key: %v", err)
	}
}

func TestEncoderRekey(t *testing.T) {
	s, _ := NewSchedule(seqBytes(1, 32), nil, AES128GCM)
	e := NewEncoder(s, DirBA, 74)
	if e.RekeyPending() || e.Generation() != 0 || e.Offset() != 74 {
		t.Fatal("initial state")
	}
	if !e.Rekey() || e.Rekey() {
		t.Fatal("second Rekey before a frame must be refused")
	}
	if e.Generation() != 1 || !e.RekeyPending() {
		t.Fatal("Rekey did not raise the generation")
	}
	// A failed Seal keeps the rekey pending and the offset.
	if _, err := e.Seal(nil, Plain{Data: make([]byte, MaxFrameData+1)}); !errors.Is(err, ErrFrameTooLong) {
		t.Fatal(err)
	}
	if !e.RekeyPending() || e.Offset() != 74 {
		t.Fatal("failed Seal changed state")
	}
	f1, err := e.Seal(nil, Plain{Rekey: false})
	if err != nil || f1[0] != 1 {
		t.Fatalf("first frame of generation 1: control %02x, %v", f1[0], err)
	}
	f2, _ := e.Seal(nil, Plain{Rekey: true}) // Plain.Rekey is ignored
	if f2[0] != 0 || e.RekeyPending() {
		t.Fatalf("second frame of generation 1: control %02x", f2[0])
	}
	k1, _ := s.Key(1, DirBA)
	if _, err := k1.Open(nil, 74, f1); err != nil {
		t.Fatalf("frame not under generation 1 at offset 74: %v", err)
	}
	if _, err := k1.Open(nil, 74+uint64(len(f1)), f2); err != nil {
		t.Fatalf("second frame: %v", err)
	}
}

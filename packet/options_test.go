package packet

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tcpcryptd/tcpcrypt/packet/seq"
)

type opt struct {
	Kind uint8
	Data string
}

func walk(opts []byte) ([]opt, error) {
	var got []opt
	it := NewOptionIter(opts)
	for k, d, ok := it.Next(); ok; k, d, ok = it.Next() {
		if string(it.Raw()) != string([]byte{k, byte(len(d) + 2)})+string(d) {
			return got, errors.New("Raw disagrees with Next")
		}
		got = append(got, opt{k, string(d)})
	}
	if it.Raw() != nil {
		return got, errors.New("Raw non-nil after the end")
	}
	return got, it.Err()
}

func TestOptionIter(t *testing.T) {
	tests := []struct {
		name    string
		opts    []byte
		want    []opt
		wantErr error
	}{
		{"empty", nil, nil, nil},
		{"nops only", []byte{1, 1, 1, 1}, nil, nil},
		{"eol stops", []byte{2, 4, 5, 0xb4, 0, 8, 10}, []opt{{2, "\x05\xb4"}}, nil},
		{"eol first", []byte{0, 2, 4, 5, 0xb4}, nil, nil},
		{"two options", []byte{4, 2, 3, 3, 7, 1}, []opt{{4, ""}, {3, "\x07"}}, nil},
		{"length 0", []byte{2, 4, 5, 0xb4, 9, 0, 1, 1}, []opt{{2, "\x05\xb4"}}, ErrBadOption},
		{"length 1", []byte{9, 1, 1, 1}, nil, ErrBadOption},
		{"missing length", []byte{1, 1, 1, 9}, nil, ErrBadOption},
		{"overrun", []byte{2, 4, 5, 0xb4, 8, 10, 0, 0}, []opt{{2, "\x05\xb4"}}, ErrBadOption},
		{"exact fit", []byte{0x45, 4, 0x20, 0x21}, []opt{{0x45, "\x20\x21"}}, nil},
		{"length 255 overrun", []byte{5, 255, 1}, nil, ErrBadOption},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := walk(tt.opts)
			if !errors.Is(err, tt.wantErr) || (err != nil) != (tt.wantErr != nil) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("options (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFindCount(t *testing.T) {
	opts := []byte{
		69, 3, 0x20, // ENO
		1,
		69, 2, // ENO again
		2, 4, 1, 2,
		69, 0, // malformed: stops the walk
		69, 2,
	}
	if n := CountOption(opts, OptENO); n != 2 {
		t.Errorf("CountOption(ENO) = %d, want 2", n)
	}
	if d, ok := FindOption(opts, OptENO); !ok || string(d) != "\x20" {
		t.Errorf("FindOption(ENO) = %x, %v", d, ok)
	}
	if _, ok := FindOption(opts, OptSACK); ok {
		t.Error("found SACK that is not there")
	}
	if mss, ok := MSS(opts); !ok || mss != 0x0102 {
		t.Errorf("MSS = %#x, %v", mss, ok)
	}
	if _, ok := MSS([]byte{2, 3, 1}); ok {
		t.Error("MSS accepted length 3")
	}
	if SetMSS([]byte{2, 3, 1, 0}, 5) {
		t.Error("SetMSS accepted length 3")
	}
}

func TestSetMSS(t *testing.T) {
	opts := []byte{1, 1, 2, 4, 0x05, 0xb4, 4, 2}
	if !SetMSS(opts, 1380) {
		t.Fatal("SetMSS = false")
	}
	if mss, _ := MSS(opts); mss != 1380 {
		t.Errorf("MSS after SetMSS = %d", mss)
	}
	if string(opts[6:]) != "\x04\x02" || string(opts[:2]) != "\x01\x01" {
		t.Errorf("SetMSS disturbed neighbours: %x", opts)
	}
	if SetMSS([]byte{4, 2, 1, 1}, 1) {
		t.Error("SetMSS without MSS = true")
	}
}

func TestSACKBlocks(t *testing.T) {
	block := func(l, r uint32) []byte {
		return []byte{byte(l >> 24), byte(l >> 16), byte(l >> 8), byte(l), byte(r >> 24), byte(r >> 16), byte(r >> 8), byte(r)}
	}
	sack := func(blocks ...[]byte) []byte {
		o := []byte{1, 1, 5, byte(2 + 8*len(blocks))}
		for _, b := range blocks {
			o = append(o, b...)
		}
		return o
	}
	tests := []struct {
		name string
		opts []byte
		want [][2]seq.Value
	}{
		{"none", []byte{1, 1, 1, 1}, nil},
		{"one", sack(block(1, 2)), [][2]seq.Value{{1, 2}}},
		{"wrap", sack(block(0xfffffff0, 0x10)), [][2]seq.Value{{0xfffffff0, 0x10}}},
		{"four", sack(block(1, 2), block(3, 4), block(5, 6), block(7, 8)), [][2]seq.Value{{1, 2}, {3, 4}, {5, 6}, {7, 8}}},
		{"empty sack", []byte{5, 2}, nil},
		{"ragged", []byte{5, 6, 0, 0, 0, 1}, nil},
		{"five blocks (too long)", sack(block(1, 2), block(3, 4), block(5, 6), block(7, 8), block(9, 10)), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			blocks, n := SACKBlocks(tt.opts)
			if diff := cmp.Diff(tt.want, blocks[:n], cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("blocks (-want +got):\n%s", diff)
			}
			for i := range n {
				if !SetSACKBlock(tt.opts, i, blocks[i][0].Add(100), blocks[i][1].Add(200)) {
					t.Fatalf("SetSACKBlock(%d) = false", i)
				}
			}
			if SetSACKBlock(tt.opts, n, 0, 0) || SetSACKBlock(tt.opts, -1, 0, 0) {
				t.Error("SetSACKBlock out of range = true")
			}
			after, m := SACKBlocks(tt.opts)
			if m != n {
				t.Fatalf("block count changed: %d -> %d", n, m)
			}
			for i := range n {
				if after[i][0] != blocks[i][0].Add(100) || after[i][1] != blocks[i][1].Add(200) {
					t.Errorf("block %d = %v, want shifted %v", i, after[i], blocks[i])
				}
			}
		})
	}
}

func TestOptionBuilder(t *testing.T) {
	var b OptionBuilder
	if got := b.Bytes(); len(got) != 0 {
		t.Errorf("empty Bytes = %x", got)
	}
	steps := []struct {
		kind    uint8
		data    []byte
		wantErr error
		wantLen int
	}{
		{OptMSS, []byte{5, 0xb4}, nil, 4},
		{OptNOP, nil, nil, 5},
		{OptWindowScale, []byte{7}, nil, 8},
		{OptNOP, []byte{1}, ErrBadOption, 8},
		{OptTimestamps, make([]byte, 8), nil, 18},
		{OptENO, make([]byte, 21), ErrOptionsTooLong, 18},
		{OptENO, make([]byte, 20), nil, 40},
		{OptEnd, nil, ErrOptionsTooLong, 40},
		{OptSACKPermitted, nil, ErrOptionsTooLong, 40},
	}
	for i, s := range steps {
		err := b.Add(s.kind, s.data)
		if !errors.Is(err, s.wantErr) || (err != nil) != (s.wantErr != nil) {
			t.Errorf("step %d: Add = %v, want %v", i, err, s.wantErr)
		}
		if b.Len() != s.wantLen || b.Room() != MaxOptionsLen-s.wantLen {
			t.Errorf("step %d: Len %d Room %d, want Len %d", i, b.Len(), b.Room(), s.wantLen)
		}
	}
	got, err := walk(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	want := []opt{{OptMSS, "\x05\xb4"}, {OptWindowScale, "\x07"}, {OptTimestamps, string(make([]byte, 8))}, {OptENO, string(make([]byte, 20))}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("built options (-want +got):\n%s", diff)
	}
	if err := b.Add(OptENO, make([]byte, 254)); !errors.Is(err, ErrBadOption) {
		t.Errorf("254 data bytes: %v", err)
	}
}

func TestOptionBuilderPadding(t *testing.T) {
	for n := 0; n <= 38; n++ {
		var b OptionBuilder
		if n+2 < MaxOptionsLen {
			b.buf[n+2] = 0xee // garbage that padding must clear
		}
		if err := b.Add(OptENO, make([]byte, n)); err != nil {
			t.Fatal(err)
		}
		out := b.Bytes()
		if len(out)%4 != 0 || len(out) < n+2 || len(out) >= n+2+4 || len(out) > MaxOptionsLen {
			t.Errorf("data %d: padded length %d", n, len(out))
		}
		for _, c := range out[n+2:] {
			if c != OptEnd {
				t.Errorf("data %d: padding %x", n, out[n+2:])
			}
		}
	}
}

func TestOptionBuilderAddRaw(t *testing.T) {
	tests := []struct {
		raw     []byte
		wantErr error
	}{
		{[]byte{2, 4, 5, 0xb4}, nil},
		{[]byte{1}, nil},
		{[]byte{0}, nil},
		{nil, ErrBadOption},
		{[]byte{1, 1}, ErrBadOption},
		{[]byte{2}, ErrBadOption},
		{[]byte{2, 5, 5, 0xb4}, ErrBadOption},
		{[]byte{2, 3, 5, 0xb4}, ErrBadOption},
	}
	for _, tt := range tests {
		var b OptionBuilder
		err := b.AddRaw(tt.raw)
		if !errors.Is(err, tt.wantErr) || (err != nil) != (tt.wantErr != nil) {
			t.Errorf("AddRaw(%x) = %v, want %v", tt.raw, err, tt.wantErr)
			continue
		}
		if err == nil && string(b.buf[:b.Len()]) != string(tt.raw) {
			t.Errorf("AddRaw(%x) stored %x", tt.raw, b.buf[:b.Len()])
		}
	}
}

// TestReplaceOption shows the edit pattern: walk the old area, copy what
// stays, and put the new option in.
func TestReplaceOption(t *testing.T) {
	old := []byte{2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7}
	var b OptionBuilder
	it := NewOptionIter(old)
	for k, _, ok := it.Next(); ok; k, _, ok = it.Next() {
		if k == OptSACKPermitted {
			continue // remove
		}
		if err := b.AddRaw(it.Raw()); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Add(OptENO, []byte{0x20}); err != nil {
		t.Fatal(err)
	}
	out := b.Bytes()
	if CountOption(out, OptSACKPermitted) != 0 || CountOption(out, OptENO) != 1 || CountOption(out, OptTimestamps) != 1 {
		t.Errorf("edited options wrong: %x", out)
	}
	if mss, _ := MSS(out); mss != 1460 {
		t.Errorf("MSS lost: %x", out)
	}
}

func TestOptionIterAllocs(t *testing.T) {
	opts := []byte{2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7}
	var b OptionBuilder
	allocs := testing.AllocsPerRun(1000, func() {
		b.Reset()
		it := NewOptionIter(opts)
		for k, d, ok := it.Next(); ok; k, d, ok = it.Next() {
			_ = b.Add(k, d)
		}
		_ = b.Add(OptENO, make([]byte, 30)) // fails: too long, must not allocate
		_ = b.Bytes()
		_ = CountOption(opts, OptENO)
		_ = SetMSS(opts, 1460)
	})
	if allocs != 0 {
		t.Errorf("%v allocs per run, want 0", allocs)
	}
}

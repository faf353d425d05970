package payload

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestBlockLayout(t *testing.T) {
	var b [BlockLen]byte
	Block(b[:], 0x2a, 0x1234)
	want := Marker + " 0000000000001234 0000002a ..............\n"
	if string(b[:]) != want {
		t.Fatalf("block = %q\nwant    %q", b[:], want)
	}
	if len(want) != BlockLen {
		t.Fatalf("layout is %d bytes, want %d", len(want), BlockLen)
	}
}

func TestFillAnyAlignment(t *testing.T) {
	const n = 10 * BlockLen
	whole := make([]byte, n)
	Fill(whole, 7, 0)
	for _, tt := range []struct{ off, len int }{
		{0, n}, {1, 5}, {63, 2}, {64, 64}, {65, 300}, {100, 0}, {5, n - 5},
	} {
		got := make([]byte, tt.len)
		Fill(got, 7, uint64(tt.off))
		if !bytes.Equal(got, whole[tt.off:tt.off+tt.len]) {
			t.Errorf("Fill(off=%d, len=%d) differs from the whole stream", tt.off, tt.len)
		}
	}
	if c := Count(whole); c != 10 {
		t.Errorf("Count = %d, want 10", c)
	}
}

func TestReaderVerifierRoundTrip(t *testing.T) {
	for _, n := range []uint64{0, 1, 63, 64, 65, 100000} {
		r := NewReader(3, n)
		v := NewVerifier(3)
		// Odd buffer size so that reads straddle block boundaries.
		got, err := io.CopyBuffer(v, r, make([]byte, 77))
		if err != nil || uint64(got) != n || v.Offset() != n || r.Offset() != n {
			t.Errorf("n=%d: copied %d, err %v, verified %d", n, got, err, v.Offset())
		}
	}
}

func TestVerifierMismatch(t *testing.T) {
	tests := []struct {
		name   string
		mutate func([]byte) []byte
		at     int
	}{
		{"flipped byte", func(b []byte) []byte { b[200] ^= 1; return b }, 200},
		{"wrong stream", func(b []byte) []byte { Fill(b, 4, 0); return b }, streamAt + 7},
		{"block skipped", func(b []byte) []byte { return append(b[:64], b[128:]...) }, 64 + idxAt + 15},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := make([]byte, 1024)
			Fill(b, 3, 0)
			b = tt.mutate(b)
			v := NewVerifier(3)
			n, err := v.Write(b)
			if !errors.Is(err, ErrMismatch) || n != tt.at {
				t.Fatalf("Write = %d, %v; want %d and ErrMismatch", n, err, tt.at)
			}
			if _, err2 := v.Write(b[:1]); !errors.Is(err2, ErrMismatch) || v.Err() == nil {
				t.Errorf("mismatch not sticky: %v", err2)
			}
		})
	}
}

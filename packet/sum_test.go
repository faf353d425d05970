package packet

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// bothLoops runs f with the vector loops (where this build has them) and
// with the portable ones.
func bothLoops(t testing.TB, f func(name string)) {
	saved := haveAVX2
	defer func() { haveAVX2 = saved }()
	for _, v := range []bool{saved, false} {
		haveAVX2 = v
		name := "portable"
		if v {
			name = "avx2"
		}
		f(name)
	}
}

// wideNaiveSum is naiveSum with a 64-bit accumulator (naiveSum's 32 bits
// overflow past 128 KiB of 0xff) and an initial partial sum.
func wideNaiveSum(b []byte, initial uint32) uint16 {
	s := uint64(initial)
	for i := 0; i+1 < len(b); i += 2 {
		s += uint64(b[i])<<8 | uint64(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint64(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// checkSums compares Sum and CopySum of b with the textbook loop, and the
// bytes CopySum wrote with b.
func checkSums(t testing.TB, name string, b, dst []byte, initial uint32) {
	t.Helper()
	want := wideNaiveSum(b, initial)
	if got := fold(Sum(b, initial)); got != want && !(got == 0xffff && want == 0) && !(got == 0 && want == 0xffff) {
		t.Fatalf("%s: Sum of %d bytes (initial %#x) = %#04x, want %#04x", name, len(b), initial, got, want)
	}
	got := fold(CopySum(dst, b, initial))
	if got != want && !(got == 0xffff && want == 0) && !(got == 0 && want == 0xffff) {
		t.Fatalf("%s: CopySum of %d bytes (initial %#x) = %#04x, want %#04x", name, len(b), initial, got, want)
	}
	if !bytes.Equal(dst[:len(b)], b) {
		t.Fatalf("%s: CopySum of %d bytes copied them wrongly", name, len(b))
	}
}

// TestSumLoops checks the bulk loops at every length up to a few blocks
// past 1 KiB, at every alignment of source and destination within a word,
// on random bytes, all-0xff bytes (every addition carries) and zeros.
func TestSumLoops(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	src := make([]byte, 1300)
	dst := make([]byte, 1300)
	bothLoops(t, func(name string) {
		for fill := 0; fill < 3; fill++ {
			for i := range src {
				switch fill {
				case 0:
					src[i] = byte(r.Uint32())
				case 1:
					src[i] = 0xff
				default:
					src[i] = 0
				}
			}
			for n := 0; n <= 1200; n++ {
				so, do := n%8, (n/8)%8
				clear(dst)
				checkSums(t, name, src[so:so+n], dst[do:], uint32(n*977)%0x20000)
			}
		}
	})
}

// TestSumLarge checks a buffer large enough that the vector loops' lanes
// hold big partial sums (all 0xff: the largest words).
func TestSumLarge(t *testing.T) {
	b := bytes.Repeat([]byte{0xff}, 1<<22+37)
	dst := make([]byte, len(b))
	bothLoops(t, func(name string) { checkSums(t, name, b, dst, 0xffff) })
}

// TestCopySumOverlap checks that overlapping slices are copied as by copy,
// in both directions, and summed as the source was.
func TestCopySumOverlap(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	bothLoops(t, func(name string) {
		for _, shift := range []int{-65, -8, -1, 1, 2, 64, 200} {
			buf := make([]byte, 1024)
			for i := range buf {
				buf[i] = byte(r.Uint32())
			}
			src := buf[300 : 300+500]
			want := append([]byte(nil), src...)
			wantSum := fold(Sum(want, 0))
			dst := buf[300+shift:]
			if got := fold(CopySum(dst, src, 0)); got != wantSum {
				t.Fatalf("%s: shift %d: sum %#04x, want %#04x", name, shift, got, wantSum)
			}
			if !bytes.Equal(dst[:len(want)], want) {
				t.Fatalf("%s: shift %d: overlapping copy differs", name, shift)
			}
		}
	})
}

// FuzzSum compares Sum and CopySum, vector and portable, with the textbook
// loop on arbitrary bytes at an arbitrary alignment.
func FuzzSum(f *testing.F) {
	f.Add([]byte{}, uint8(0), uint32(0))
	f.Add(bytes.Repeat([]byte{0xff}, 200), uint8(3), uint32(0xffff))
	f.Add(bytes.Repeat([]byte{0x12, 0x34, 0x56}, 50), uint8(1), uint32(1))
	f.Fuzz(func(t *testing.T, b []byte, off uint8, initial uint32) {
		o := int(off % 8)
		if o > len(b) {
			o = len(b)
		}
		initial &= 0x1ffff
		dst := make([]byte, len(b)+8)
		bothLoops(t, func(name string) { checkSums(t, name, b[o:], dst[int(off/8)%8:], initial) })
	})
}

// BenchmarkSum measures the checksum loops and the fused copy against a
// copy followed by a sum, on a 1500-byte and a 65000-byte payload at the
// offset a payload has in a packet (52: IPv4, TCP and timestamps), so that
// the loads are unaligned as they are in the daemon.
func BenchmarkSum(b *testing.B) {
	for _, size := range []int{1448, 65000} {
		src := make([]byte, size+64)[52:][:size]
		dst := make([]byte, size+64)[52:]
		bothLoops(b, func(name string) {
			b.Run(fmt.Sprintf("sum/%s/%d", name, size), func(b *testing.B) {
				b.SetBytes(int64(size))
				for b.Loop() {
					Sum(src, 0)
				}
			})
			b.Run(fmt.Sprintf("copysum/%s/%d", name, size), func(b *testing.B) {
				b.SetBytes(int64(size))
				for b.Loop() {
					CopySum(dst, src, 0)
				}
			})
			b.Run(fmt.Sprintf("copy+sum/%s/%d", name, size), func(b *testing.B) {
				b.SetBytes(int64(size))
				for b.Loop() {
					copy(dst, src)
					Sum(dst, 0)
				}
			})
		})
	}
}

package crypto

import (
	"fmt"
	"testing"
)

func BenchmarkSeal(b *testing.B) {
	for _, id := range allAEADs {
		for _, size := range []int{1400, 16384} {
			b.Run(fmt.Sprintf("%v/%d", id, size), func(b *testing.B) {
				k, _ := NewFrameKey(id, seqBytes(1, id.TrafficKeyLen()))
				data := make([]byte, size)
				buf := make([]byte, 0, size+64)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				var off uint64
				for b.Loop() {
					out, err := k.Seal(buf[:0], off, Plain{Data: data})
					if err != nil {
						b.Fatal(err)
					}
					off += uint64(len(out))
				}
			})
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	for _, id := range allAEADs {
		for _, size := range []int{1400, 16384} {
			b.Run(fmt.Sprintf("%v/%d", id, size), func(b *testing.B) {
				k, _ := NewFrameKey(id, seqBytes(1, id.TrafficKeyLen()))
				frame, _ := k.Seal(nil, 5, Plain{Data: make([]byte, size)})
				out := make([]byte, 0, size+64)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := k.Open(out[:0], 5, frame); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkECDH(b *testing.B) {
	for _, tep := range allTEPs {
		b.Run(fmt.Sprintf("TEP0x%02x", tep), func(b *testing.B) {
			k, _ := GenerateKey(tep, &countingReader{next: 1})
			peer, _ := GenerateKey(tep, &countingReader{next: 2})
			pub := peer.Public()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := k.ECDH(pub); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkGenerateKey(b *testing.B) {
	for _, tep := range allTEPs {
		b.Run(fmt.Sprintf("TEP0x%02x", tep), func(b *testing.B) {
			r := &countingReader{next: 1}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := GenerateKey(tep, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecoder16K(b *testing.B) {
	s, _ := NewSchedule(seqBytes(1, 32), nil, AES128GCM)
	e := NewEncoder(s, DirAB, 0)
	var stream []byte
	for range 4 {
		stream, _ = e.Seal(stream, Plain{Data: make([]byte, 16384)})
	}
	b.SetBytes(int64(4 * 16384))
	b.ReportAllocs()
	for b.Loop() {
		d := NewDecoder(s, DirAB, 0)
		in := stream
		for len(in) > 0 {
			n, _ := d.Write(in[:min(1448*8, len(in))])
			in = in[n:]
			for {
				_, _, ok, err := d.Next()
				if err != nil {
					b.Fatal(err)
				}
				if !ok {
					break
				}
			}
		}
	}
}

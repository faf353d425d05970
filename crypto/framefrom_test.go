package crypto

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// TestSealFrom: SealFrom makes byte for byte the frame Seal makes, for
// every AEAD, with and without URGp, FINp and rekey bits, data at the very
// start of its buffer (the copying fallback) or after room for the flags;
// it leaves its source buffer as it found it and does not allocate.
func TestSealFrom(t *testing.T) {
	for _, id := range allAEADs {
		k, err := NewFrameKey(id, seqBytes(3, id.TrafficKeyLen()))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{0, 1, 15, 16, 17, 1434, 4000} {
			for _, i := range []int{0, 1, 2, 3, 40} {
				for _, p := range []Plain{{}, {FIN: true}, {URG: true, Urgent: 0x1234}, {Rekey: true, URG: true, FIN: true, Urgent: 7}} {
					name := fmt.Sprintf("%v/%d/%d/%+v", id, n, i, p)
					buf := seqBytes(byte(n+i), i+n+5)
					orig := bytes.Clone(buf)
					want, err := k.Seal([]byte("pre"), 99, Plain{FIN: p.FIN, URG: p.URG, Urgent: p.Urgent, Rekey: p.Rekey, Data: buf[i : i+n]})
					if err != nil {
						t.Fatal(err)
					}
					dst := make([]byte, 3, 3+FrameLen(n, true))
					copy(dst, "pre")
					got, err := k.SealFrom(dst, 99, p, buf, i, i+n)
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					if !bytes.Equal(got, want) {
						t.Errorf("%s: SealFrom differs from Seal", name)
					}
					if !bytes.Equal(buf, orig) {
						t.Errorf("%s: source buffer changed", name)
					}
					if a := testing.AllocsPerRun(5, func() { _, _ = k.SealFrom(dst, 99, p, buf, i, i+n) }); a != 0 {
						t.Errorf("%s: %v allocations", name, a)
					}
				}
			}
		}
	}
}

// TestOpenData: OpenData returns what Open returns, with the data appended
// to dst right after its old bytes (which it leaves intact, also on an
// authentication failure), for empty and non-empty dst, with and without
// URGp, without allocating when dst has room.
func TestOpenData(t *testing.T) {
	for _, id := range allAEADs {
		k, err := NewFrameKey(id, seqBytes(5, id.TrafficKeyLen()))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{0, 1, 2, 3, 16, 1434} {
			for _, p := range []Plain{{}, {FIN: true}, {URG: true, Urgent: 0xbeef}, {Rekey: true, URG: true, Urgent: 1}} {
				for _, pre := range []int{0, 1, 2, 5} {
					name := fmt.Sprintf("%v/%d/%+v/%d", id, n, p, pre)
					data := seqBytes(byte(n), n)
					p.Data = data
					frame, err := k.Seal(nil, 1234, p)
					if err != nil {
						t.Fatal(err)
					}
					head := seqBytes(200, pre)
					dst := append(make([]byte, 0, pre+len(frame)), head...)
					got, out, err := k.OpenData(dst, 1234, frame)
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					if !bytes.Equal(out[:pre], head) || !bytes.Equal(out[pre:], data) || !bytes.Equal(got.Data, data) {
						t.Errorf("%s: got %x, want %x then %x", name, out, head, data)
					}
					if got.FIN != p.FIN || got.URG != p.URG || got.Rekey != p.Rekey || (p.URG && got.Urgent != p.Urgent) {
						t.Errorf("%s: flags %+v, want %+v", name, got, p)
					}
					if a := testing.AllocsPerRun(5, func() { _, _, _ = k.OpenData(dst, 1234, frame) }); a != 0 {
						t.Errorf("%s: %v allocations", name, a)
					}
					bad := bytes.Clone(frame)
					bad[len(bad)-1] ^= 1
					_, out, err = k.OpenData(dst, 1234, bad)
					if !errors.Is(err, ErrAuth) {
						t.Errorf("%s: tampered frame: %v", name, err)
					}
					if !bytes.Equal(out, head) {
						t.Errorf("%s: after a failure dst is %x, want %x", name, out, head)
					}
				}
			}
		}
	}
}

package crypto

import (
	"bytes"
	"testing"
)

func fuzzTEP(b byte) uint8 { return allTEPs[int(b)%len(allTEPs)] }

func FuzzParseInit1(f *testing.F) {
	for _, tep := range allTEPs {
		m := testInit1(f, tep, AES128GCM, ChaCha20Poly1305)
		f.Add(tep, m.Marshal(nil))
	}
	f.Fuzz(func(t *testing.T, tepb byte, b []byte) {
		tep := fuzzTEP(tepb)
		m, err := ParseInit1(tep, b)
		if err != nil {
			return
		}
		if len(m.Ciphers) == 0 || len(m.Nonce) != NonceLen || len(m.Pub) != PublicKeyLen(tep) {
			t.Fatalf("accepted %d ciphers, %d-byte nonce, %d-byte key", len(m.Ciphers), len(m.Nonce), len(m.Pub))
		}
		n, ok, err := InitLen(b)
		if !ok || err != nil || n < m.Len() || n > len(b) {
			t.Fatalf("InitLen = %d %v %v for an accepted message of Len %d", n, ok, err, m.Len())
		}
		again := m.Marshal(nil)
		if !bytes.Equal(again, b[:m.Len()]) && n == m.Len() {
			t.Fatalf("re-marshal differs")
		}
		m2, err := ParseInit1(tep, again)
		if err != nil || !bytes.Equal(m2.Marshal(nil), again) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzParseInit2(f *testing.F) {
	for _, tep := range allTEPs {
		m := testInit2(f, tep, AES256GCM)
		f.Add(tep, m.Marshal(nil))
	}
	f.Fuzz(func(t *testing.T, tepb byte, b []byte) {
		tep := fuzzTEP(tepb)
		m, err := ParseInit2(tep, b)
		if err != nil {
			return
		}
		if !m.Cipher.Supported() || len(m.Nonce) != NonceLen || len(m.Pub) != PublicKeyLen(tep) {
			t.Fatalf("accepted %v, %d-byte nonce, %d-byte key", m.Cipher, len(m.Nonce), len(m.Pub))
		}
		again := m.Marshal(nil)
		m2, err := ParseInit2(tep, again)
		if err != nil || !bytes.Equal(m2.Marshal(nil), again) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// fuzzStream is a valid stream of n frames from a fixed schedule, with a
// rekey before frame 2, starting at offset 100.
func fuzzStream(t testing.TB, s *Schedule, n int) []byte {
	e := NewEncoder(s, DirAB, 100)
	var b []byte
	for i := range n {
		if i == 2 {
			e.Rekey()
		}
		var err error
		b, err = e.Seal(b, Plain{FIN: i == 5, URG: i == 3, Urgent: 1, Data: bytes.Repeat([]byte{byte(i)}, i*7)})
		if err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func FuzzDecoder(f *testing.F) {
	f.Add([]byte{}, []byte{1}, uint8(3), uint16(0), uint8(0))
	f.Add([]byte{0, 0, 17}, []byte{0, 200, 3}, uint8(1), uint16(40), uint8(1))
	f.Add([]byte{0xff, 0xff, 0xff}, []byte{}, uint8(0), uint16(0), uint8(0))
	f.Fuzz(func(t *testing.T, extra, chunks []byte, nValid uint8, flipAt uint16, flipMask uint8) {
		s, err := NewSchedule(seqBytes(1, 32), nil, AES128GCM)
		if err != nil {
			t.Fatal(err)
		}
		in := append(fuzzStream(t, s, int(nValid%8)), extra...)
		if len(in) > 0 {
			in[int(flipAt)%len(in)] ^= flipMask
		}
		orig := bytes.Clone(in)
		d := NewDecoder(s, DirAB, 100)
		ci := 0
		for len(in) > 0 {
			n := 1 + len(in)
			if len(chunks) > 0 {
				n = 1 + int(chunks[ci%len(chunks)])*int(chunks[ci%len(chunks)])
				ci++
			}
			took, err := d.Write(in[:min(n, len(in))])
			if err != nil {
				return
			}
			in = in[took:]
			for {
				p, off, ok, err := d.Next()
				if err != nil || !ok {
					break
				}
				// Independently re-open the frame's original bytes.
				flen := FrameLen(len(p.Data), p.URG)
				raw := bytes.Clone(orig[off-100 : off-100+uint64(flen)])
				k, err := s.Key(d.Generation(), DirAB)
				if err != nil {
					t.Fatal(err)
				}
				q, err := k.Open(nil, off, raw)
				if err != nil || !bytes.Equal(q.Data, p.Data) || q.FIN != p.FIN {
					t.Fatalf("decoder yielded a frame at %d that does not verify: %v", off, err)
				}
			}
			if d.Buffered() > MaxFrameLen {
				t.Fatalf("buffered %d bytes", d.Buffered())
			}
			if took == 0 && d.Err() == nil && d.Buffered() < MaxFrameLen {
				t.Fatal("no progress")
			}
		}
	})
}

func FuzzOpen(f *testing.F) {
	k, _ := NewFrameKey(ChaCha20Poly1305, seqBytes(1, 44))
	for i, p := range []Plain{{}, {FIN: true}, {URG: true, Urgent: 3, Data: []byte("abc")}, {Rekey: true, Data: []byte("x")}} {
		fr, _ := k.Seal(nil, uint64(i), p)
		f.Add(fr, uint64(i))
	}
	f.Add([]byte{0, 0, 16}, uint64(0))
	f.Fuzz(func(t *testing.T, frame []byte, off uint64) {
		orig := bytes.Clone(frame)
		p, err := k.Open(nil, off, frame)
		if !bytes.Equal(orig, frame) {
			t.Fatal("Open modified its input")
		}
		if err != nil {
			return
		}
		if FrameLen(len(p.Data), p.URG) != len(frame) {
			t.Fatalf("accepted frame of %d bytes with %d data bytes", len(frame), len(p.Data))
		}
		if frame[0]&^1 == 0 {
			// No reserved control bits: resealing the same content under the
			// same nonce must reproduce everything but possibly fres bits.
			again, err := k.Seal(nil, off, p)
			if err != nil || len(again) != len(frame) {
				t.Fatalf("reseal: %v", err)
			}
		}
	})
}

// FuzzSealOpen: any plaintext sealed at any offset opens at that offset to
// the same plaintext, under each AEAD; and with one bit of the sealed
// bytes after the header flipped, or opened at another offset, it does not
// open at all (RFC 8548 §4.2: the nonce is the offset, the AEAD covers the
// rest). FuzzOpen, fed random frames, almost never gets past
// authentication; this one reaches the checks on every input.
func FuzzSealOpen(f *testing.F) {
	f.Add([]byte("hello"), false, false, false, uint16(0), uint64(0), uint16(7))
	f.Add([]byte{}, true, false, false, uint16(0), uint64(1<<40), uint16(0))
	f.Add([]byte("urgent data"), false, true, true, uint16(4), uint64(12345), uint16(100))
	keys := make([]*FrameKey, 0, 3)
	for _, a := range []AEADID{AES128GCM, AES256GCM, ChaCha20Poly1305} {
		k, err := NewFrameKey(a, seqBytes(1, a.TrafficKeyLen()))
		if err != nil {
			f.Fatal(err)
		}
		keys = append(keys, k)
	}
	f.Fuzz(func(t *testing.T, data []byte, fin, urg, rekey bool, urgent uint16, off uint64, flip uint16) {
		if len(data) > 4096 {
			data = data[:4096]
		}
		p := Plain{FIN: fin, URG: urg, Rekey: rekey, Data: data}
		if urg {
			p.Urgent = urgent
		}
		for _, k := range keys {
			fr, err := k.Seal(nil, off, p)
			if err != nil {
				t.Fatalf("seal: %v", err)
			}
			got, err := k.Open(nil, off, bytes.Clone(fr))
			if err != nil {
				t.Fatalf("open what was sealed: %v", err)
			}
			if got.FIN != p.FIN || got.URG != p.URG || got.Rekey != p.Rekey || got.Urgent != p.Urgent || !bytes.Equal(got.Data, p.Data) {
				t.Fatalf("round trip: got %+v, want %+v", got, p)
			}
			bad := bytes.Clone(fr)
			i := FrameHeaderLen + int(flip)%(len(bad)-FrameHeaderLen)
			bad[i] ^= 1 << (flip % 8)
			if _, err := k.Open(nil, off, bad); err == nil {
				t.Fatalf("a frame with bit %d of byte %d flipped opened", flip%8, i)
			}
			if _, err := k.Open(nil, off+1, bytes.Clone(fr)); err == nil {
				t.Fatal("a frame opened at another offset")
			}
		}
	})
}

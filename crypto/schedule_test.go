package crypto

import (
	"bytes"
	"errors"
	"testing"
)

// The key schedule against the closed forms of digest §2.1/§2.6, computed
// with HMAC directly.
func TestScheduleClosedForms(t *testing.T) {
	ss := seqBytes(0x33, 32)
	for _, sn := range [][]byte{nil, seqBytes(0xe0, 16)} {
		for _, id := range allAEADs {
			s, err := NewSchedule(ss, sn, id)
			if err != nil {
				t.Fatal(err)
			}
			mk := hmacSHA256(ss, []byte{0x03}, sn, []byte{1})
			for gen := range uint32(3) {
				if gen > 0 {
					mk = hmacSHA256(mk, []byte{0x03, 1})
				}
				ab, ba, err := s.Keys(gen)
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range []struct {
					k     *FrameKey
					konst byte
					dir   Direction
				}{{ab, 0x04, DirAB}, {ba, 0x05, DirBA}} {
					t1 := hmacSHA256(mk, []byte{c.konst, 1})
					tk := append(t1, hmacSHA256(mk, t1, []byte{c.konst, 2})...)[:id.TrafficKeyLen()]
					want, _ := NewFrameKey(id, tk)
					f1, _ := want.Seal(nil, 1234, Plain{Data: []byte("probe")})
					f2, _ := c.k.Seal(nil, 1234, Plain{Data: []byte("probe")})
					if !bytes.Equal(f1, f2) {
						t.Fatalf("%v sn=%x gen %d %v: key differs from closed form", id, sn, gen, c.dir)
					}
					if c.k.Generation() != gen || c.k.Direction() != c.dir || c.k.AEAD() != id {
						t.Fatalf("key metadata %d %v %v", c.k.Generation(), c.k.Direction(), c.k.AEAD())
					}
				}
			}
		}
		sid := SessionID(0xa3, ss, sn)
		if len(sid) != SessionIDLen || sid[0] != 0xa3 || !bytes.Equal(sid[1:], hmacSHA256(ss, []byte{0x02}, sn, []byte{1})) {
			t.Fatalf("SessionID = %x", sid)
		}
	}
	rid := ResumeID(ss)
	if !bytes.Equal(rid[:], hmacSHA256(ss, []byte{0x06, 1})[:18]) {
		t.Fatalf("ResumeID = %x", rid)
	}
	if got := NextSecret(ss); !bytes.Equal(got, hmacSHA256(ss, []byte{0x01, 1})) {
		t.Fatalf("NextSecret = %x", got)
	}
	nA, tr, i1, i2, es := seqBytes(1, 32), seqBytes(2, 9), seqBytes(3, 77), seqBytes(4, 74), seqBytes(5, 32)
	if got, want := FreshSecret(nA, tr, i1, i2, es), hmacSHA256(nA, tr, i1, i2, es); !bytes.Equal(got, want) {
		t.Fatalf("FreshSecret = %x, want %x", got, want)
	}
	if got := SessionNonce([]byte{1, 2}, []byte{3}); !bytes.Equal(got, []byte{1, 2, 3}) {
		t.Fatalf("SessionNonce = %x", got)
	}
}

func TestResumeHalvesAndDirections(t *testing.T) {
	ss := seqBytes(7, 32)
	rid := ResumeID(ss)
	mineA, peerA := ResumeHalves(ss, true)
	mineB, peerB := ResumeHalves(ss, false)
	if !bytes.Equal(mineA[:], rid[:9]) || !bytes.Equal(peerA[:], rid[9:]) || mineB != peerA || peerB != mineA {
		t.Fatalf("halves: A %x/%x B %x/%x of %x", mineA, peerA, mineB, peerB, rid)
	}
	if s, r := Directions(true); s != DirAB || r != DirBA {
		t.Fatal("Directions(true)")
	}
	if s, r := Directions(false); s != DirBA || r != DirAB {
		t.Fatal("Directions(false)")
	}
	if DirAB.String() != "ab" || DirBA.String() != "ba" {
		t.Fatal("Direction.String")
	}
}

func TestScheduleErase(t *testing.T) {
	s, err := NewSchedule(seqBytes(1, 32), nil, AES128GCM)
	if err != nil {
		t.Fatal(err)
	}
	old, _, _ := s.Keys(0)
	if _, _, err := s.Keys(4); err != nil {
		t.Fatal(err)
	}
	s.Erase(2)
	if s.Oldest() != 2 {
		t.Fatalf("Oldest = %d", s.Oldest())
	}
	if _, _, err := s.Keys(1); !errors.Is(err, ErrKeyErased) {
		t.Fatalf("Keys(1) after Erase(2): %v", err)
	}
	if _, err := old.Seal(nil, 0, Plain{}); !errors.Is(err, ErrKeyErased) {
		t.Fatalf("erased key still seals: %v", err)
	}
	if old.nr != [12]byte{} {
		t.Fatal("erased NR not overwritten")
	}
	s.Erase(100) // keeps the newest derived generation (4)
	if s.Oldest() != 4 {
		t.Fatalf("Oldest after Erase(100) = %d, want 4", s.Oldest())
	}
	k5, err := s.Key(5, DirBA)
	if err != nil || k5.Generation() != 5 {
		t.Fatalf("deriving past an erase: %v", err)
	}
	// Same derivation as a fresh schedule.
	s2, _ := NewSchedule(seqBytes(1, 32), nil, AES128GCM)
	k5b, _ := s2.Key(5, DirBA)
	f1, _ := k5.Seal(nil, 0, Plain{})
	f2, _ := k5b.Seal(nil, 0, Plain{})
	if !bytes.Equal(f1, f2) {
		t.Fatal("generation 5 differs after erase")
	}
	s.Destroy()
	if _, err := s.Key(5, DirAB); !errors.Is(err, ErrKeyErased) {
		t.Fatalf("after Destroy: %v", err)
	}
	if s.mk != [32]byte{} {
		t.Fatal("Destroy left the master key")
	}
}

func TestNewScheduleErrors(t *testing.T) {
	if _, err := NewSchedule(make([]byte, 31), nil, AES128GCM); !errors.Is(err, ErrBadSecret) {
		t.Fatalf("short secret: %v", err)
	}
	if _, err := NewSchedule(make([]byte, 32), nil, 0x0003); !errors.Is(err, ErrUnsupportedAEAD) {
		t.Fatalf("unknown AEAD: %v", err)
	}
	if _, err := NewFrameKey(AES128GCM, make([]byte, 27)); !errors.Is(err, ErrBadSecret) {
		t.Fatalf("short traffic key: %v", err)
	}
}

func TestAEADIDs(t *testing.T) {
	for _, tc := range []struct {
		id     AEADID
		keyLen int
		name   string
	}{{AES128GCM, 16, "AEAD_AES_128_GCM"}, {AES256GCM, 32, "AEAD_AES_256_GCM"}, {ChaCha20Poly1305, 32, "AEAD_CHACHA20_POLY1305"}, {0x0003, 0, "AEAD(0x0003)"}} {
		if tc.id.KeyLen() != tc.keyLen || tc.id.String() != tc.name || tc.id.Supported() != (tc.keyLen > 0) {
			t.Errorf("%v: KeyLen %d Supported %v", tc.id, tc.id.KeyLen(), tc.id.Supported())
		}
		if tc.keyLen > 0 && tc.id.TrafficKeyLen() != tc.keyLen+12 {
			t.Errorf("%v: TrafficKeyLen %d", tc.id, tc.id.TrafficKeyLen())
		}
	}
}

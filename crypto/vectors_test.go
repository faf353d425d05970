package crypto_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/tcpcryptd/tcpcrypt/crypto"
	"github.com/tcpcryptd/tcpcrypt/internal/vectors"
)

const vectorsPath = "../testdata/vectors/tcpcrypt.json"

func loadVectors(t *testing.T) (*vectors.File, []byte) {
	t.Helper()
	raw, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	var f vectors.File
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		t.Fatal(err)
	}
	if f.Version != 1 {
		t.Fatalf("version %d", f.Version)
	}
	return &f, raw
}

// TestVectorsRegenerate: the committed file is exactly what the generator
// produces (go run ./internal/cmd/genvectors -o testdata/vectors/tcpcrypt.json).
func TestVectorsRegenerate(t *testing.T) {
	_, raw := loadVectors(t)
	got, err := vectors.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, raw) {
		t.Fatal("regenerated vectors differ from " + vectorsPath + "; run go run ./internal/cmd/genvectors -o testdata/vectors/tcpcrypt.json")
	}
}

func hx(t *testing.T, field, s string) []byte {
	t.Helper()
	if s == "" {
		t.Fatalf("field %s missing", field)
	}
	b, err := hex.DecodeString(s)
	if err != nil || hex.EncodeToString(b) != s {
		t.Fatalf("field %s: not lowercase hex: %q", field, s)
	}
	return b
}

func hm(k []byte, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, k)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// cprf is CPRF from the closed forms of digest §2.1 (L <= 64).
func cprf(k, c []byte, l int) []byte {
	t1 := hm(k, c, []byte{1})
	return append(t1, hm(k, t1, c, []byte{2})...)[:l]
}

// bareAEAD builds the AEAD with the standard libraries directly.
func bareAEAD(t *testing.T, id uint16, key []byte) cipher.AEAD {
	t.Helper()
	var a cipher.AEAD
	var err error
	switch id {
	case 0x0001, 0x0002:
		var b cipher.Block
		if b, err = aes.NewCipher(key); err == nil {
			a, err = cipher.NewGCM(b)
		}
	case 0x0010:
		a, err = chacha20poly1305.New(key)
	default:
		t.Fatalf("aead %d", id)
	}
	if err != nil {
		t.Fatal(err)
	}
	return a
}

var rfc7748 = map[uint8]string{ // ES of the RFC 7748 §6.1/§6.2 key pairs
	crypto.TEPX25519: "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742",
	crypto.TEPX448:   "07fff4181ac6cc95ec1c16a94a0f74d12da232ce40a77552281d282bb60c0b56fd2464c335543936521c24403085d59a449a5037514a879d",
}

func TestVectors(t *testing.T) {
	f, _ := loadVectors(t)
	seen := map[string]bool{}
	for _, c := range f.Cases {
		t.Run(c.Name, func(t *testing.T) {
			aead := crypto.AEADID(c.AEAD)
			seen[fmt.Sprintf("tep %#x resumed=%v", c.TEP, c.Resumed)] = true
			seen["aead"+aead.String()] = true
			enoA, enoB := hx(t, "eno_a", c.EnoA), hx(t, "eno_b", c.EnoB)
			if enoA[0] != 0x45 || int(enoA[1]) != len(enoA) || enoB[0] != 0x45 || int(enoB[1]) != len(enoB) {
				t.Fatalf("ENO options %x / %x malformed", enoA, enoB)
			}
			ss := hx(t, "ss", c.SS)
			var sn []byte
			offAB, offBA := uint64(0), uint64(0)
			tepByte := c.TEP
			if c.Resumed {
				if c.PrivA != "" || c.PrivB != "" || c.NA != "" || c.NB != "" || c.Init1 != "" || c.Init2 != "" || c.ES != "" {
					t.Fatal("fresh-only field in a resumed case")
				}
				tepByte |= crypto.TEPResumeBit
				ssPrev := hx(t, "ss_prev", c.SSPrev)
				nonceA, nonceB := hx(t, "nonce_a", c.NonceA), hx(t, "nonce_b", c.NonceB)
				if !bytes.Equal(ss, hm(ssPrev, []byte{0x01, 0x01})) || !bytes.Equal(ss, crypto.NextSecret(ssPrev)) {
					t.Fatal("ss != CPRF(ss_prev, CONST_NEXTK, 32)")
				}
				rid := hm(ss, []byte{0x06, 0x01})[:18]
				// Resumption suboptions (digest §3): TEP|0x80, half, nonce, last in each option.
				wantA := append(append([]byte{tepByte}, rid[:9]...), nonceA...)
				wantB := append(append([]byte{tepByte}, rid[9:]...), nonceB...)
				if !bytes.HasSuffix(enoA, wantA) || !bytes.HasSuffix(enoB, wantB) || enoB[2] != 0x01 {
					t.Fatalf("ENO options do not carry the resumption suboptions:\n%x\n%x", enoA, enoB)
				}
				sn = append(append([]byte{}, nonceA...), nonceB...)
			} else {
				if c.SSPrev != "" || c.NonceA != "" || c.NonceB != "" {
					t.Fatal("resumed-only field in a fresh case")
				}
				ka, err := crypto.NewPrivateKey(c.TEP, hx(t, "priv_a", c.PrivA))
				if err != nil {
					t.Fatal(err)
				}
				kb, err := crypto.NewPrivateKey(c.TEP, hx(t, "priv_b", c.PrivB))
				if err != nil {
					t.Fatal(err)
				}
				nA, nB := hx(t, "n_a", c.NA), hx(t, "n_b", c.NB)
				init1, init2 := hx(t, "init1", c.Init1), hx(t, "init2", c.Init2)
				// Init1: parse, then rebuild from priv_a and n_a.
				m1, err := crypto.ParseInit1(c.TEP, init1)
				if err != nil {
					t.Fatal(err)
				}
				re1 := crypto.Init1{Ciphers: m1.Ciphers, Nonce: nA, Pub: ka.Public()}
				if !bytes.Equal(re1.Marshal(nil), init1) {
					t.Fatal("init1 differs from the one rebuilt from priv_a and n_a")
				}
				if binary.BigEndian.Uint32(init1) != 0x15101a0e || int(binary.BigEndian.Uint32(init1[4:])) != len(init1) {
					t.Fatal("init1 header")
				}
				re2 := crypto.Init2{Cipher: aead, Nonce: nB, Pub: kb.Public()}
				if !bytes.Equal(re2.Marshal(nil), init2) || !m1.Offers(aead) {
					t.Fatal("init2 differs from the one rebuilt from priv_b, n_b and aead")
				}
				if binary.BigEndian.Uint32(init2) != 0x097105e0 || binary.BigEndian.Uint16(init2[8:]) != c.AEAD {
					t.Fatal("init2 header")
				}
				es := hx(t, "es", c.ES)
				for _, pair := range [][2]*crypto.PrivateKey{{ka, kb}, {kb, ka}} {
					got, err := pair[0].ECDH(pair[1].Public())
					if err != nil || !bytes.Equal(got, es) {
						t.Fatalf("ECDH = %x %v, want es", got, err)
					}
				}
				if want, ok := rfc7748[c.TEP]; ok {
					if c.ES != want {
						t.Fatalf("es %s differs from RFC 7748", c.ES)
					}
					seen[fmt.Sprintf("rfc7748 %#x", c.TEP)] = true
				}
				ikm := bytes.Join([][]byte{enoA, enoB, init1, init2, es}, nil)
				if !bytes.Equal(ss, hm(nA, ikm)) || !bytes.Equal(ss, crypto.FreshSecret(nA, append(enoA, enoB...), init1, init2, es)) {
					t.Fatal("ss != Extract(N_A, transcript|Init1|Init2|ES)")
				}
				offAB, offBA = uint64(len(init1)), uint64(len(init2))
			}
			sid := hx(t, "session_id", c.SessionID)
			wantSID := append([]byte{tepByte}, hm(ss, []byte{0x02}, sn, []byte{0x01})...)
			if !bytes.Equal(sid, wantSID) || !bytes.Equal(sid, crypto.SessionID(tepByte, ss, sn)) {
				t.Fatalf("session_id %x, want %x", sid, wantSID)
			}
			rid := hx(t, "resume_id", c.ResumeID)
			if r := crypto.ResumeID(ss); !bytes.Equal(rid, hm(ss, []byte{0x06, 0x01})[:18]) || !bytes.Equal(rid, r[:]) {
				t.Fatal("resume_id")
			}
			checkFrames(t, c, ss, sn, offAB, offBA, seen)
		})
	}
	for _, want := range []string{
		"tep 0x21 resumed=false", "tep 0x22 resumed=false", "tep 0x23 resumed=false", "tep 0x24 resumed=false", "tep 0x23 resumed=true",
		"aeadAEAD_AES_128_GCM", "aeadAEAD_AES_256_GCM", "aeadAEAD_CHACHA20_POLY1305",
		"rfc7748 0x23", "rfc7748 0x24", "rekey", "fin", "urg", "empty", "ab", "ba",
	} {
		if !seen[want] {
			t.Errorf("vectors lack coverage: %q", want)
		}
	}
}

func checkFrames(t *testing.T, c vectors.Case, ss, sn []byte, offAB, offBA uint64, seen map[string]bool) {
	aead := crypto.AEADID(c.AEAD)
	s, err := crypto.NewSchedule(ss, sn, aead)
	if err != nil {
		t.Fatal(err)
	}
	next := map[string]uint64{"ab": offAB, "ba": offBA}
	gen := map[string]uint32{}
	streams := map[string][]byte{}
	var plains = map[string][][]byte{}
	for i, fr := range c.Frames {
		dir := crypto.DirAB
		if fr.Key == "ba" {
			dir = crypto.DirBA
		} else if fr.Key != "ab" {
			t.Fatalf("frame %d: key %q", i, fr.Key)
		}
		seen[fr.Key] = true
		if fr.Offset != next[fr.Key] {
			t.Fatalf("frame %d: offset %d, want %d", i, fr.Offset, next[fr.Key])
		}
		wantGen := gen[fr.Key]
		if fr.Rekey {
			wantGen++
			seen["rekey"] = true
		}
		if fr.Generation != wantGen {
			t.Fatalf("frame %d: generation %d, want %d", i, fr.Generation, wantGen)
		}
		gen[fr.Key] = wantGen
		pt, wire := hx(t, "plaintext", fr.Plaintext), hx(t, "wire", fr.Wire)
		next[fr.Key] += uint64(len(wire))
		streams[fr.Key] = append(streams[fr.Key], wire...)
		plains[fr.Key] = append(plains[fr.Key], pt)
		if pt[0]&1 != 0 {
			seen["fin"] = true
		}
		if pt[0]&2 != 0 {
			seen["urg"] = true
		}
		if len(pt) == 1 {
			seen["empty"] = true
		}

		// Independent: keys from the closed forms, bare AEAD, nonce by hand.
		mk := cprf(ss, append([]byte{0x03}, sn...), 32)
		for range fr.Generation {
			mk = cprf(mk, []byte{0x03}, 32)
		}
		konst := byte(0x04)
		if dir == crypto.DirBA {
			konst = 0x05
		}
		tk := cprf(mk, []byte{konst}, aead.KeyLen()+12)
		nonce := bytes.Clone(tk[aead.KeyLen():])
		for j := range 8 {
			nonce[4+j] ^= byte(fr.Offset >> (56 - 8*j))
		}
		var control byte
		if fr.Rekey {
			control = 1
		}
		if wire[0] != control || int(binary.BigEndian.Uint16(wire[1:])) != len(wire)-3 || len(wire)-3 != len(pt)+16 {
			t.Fatalf("frame %d: header %x", i, wire[:3])
		}
		bare := bareAEAD(t, c.AEAD, tk[:aead.KeyLen()])
		opened, err := bare.Open(nil, nonce, wire[3:], wire[:3])
		if err != nil || !bytes.Equal(opened, pt) {
			t.Fatalf("frame %d: independent open: %x %v, want %x", i, opened, err, pt)
		}

		// Through the package: seal gives the wire, open gives the plaintext.
		k, err := s.Key(fr.Generation, dir)
		if err != nil {
			t.Fatal(err)
		}
		p := plainOf(t, pt)
		p.Rekey = fr.Rekey
		sealed, err := k.Seal(nil, fr.Offset, p)
		if err != nil || !bytes.Equal(sealed, wire) {
			t.Fatalf("frame %d: Seal = %x %v, want %x", i, sealed, err, wire)
		}
		got, err := k.Open(nil, fr.Offset, wire)
		if err != nil || !bytes.Equal(vectors.PlaintextBytes(got), pt) || got.Rekey != fr.Rekey {
			t.Fatalf("frame %d: Open = %+v %v", i, got, err)
		}
	}
	// Each direction's whole stream through a Decoder, one byte at a time.
	for key, st := range streams {
		dir, start := crypto.DirAB, offAB
		if key == "ba" {
			dir, start = crypto.DirBA, offBA
		}
		d := crypto.NewDecoder(s, dir, start)
		var got [][]byte
		for _, b := range st {
			if _, err := d.Write([]byte{b}); err != nil {
				t.Fatal(err)
			}
			for {
				p, _, ok, err := d.Next()
				if err != nil {
					t.Fatalf("%s stream: %v", key, err)
				}
				if !ok {
					break
				}
				got = append(got, vectors.PlaintextBytes(p))
			}
		}
		if len(got) != len(plains[key]) {
			t.Fatalf("%s stream: %d frames, want %d", key, len(got), len(plains[key]))
		}
		for i := range got {
			if !bytes.Equal(got[i], plains[key][i]) {
				t.Fatalf("%s stream frame %d: %x, want %x", key, i, got[i], plains[key][i])
			}
		}
		if d.Generation() != gen[key] {
			t.Fatalf("%s stream: decoder generation %d, want %d", key, d.Generation(), gen[key])
		}
	}
}

// plainOf decodes an AEAD plaintext (flags | urgent | data) by hand.
func plainOf(t *testing.T, pt []byte) crypto.Plain {
	t.Helper()
	p := crypto.Plain{FIN: pt[0]&1 != 0, URG: pt[0]&2 != 0, Data: pt[1:]}
	if p.URG {
		p.Urgent = binary.BigEndian.Uint16(pt[1:])
		p.Data = pt[3:]
	}
	return p
}

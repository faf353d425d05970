package crypto

import (
	"bytes"
	"crypto/elliptic"
	"encoding/binary"
	"errors"
	"math/big"
	"testing"
)

// RFC 7748 §6.1 and §6.2: public keys and shared secret of Alice and Bob.
func TestRFC7748(t *testing.T) {
	tests := []struct {
		name                        string
		tep                         uint8
		privA, pubA, privB, pubB, k string
	}{
		{
			name:  "X25519 §6.1",
			tep:   TEPX25519,
			privA: "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
			pubA:  "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
			privB: "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
			pubB:  "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
			k:     "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742",
		},
		{
			name:  "X448 §6.2",
			tep:   TEPX448,
			privA: "9a8f4925d1519f5775cf46b04b5800d4ee9ee8bae8bc5565d498c28dd9c9baf574a9419744897391006382a6f127ab1d9ac2d8c0a598726b",
			pubA:  "9b08f7cc31b7e3e67d22d5aea121074a273bd2b83de09c63faa73d2c22c5d9bbc836647241d953d40c5b12da88120d53177f80e532c41fa0",
			privB: "1c306a7ac2a0e2e0990b294470cba339e6453772b075811d8fad0d1d6927c120bb5ee8972b0d3e21374c9c921b09d1b0366f10b65173992d",
			pubB:  "3eb7a829b0cd20f5bcfc0b599b6feccf6da4627107bdb0d4f345b43027d8b972fc3e34fb4232a13ca706dcb57aec3dae07bdc1c67bf33609",
			k:     "07fff4181ac6cc95ec1c16a94a0f74d12da232ce40a77552281d282bb60c0b56fd2464c335543936521c24403085d59a449a5037514a879d",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := NewPrivateKey(tt.tep, mustHex(t, tt.privA))
			if err != nil {
				t.Fatal(err)
			}
			b, err := NewPrivateKey(tt.tep, mustHex(t, tt.privB))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a.Public(), mustHex(t, tt.pubA)) || !bytes.Equal(b.Public(), mustHex(t, tt.pubB)) {
				t.Fatalf("public keys %x / %x differ from RFC 7748", a.Public(), b.Public())
			}
			for _, pair := range [][2]*PrivateKey{{a, b}, {b, a}} {
				k, err := pair[0].ECDH(pair[1].Public())
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(k, mustHex(t, tt.k)) {
					t.Fatalf("ES = %x, want %s", k, tt.k)
				}
			}
		})
	}
}

func TestLowOrderPointsGiveZeroSecret(t *testing.T) {
	for _, tep := range []uint8{TEPX25519, TEPX448} {
		k, err := GenerateKey(tep, &countingReader{next: 3})
		if err != nil {
			t.Fatal(err)
		}
		n := PublicKeyLen(tep)
		one := make([]byte, n)
		one[0] = 1
		for _, pub := range [][]byte{make([]byte, n), one} {
			if _, err := k.ECDH(pub); !errors.Is(err, ErrZeroSecret) {
				t.Errorf("TEP 0x%02x, peer %x: err = %v, want ErrZeroSecret", tep, pub[:2], err)
			}
		}
	}
}

func TestKeyAgreementAllTEPs(t *testing.T) {
	rnd := &countingReader{next: 1}
	for _, tep := range []uint8{TEPP256, TEPP521, TEPX25519, TEPX448} {
		a, err := GenerateKey(tep, rnd)
		if err != nil {
			t.Fatalf("TEP 0x%02x: %v", tep, err)
		}
		b, err := GenerateKey(tep, rnd)
		if err != nil {
			t.Fatal(err)
		}
		if a.TEP() != tep || len(a.Public()) != PublicKeyLen(tep) {
			t.Fatalf("TEP 0x%02x: public key of %d bytes, want %d", tep, len(a.Public()), PublicKeyLen(tep))
		}
		if tep == TEPP256 || tep == TEPP521 {
			pub := a.Public()
			if int(binary.BigEndian.Uint16(pub)) != len(pub)-2 || (pub[2] != 2 && pub[2] != 3) {
				t.Fatalf("TEP 0x%02x: public key %x is not pubkey_len|compressed point", tep, pub[:3])
			}
		}
		esA, err := a.ECDH(b.Public())
		if err != nil {
			t.Fatal(err)
		}
		esB, err := b.ECDH(a.Public())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(esA, esB) || len(esA) != SharedSecretLen(tep) {
			t.Fatalf("TEP 0x%02x: ES %x vs %x (want %d bytes)", tep, esA, esB, SharedSecretLen(tep))
		}
		// Same reader state gives the same key: the reader is really used.
		c1, _ := GenerateKey(tep, &countingReader{next: 9})
		c2, _ := GenerateKey(tep, &countingReader{next: 9})
		if !bytes.Equal(c1.Public(), c2.Public()) {
			t.Fatalf("TEP 0x%02x: GenerateKey ignores its reader", tep)
		}
	}
}

// nonResidueX finds an x whose x^3 - 3x + b has no square root mod p, so
// no curve point has that x-coordinate.
func nonResidueX(c elliptic.Curve) *big.Int {
	p := c.Params().P
	exp := new(big.Int).Rsh(new(big.Int).Sub(p, big.NewInt(1)), 1)
	pm1 := new(big.Int).Sub(p, big.NewInt(1))
	for x := big.NewInt(1); ; x.Add(x, big.NewInt(1)) {
		rhs := new(big.Int).Exp(x, big.NewInt(3), p)
		rhs.Sub(rhs, new(big.Int).Mul(big.NewInt(3), x))
		rhs.Add(rhs, c.Params().B)
		rhs.Mod(rhs, p)
		if new(big.Int).Exp(rhs, exp, p).Cmp(pm1) == 0 {
			return x
		}
	}
}

func TestNISTPublicKeyValidation(t *testing.T) {
	for _, tc := range []struct {
		tep   uint8
		curve elliptic.Curve
	}{{TEPP256, elliptic.P256()}, {TEPP521, elliptic.P521()}} {
		k, err := GenerateKey(tc.tep, &countingReader{next: 5})
		if err != nil {
			t.Fatal(err)
		}
		peer, _ := GenerateKey(tc.tep, &countingReader{next: 6})
		good := peer.Public()
		n := len(good) - 3
		mk := func(prefix byte, x *big.Int) []byte {
			b := make([]byte, len(good))
			binary.BigEndian.PutUint16(b, uint16(len(good)-2))
			b[2] = prefix
			x.FillBytes(b[3:])
			return b
		}
		mod := func(f func(b []byte)) []byte {
			b := bytes.Clone(good)
			f(b)
			return b
		}
		cases := map[string][]byte{
			"short":              good[:len(good)-1],
			"long":               append(bytes.Clone(good), 0),
			"pubkey_len too big": mod(func(b []byte) { b[1]++ }),
			"pubkey_len zero":    mod(func(b []byte) { b[0], b[1] = 0, 0 }),
			"uncompressed tag":   mod(func(b []byte) { b[2] = 4 }),
			"zero tag":           mod(func(b []byte) { b[2] = 0 }),
			"x = p":              mk(2, tc.curve.Params().P),
			"x all ones":         mk(3, new(big.Int).SetBytes(bytes.Repeat([]byte{0xff}, n))),
			"x off curve":        mk(2, nonResidueX(tc.curve)),
		}
		for name, pub := range cases {
			if _, err := k.ECDH(pub); !errors.Is(err, ErrInvalidPublicKey) {
				t.Errorf("TEP 0x%02x %s: err = %v, want ErrInvalidPublicKey", tc.tep, name, err)
			}
		}
		// Both y parities of a valid x are accepted (prefix 02 and 03).
		flipped := mod(func(b []byte) { b[2] ^= 1 })
		if _, err := k.ECDH(flipped); err != nil {
			t.Errorf("TEP 0x%02x: the other y of a valid x rejected: %v", tc.tep, err)
		}
	}
}

func TestNewPrivateKeyErrors(t *testing.T) {
	p256n := elliptic.P256().Params().N.FillBytes(make([]byte, 32))
	tests := []struct {
		name string
		tep  uint8
		raw  []byte
		want error
	}{
		{"unsupported TEP", 0x20, make([]byte, 32), ErrUnsupportedTEP},
		{"X25519 short", TEPX25519, make([]byte, 31), ErrBadPrivateKey},
		{"X448 long", TEPX448, make([]byte, 57), ErrBadPrivateKey},
		{"P-256 zero scalar", TEPP256, make([]byte, 32), ErrBadPrivateKey},
		{"P-256 scalar = n", TEPP256, p256n, ErrBadPrivateKey},
		{"P-521 wrong length", TEPP521, make([]byte, 65), ErrBadPrivateKey},
		{"P-521 too large", TEPP521, bytes.Repeat([]byte{0xff}, 66), ErrBadPrivateKey},
	}
	for _, tt := range tests {
		if _, err := NewPrivateKey(tt.tep, tt.raw); !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
	if _, err := GenerateKey(0x25, &countingReader{}); !errors.Is(err, ErrUnsupportedTEP) {
		t.Errorf("GenerateKey(0x25): %v", err)
	}
	if _, err := GenerateKey(TEPX25519, bytes.NewReader(nil)); err == nil {
		t.Error("GenerateKey with an empty reader succeeded")
	}
}

func TestSizesPerTEP(t *testing.T) {
	want := map[uint8][3]int{ // pub, es, priv
		TEPP256: {35, 32, 32}, TEPP521: {69, 66, 66}, TEPX25519: {32, 32, 32}, TEPX448: {56, 56, 56},
	}
	for tep := range 256 {
		w := want[uint8(tep)]
		got := [3]int{PublicKeyLen(uint8(tep)), SharedSecretLen(uint8(tep)), PrivateKeyLen(uint8(tep))}
		if got != w || SupportedTEP(uint8(tep)) != (w != [3]int{}) {
			t.Errorf("TEP 0x%02x: sizes %v supported %v, want %v", tep, got, SupportedTEP(uint8(tep)), w)
		}
	}
}

package crypto

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"testing"
)

// RFC 5869 Appendix A, test cases 1-3 (the SHA-256 ones).
func TestHKDFRFC5869(t *testing.T) {
	tests := []struct {
		name            string
		ikm, salt, info []byte
		l               int
		prk, okm        string
	}{
		{
			name: "A.1",
			ikm:  bytes.Repeat([]byte{0x0b}, 22), salt: seqBytes(0x00, 13), info: seqBytes(0xf0, 10), l: 42,
			prk: "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
			okm: "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
		},
		{
			name: "A.2",
			ikm:  seqBytes(0x00, 80), salt: seqBytes(0x60, 80), info: seqBytes(0xb0, 80), l: 82,
			prk: "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
			okm: "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87",
		},
		{
			name: "A.3",
			ikm:  bytes.Repeat([]byte{0x0b}, 22), salt: nil, info: nil, l: 42,
			prk: "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
			okm: "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prk := Extract(tt.salt, tt.ikm)
			if !bytes.Equal(prk, mustHex(t, tt.prk)) {
				t.Fatalf("Extract = %x, want %s", prk, tt.prk)
			}
			if okm := CPRF(prk, tt.info, tt.l); !bytes.Equal(okm, mustHex(t, tt.okm)) {
				t.Fatalf("CPRF = %x, want %s", okm, tt.okm)
			}
		})
	}
}

func hmacSHA256(k []byte, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, k)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// The closed forms of digest §2.1.
func TestCPRFClosedForms(t *testing.T) {
	k := seqBytes(0x40, 32)
	for _, c := range [][]byte{{0x01}, {0x03}, append([]byte{0x03}, seqBytes(0x90, 16)...)} {
		t1 := hmacSHA256(k, c, []byte{1})
		if got := CPRF(k, c, 32); !bytes.Equal(got, t1) {
			t.Errorf("CPRF(k, %x, 32) = %x, want HMAC(k, c|01) = %x", c, got, t1)
		}
		if got := CPRF(k, c, 18); !bytes.Equal(got, t1[:18]) {
			t.Errorf("CPRF(k, %x, 18) = %x, want %x", c, got, t1[:18])
		}
		for _, l := range []int{28, 44, 64} {
			want := append(append([]byte{}, t1...), hmacSHA256(k, t1, c, []byte{2})...)[:l]
			if got := CPRF(k, c, l); !bytes.Equal(got, want) {
				t.Errorf("CPRF(k, %x, %d) = %x, want %x", c, l, got, want)
			}
		}
	}
	salt, ikm := seqBytes(1, 32), seqBytes(100, 77)
	if got, want := Extract(salt, ikm), hmacSHA256(salt, ikm); !bytes.Equal(got, want) {
		t.Errorf("Extract = %x, want HMAC(salt, ikm) = %x", got, want)
	}
}

func TestCPRFTooLongPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("CPRF with l > 8160 did not panic")
		}
	}()
	CPRF(seqBytes(0, 32), []byte{1}, 255*32+1)
}

package crypto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var allTEPs = []uint8{TEPP256, TEPP521, TEPX25519, TEPX448}

func testInit1(t testing.TB, tep uint8, ciphers ...AEADID) Init1 {
	t.Helper()
	k, err := GenerateKey(tep, &countingReader{next: tep})
	if err != nil {
		t.Fatal(err)
	}
	return Init1{Ciphers: ciphers, Nonce: seqBytes(0x10, NonceLen), Pub: k.Public()}
}

func testInit2(t testing.TB, tep uint8, c AEADID) Init2 {
	t.Helper()
	k, err := GenerateKey(tep, &countingReader{next: tep + 1})
	if err != nil {
		t.Fatal(err)
	}
	return Init2{Cipher: c, Nonce: seqBytes(0x50, NonceLen), Pub: k.Public()}
}

func marshal1(m Init1) []byte { return m.Marshal(nil) }
func marshal2(m Init2) []byte { return m.Marshal(nil) }

func TestInitRoundTripAndSizes(t *testing.T) {
	// Digest §2.5 sizes: Init1 = base + 2K, Init2 fixed.
	sizes := map[uint8][2]int{TEPX25519: {73, 74}, TEPX448: {97, 98}, TEPP256: {76, 77}, TEPP521: {110, 111}}
	for _, tep := range allTEPs {
		for _, ciphers := range [][]AEADID{{AES128GCM}, {ChaCha20Poly1305, 0x9999, AES256GCM}} {
			m1 := testInit1(t, tep, ciphers...)
			b1 := m1.Marshal([]byte{0xaa}) // appends
			if b1[0] != 0xaa {
				t.Fatal("Marshal did not append")
			}
			b1 = b1[1:]
			if want := sizes[tep][0] + 2*len(ciphers); len(b1) != want || m1.Len() != want {
				t.Fatalf("TEP 0x%02x: Init1 is %d bytes (Len %d), want %d", tep, len(b1), m1.Len(), want)
			}
			if n, ok, err := InitLen(b1[:8]); !ok || err != nil || n != len(b1) {
				t.Fatalf("InitLen = %d %v %v", n, ok, err)
			}
			got, err := ParseInit1(tep, b1)
			if err != nil {
				t.Fatalf("TEP 0x%02x: %v", tep, err)
			}
			if diff := cmp.Diff(m1, got); diff != "" {
				t.Fatalf("Init1 round trip (-want +got):\n%s", diff)
			}
			for i := range len(b1) {
				if _, err := ParseInit1(tep, b1[:i]); !errors.Is(err, ErrShortMessage) {
					t.Fatalf("TEP 0x%02x: prefix of %d/%d bytes: err = %v, want ErrShortMessage", tep, i, len(b1), err)
				}
			}
		}
		m2 := testInit2(t, tep, ChaCha20Poly1305)
		b2 := m2.Marshal(nil)
		if len(b2) != sizes[tep][1] || m2.Len() != len(b2) {
			t.Fatalf("TEP 0x%02x: Init2 is %d bytes, want %d", tep, len(b2), sizes[tep][1])
		}
		got, err := ParseInit2(tep, b2)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(m2, got); diff != "" {
			t.Fatalf("Init2 round trip (-want +got):\n%s", diff)
		}
		for i := range len(b2) {
			if _, err := ParseInit2(tep, b2[:i]); !errors.Is(err, ErrShortMessage) {
				t.Fatalf("TEP 0x%02x: Init2 prefix of %d bytes: err = %v", tep, i, err)
			}
		}
	}
}

// withLen rewrites message_len.
func withLen(b []byte, m int) []byte {
	b = bytes.Clone(b)
	binary.BigEndian.PutUint32(b[4:], uint32(m))
	return b
}

func TestParseInit1Errors(t *testing.T) {
	x := marshal1(testInit1(t, TEPX25519, AES128GCM))
	p := marshal1(testInit1(t, TEPP256, AES128GCM))
	grow := func(b []byte, extra ...byte) []byte {
		return withLen(append(bytes.Clone(b), extra...), len(b)+len(extra))
	}
	tests := []struct {
		name string
		tep  uint8
		b    []byte
		want error
	}{
		{"bad magic", TEPX25519, append([]byte{0x15, 0x10, 0x1a, 0x0f}, x[4:]...), ErrBadMagic},
		{"Init2 magic", TEPX25519, append(binary.BigEndian.AppendUint32(nil, Init2Magic), x[4:]...), ErrBadMagic},
		{"message_len 0", TEPX25519, withLen(x, 0), ErrShortMessage},
		{"message_len 8", TEPX25519, withLen(x, 8), ErrShortMessage},
		{"message_len one short", TEPX25519, withLen(x, len(x)-1), ErrShortMessage},
		{"message_len past buffer", TEPX25519, withLen(x, len(x)+1), ErrShortMessage},
		{"message_len huge", TEPX25519, withLen(x, 1<<31), ErrShortMessage},
		{"zero ciphers", TEPX25519, func() []byte { b := bytes.Clone(x); b[8] = 0; return b }(), ErrNoCiphers},
		{"nciphers past message", TEPX25519, func() []byte { b := bytes.Clone(x); b[8] = 40; return b }(), ErrShortMessage},
		{"only unknown cipher", TEPX25519, func() []byte { b := bytes.Clone(x); b[9], b[10] = 0x00, 0x03; return b }(), ErrUnknownCipher},
		{"P-256 pubkey_len 34", TEPP256, func() []byte { b := bytes.Clone(p); b[9+2+32+1] = 34; return b }(), ErrBadKeyLength},
		{"P-256 pubkey_len 65 (uncompressed)", TEPP256, func() []byte { b := bytes.Clone(p); b[9+2+32+1] = 65; return b }(), ErrBadKeyLength},
		{"P-256 key parsed as P-521", TEPP521, p, ErrBadKeyLength},
		{"unsupported TEP", 0x25, x, ErrUnsupportedTEP},
		{"ok with ignored tail", TEPX25519, grow(x, 1, 2, 3), nil},
		{"ok with a cipher beyond the message", TEPX25519, append(bytes.Clone(x), 0xff), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseInit1(tt.tep, tt.b)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParseInit2Errors(t *testing.T) {
	x := marshal2(testInit2(t, TEPX448, AES256GCM))
	p := marshal2(testInit2(t, TEPP521, AES128GCM))
	tests := []struct {
		name string
		tep  uint8
		b    []byte
		want error
	}{
		{"Init1 magic", TEPX448, append(binary.BigEndian.AppendUint32(nil, Init1Magic), x[4:]...), ErrBadMagic},
		{"message_len 10", TEPX448, withLen(x, 10), ErrShortMessage},
		{"message_len one short", TEPX448, withLen(x, len(x)-1), ErrShortMessage},
		{"unknown cipher", TEPX448, func() []byte { b := bytes.Clone(x); b[8], b[9] = 0x12, 0x34; return b }(), ErrUnknownCipher},
		{"X448 key parsed as X25519 leaves a tail", TEPX25519, x, nil},
		{"P-521 pubkey_len 66", TEPP521, func() []byte { b := bytes.Clone(p); b[43] = 66; return b }(), ErrBadKeyLength},
		{"P-521 message cut inside key", TEPP521, withLen(p, len(p)-10)[:len(p)-10], ErrShortMessage},
		{"ok with ignored tail", TEPP521, withLen(append(bytes.Clone(p), 9, 9), len(p)+2), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseInit2(tt.tep, tt.b)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestIgnoredTailIsSkipped(t *testing.T) {
	m := testInit1(t, TEPX25519, ChaCha20Poly1305)
	b := m.Marshal(nil)
	b = withLen(append(b, 0xde, 0xad), len(b)+2)
	got, err := ParseInit1(TEPX25519, b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	// Marshal never sends the tail again.
	if again := got.Marshal(nil); len(again) != len(b)-2 {
		t.Fatalf("re-marshalled %d bytes, want %d", len(again), len(b)-2)
	}
}

func TestInitLen(t *testing.T) {
	x := marshal2(testInit2(t, TEPX25519, AES128GCM))
	for i := range 8 {
		if _, ok, err := InitLen(x[:i]); ok || err != nil {
			t.Fatalf("%d bytes: ok=%v err=%v, want need-more", i, ok, err)
		}
	}
	if _, _, err := InitLen([]byte{1, 2, 3, 4, 0, 0, 0, 80}); !errors.Is(err, ErrBadMagic) {
		t.Fatalf("bad magic: %v", err)
	}
	if _, _, err := InitLen(withLen(x, 7)); !errors.Is(err, ErrShortMessage) {
		t.Fatalf("message_len 7: %v", err)
	}
	if n, ok, err := InitLen(x[:8]); n != 74 || !ok || err != nil {
		t.Fatalf("InitLen = %d %v %v", n, ok, err)
	}
}

func TestSelectCipherAndOffers(t *testing.T) {
	offered := []AEADID{0x7777, ChaCha20Poly1305, AES128GCM}
	tests := []struct {
		prefs []AEADID
		want  AEADID
		ok    bool
	}{
		{[]AEADID{AES256GCM, AES128GCM, ChaCha20Poly1305}, AES128GCM, true},
		{[]AEADID{ChaCha20Poly1305}, ChaCha20Poly1305, true},
		{[]AEADID{0x7777, AES128GCM}, AES128GCM, true}, // unknown ids never chosen
		{[]AEADID{AES256GCM}, 0, false},
		{nil, 0, false},
	}
	for _, tt := range tests {
		if got, ok := SelectCipher(offered, tt.prefs); got != tt.want || ok != tt.ok {
			t.Errorf("SelectCipher(%v) = %v %v, want %v %v", tt.prefs, got, ok, tt.want, tt.ok)
		}
	}
	m := Init1{Ciphers: offered}
	if !m.Offers(AES128GCM) || m.Offers(AES256GCM) {
		t.Error("Offers is wrong")
	}
}

func TestParseInitRandomNoPanic(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		b := make([]byte, r.IntN(160))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if len(b) >= 8 && r.IntN(2) == 0 { // make the header plausible
			binary.BigEndian.PutUint32(b, []uint32{Init1Magic, Init2Magic}[r.IntN(2)])
			binary.BigEndian.PutUint32(b[4:], uint32(r.IntN(len(b)+1)))
			if len(b) > 8 {
				b[8] = byte(r.IntN(4))
			}
		}
		tep := allTEPs[r.IntN(4)]
		if m, err := ParseInit1(tep, b); err == nil && len(m.Pub) != PublicKeyLen(tep) {
			t.Fatalf("accepted Init1 with %d-byte key", len(m.Pub))
		}
		if m, err := ParseInit2(tep, b); err == nil && len(m.Pub) != PublicKeyLen(tep) {
			t.Fatalf("accepted Init2 with %d-byte key", len(m.Pub))
		}
		_, _, _ = InitLen(b)
	}
}

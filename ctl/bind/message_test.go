package bind

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

// vectorKey and vectorSID are the inputs of the vectors below, which were
// computed with Python's hmac and hashlib (HKDF written out from RFC 5869),
// not with this package.
var (
	vectorKey = func() []byte {
		b := make([]byte, 32)
		for i := range b {
			b[i] = byte(i)
		}
		return b
	}()
	vectorSID = func() []byte {
		b := []byte{0x23}
		for i := 0x40; i < 0x60; i++ {
			b = append(b, byte(i))
		}
		return b
	}()
)

func TestMessageVector(t *testing.T) {
	want := map[bool]string{
		true:  "895443420141d7cd606bbf7fcb54abdae1bf4187a1c2068786ab74d3ca23623850601f442855",
		false: "895443420142af9df4fa4772392d58defd953154cb9cab7f054986df69167f10b7d57804082c",
	}
	k, err := macKey(vectorKey)
	if err != nil {
		t.Fatal(err)
	}
	for isA, w := range want {
		m := newMessage(k, roleByte(isA), vectorSID)
		if got := hex.EncodeToString(m.marshal()); got != w {
			t.Errorf("role A=%v:\n got %s\nwant %s", isA, got, w)
		}
	}
}

func TestMessageRoundTrip(t *testing.T) {
	k, _ := macKey(vectorKey)
	for _, role := range []byte{roleA, roleB} {
		m := newMessage(k, role, vectorSID)
		b := m.marshal()
		if len(b) != MessageLen {
			t.Fatalf("marshal: %d bytes, want %d", len(b), MessageLen)
		}
		got, err := parseMessage(b)
		if err != nil || got != m {
			t.Fatalf("parse(marshal) = %+v, %v; want %+v", got, err, m)
		}
		// Every strict prefix is a possible start, and not a message.
		for i := range b {
			if err := checkPrefix(b[:i]); err != nil {
				t.Errorf("prefix of %d bytes refused: %v", i, err)
			}
			if _, err := parseMessage(b[:i]); !errors.Is(err, ErrProtocol) {
				t.Errorf("prefix of %d bytes parsed: %v", i, err)
			}
		}
		if _, err := parseMessage(append(bytes.Clone(b), 0)); !errors.Is(err, ErrProtocol) {
			t.Errorf("one byte too many parsed: %v", err)
		}
		// Any change in the header is refused as soon as it is seen; a
		// change in the MAC parses (and fails verify).
		for i := range headerLen {
			c := bytes.Clone(b)
			c[i] ^= 0x04
			if err := checkPrefix(c[:i+1]); !errors.Is(err, ErrProtocol) {
				t.Errorf("byte %d changed: checkPrefix says %v", i, err)
			}
		}
	}
}

func TestVerify(t *testing.T) {
	k, _ := macKey(vectorKey)
	other, _ := macKey(bytes.Repeat([]byte{7}, 32))
	sid2 := bytes.Clone(vectorSID)
	sid2[len(sid2)-1] ^= 1
	tep2 := bytes.Clone(vectorSID)
	tep2[0] = 0xa3 // the resumed form of the same TEP byte
	tests := []struct {
		name    string
		m       message
		ourRole byte
		want    error // nil, ErrMismatch or ErrSameRole
	}{
		{"genuine", newMessage(k, roleB, vectorSID), roleA, nil},
		{"genuine B side", newMessage(k, roleA, vectorSID), roleB, nil},
		{"other key", newMessage(other, roleB, vectorSID), roleA, ErrMismatch},
		{"other session", newMessage(k, roleB, sid2), roleA, ErrMismatch},
		{"other TEP byte", newMessage(k, roleB, tep2), roleA, ErrMismatch},
		{"longer session id", newMessage(k, roleB, append(bytes.Clone(vectorSID), 0)), roleA, ErrMismatch},
		{"our own role", newMessage(k, roleA, vectorSID), roleA, ErrSameRole},
		{"role byte flipped", func() message { m := newMessage(k, roleA, vectorSID); m.role = roleB; return m }(), roleA, ErrMismatch},
		{"MAC bit flipped", func() message { m := newMessage(k, roleB, vectorSID); m.mac[31] ^= 0x80; return m }(), roleA, ErrMismatch},
	}
	for _, tt := range tests {
		err := tt.m.verify(k, tt.ourRole, vectorSID)
		switch {
		case tt.want == nil && err != nil:
			t.Errorf("%s: %v; want nil", tt.name, err)
		case tt.want != nil && !errors.Is(err, tt.want):
			t.Errorf("%s: %v; want %v", tt.name, err, tt.want)
		case tt.want == ErrMismatch && errors.Is(err, ErrSameRole):
			t.Errorf("%s: %v; want a MAC mismatch, not a role conflict", tt.name, err)
		}
	}
}

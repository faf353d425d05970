package eno

import (
	"encoding/hex"
	"strings"
	"testing"
)

// TEP ids used throughout the tests, named as in RFC 8547 §6 (X, Y, Z) and
// given tcpcrypt's values (RFC 8548 §7).
const (
	tepX = 0x21 // P-256
	tepY = 0x23 // Curve25519
	tepZ = 0x24 // Curve448
	tepW = 0x22 // P-521
)

// h decodes a spaced hex string such as "45 04 21 23".
func h(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// seq returns n bytes start, start+1, ...
func seqBytes(start byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

func mustMarshal(t testing.TB, o Option) []byte {
	t.Helper()
	b, err := o.Marshal(nil)
	if err != nil {
		t.Fatalf("Marshal(%+v): %v", o, err)
	}
	return b
}

func mustParse(t testing.TB, raw []byte) Option {
	t.Helper()
	o, err := ParseSYN(raw)
	if err != nil {
		t.Fatalf("ParseSYN(% x): %v", raw, err)
	}
	return o
}

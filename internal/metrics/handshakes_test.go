package metrics

import (
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type hsRow struct {
	TEP, AEAD string
	N         uint64
}

func rows(h *Handshakes) []hsRow {
	var out []hsRow
	h.Each(func(tep, aead string, n uint64) { out = append(out, hsRow{tep, aead, n}) })
	return out
}

func TestHandshakes(t *testing.T) {
	var h Handshakes
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				h.Inc(x25519, aes128)
				h.Inc("TCPCRYPT_ECDHE_P256", "AEAD_AES_256_GCM")
			}
		})
	}
	wg.Wait()
	h.Inc(x25519, "AEAD_CHACHA20_POLY1305")
	want := []hsRow{
		{"TCPCRYPT_ECDHE_Curve25519", "AEAD_AES_128_GCM", 800},
		{"TCPCRYPT_ECDHE_Curve25519", "AEAD_CHACHA20_POLY1305", 1},
		{"TCPCRYPT_ECDHE_P256", "AEAD_AES_256_GCM", 800},
	}
	if d := cmp.Diff(want, rows(&h)); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestHandshakesNil(t *testing.T) {
	var h *Handshakes
	h.Inc(x25519, aes128) // must not panic
	if r := rows(h); len(r) != 0 {
		t.Errorf("nil Handshakes has rows %v", r)
	}
}

// Pairs beyond the bound are counted under "other", so the series stay
// bounded whatever the events carry.
func TestHandshakesBound(t *testing.T) {
	var h Handshakes
	for i := range maxHandshakeSeries + 10 {
		h.Inc(fmt.Sprintf("TEP(0x%02x)", i), aes128)
	}
	r := rows(&h)
	if len(r) != maxHandshakeSeries+1 {
		t.Fatalf("%d series, want %d", len(r), maxHandshakeSeries+1)
	}
	var other uint64
	for _, x := range r {
		if x.TEP == otherLabel {
			other = x.N
		}
	}
	if other != 10 {
		t.Errorf("other = %d, want 10", other)
	}
	// A pair seen before the bound keeps its own series.
	h.Inc("TEP(0x00)", aes128)
	if r := rows(&h); r[0].TEP != "TEP(0x00)" || r[0].N != 2 {
		t.Errorf("first pair: %+v", r[0])
	}
}

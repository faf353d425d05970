package e2e

import (
	"testing"

	"github.com/tcpcryptd/tcpcrypt/e2e/internal/payload"
	"github.com/tcpcryptd/tcpcrypt/e2e/internal/wiretap"
)

// tap starts a capture of port on the host's interface ifname; it is stopped
// when the test ends if the test did not stop it.
func (h *host) tap(t testing.TB, ifname string, port uint16) *wiretap.Tap {
	t.Helper()
	return h.tapWith(t, ifname, wiretap.Filter{Port: port, InboundOnly: ifname == "lo"})
}

// tapWith starts a capture with filter f, looking for the payload marker.
func (h *host) tapWith(t testing.TB, ifname string, f wiretap.Filter) *wiretap.Tap {
	t.Helper()
	f.Marker = []byte(payload.Marker)
	if f.Samples == 0 {
		f.Samples, f.SampleLen = 6, 24
	}
	var tp *wiretap.Tap
	err := h.ns.Do(func() error {
		var err error
		tp, err = wiretap.Open(ifname, f)
		return err
	})
	if err != nil {
		t.Fatalf("capture on %s/%s: %v", h.name, ifname, err)
	}
	t.Cleanup(func() { _, _ = tp.Stop() })
	return tp
}

// stopTap ends a capture and returns its statistics.
func stopTap(t *testing.T, tp *wiretap.Tap) wiretap.Stats {
	t.Helper()
	st, err := tp.Stop()
	if err != nil {
		t.Errorf("capture: %v", err)
	}
	t.Logf("capture: %v", st)
	return st
}

// assertCiphertext fails t unless the capture saw at least minBytes of
// payload (so that it looked at the transfer at all), none of it containing
// the plaintext marker, and little of it printable.
func assertCiphertext(t *testing.T, st wiretap.Stats, minBytes uint64) {
	t.Helper()
	if st.CapturedBytes < minBytes {
		t.Errorf("capture scanned %d payload bytes, want at least %d (kernel drops %d): the capture missed the transfer",
			st.CapturedBytes, minBytes, st.KernelDrops)
	}
	if st.MarkerHits != 0 {
		t.Errorf("PLAINTEXT ON THE WIRE: %d captured segments contain the marker; first: %s -> %s at %v: %q",
			st.MarkerHits, st.FirstHit.Src, st.FirstHit.Dst, st.FirstHit.At, st.FirstHit.Head)
	}
	if r := st.PrintableRatio(); r > 0.6 {
		t.Errorf("%.0f%% of the captured payload is printable text; ciphertext gives about 38%%", 100*r)
	}
}

// assertPlaintext fails t unless the capture saw the plaintext marker.
func assertPlaintext(t *testing.T, st wiretap.Stats) {
	t.Helper()
	if st.MarkerHits == 0 {
		t.Errorf("capture saw no plaintext marker in %d payload bytes; expected plain TCP", st.CapturedBytes)
	}
}

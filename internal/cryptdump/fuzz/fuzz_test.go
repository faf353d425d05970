// Package fuzz holds the fuzz target of cryptdump in a small test binary of
// its own (cryptdump's tests link gVisor through enginetest).
package fuzz

import (
	"bytes"
	"os"
	"testing"

	"github.com/tcpcryptd/tcpcrypt/internal/cryptdump"
)

// FuzzAnalyze: any capture, read with the key log of the committed
// two-connection capture (so that frames are really opened), gives reports
// or an error, never a panic or a hang, and never claims more verified
// plaintext than the capture carries.
//
// Run it with a short minimization, e.g. -fuzzminimizetime 1x: with the
// default (60 s per new input) the fuzzer spends nearly all its time
// minimizing the many new inputs these seeds produce (measured here: 5
// execs in 15 s by default, about 33000/s with 1x).
func FuzzAnalyze(f *testing.F) {
	pcap, err := os.ReadFile("../../../cmd/tcpcryptdump/testdata/two.pcap")
	if err != nil {
		f.Fatal(err)
	}
	kl, err := os.ReadFile("../../../cmd/tcpcryptdump/testdata/two.keylog")
	if err != nil {
		f.Fatal(err)
	}
	// Small seeds keep the mutator fast: the handshake and first frames.
	f.Add(pcap[:2400])
	f.Add(pcap[:6000])
	keys := cryptdump.NewKeyLog()
	if err := keys.Read(bytes.NewReader(kl), "two.keylog", nil); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c := cryptdump.NewCapture()
		_ = c.ReadCapture(bytes.NewReader(b))
		reps, err := c.Analyze(keys, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range reps {
			if r.BytesAToB+r.BytesBToA > uint64(len(b)) {
				t.Fatalf("%d+%d plaintext bytes from a %d-byte capture", r.BytesAToB, r.BytesBToA, len(b))
			}
		}
	})
}

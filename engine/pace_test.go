package engine

import (
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/crypto"
)

// aeadPace times the bare AEAD beside an engine benchmark, in blocks that
// alternate with the engine's, so that the ratio of the two throughputs is
// taken under the same conditions: this machine's speed drifts by up to
// 1.8 times between runs, which made ratios of separate benchmarks swing
// by as much. Each engine block (from begin to end) is followed, outside
// the benchmark's timer, by the AEAD sealing or opening as many bytes in
// 16 KiB frames and again in 1400-byte frames; report adds the engine's
// throughput as a fraction of each (metrics x-aead16K and x-aead1400).
type aeadPace struct {
	b     *testing.B
	k     *crypto.FrameKey
	open  bool
	sizes [2]int
	in    [2][]byte // what Seal or Open takes, per size
	out   []byte

	eng   time.Duration
	aead  [2]time.Duration
	bytes int64
	start time.Time
}

func newAEADPace(b *testing.B, id crypto.AEADID, open bool) *aeadPace {
	k, err := crypto.NewFrameKey(id, make([]byte, id.TrafficKeyLen()))
	if err != nil {
		b.Fatal(err)
	}
	p := &aeadPace{b: b, k: k, open: open, sizes: [2]int{16384, 1400}, out: make([]byte, 0, 16384+64)}
	for i, n := range p.sizes {
		p.in[i] = make([]byte, n)
		if open {
			if p.in[i], err = k.Seal(nil, 5, crypto.Plain{Data: p.in[i]}); err != nil {
				b.Fatal(err)
			}
		}
	}
	return p
}

// begin starts an engine block (the benchmark's timer is running).
func (p *aeadPace) begin() { p.start = time.Now() }

// end closes an engine block that moved n bytes of plaintext and runs the
// AEAD over as many bytes in each frame size, with the timer stopped.
func (p *aeadPace) end(n int) {
	p.eng += time.Since(p.start)
	p.b.StopTimer()
	for i, size := range p.sizes {
		t0 := time.Now()
		for done := 0; done < n; done += size {
			var err error
			if p.open {
				_, err = p.k.Open(p.out[:0], 5, p.in[i])
			} else {
				_, err = p.k.Seal(p.out[:0], 5, crypto.Plain{Data: p.in[i]})
			}
			if err != nil {
				p.b.Fatal(err)
			}
		}
		// Count the bytes the AEAD really did: whole frames.
		p.aead[i] += time.Duration(float64(time.Since(t0)) * float64(n) / float64((n+size-1)/size*size))
	}
	p.bytes += int64(n)
	p.b.StartTimer()
	p.start = time.Now()
}

// report adds the ratios to the benchmark's output.
func (p *aeadPace) report() {
	if p.eng <= 0 || p.bytes == 0 {
		return
	}
	p.b.ReportMetric(p.aead[0].Seconds()/p.eng.Seconds(), "x-aead16K")
	p.b.ReportMetric(p.aead[1].Seconds()/p.eng.Seconds(), "x-aead1400")
}

package enginetest

import (
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"
)

func ipName(v6 bool) string {
	if v6 {
		return "v6"
	}
	return "v4"
}

func TestShortConns(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		v6   bool
	}{
		{name: "v4", cfg: Config{MTU: 1500}},
		{name: "v6/loss-reorder", v6: true, cfg: Config{
			A:    HostConfig{MinRTO: 20 * time.Millisecond},
			B:    HostConfig{MinRTO: 20 * time.Millisecond},
			AToB: Impairment{LossPct: 1, ReorderPct: 3}, BToA: Impairment{LossPct: 1, ReorderPct: 3}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			CheckLeaks(t)
			p := NewForTest(t, tt.cfg)
			if err := p.ShortConns(testCtx(t), tt.v6, 8080, 200, 16, 3000); err != nil {
				t.Fatal(err)
			}
			if s := p.Stats(); s.A.SYNOut < 200 {
				t.Errorf("A sent %d SYNs, want >= 200", s.A.SYNOut)
			}
		})
	}
}

func TestRequestResponse(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(ipName(v6), func(t *testing.T) {
			CheckLeaks(t)
			p := NewForTest(t, Config{MTU: 1500, AToB: Impairment{SplitPct: 50}, BToA: Impairment{DupPct: 10}})
			if err := p.RequestResponse(testCtx(t), v6, 7, 100, 5000); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// flagsSeen scans a capture for TCP segments of one direction.
func scanCapture(p *Pair, f func(c Captured, s seg)) {
	caps, _ := p.Capture()
	for _, c := range caps {
		if s, ok := parseSeg(c.Pkt); ok {
			f(c, s)
		}
	}
}

func TestHalfClose(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(ipName(v6), func(t *testing.T) {
			CheckLeaks(t)
			p := NewForTest(t, Config{MTU: 1500, CaptureLimit: 10000})
			if err := p.HalfClose(testCtx(t), v6, 21, 300000, 200000); err != nil {
				t.Fatal(err)
			}
			// B must have sent data after A's FIN went by.
			sawFIN, dataAfter := false, 0
			scanCapture(p, func(c Captured, s seg) {
				switch {
				case c.Dir == AToB && s.flags()&header.TCPFlagFin != 0:
					sawFIN = true
				case c.Dir == BToA && sawFIN:
					dataAfter += len(s.payload())
				}
			})
			if !sawFIN || dataAfter < 200000 {
				t.Errorf("capture: A's FIN seen %v, B's data after it %d bytes, want >= 200000", sawFIN, dataAfter)
			}
		})
	}
}

func TestReset(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(ipName(v6), func(t *testing.T) {
			CheckLeaks(t)
			p := NewForTest(t, Config{CaptureLimit: 1000})
			if err := p.Reset(testCtx(t), v6, 22, 10000); err != nil {
				t.Fatal(err)
			}
			rst := 0
			scanCapture(p, func(c Captured, s seg) {
				if c.Dir == AToB && s.flags()&header.TCPFlagRst != 0 {
					rst++
				}
			})
			if rst == 0 {
				t.Error("no RST from A on the wire")
			}
		})
	}
}

func TestSimultaneousOpen(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(ipName(v6), func(t *testing.T) {
			CheckLeaks(t)
			p := NewForTest(t, Config{MTU: 1500, CaptureLimit: 1000})
			if err := p.SimultaneousOpen(testCtx(t), v6, 5001, 5002, 100000); err != nil {
				t.Fatal(err)
			}
			// Both hosts sent a bare SYN: that is what makes it simultaneous.
			var syn [2]int
			scanCapture(p, func(c Captured, s seg) {
				if s.flags()&(header.TCPFlagSyn|header.TCPFlagAck) == header.TCPFlagSyn {
					syn[c.Dir]++
				}
			})
			if syn[AToB] == 0 || syn[BToA] == 0 {
				t.Errorf("bare SYNs on the wire: A->B %d, B->A %d; want both > 0", syn[AToB], syn[BToA])
			}
		})
	}
}

func TestSmallWindow(t *testing.T) {
	CheckLeaks(t)
	p := NewForTest(t, Config{MTU: 1500, CaptureLimit: 50000,
		A: HostConfig{RcvBuf: 4096}, B: HostConfig{RcvBuf: 4096}})
	if err := p.Bulk(testCtx(t), false, 443, 1<<20, 1<<20); err != nil {
		t.Fatal(err)
	}
	// With a 4 KiB receive buffer no flight may exceed a few KiB: check that
	// the advertised windows (scaled as negotiated) stay small.
	maxWnd := 0
	scanCapture(p, func(c Captured, s seg) {
		if s.flags()&header.TCPFlagSyn == 0 {
			maxWnd = max(maxWnd, int(s.tcp().WindowSize()))
		}
	})
	if maxWnd == 0 || maxWnd > 8192 {
		t.Errorf("largest raw window field %d, want 1..8192", maxWnd)
	}
}

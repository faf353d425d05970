package engine

import (
	"context"
	"testing"
	"time"

	"github.com/tcpcryptd/tcpcrypt/engine/enginetest"
)

// pairSetup describes two hosts; a nil engine config means a host without
// an engine.
type pairSetup struct {
	cfg        enginetest.Config
	engA, engB *Config
	loopback   bool // one engine as the Middle of both hosts
}

func newPair(t *testing.T, ps pairSetup) (*enginetest.Pair, *middle, *middle) {
	t.Helper()
	var ma, mb *middle
	if ps.engA != nil {
		ma = newMiddle(t, *ps.engA)
		ps.cfg.A.Middle = ma
	}
	if ps.loopback {
		mb = ma
		ps.cfg.B.Middle = ma
	} else if ps.engB != nil {
		mb = newMiddle(t, *ps.engB)
		ps.cfg.B.Middle = mb
	}
	if ps.cfg.CaptureLimit == 0 {
		ps.cfg.CaptureLimit = 60000
	}
	return enginetest.NewForTest(t, ps.cfg), ma, mb
}

// checkSessions asserts that every encrypted flow of B has a counterpart
// with the same session id at A, and returns how many.
func checkSessions(t *testing.T, ma, mb *middle) int {
	t.Helper()
	ids := map[string]int{}
	for _, fi := range ma.snapshot() {
		if fi.SessionID != nil {
			ids[string(fi.SessionID)]++
		}
	}
	n := 0
	for _, fi := range mb.snapshot() {
		if fi.SessionID == nil || (ma == mb && fi.Local.Addr() != enginetest.AddrB4 && fi.Local.Addr() != enginetest.AddrB6) {
			continue
		}
		if ids[string(fi.SessionID)] == 0 {
			t.Errorf("B flow %v<-%v: session id %x unknown to A", fi.Local, fi.Remote, fi.SessionID)
			continue
		}
		n++
	}
	return n
}

// plaintextIndex finds 32-byte chunks of the application's data in wire
// payloads: a leak of 63 contiguous bytes or more contains an aligned chunk.
type plaintextIndex map[[32]byte]bool

func indexPlaintext(datas ...[]byte) plaintextIndex {
	ix := plaintextIndex{}
	for _, d := range datas {
		for i := 0; i+32 <= len(d); i += 32 {
			ix[[32]byte(d[i:i+32])] = true
		}
	}
	return ix
}

// leaks counts captured payloads holding plaintext.
func leaks(p *enginetest.Pair, ix plaintextIndex) (leaked, payloads int) {
	caps, _ := p.Capture()
	for _, c := range caps {
		pl, ok := enginetest.TCPPayload(c.Pkt)
		if !ok || len(pl) == 0 {
			continue
		}
		payloads++
		for i := 0; i+32 <= len(pl); i++ {
			if ix[[32]byte(pl[i:i+32])] {
				leaked++
				break
			}
		}
	}
	return leaked, payloads
}

func checkNoPlaintext(t *testing.T, p *enginetest.Pair, ix plaintextIndex) {
	t.Helper()
	leaked, payloads := leaks(p, ix)
	if payloads == 0 {
		t.Fatal("no payload captured")
	}
	if leaked > 0 {
		t.Fatalf("plaintext on the wire in %d of %d captured payloads", leaked, payloads)
	}
}

var scenarioTimeout = 2 * time.Minute

func scenarioCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), scenarioTimeout)
	t.Cleanup(cancel)
	return ctx
}

// bulkData is what enginetest's Bulk sends.
func bulkData(nAB, nBA int) plaintextIndex {
	return indexPlaintext(enginetest.RandomBytes(1, nAB), enginetest.RandomBytes(2, nBA))
}

// seededData indexes what enginetest sends with seeds first..first+n-1.
func seededData(first uint64, n, size int) plaintextIndex {
	var ds [][]byte
	for i := 0; i < n; i++ {
		ds = append(ds, enginetest.RandomBytes(first+uint64(i), size))
	}
	return indexPlaintext(ds...)
}

func fastRTO(c enginetest.Config) enginetest.Config {
	c.A.MinRTO = 20 * time.Millisecond
	c.B.MinRTO = 20 * time.Millisecond
	return c
}

// TestScenarioEncrypted runs traffic between two real stacks through two
// engines and checks, every time, that both engines agree on the session id
// and that no application plaintext appears on the wire.
func TestScenarioEncrypted(t *testing.T) {
	const mib = 1 << 20
	type run func(ctx context.Context, p *enginetest.Pair, v6 bool) error
	bulk := func(nAB, nBA int) run {
		return func(ctx context.Context, p *enginetest.Pair, v6 bool) error {
			return p.Bulk(ctx, v6, 443, nAB, nBA)
		}
	}
	tests := []struct {
		name     string
		cfg      enginetest.Config
		eng      Config
		run      run
		ix       plaintextIndex
		sessions int // encrypted connections expected (0: at least 1)
		short    bool
	}{
		{name: "bulk-8MiB-each-way", cfg: enginetest.Config{MTU: 1500}, run: bulk(8*mib, 8*mib), ix: bulkData(8*mib, 8*mib), sessions: 1},
		{name: "bulk-jumbo", cfg: enginetest.Config{}, run: bulk(4*mib, 4*mib), ix: bulkData(4*mib, 4*mib), sessions: 1, short: true},
		{name: "request-response", cfg: enginetest.Config{MTU: 1500}, run: func(ctx context.Context, p *enginetest.Pair, v6 bool) error {
			return p.RequestResponse(ctx, v6, 7, 100, 5000)
		}, ix: seededData(100, 100, 5000), sessions: 1, short: true},
		{name: "short-conns-200", cfg: enginetest.Config{MTU: 1500}, run: func(ctx context.Context, p *enginetest.Pair, v6 bool) error {
			return p.ShortConns(ctx, v6, 8080, 200, 16, 3000)
		}, ix: seededData(1000, 200, 3000), sessions: 200, short: true},
		{name: "half-close", cfg: enginetest.Config{MTU: 1500}, run: func(ctx context.Context, p *enginetest.Pair, v6 bool) error {
			return p.HalfClose(ctx, v6, 21, 300000, 200000)
		}, ix: indexPlaintext(enginetest.RandomBytes(3, 300000), enginetest.RandomBytes(4, 200000)), sessions: 1, short: true},
		{name: "reset", cfg: enginetest.Config{MTU: 1500}, run: func(ctx context.Context, p *enginetest.Pair, v6 bool) error {
			return p.Reset(ctx, v6, 22, 100000)
		}, ix: indexPlaintext(enginetest.RandomBytes(5, 100000)), sessions: 1, short: true},
		{name: "loss-1pct", cfg: fastRTO(enginetest.Config{MTU: 1500, AToB: enginetest.Impairment{LossPct: 1}, BToA: enginetest.Impairment{LossPct: 1}}),
			run: bulk(2*mib, 2*mib), ix: bulkData(2*mib, 2*mib), sessions: 1},
		{name: "loss-5pct", cfg: fastRTO(enginetest.Config{MTU: 1500, AToB: enginetest.Impairment{LossPct: 5}, BToA: enginetest.Impairment{LossPct: 5}}),
			run: bulk(1*mib, 1*mib), ix: bulkData(1*mib, 1*mib), sessions: 1},
		{name: "reorder", cfg: fastRTO(enginetest.Config{MTU: 1500, AToB: enginetest.Impairment{ReorderPct: 10}, BToA: enginetest.Impairment{ReorderPct: 10, Jitter: time.Millisecond}}),
			run: bulk(2*mib, 2*mib), ix: bulkData(2*mib, 2*mib), sessions: 1},
		{name: "duplicates", cfg: enginetest.Config{MTU: 1500, AToB: enginetest.Impairment{DupPct: 10}, BToA: enginetest.Impairment{DupPct: 10}},
			run: bulk(2*mib, 2*mib), ix: bulkData(2*mib, 2*mib), sessions: 1},
		{name: "resegmentation", cfg: fastRTO(enginetest.Config{MTU: 1500,
			AToB: enginetest.Impairment{SplitPct: 30, CoalescePct: 30}, BToA: enginetest.Impairment{SplitPct: 30, CoalescePct: 30}}),
			run: bulk(2*mib, 2*mib), ix: bulkData(2*mib, 2*mib), sessions: 1},
		{name: "gso", cfg: enginetest.Config{MTU: 1500,
			A: enginetest.HostConfig{GSO: true, GSOPartialChecksum: true}, B: enginetest.HostConfig{GSO: true, GSOPartialChecksum: true}},
			run: bulk(8*mib, 8*mib), ix: bulkData(8*mib, 8*mib), sessions: 1},
		{name: "gso-loss", cfg: fastRTO(enginetest.Config{MTU: 1500,
			A: enginetest.HostConfig{GSO: true, GSOPartialChecksum: true}, B: enginetest.HostConfig{GSO: true, GSOPartialChecksum: true},
			AToB: enginetest.Impairment{LossPct: 1}, BToA: enginetest.Impairment{LossPct: 1}}),
			run: bulk(2*mib, 2*mib), ix: bulkData(2*mib, 2*mib), sessions: 1},
		{name: "small-windows", cfg: enginetest.Config{MTU: 1500, A: enginetest.HostConfig{RcvBuf: 8192}, B: enginetest.HostConfig{RcvBuf: 8192}},
			run: bulk(1*mib, 1*mib), ix: bulkData(1*mib, 1*mib), sessions: 1},
		{name: "no-sack-loss", cfg: fastRTO(enginetest.Config{MTU: 1500, A: enginetest.HostConfig{NoSACK: true},
			AToB: enginetest.Impairment{LossPct: 1}, BToA: enginetest.Impairment{LossPct: 1}}),
			run: bulk(1*mib, 1*mib), ix: bulkData(1*mib, 1*mib), sessions: 1},
	}
	for _, tt := range tests {
		for _, v6 := range []bool{false, true} {
			name := tt.name + "/v4"
			if v6 {
				name = tt.name + "/v6"
			}
			t.Run(name, func(t *testing.T) {
				if testing.Short() && !tt.short {
					t.Skip("long scenario")
				}
				cfg := tt.eng
				p, ma, mb := newPair(t, pairSetup{cfg: tt.cfg, engA: &cfg, engB: &cfg})
				if err := tt.run(scenarioCtx(t), p, v6); err != nil {
					t.Fatalf("%v\nA: %s%s\nB: %s%s", err, ctrSummary(ma.counters()), ma.dump(), ctrSummary(mb.counters()), mb.dump())
				}
				if st := p.Stats(); st.A.BadChecksum+st.B.BadChecksum+st.A.InjectDrops+st.B.InjectDrops != 0 {
					t.Errorf("harness dropped engine packets: %+v / %+v", st.A, st.B)
				}
				n := checkSessions(t, ma, mb)
				if tt.sessions > 0 && n < tt.sessions {
					t.Errorf("%d shared session ids, want %d", n, tt.sessions)
				}
				if tt.ix != nil {
					checkNoPlaintext(t, p, tt.ix)
				}
				ca, cb := ma.counters(), mb.counters()
				if a := ca.Aborts[AbortAuth] + cb.Aborts[AbortAuth]; a > 0 {
					t.Errorf("%d authentication aborts", a)
				}
				t.Logf("A: %s", ctrSummary(ca))
				t.Logf("B: %s", ctrSummary(cb))
			})
		}
	}
}

// ctrSummary prints the non-zero counters.
func ctrSummary(c Counters) string {
	s := ""
	c.Each(func(name string, v uint64) {
		if v != 0 {
			s += name + "=" + itoa(v) + " "
		}
	})
	return s
}

func itoa(v uint64) string {
	if v == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return string(b[i:])
}

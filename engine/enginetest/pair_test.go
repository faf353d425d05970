package enginetest

import (
	"context"
	"testing"
	"time"
)

// bulkSize is the transfer size per direction for the bulk tests: 8 MiB
// normally, less under -race or -short so the package stays well under a
// minute on two cores.
func bulkSize() int {
	switch {
	case raceEnabled:
		return 2 << 20
	case testing.Short():
		return 2 << 20
	}
	return 8 << 20
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestBulk(t *testing.T) {
	n := bulkSize()
	tests := []struct {
		name  string
		cfg   Config
		v6    bool
		size  int
		check func(t *testing.T, s Stats)
	}{
		{name: "clean/v4/mtu65535", size: n},
		{name: "clean/v6/mtu1500", cfg: Config{MTU: 1500}, v6: true, size: n},
		{name: "clean/v4/mtu1500", cfg: Config{MTU: 1500}, size: n},
		{
			name: "loss1pct/v4", size: n,
			cfg: Config{MTU: 1500, AToB: Impairment{LossPct: 1}, BToA: Impairment{LossPct: 1}},
			check: func(t *testing.T, s Stats) {
				if s.AToB.Lost == 0 || s.BToA.Lost == 0 {
					t.Errorf("no packet lost: %+v %+v", s.AToB, s.BToA)
				}
			},
		},
		{
			name: "loss5pct/v6", size: n / 4, v6: true,
			cfg: Config{MTU: 1500, Seed: 7,
				A:    HostConfig{MinRTO: 20 * time.Millisecond},
				B:    HostConfig{MinRTO: 20 * time.Millisecond},
				AToB: Impairment{LossPct: 5}, BToA: Impairment{LossPct: 5}},
			check: func(t *testing.T, s Stats) {
				if s.AToB.Lost == 0 || s.BToA.Lost == 0 {
					t.Errorf("no packet lost: %+v %+v", s.AToB, s.BToA)
				}
			},
		},
		{
			name: "reorder/v4", size: n,
			cfg: Config{MTU: 1500, AToB: Impairment{ReorderPct: 5}, BToA: Impairment{ReorderPct: 5, ReorderK: 8}},
			check: func(t *testing.T, s Stats) {
				if s.AToB.Reordered == 0 || s.BToA.Reordered == 0 {
					t.Errorf("nothing reordered: %+v %+v", s.AToB, s.BToA)
				}
			},
		},
		{
			name: "duplicate/v6", size: n, v6: true,
			cfg: Config{MTU: 1500, AToB: Impairment{DupPct: 5}, BToA: Impairment{DupPct: 5}},
			check: func(t *testing.T, s Stats) {
				if s.AToB.Duplicated == 0 || s.BToA.Duplicated == 0 {
					t.Errorf("nothing duplicated: %+v %+v", s.AToB, s.BToA)
				}
			},
		},
		{
			name: "delay-jitter/v4", size: n / 4,
			cfg: Config{MTU: 1500,
				AToB: Impairment{Delay: time.Millisecond, Jitter: time.Millisecond},
				BToA: Impairment{Delay: time.Millisecond, Jitter: time.Millisecond}},
		},
		{
			name: "resegment/v4", size: n,
			cfg: Config{MTU: 1500,
				AToB: Impairment{SplitPct: 30, CoalescePct: 80},
				BToA: Impairment{SplitPct: 30, SplitMax: 6, CoalescePct: 80, CoalesceMax: 9000}},
			check: func(t *testing.T, s Stats) {
				if s.AToB.Split == 0 || s.BToA.Split == 0 || s.AToB.Coalesced == 0 || s.BToA.Coalesced == 0 {
					t.Errorf("no resegmentation: %+v %+v", s.AToB, s.BToA)
				}
			},
		},
		{
			name: "resegment/v6/mtu65535", size: n, v6: true,
			cfg: Config{AToB: Impairment{SplitPct: 50, SplitMax: 8}, BToA: Impairment{SplitPct: 50}},
			check: func(t *testing.T, s Stats) {
				if s.AToB.Split == 0 || s.BToA.Split == 0 {
					t.Errorf("nothing split: %+v %+v", s.AToB, s.BToA)
				}
			},
		},
		{
			name: "gso/v4", size: n,
			cfg: Config{MTU: 1500, A: HostConfig{GSO: true}, B: HostConfig{GSO: true, GSOMax: 16384}},
			check: func(t *testing.T, s Stats) {
				if s.A.GSOMerged == 0 || s.B.GSOMerged == 0 {
					t.Errorf("no GSO super-packets: %+v %+v", s.A, s.B)
				}
			},
		},
		{
			name: "gso-partial-checksum/v6", size: n, v6: true,
			cfg: Config{MTU: 1500,
				A: HostConfig{GSO: true, GSOPartialChecksum: true, Middle: PassThrough{}},
				B: HostConfig{GSO: true, GSOPartialChecksum: true}},
			check: func(t *testing.T, s Stats) {
				if s.A.GSOMerged == 0 || s.B.GSOMerged == 0 || s.A.BadChecksum+s.B.BadChecksum != 0 {
					t.Errorf("GSO stats: %+v %+v", s.A, s.B)
				}
			},
		},
		{
			name: "everything/v6", size: n / 4, v6: true,
			cfg: Config{MTU: 1500, Seed: 42,
				A:    HostConfig{GSO: true, Middle: PassThrough{}},
				B:    HostConfig{Middle: PassThrough{}, RcvBuf: 65536},
				AToB: Impairment{LossPct: 1, DupPct: 1, ReorderPct: 2, SplitPct: 10, CoalescePct: 50},
				BToA: Impairment{LossPct: 1, DupPct: 1, ReorderPct: 2, SplitPct: 10, CoalescePct: 50}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			CheckLeaks(t)
			p := NewForTest(t, tt.cfg)
			start := time.Now()
			if err := p.Bulk(testCtx(t), tt.v6, 443, tt.size, tt.size); err != nil {
				t.Fatal(err)
			}
			s := p.Stats()
			t.Logf("%d bytes each way in %v; A->B %+v; B->A %+v", tt.size, time.Since(start), s.AToB, s.BToA)
			if tt.check != nil {
				tt.check(t, s)
			}
		})
	}
}

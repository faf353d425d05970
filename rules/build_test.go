package rules

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"golang.org/x/sys/unix"
)

// Expression fragments, spelled out independently of build.go.
var (
	tcpExprs = []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{6}},
	}
	markExprs = []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.NativeEndian.AppendUint32(nil, 0x7463)},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}
	peerMarkExprs = []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.NativeEndian.AppendUint32(nil, 0x7464)},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}
	accept = &expr.Verdict{Kind: expr.VerdictAccept}
)

func port(offset uint32, p uint16) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: offset, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{byte(p >> 8), byte(p)}},
	}
}

func cat(parts ...any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		switch p := p.(type) {
		case []expr.Any:
			out = append(out, p...)
		case expr.Any:
			out = append(out, p)
		}
	}
	return out
}

func nfq(num, total, flags uint16) expr.Any {
	b := binary.NativeEndian.AppendUint16(nil, num)
	b = binary.NativeEndian.AppendUint16(b, total)
	b = binary.NativeEndian.AppendUint16(b, flags)
	info := xt.Unknown(append(b, 0, 0))
	return &expr.Target{Name: "NFQUEUE", Rev: 3, Info: &info}
}

// guardExprs is the guard rule expected for one chain and family, written out
// with literal offsets and registers: output keys on (saddr, daddr, sport,
// dport), input on (daddr, saddr, dport, sport); 32-bit registers follow the
// first 16-byte one.
func guardExprs(output, v6 bool, q expr.Any) []expr.Any {
	proto, set := byte(unix.NFPROTO_IPV4), "protected4"
	a1, a2, r2, p1, p2, alen := uint32(12), uint32(16), uint32(9), uint32(10), uint32(11), uint32(4)
	if v6 {
		proto, set = unix.NFPROTO_IPV6, "protected6"
		a1, a2, r2, p1, p2, alen = 8, 24, 12, 16, 17, 16
	}
	lp, rp := uint32(0), uint32(2)
	if !output {
		a1, a2, lp, rp = a2, a1, 2, 0
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: a1, Len: alen},
		&expr.Payload{DestRegister: r2, Base: expr.PayloadBaseNetworkHeader, Offset: a2, Len: alen},
		&expr.Payload{DestRegister: p1, Base: expr.PayloadBaseTransportHeader, Offset: lp, Len: 2},
		&expr.Payload{DestRegister: p2, Base: expr.PayloadBaseTransportHeader, Offset: rp, Len: 2},
		&expr.Lookup{SourceRegister: 1, SetName: set},
		q,
	}
}

func TestBuild(t *testing.T) {
	v6daddr := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV6}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 24, Len: 16},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 16,
			Mask: []byte{0xff, 0xff, 0xff, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, Xor: make([]byte, 16)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: netip.MustParseAddr("2001:db8::").AsSlice()},
	}
	v6saddr := append([]expr.Any(nil), v6daddr...)
	v6saddr[2] = &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 16}
	v4host := func(off uint32) []expr.Any {
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: 4},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{192, 0, 2, 7}},
		}
	}
	v4any := v4host(0)[:2]

	tests := []struct {
		name     string
		edit     func(*Config)
		policies []Policy
		kind     QueueKind
		output   [][]expr.Any // rules after the mark and guard rules
		input    [][]expr.Any
		guardQ   expr.Any // the guard rules' queue verdict (never bypass)
	}{
		{
			name:     "local opportunistic",
			policies: []Policy{{Port: 443, Side: SideLocal}},
			kind:     QueueCompat,
			output:   [][]expr.Any{cat(tcpExprs, port(0, 443), nfq(7463, 1, 1))},
			input:    [][]expr.Any{cat(tcpExprs, port(2, 443), nfq(7463, 1, 1))},
			guardQ:   nfq(7463, 1, 0),
		},
		{
			name:     "remote required v6 prefix",
			policies: []Policy{{Port: 25, Side: SideRemote, Mode: ModeRequired, Prefix: mustPrefix("2001:db8::/33")}},
			kind:     QueueCompat,
			output:   [][]expr.Any{cat(v6daddr, tcpExprs, port(2, 25), nfq(7463, 1, 0))},
			input:    [][]expr.Any{cat(v6saddr, tcpExprs, port(0, 25), nfq(7463, 1, 0))},
			guardQ:   nfq(7463, 1, 0),
		},
		{
			name: "both sides, exclude first, host prefix, /0",
			policies: []Policy{
				{Port: 80, Side: SideBoth, Prefix: mustPrefix("0.0.0.0/0")},
				{Port: 80, Side: SideBoth, Mode: ModeExclude, Prefix: mustPrefix("192.0.2.7/32")},
			},
			kind: QueueCompat,
			output: [][]expr.Any{
				cat(v4host(16), tcpExprs, port(0, 80), accept),
				cat(v4host(16), tcpExprs, port(2, 80), accept),
				cat(v4any, tcpExprs, port(0, 80), nfq(7463, 1, 1)),
				cat(v4any, tcpExprs, port(2, 80), nfq(7463, 1, 1)),
			},
			input: [][]expr.Any{
				cat(v4host(12), tcpExprs, port(2, 80), accept),
				cat(v4host(12), tcpExprs, port(0, 80), accept),
				cat(v4any, tcpExprs, port(2, 80), nfq(7463, 1, 1)),
				cat(v4any, tcpExprs, port(0, 80), nfq(7463, 1, 1)),
			},
			guardQ: nfq(7463, 1, 0),
		},
		{
			name: "native queue range fanout, bypass policy inverted",
			edit: func(c *Config) {
				c.QueueNum, c.QueueCount, c.CPUFanout, c.Bypass = 8, 4, true, BypassPolicy{Required: true}
			},
			policies: []Policy{{Port: 1, Side: SideLocal, Mode: ModeRequired}, {Port: 2, Side: SideLocal}},
			kind:     QueueNative,
			output: [][]expr.Any{
				cat(tcpExprs, port(0, 1), &expr.Queue{Num: 8, Total: 4, Flag: 3}),
				cat(tcpExprs, port(0, 2), &expr.Queue{Num: 8, Total: 4, Flag: 2}),
			},
			input: [][]expr.Any{
				cat(tcpExprs, port(2, 1), &expr.Queue{Num: 8, Total: 4, Flag: 3}),
				cat(tcpExprs, port(2, 2), &expr.Queue{Num: 8, Total: 4, Flag: 2}),
			},
			// fanout (2) without bypass (1), whatever the bypass policy
			guardQ: &expr.Queue{Num: 8, Total: 4, Flag: 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tt.edit != nil {
				tt.edit(&cfg)
			}
			rs, err := Build(cfg, tt.policies, tt.kind)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			if len(rs.Chains) != 2 {
				t.Fatalf("%d chains", len(rs.Chains))
			}
			out, in := rs.Chains[0], rs.Chains[1]
			if out.Name != "output" || out.Hook != *nftables.ChainHookOutput || out.Priority != -300 {
				t.Errorf("output chain = %s hook %d prio %d", out.Name, out.Hook, out.Priority)
			}
			if in.Name != "input" || in.Hook != *nftables.ChainHookInput || in.Priority != -150 {
				t.Errorf("input chain = %s hook %d prio %d", in.Name, in.Hook, in.Priority)
			}
			for _, c := range []struct {
				ch   Chain
				want [][]expr.Any
			}{{out, tt.output}, {in, tt.input}} {
				var got [][]expr.Any
				for _, r := range c.ch.Rules {
					got = append(got, r.Exprs)
				}
				// Both chains skip the local mark; only output skips the
				// peer mark, so a loopback peer's input chain still queues.
				// Then the guard rules, before every per-port rule.
				o := c.ch.Name == "output"
				guards := [][]expr.Any{guardExprs(o, false, tt.guardQ), guardExprs(o, true, tt.guardQ)}
				want := slices.Concat([][]expr.Any{markExprs}, guards, c.want)
				if o {
					want = slices.Concat([][]expr.Any{markExprs, peerMarkExprs}, guards, c.want)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("chain %s (-want +got):\n%s", c.ch.Name, diff)
				}
			}
		})
	}
}

func TestBuildComments(t *testing.T) {
	cfg := DefaultConfig()
	cfg.QueueNum, cfg.QueueCount = 100, 4
	rs, err := Build(cfg, []Policy{
		{Port: 443, Side: SideBoth},
		{Port: 25, Side: SideRemote, Mode: ModeRequired, Prefix: mustPrefix("2001:db8::/32")},
		{Port: 22, Side: SideLocal, Mode: ModeExclude},
	}, QueueCompat)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rs.Chains[0].Rules {
		got = append(got, r.Comment)
	}
	want := []string{
		"tcpcryptd packets to the local stack",
		"tcpcryptd packets to the peer",
		"flows tcpcryptd encrypted (protected4): queue 100-103 symhash no-bypass",
		"flows tcpcryptd encrypted (protected6): queue 100-103 symhash no-bypass",
		"local 22 exclude: accept",
		"remote 25 2001:db8::/32 required: queue 100-103 symhash no-bypass",
		"local 443 opportunistic: queue 100-103 symhash bypass",
		"remote 443 opportunistic: queue 100-103 symhash bypass",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("comments (-want +got):\n%s", diff)
	}
	for _, c := range got {
		if len(c) > 128 {
			t.Errorf("comment %q longer than nft's 128-byte limit", c)
		}
	}
}

// TestBuildFlowBalance checks the queue choice with several queues: by
// default every queueing rule, the guard rules included, jumps to the select
// chain of its bypass flag, which takes the symmetric flow hash modulo the
// queue count, looks it up in its map and drops what the lookup misses; map
// entry i jumps to a chain queueing to QueueNum+i alone. With AddressHash the
// rules keep the NFQUEUE target over the whole range and there are no maps.
func TestBuildFlowBalance(t *testing.T) {
	policies := []Policy{{Port: 443, Side: SideBoth}, {Port: 25, Side: SideLocal, Mode: ModeRequired}}
	cfg := DefaultConfig()
	cfg.QueueNum, cfg.QueueCount = 100, 3
	rs, err := Build(cfg, policies, QueueCompat)
	if err != nil {
		t.Fatal(err)
	}
	queueing := 0
	for _, c := range rs.Chains {
		for _, r := range c.Rules {
			v, ok := r.Exprs[len(r.Exprs)-1].(*expr.Verdict)
			if !ok {
				t.Errorf("%s: rule %q ends in %T", c.Name, r.Comment, r.Exprs[len(r.Exprs)-1])
				continue
			}
			if v.Kind == expr.VerdictAccept {
				continue // the mark rules and excludes
			}
			queueing++
			want := selectChainName
			if strings.HasSuffix(r.Comment, " bypass") {
				want = selectBypassChainName
			}
			if v.Kind != expr.VerdictJump || v.Chain != want {
				t.Errorf("%s: rule %q: verdict %+v, want a jump to %s", c.Name, r.Comment, v, want)
			}
		}
	}
	// Output and input: two guard rules, 443 local and remote, 25 local.
	if queueing != 10 {
		t.Errorf("%d queueing rules, want 10", queueing)
	}
	if len(rs.Maps) != 2 {
		t.Fatalf("%d maps, want 2", len(rs.Maps))
	}
	for _, m := range rs.Maps {
		if m.Bypass != (m.Name == QueueMapBypassName) || len(m.Chains) != 3 {
			t.Errorf("map %s: bypass %v, %d chains", m.Name, m.Bypass, len(m.Chains))
		}
		sel := m.Select.Rules
		wantSel := map[bool]string{false: selectChainName, true: selectBypassChainName}[m.Bypass]
		if m.Select.Name != wantSel || len(sel) != 2 || len(sel[0].Exprs) != 2 || len(sel[1].Exprs) != 1 {
			t.Fatalf("map %s: select chain %s with %+v", m.Name, m.Select.Name, sel)
		}
		h, ok1 := sel[0].Exprs[0].(*expr.Hash)
		l, ok2 := sel[0].Exprs[1].(*expr.Lookup)
		d, ok3 := sel[1].Exprs[0].(*expr.Verdict)
		if !ok1 || !ok2 || !ok3 || h.Type != expr.HashTypeSym || h.Modulus != 3 || h.Offset != 0 ||
			!l.IsDestRegSet || l.SourceRegister != h.DestRegister || l.SetName != m.Name || d.Kind != expr.VerdictDrop {
			t.Errorf("map %s: select chain %s is not symhash mod 3, a lookup in the map, then drop: %#v", m.Name, m.Select.Name, sel)
		}
		for i, el := range m.elements() {
			if binaryutil.NativeEndian.Uint32(el.Key) != uint32(i) || el.VerdictData.Kind != expr.VerdictJump || el.VerdictData.Chain != m.Chains[i].Name {
				t.Errorf("map %s entry %d: key %x -> %+v", m.Name, i, el.Key, el.VerdictData)
			}
		}
		for i, c := range m.Chains {
			tg, ok := c.Rules[0].Exprs[0].(*expr.Target)
			if len(c.Rules) != 1 || len(c.Rules[0].Exprs) != 1 || !ok {
				t.Errorf("chain %s: %+v, want one NFQUEUE target", c.Name, c.Rules)
				continue
			}
			info, err := parseNFQInfoV3(*tg.Info.(*xt.Unknown))
			if err != nil || info.QueueNum != 100+uint16(i) || info.QueuesTotal != 1 || (info.Flags&nfqFlagBypass != 0) != m.Bypass {
				t.Errorf("chain %s: %+v, %v; want queue %d alone, bypass %v", c.Name, info, err, 100+i, m.Bypass)
			}
		}
	}

	cfg.AddressHash = true
	rs, err = Build(cfg, policies, QueueCompat)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs.Maps) != 0 {
		t.Errorf("AddressHash: %d maps", len(rs.Maps))
	}
	for _, r := range rs.Chains[0].Rules[2:] {
		tg, ok := r.Exprs[len(r.Exprs)-1].(*expr.Target)
		if !ok {
			t.Errorf("AddressHash: rule %q ends in %T", r.Comment, r.Exprs[len(r.Exprs)-1])
			continue
		}
		if info, _ := parseNFQInfoV3(*tg.Info.(*xt.Unknown)); info.QueueNum != 100 || info.QueuesTotal != 3 {
			t.Errorf("AddressHash: rule %q queues %+v", r.Comment, info)
		}
	}
	cfg.CPUFanout = true
	if _, err := Build(cfg, policies, QueueCompat); !errors.Is(err, ErrConfig) {
		t.Errorf("CPUFanout with AddressHash: %v, want ErrConfig", err)
	}
}

func TestBuildErrors(t *testing.T) {
	ok := []Policy{{Port: 1, Side: SideLocal}}
	tests := []struct {
		name     string
		edit     func(*Config)
		policies []Policy
		kind     QueueKind
		want     error
	}{
		{"zero mark", func(c *Config) { c.Mark = 0 }, ok, QueueCompat, ErrConfig},
		{"queue range past 65535", func(c *Config) { c.QueueNum, c.QueueCount = 65535, 2 }, ok, QueueCompat, ErrConfig},
		{"fanout single queue", func(c *Config) { c.CPUFanout = true }, ok, QueueCompat, ErrConfig},
		{"unknown queue kind", nil, ok, 0, ErrConfig},
		{"bad policy", nil, []Policy{{Port: 0, Side: SideLocal}}, QueueNative, ErrPort},
		{"duplicate", nil, []Policy{{Port: 1, Side: SideLocal}, {Port: 1, Side: SideBoth}}, QueueNative, ErrDuplicate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tt.edit != nil {
				tt.edit(&cfg)
			}
			if _, err := Build(cfg, tt.policies, tt.kind); !errors.Is(err, tt.want) {
				t.Errorf("Build = %v, want %v", err, tt.want)
			}
		})
	}
	// Boundary: the last queue may be 65535; QueueCount 0 means 1.
	cfg := DefaultConfig()
	cfg.QueueNum, cfg.QueueCount = 65532, 4
	if _, err := Build(cfg, ok, QueueCompat); err != nil {
		t.Errorf("queues 65532..65535: %v", err)
	}
	cfg.QueueNum, cfg.QueueCount = 65535, 0
	if _, err := Build(cfg, ok, QueueCompat); err != nil {
		t.Errorf("queue 65535 count 0: %v", err)
	}
}

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	// The explicit policy: opportunistic fails open, required fails closed.
	if !c.Bypass.For(ModeOpportunistic) || c.Bypass.For(ModeRequired) || c.Bypass.For(ModeExclude) {
		t.Errorf("default bypass = %+v", c.Bypass)
	}
	if c.Mark != DefaultMark || c.QueueNum != DefaultQueueNum || c.QueueCount != DefaultQueueCount {
		t.Errorf("DefaultConfig = %+v", c)
	}
}

func TestNFQInfoV3(t *testing.T) {
	// struct xt_NFQ_info_v3 { __u16 queuenum; __u16 queues_total; __u16 flags; }
	// in host byte order, then zero padding to XT_ALIGN(6) = 8.
	i := nfqInfoV3{QueueNum: 0x0102, QueuesTotal: 0x0304, Flags: 0x0003}
	b := i.marshal()
	want := binary.NativeEndian.AppendUint16(nil, 0x0102)
	want = binary.NativeEndian.AppendUint16(want, 0x0304)
	want = binary.NativeEndian.AppendUint16(want, 0x0003)
	want = append(want, 0, 0)
	if diff := cmp.Diff(want, b); diff != "" {
		t.Errorf("marshal (-want +got):\n%s", diff)
	}
	for _, in := range [][]byte{b, b[:6]} {
		got, err := parseNFQInfoV3(in)
		if err != nil || got != i {
			t.Errorf("parse(%x) = %+v, %v", in, got, err)
		}
	}
	bad := map[string][]byte{
		"short":          b[:5],
		"seven":          b[:7],
		"long":           append(append([]byte(nil), b...), 0),
		"nonzero pad":    append(append([]byte(nil), b[:6]...), 0, 1),
		"unknown flag":   append(append([]byte(nil), b[:4]...), binary.NativeEndian.AppendUint16(nil, 4)...),
		"empty":          nil,
		"padding in mid": {0, 0, 0, 0, 0, 0, 0, 0, 0},
	}
	for name, in := range bad {
		if _, err := parseNFQInfoV3(in); err == nil {
			t.Errorf("%s: parse(%x) succeeded", name, in)
		}
	}
}

func TestEnumStrings(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{SideLocal.String(), "local"}, {SideRemote.String(), "remote"}, {SideBoth.String(), "both"},
		{Side(0).String(), "side(0)"},
		{ModeOpportunistic.String(), "opportunistic"}, {ModeRequired.String(), "required"},
		{ModeExclude.String(), "exclude"}, {Mode(9).String(), "mode(9)"},
		{QueueNative.String(), "native"}, {QueueCompat.String(), "compat"}, {QueueKind(0).String(), "queuekind(0)"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
